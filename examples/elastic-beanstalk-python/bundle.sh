#!/usr/bin/env bash
# Builds the Elastic Beanstalk source bundle: this directory (Procfile,
# .ebextensions), the app (../django, or APP=dir) with its requirements.txt,
# and hostguard built for the instances' architecture as bin/hostguard.
#
#   ./bundle.sh [amd64|arm64]      arm64 for Graviton instance types; default amd64
#
# Writes lhy-web-python.zip here. Needs Go 1.26 and python3 (for the zip);
# HOSTGUARD_BIN=file takes a hostguard already built for that architecture
# (a release build) instead of building one.
set -euo pipefail
cd "$(dirname "$0")"
arch=${1:-amd64}
case $arch in amd64 | arm64) ;; *) echo "bundle.sh: architecture $arch: use amd64 or arm64" >&2; exit 2 ;; esac
app=${APP:-../django}
out=${OUT:-lhy-web-python.zip}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -R Procfile .ebextensions "$work/"
cp -R "$app/mysite" "$app/manage.py" "$app/requirements.txt" "$work/"
mkdir -p "$work/bin"
if [ -n "${HOSTGUARD_BIN:-}" ]; then
	install -m 0755 "$HOSTGUARD_BIN" "$work/bin/hostguard"
else
	(cd ../.. && CGO_ENABLED=0 GOOS=linux GOARCH="$arch" go build -trimpath -o "$work/bin/hostguard" ./cmd/hostguard)
fi
rm -f "$out"
(cd "$work" && python3 -m zipfile -c bundle.zip Procfile .ebextensions mysite manage.py requirements.txt bin)
mv "$work/bundle.zip" "$out"
echo "bundle.sh: wrote $out (hostguard for linux/$arch)"
