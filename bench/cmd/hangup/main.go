// Command hangup opens many connections to a proxy at once, asks each for a
// slow page and hangs up before the answer, as impatient clients and load
// balancers that give up do.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"sync"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18002", "the proxy")
	n := flag.Int("n", 300, "clients")
	after := flag.Duration("after", 200*time.Millisecond, "how long each waits before hanging up")
	path := flag.String("path", "/slow", "the page asked for")
	host := flag.String("host", "lhy.kr", "the Host sent")
	flag.Parse()
	var wg sync.WaitGroup
	for range *n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", *addr)
			if err != nil {
				log.Print(err)
				return
			}
			fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", *path, *host)
			time.Sleep(*after)
			c.Close()
		}()
	}
	wg.Wait()
}
