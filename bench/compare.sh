#!/usr/bin/env bash
# Runs the allow-list benchmarks of hostguard and of its peer
# (github.com/unrolled/secure) in one run and prints, for every case, the
# median ns/op and allocs/op of each over COUNT runs and the ratio
# peer/hostguard (above 1: hostguard is faster).
#
#   ./compare.sh [COUNT] [BENCHTIME]      defaults: 5 300ms
set -euo pipefail
cd "$(dirname "$0")"
count=${1:-5}
benchtime=${2:-300ms}
raw=$(mktemp)
trap 'rm -f "$raw"' EXIT
go test -run '^$' -bench 'Check|Middleware' -benchmem -count "$count" -benchtime "$benchtime" . | tee "$raw" >&2
awk '
/^Benchmark/ {
	name = $1; sub(/-[0-9]+$/, "", name)
	split(name, p, "/")          # BenchmarkX / lib / n=N / case
	key = p[1] "/" p[3] "/" p[4]; lib = p[2]
	n[key, lib]++; ns[key, lib, n[key, lib]] = $3
	for (i = 4; i <= NF; i++) if ($(i+1) == "allocs/op") al[key, lib] = $i
	if (!(key in seen)) { seen[key] = 1; order[++k] = key }
}
function median(key, lib,    m, i, j, t, a) {
	m = n[key, lib]
	for (i = 1; i <= m; i++) a[i] = ns[key, lib, i] + 0
	for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
	return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
}
END {
	printf "%-40s %14s %8s %14s %8s %8s\n", "case", "hostguard ns", "allocs", "secure ns", "allocs", "ratio"
	for (i = 1; i <= k; i++) {
		key = order[i]
		h = median(key, "hostguard"); s = median(key, "secure")
		printf "%-40s %14.1f %8s %14.1f %8s %7.1fx\n", key, h, al[key, "hostguard"], s, al[key, "secure"], s / h
	}
}' "$raw"
