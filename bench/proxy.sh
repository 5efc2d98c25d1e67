#!/usr/bin/env bash
# Measures, in one run on loopback with the same upstream and the same wrk
# settings: the upstream direct, nginx as a reverse proxy with upstream
# keep-alive, a stock httputil.ReverseProxy, and hostguard proxy. Prints
# requests/s, p99 latency and CPU time per proxied request of each, and the
# ratios hostguard/nginx, for GET and for a small POST (a 64-byte JSON
# body, which the upstream reads), each in its own table.
#
#   bench/proxy.sh [DURATION] [CONNECTIONS] [ROUNDS]   defaults: 10s 64 3
#   HOSTGUARD_BASELINE=<git revision> bench/proxy.sh ...
#
# A small machine's speed drifts during a run, so nginx and hostguard are
# measured in ROUNDS alternating rounds and each is reported by its median
# round (by req/s; p99 and CPU per request are the medians of the rounds').
# The upstream direct and the stock proxy are measured once, for scale. CPU
# per request is the proxy's user and system time (/proc/PID/stat, all of
# nginx's processes) over the requests wrk completed: the steadiest figure
# on a shared machine. With HOSTGUARD_BASELINE, hostguard built from that
# revision runs as "baseline" in the same alternating rounds, for an A/B of
# a change.
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
contenders="nginx hostguard"
if [ -n "${HOSTGUARD_BASELINE:-}" ]; then
	git -C .. worktree add -q --detach "$work/baseline-src" "$HOSTGUARD_BASELINE"
	(cd "$work/baseline-src" && go build -o "$work/baseline" ./cmd/hostguard)
	git -C .. worktree remove --force "$work/baseline-src"
	contenders="nginx hostguard baseline"
fi

UP=127.0.0.1:18000 NGINX=127.0.0.1:18001 HG=127.0.0.1:18002 STOCK=127.0.0.1:18003 BASE=127.0.0.1:18004

"$work/upstream" -listen $UP & pids+=($!)
"$work/stockproxy" -listen $STOCK -upstream http://$UP & pids+=($!)
"$work/hostguard" proxy --listen $HG --upstream http://$UP --allow lhy.kr --platform none 2>"$work/hostguard.log" & pids+=($!)
hg_pid=$!
stock_pid=${pids[1]}
base_pid=
if [ -x "$work/baseline" ]; then
	"$work/baseline" proxy --listen $BASE --upstream http://$UP --allow lhy.kr --platform none 2>"$work/baseline.log" & pids+=($!)
	base_pid=$!
fi
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

for a in $UP $NGINX $HG $STOCK ${base_pid:+$BASE}; do
	for _ in $(seq 100); do
		curl -fs -o /dev/null -H 'Host: lhy.kr' "http://$a/" && break
		sleep 0.1
	done
done

# cpu PID...: clock ticks of user and system time the processes used
cpu() {
	local t=0 p
	for p in "$@"; do
		t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
	done
	echo "$t"
}

# pids NAME: the processes whose CPU time counts for NAME
pids_of() {
	case $1 in
	nginx) pgrep -f "nginx.*$work/nginx.conf" | tr '\n' ' '; pgrep -P "$(cat "$work/nginx.pid")" | tr '\n' ' ' ;;
	hostguard) echo "$hg_pid" ;;
	baseline) echo "$base_pid" ;;
	stock-reverseproxy) echo "$stock_pid" ;;
	*) echo "" ;;
	esac
}

# The small POST: a form or API call with a body the proxy must forward.
cat >"$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"user":"someone","items":[1,2,3],"note":"a small form post"}'
wrk.headers["Content-Type"] = "application/json"
LUA

