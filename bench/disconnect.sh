#!/usr/bin/env bash
# Measures what clients that hang up cost a proxy: N clients ask a page the
# upstream answers after a minute, and hang up after 0.2 s; the script counts
# the proxy's open file descriptors (client and upstream connections) right
# after, and 0.5, 1, 1.5, 2, 3 and 5 s later, for nginx and hostguard in the
# same run.
#
#   bench/disconnect.sh [CLIENTS]   default 300
#
# nginx notices a client that left when its connection becomes readable
# (EPOLLRDHUP) and closes the upstream connection; hostguard's Serve looks
# at the client once a second while it waits on the upstream.
#
# Needs nginx (Debian package nginx). Every process it starts listens on
# 127.0.0.1 only and is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")"
clients=${1:-300}
command -v nginx >/dev/null || { echo "disconnect.sh: nginx not found; apt-get install -y nginx" >&2; exit 2; }
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	[ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/upstream" ./cmd/upstream
go build -o "$work/hangup" ./cmd/hangup
(cd .. && go build -o "$work/hostguard" ./cmd/hostguard)
UP=127.0.0.1:18010 NGINX=127.0.0.1:18011 HG=127.0.0.1:18012
"$work/upstream" -listen $UP & pids+=($!)
"$work/hostguard" proxy --listen $HG --upstream http://$UP --allow lhy.kr --platform none 2>/dev/null & pids+=($!)
hg_pid=$!
mkdir -p "$work/nginx"
cat >"$work/nginx.conf" <<CONF
worker_processes 1;
daemon on;
pid $work/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path $work/nginx/body;
	proxy_temp_path $work/nginx/proxy;
	fastcgi_temp_path $work/nginx/fastcgi;
	uwsgi_temp_path $work/nginx/uwsgi;
	scgi_temp_path $work/nginx/scgi;
	upstream app { server $UP; keepalive 256; }
	server {
		listen $NGINX;
		location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
	}
}
CONF
nginx -c "$work/nginx.conf" -p "$work/nginx"
for a in $UP $NGINX $HG; do
	for _ in $(seq 100); do curl -fs -o /dev/null -H 'Host: lhy.kr' "http://$a/" && break; sleep 0.1; done
done
nginx_worker=$(pgrep -P "$(cat "$work/nginx.pid")" | head -1)

fds() { ls "/proc/$1/fd" | wc -l; }
measure() { # name pid addr
	local base
	base=$(fds "$2")
	"$work/hangup" -addr "$3" -n "$clients"
	local line="$1 (idle $base):"
	local last=0
	for at in 0 0.5 1 1.5 2 3 5; do
		sleep "$(awk -v a="$at" -v l="$last" 'BEGIN { print a - l }')"
		last=$at
		line="$line  ${at}s $(($(fds "$2") - base))"
	done
	echo "$line"
}
echo "open file descriptors above idle after $clients clients hung up (seconds after: count)"
measure nginx "$nginx_worker" $NGINX
measure hostguard "$hg_pid" $HG
