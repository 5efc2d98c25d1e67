package main

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/hostguard/hostguard"
	"golang.org/x/net/idna"
)

// listFormat is how the reader of exec's variable compares hosts.
type listFormat string

const (
	formatPlain  listFormat = "plain"  // entries as given
	formatDjango listFormat = "django" // Django's ALLOWED_HOSTS
)

// djangoVariable is the variable whose name implies the django format.
const djangoVariable = "DJANGO_ALLOWED_HOSTS"

// parseListFormat returns the format --format names, or the one the
// variable's name implies when it is empty.
func parseListFormat(flag, variable string) (listFormat, error) {
	switch flag {
	case "":
		if variable == djangoVariable {
			return formatDjango, nil
		}
		return formatPlain, nil
	case string(formatPlain), string(formatDjango):
		return listFormat(flag), nil
	}
	return "", fmt.Errorf("--format %q: use django or plain", flag)
}

// convert writes the entries (valid hostguard entries, @self kept) for the
// variable's reader.
func (f listFormat) convert(entries []string) ([]string, error) {
	if f == formatDjango {
		return djangoHosts(entries)
	}
	return entries, nil
}

// djangoHosts is the one place where hostguard decides what a list becomes
// in Django's ALLOWED_HOSTS: exec --format django applies it, and Python
// programs reach it by running hostguard exec. It converts what converts
// without loss: a name to lower case and to punycode (Django compares the
// Host the browser sends, which is punycode), a bare IPv6 address to
// [addr] (Django compares the bracketed form of the Host), a trailing dot
// dropped (Django strips it from the Host before comparing). Entries
// Django can never match as hostguard means them are refused, every one
// named with the reason and the alternative: CIDR ranges (Django compares
// text), "*.x" (Django's ".x" also admits x itself) and host:port (Django
// ignores the port). "@self", "*", ".x", names and addresses pass.
func djangoHosts(entries []string) ([]string, error) {
	out := make([]string, 0, len(entries))
	var errs []error
	for _, en := range entries {
		d, err := djangoHost(en)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, d)
	}
	if len(errs) > 0 {
		what := "this entry"
		if len(errs) > 1 {
			what = fmt.Sprintf("%d entries", len(errs))
		}
		return nil, fmt.Errorf("--format django: Django cannot match %s:\n%w\nhostguard proxy in front of the app matches them all (hostguard proxy --allow %s --upstream <the app's address>); or write the list with entries Django matches, or pass --format plain if the variable's reader is not Django",
			what, errors.Join(errs...), strings.Join(entries, ","))
	}
	return out, nil
}

// djangoHost converts one entry, or says why Django cannot match it.
func djangoHost(en string) (string, error) {
	refuse := func(why string, a ...any) (string, error) {
		return "", fmt.Errorf("  %q: %s", en, fmt.Sprintf(why, a...))
	}
	switch {
	case en == hostguard.SelfEntry, en == "*":
		return en, nil // @self becomes addresses Django compares as they are
	case strings.Contains(en, "/"):
		return refuse("a CIDR range; Django compares the Host as text, so a range matches nothing: list the addresses instead")
	case strings.HasPrefix(en, "*."):
		return refuse("subdomains only; Django has no such entry: %q also admits %s itself", en[1:], strings.TrimSuffix(en[2:], "."))
	}
	if a, err := netip.ParseAddr(en); err == nil { // IPv4, or IPv6 without brackets
		if a.Is6() {
			return "[" + a.String() + "]", nil
		}
		return a.String(), nil
	}
	if strings.HasPrefix(en, "[") {
		if i := strings.LastIndex(en, "]"); i >= 0 && i < len(en)-1 {
			return refuse("a port; Django ignores the Host's port, so the entry never matches: write %s (any port)", en[:i+1])
		}
		a, err := netip.ParseAddr(strings.Trim(en, "[]"))
		if err != nil {
			return refuse("not an address: %v", err)
		}
		return "[" + a.String() + "]", nil
	}
	if i := strings.LastIndexByte(en, ':'); i >= 0 {
		return refuse("a port; Django ignores the Host's port, so the entry never matches: write %s (any port)", en[:i])
	}
	dot, name := "", en
	if strings.HasPrefix(name, ".") {
		dot, name = ".", name[1:]
	}
	ascii, err := idna.Lookup.ToASCII(strings.TrimSuffix(name, "."))
	if err != nil {
		return refuse("not a valid internationalised domain name: %v", err)
	}
	return dot + strings.ToLower(ascii), nil
}
