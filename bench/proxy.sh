#!/usr/bin/env bash
# Measures, in one run on loopback with the same upstream and the same wrk
# settings: the upstream direct, nginx as a reverse proxy with upstream
# keep-alive, a stock httputil.ReverseProxy, and hostguard proxy. Prints
# requests/s and p99 latency of each and the ratios hostguard/nginx.
#
#   bench/proxy.sh [DURATION] [CONNECTIONS] [ROUNDS]   defaults: 10s 64 3
#
# A small machine's speed drifts during a run, so nginx and hostguard are
# measured in ROUNDS alternating rounds and each is reported by its median
# round (by req/s; p99 is the median of the p99s). The upstream direct and
# the stock proxy are measured once, for scale.
#
# Needs wrk and nginx (Debian packages wrk, nginx). Every process it starts
# listens on 127.0.0.1 only and is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")"
duration=${1:-10s}
conns=${2:-64}
rounds=${3:-3}
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

# median of the numbers on stdin (units such as "ms" are kept)
median() {
	sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : v[NR / 2] }'
}
# p99 in ms, whatever unit wrk printed
ms() {
	awk '{ v = $1 + 0; if ($1 ~ /us$/) v /= 1000; else if ($1 ~ /[0-9]s$/ && $1 !~ /ms$/) v *= 1000; printf "%.2fms\n", v }'
}

results=()
for target in "direct $UP" "stock-reverseproxy $STOCK"; do
	# shellcheck disable=SC2086
	results+=("$(run $target)")
done
rounds_out=()
for _ in $(seq "$rounds"); do
	rounds_out+=("$(run nginx $NGINX)" "$(run hostguard $HG)")
done
for name in nginx hostguard; do
	rps=$(printf '%s\n' "${rounds_out[@]}" | awk -v n=$name '$1 == n {print $2}' | median)
	p99=$(printf '%s\n' "${rounds_out[@]}" | awk -v n=$name '$1 == n {print $3}' | ms | median)
	results+=("$name $rps $p99")
done
printf '%-20s %12s %10s\n' target "req/s" p99
for r in "${results[@]}"; do printf '%-20s %12s %10s\n' $r; done
echo "rounds (nginx, hostguard alternating): $(printf '%s; ' "${rounds_out[@]}")"
nginx_rps=$(printf '%s\n' "${results[@]}" | awk '$1 == "nginx" {print $2}')
hg_rps=$(printf '%s\n' "${results[@]}" | awk '$1 == "hostguard" {print $2}')
stock_rps=$(printf '%s\n' "${results[@]}" | awk '$1 == "stock-reverseproxy" {print $2}')
nginx_p99=$(printf '%s\n' "${results[@]}" | awk '$1 == "nginx" {print $3 + 0}')
hg_p99=$(printf '%s\n' "${results[@]}" | awk '$1 == "hostguard" {print $3 + 0}')
awk -v h="$hg_rps" -v n="$nginx_rps" -v s="$stock_rps" -v hp="$hg_p99" -v np="$nginx_p99" 'BEGIN {
	printf "hostguard/nginx throughput: %.2fx\n", h / n
	printf "hostguard/nginx p99: %.2fx\n", hp / np
	printf "stock-reverseproxy/nginx throughput: %.2fx\n", s / n
}'
