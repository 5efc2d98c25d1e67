package proxy

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// nginx is Debian's nginx, started by a test as the reference reverse
// proxy: for every site, a server block that answers the allowed names and
// forwards them as hostguard does, and a default_server that answers 400,
// the configuration the README gives for "nginx rules" (server_name with a
// default_server that drops).
type nginx struct {
	addrs []string // one listen address per site
}

// needNginx returns nginx's path, or skips the test when it is missing;
// with HOSTGUARD_REQUIRE_NGINX=1 (CI) it fails instead.
func needNginx(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("nginx")
	if err != nil {
		path = "/usr/sbin/nginx"
		if _, serr := os.Stat(path); serr != nil {
			if os.Getenv("HOSTGUARD_REQUIRE_NGINX") == "1" {
				t.Fatalf("nginx is required (HOSTGUARD_REQUIRE_NGINX=1): %v", err)
			}
			t.Skip("nginx not installed (apt-get install nginx); set HOSTGUARD_REQUIRE_NGINX=1 to fail instead")
		}
	}
	return path
}

// haveNginx reports whether nginx is installed, for tests that run
// without it too; with HOSTGUARD_REQUIRE_NGINX=1 (CI) a missing nginx
// fails the test.
func haveNginx(t *testing.T) bool {
	t.Helper()
	if _, err := exec.LookPath("nginx"); err == nil {
		return true
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return true
	}
	if os.Getenv("HOSTGUARD_REQUIRE_NGINX") == "1" {
		t.Fatal("nginx is required (HOSTGUARD_REQUIRE_NGINX=1): not installed (apt-get install nginx)")
	}
	return false
}

// startNginx starts nginx with one site per upstream address; names are
// the server names each site answers.
func startNginx(t *testing.T, upstreams []string, names []string) *nginx {
	t.Helper()
	bin := needNginx(t)
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	n := &nginx{}
	// Free ports for nginx: all held at once, so none is handed out twice.
	var held []net.Listener
	for range upstreams {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, l)
		n.addrs = append(n.addrs, l.Addr().String())
	}
	for _, l := range held {
		l.Close()
	}
	var sites strings.Builder
	for i, up := range upstreams {
		addr := n.addrs[i]
		fmt.Fprintf(&sites, `
	upstream app%[1]d { server %[2]s; keepalive 4; }
	server { listen %[3]s default_server; return 400; }
	server {
		listen %[3]s;
		server_name %[4]s;
		location / {
			proxy_pass http://app%[1]d;
			proxy_http_version 1.1;
			proxy_set_header Host $host;
			proxy_set_header Upgrade $http_upgrade;
			proxy_set_header Connection $connection_upgrade;
			proxy_set_header X-Forwarded-For $remote_addr;
			proxy_set_header X-Forwarded-Host $host;
			proxy_set_header X-Forwarded-Proto $scheme;
			proxy_set_header Forwarded "";
		}
	}
`, i, up, addr, strings.Join(names, " "))
	}
	user := ""
	if os.Geteuid() == 0 {
		user = "user root root;" // workers write body buffers under dir
	}
	conf := fmt.Sprintf(`%s
worker_processes 1;
worker_rlimit_nofile 16384;
daemon off;
master_process on;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
events { worker_connections 8192; }
http {
	access_log off;
	client_body_temp_path %[2]s/body;
	proxy_temp_path %[2]s/proxy;
	fastcgi_temp_path %[2]s/fastcgi;
	uwsgi_temp_path %[2]s/uwsgi;
	scgi_temp_path %[2]s/scgi;
	large_client_header_buffers 4 8k;
	map $http_upgrade $connection_upgrade { default upgrade; '' close; }
%[3]s
}
`, user, dir, sites.String())
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", path, "-p", dir, "-e", filepath.Join(dir, "error.log"))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var exit error
	go func() { exit = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	for _, addr := range n.addrs {
		deadline := time.Now().Add(10 * time.Second)
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-done:
				log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
				t.Fatalf("nginx exited: %v\n%s", exit, log)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("nginx does not listen on %s: %v", addr, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return n
}
