// Command albgen writes a large AWS ALB access log for bench/matchlog.sh:
// the records of a sample log repeated, with what varies in a real log
// (client port, timestamps' fractions, trace ids) varied so that gzip does
// not shrink it to nothing, every 50th record with a scanner's address as
// Host and every 200th with a random name.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"regexp"
)

var (
	authority = regexp.MustCompile(`://[^/ ?]*`)
	client    = regexp.MustCompile(`^(\S+ \S+ \S+ [^ ]*:)\d+ `)
	fraction  = regexp.MustCompile(`\.\d{6}Z`)
	trace     = regexp.MustCompile(`TID_[0-9a-f]+`)
)

func main() {
	sample := flag.String("sample", "../cmd/hostguard/internal/hostlog/testdata/alb.log", "the sample log whose records are repeated")
	n := flag.Int("n", 400000, "records to write")
	flag.Parse()
	data, err := os.ReadFile(*sample)
	if err != nil {
		log.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
	r := rand.New(rand.NewPCG(1, 2))
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	defer out.Flush()
	for i := range *n {
		l := lines[i%len(lines)]
		switch {
		case i%50 == 0:
			l = authority.ReplaceAll(l, fmt.Appendf(nil, "://203.0.113.%d:80", i%251))
		case i%200 == 1:
			l = authority.ReplaceAll(l, fmt.Appendf(nil, "://x%d.example:443", r.IntN(1e6)))
		}
		l = client.ReplaceAll(l, fmt.Appendf(nil, "${1}%d ", 1024+r.IntN(64000)))
		l = fraction.ReplaceAllFunc(l, func([]byte) []byte { return fmt.Appendf(nil, ".%06dZ", r.IntN(1e6)) })
		l = trace.ReplaceAll(l, fmt.Appendf(nil, "TID_%016x", r.Uint64()))
		out.Write(l)
		out.WriteByte('\n')
	}
}