# run NAME ADDR: prints "NAME req/s p99 cpu-µs-per-request" for $method
run() {
	local out ps c0 c1 script=()
	[ "$method" = POST ] && script=(-s "$work/post.lua")
	ps=$(pids_of "$1" | tr ' ' '\n' | sort -u | tr '\n' ' ')
	c0=$( [ -n "$ps" ] && cpu $ps || echo 0)
	out=$(wrk -t2 -c"$conns" -d"$duration" --latency "${script[@]}" -H 'Host: lhy.kr' "http://$2/")
	c1=$( [ -n "$ps" ] && cpu $ps || echo 0)
	local rps p99 reqs
	rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
	p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
	reqs=$(awk '/requests in/ {print $1}' <<<"$out")
	local hz
	hz=$(getconf CLK_TCK)
	awk -v n="$1" -v r="$rps" -v p="$p99" -v c=$((c1 - c0)) -v q="$reqs" -v hz="$hz" \
		'BEGIN { if (c > 0) printf "%s %s %s %.1f\n", n, r, p, c / hz * 1e6 / q; else printf "%s %s %s -\n", n, r, p }'
}

# median of the numbers on stdin (units such as "ms" are kept)
median() {
	sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : v[NR / 2] }'
}
# p99 in ms, whatever unit wrk printed
ms() {
	awk '{ v = $1 + 0; if ($1 ~ /us$/) v /= 1000; else if ($1 ~ /[0-9]s$/ && $1 !~ /ms$/) v *= 1000; printf "%.2fms\n", v }'
}

# report: every contender for $method, and the ratios
report() {
	echo "== $method"
	local results=() rounds_out=() name addr rps p99 cpu_us
	for target in "direct $UP" "stock-reverseproxy $STOCK"; do
		# shellcheck disable=SC2086
		results+=("$(run $target)")
	done
	for _ in $(seq "$rounds"); do
		for name in $contenders; do
			case $name in
			nginx) addr=$NGINX ;;
			hostguard) addr=$HG ;;
			baseline) addr=$BASE ;;
			esac
			rounds_out+=("$(run "$name" "$addr")")
		done
	done
	for name in $contenders; do
		rps=$(printf '%s\n' "${rounds_out[@]}" | awk -v n=$name '$1 == n {print $2}' | median)
		p99=$(printf '%s\n' "${rounds_out[@]}" | awk -v n=$name '$1 == n {print $3}' | ms | median)
		cpu_us=$(printf '%s\n' "${rounds_out[@]}" | awk -v n=$name '$1 == n {print $4}' | median)
		results+=("$name $rps $p99 $cpu_us")
	done
	printf '%-20s %12s %10s %14s\n' target "req/s" p99 "CPU µs/req"
	for r in "${results[@]}"; do printf '%-20s %12s %10s %14s\n' $r; done
	echo "rounds ($contenders alternating; name req/s p99 CPU-µs/req): $(printf '%s; ' "${rounds_out[@]}")"
	nginx_rps=$(printf '%s\n' "${results[@]}" | awk '$1 == "nginx" {print $2}')
	hg_rps=$(printf '%s\n' "${results[@]}" | awk '$1 == "hostguard" {print $2}')
	stock_rps=$(printf '%s\n' "${results[@]}" | awk '$1 == "stock-reverseproxy" {print $2}')
	nginx_p99=$(printf '%s\n' "${results[@]}" | awk '$1 == "nginx" {print $3 + 0}')
	hg_p99=$(printf '%s\n' "${results[@]}" | awk '$1 == "hostguard" {print $3 + 0}')
	nginx_cpu=$(printf '%s\n' "${results[@]}" | awk '$1 == "nginx" {print $4}')
	hg_cpu=$(printf '%s\n' "${results[@]}" | awk '$1 == "hostguard" {print $4}')
	base_cpu=$(printf '%s\n' "${results[@]}" | awk '$1 == "baseline" {print $4}')
	awk -v h="$hg_rps" -v n="$nginx_rps" -v s="$stock_rps" -v hp="$hg_p99" -v np="$nginx_p99" \
		-v hc="$hg_cpu" -v nc="$nginx_cpu" -v bc="${base_cpu:-0}" 'BEGIN {
		printf "hostguard/nginx throughput: %.2fx\n", h / n
		printf "hostguard/nginx p99: %.2fx\n", hp / np
		printf "hostguard/nginx CPU per request: %.2fx\n", hc / nc
		printf "stock-reverseproxy/nginx throughput: %.2fx\n", s / n
		if (bc > 0) printf "hostguard/baseline CPU per request: %.3fx\n", hc / bc
	}'
}
for method in GET POST; do
	report
done
