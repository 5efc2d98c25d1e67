package hostguard

import "math/bits"

// nameTable is a read-only hash set of lower-case host names, each with the
// rule that allows it. It replaces a Go map on the hot path because a name
// from a Host header may be in mixed case: the table hashes and compares
// names case-insensitively eight bytes at a time, so a lookup neither copies
// nor lowers the name first.
//
// It uses open addressing with linear probing at a load factor of at most
// one half. The keys come from the configuration, not from requests, so a
// client cannot lengthen a probe sequence; build bounds the longest one by
// growing the table. The hash needs no secret seed for the same reason.
type nameTable struct {
	slots []nameSlot // len is a power of two; empty slots have key == ""
	rules []portRule
	mask  uint64
	// maxProbe is the longest probe sequence of any key; a lookup never
	// looks further, hit or miss.
	maxProbe int
	// whole says that keys are hashed whole (hashName). Otherwise they
	// are hashed by their length and three samples of eight bytes
	// (hashSampled), which costs the same at any length; build falls
	// back to whole keys when samples put too many keys together.
	whole bool
}

type nameSlot struct {
	hash uint64
	key  string // lower-case name
	rule int    // index into rules
}

// maxProbeLimit bounds the slots a lookup inspects.
const maxProbeLimit = 8

// buildNameTable builds the table of the names in m.
func buildNameTable(m map[string]portRule) nameTable {
	if len(m) == 0 {
		return nameTable{}
	}
	base := 2
	for base < 2*len(m) {
		base *= 2
	}
	for _, whole := range []bool{false, true} {
		for size := base; ; size *= 2 {
			t := fillNameTable(m, size, whole)
			if t.maxProbe <= maxProbeLimit {
				return t
			}
			// Growing cannot part keys whose hashes are equal: try
			// whole keys, and with them give up at a size no list of
			// sane names comes near.
			if !whole && size >= 8*base || size >= 64*base {
				if whole {
					return t
				}
				break
			}
		}
	}
	panic("unreachable")
}

func fillNameTable(m map[string]portRule, size int, whole bool) nameTable {
	t := nameTable{slots: make([]nameSlot, size), mask: uint64(size - 1), whole: whole}
	for key, r := range m {
		t.rules = append(t.rules, r)
		h := t.hash(key)
		i := h & t.mask
		probe := 1
		for t.slots[i].key != "" {
			i = (i + 1) & t.mask
			probe++
		}
		t.slots[i] = nameSlot{hash: h, key: key, rule: len(t.rules) - 1}
		t.maxProbe = max(t.maxProbe, probe)
	}
	return t
}

func (t *nameTable) hash(s string) uint64 {
	if t.whole {
		return hashName(s)
	}
	return hashSampled(s)
}

// lookup returns the rule of name, in any case, and whether there is one.
// name may hold any bytes: only a name equal to a key, which is well
// formed, is found.
func (t *nameTable) lookup(name string) (*portRule, bool) {
	if len(t.slots) == 0 {
		return nil, false
	}
	hash := t.hash(name)
	i := hash & t.mask
	for range t.maxProbe {
		s := &t.slots[i]
		if s.key == "" {
			return nil, false
		}
		if s.hash == hash && len(s.key) == len(name) && equalFold(s.key, name) {
			return &t.rules[s.rule], true
		}
		i = (i + 1) & t.mask
	}
	return nil, false
}

// hashName hashes s as if its ASCII letters were lower case, eight bytes at
// a time.
func hashName(s string) uint64 {
	h := uint64(0)
	i := 0
	for ; i+8 <= len(s); i += 8 {
		h = mixWord(h, lowerWord(load64(s, i)))
	}
	return finishHash(h, s, i)
}

// hashSampled hashes s as if its ASCII letters were lower case, by its
// length and its first, middle and last eight bytes (all of it when
// shorter): three loads at any length.
func hashSampled(s string) uint64 {
	n := len(s)
	if n < 8 {
		return finishHash(0, s, 0)
	}
	h := mixWord(uint64(n), lowerWord(load64(s, 0)))
	h = mixWord(h, lowerWord(load64(s, n/2-4)))
	return mixWord(h, lowerWord(load64(s, n-8)))
}

// finishHash mixes in the bytes of s from i on (fewer than eight) and the
// length of s.
func finishHash(h uint64, s string, i int) uint64 {
	if rest := len(s) - i; rest > 0 {
		var w uint64
		if len(s) >= 8 {
			// One load of the last eight bytes, shifted so that only
			// the rest remains, zero-extended.
			w = load64(s, len(s)-8) >> (64 - 8*rest)
		} else {
			for j := len(s) - 1; j >= i; j-- {
				w = w<<8 | uint64(s[j])
			}
		}
		h = mixWord(h, lowerWord(w))
	}
	return mixWord(h, uint64(len(s)))
}

// mixWord folds one word into the hash (a multiply-xorshift step).
func mixWord(h, w uint64) uint64 {
	hi, lo := bits.Mul64(h^w, 0x9e3779b97f4a7c15)
	return hi ^ lo
}

// lowerWord lowers the ASCII upper-case letters of a word; it changes no
// other byte.
func lowerWord(w uint64) uint64 {
	return w | between(w, 'A'-1, 'Z'+1)>>2
}

// equalFold reports whether b, of the length of a, equals a when its ASCII
// letters are lowered. a is lower case. A byte of b that is not a letter is
// compared as it is, so b equals a only if it is made of name bytes too.
func equalFold(a, b string) bool {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		if load64(a, i) != lowerWord(load64(b, i)) {
			return false
		}
	}
	for ; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if a[i] != c {
			return false
		}
	}
	return true
}
