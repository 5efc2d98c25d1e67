#!/usr/bin/env bash
# Measures, in one run on loopback with the same upstream and the same wrk
# settings: the upstream direct, nginx as a reverse proxy with upstream
# keep-alive, a stock httputil.ReverseProxy, and hostguard proxy. Prints
# requests/s and p99 latency of each and the ratio hostguard/nginx.
#
#   bench/proxy.sh [DURATION] [CONNECTIONS]     defaults: 10s 64
#
# Needs wrk and nginx (Debian packages wrk, nginx). Every process it starts
# listens on 127.0.0.1 only and is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")"
duration=${1:-10s}
conns=${2:-64}
for c in wrk nginx go; do
	command -v "$c" >/dev/null || { echo "proxy.sh: $c not found; apt-get install -y wrk nginx" >&2; exit 2; }
done
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
go build -o "$work/stockproxy" ./cmd/stockproxy
(cd .. && go build -o "$work/hostguard" ./cmd/hostguard)

UP=127.0.0.1:18000 NGINX=127.0.0.1:18001 HG=127.0.0.1:18002 STOCK=127.0.0.1:18003

"$work/upstream" -listen $UP & pids+=($!)
"$work/stockproxy" -listen $STOCK -upstream http://$UP & pids+=($!)
"$work/hostguard" proxy --listen $HG --upstream http://$UP --allow lhy.kr --platform none 2>"$work/hostguard.log" & pids+=($!)
mkdir -p "$work/nginx"
cat >"$work/nginx.conf" <<CONF
worker_processes auto;
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
		location / {
			proxy_pass http://app;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_set_header Host \$host;
		}
	}
}
CONF
nginx -c "$work/nginx.conf" -p "$work/nginx"

for a in $UP $NGINX $HG $STOCK; do
	for _ in $(seq 100); do
		curl -fs -o /dev/null -H 'Host: lhy.kr' "http://$a/" && break
		sleep 0.1
	done
done

# run NAME ADDR: prints "NAME req/s p99"
run() {
	local out
	out=$(wrk -t2 -c"$conns" -d"$duration" --latency -H 'Host: lhy.kr' "http://$2/")
	local rps p99
	rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
	p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
	echo "$1 $rps $p99"
}

results=()
for target in "direct $UP" "nginx $NGINX" "stock-reverseproxy $STOCK" "hostguard $HG"; do
	# shellcheck disable=SC2086
	results+=("$(run $target)")
done
printf '%-20s %12s %10s\n' target "req/s" p99
for r in "${results[@]}"; do printf '%-20s %12s %10s\n' $r; done
nginx_rps=$(printf '%s\n' "${results[@]}" | awk '$1 == "nginx" {print $2}')
hg_rps=$(printf '%s\n' "${results[@]}" | awk '$1 == "hostguard" {print $2}')
stock_rps=$(printf '%s\n' "${results[@]}" | awk '$1 == "stock-reverseproxy" {print $2}')
awk -v h="$hg_rps" -v n="$nginx_rps" -v s="$stock_rps" 'BEGIN {
	printf "hostguard/nginx throughput: %.2fx\n", h / n
	printf "stock-reverseproxy/nginx throughput: %.2fx\n", s / n
}'
