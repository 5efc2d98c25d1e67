#!/usr/bin/env bash
# Builds the Elastic Beanstalk source bundle from the wheels of a hostguard
# release: the Procfile and .ebextensions from here, the app (../django, or
# APP=dir), requirements.txt (this directory's hostguard lines, pinned to
# the wheels' version, then the app's own), and the release's Linux wheels
# in wheels/, from which EB's pip installs hostguard into the app's
# virtualenv. x86_64 and aarch64 wheels both go in: one bundle serves x86
# and Graviton instance types.
#
#   ./bundle.sh WHEEL_DIR
#
# WHEEL_DIR: a release directory (scripts/release) or the wheels downloaded
# from the release page. Writes lhy-web-python.zip here (OUT=file to write
# elsewhere; a relative OUT or APP is read from this directory). Needs
# python3 (for the zip).
set -euo pipefail
usage="usage: ./bundle.sh WHEEL_DIR (a directory holding hostguard-VERSION-py3-none-manylinux_*.whl)"
if [ $# -ne 1 ]; then
	echo "bundle.sh: $usage" >&2
	exit 2
fi
if [ ! -d "$1" ]; then
	echo "bundle.sh: $1 is not a directory; $usage" >&2
	exit 2
fi
wheels=$(cd "$1" && pwd)
cd "$(dirname "$0")"
out=${OUT:-lhy-web-python.zip}
case $out in /*) ;; *) out=$PWD/$out ;; esac
app=${APP:-../django}

shopt -s nullglob
found=("$wheels"/hostguard-*-py3-none-manylinux*.whl)
if [ ${#found[@]} -eq 0 ]; then
	echo "bundle.sh: no hostguard manylinux wheel in $wheels; $usage" >&2
	exit 1
fi
versions=$(for w in "${found[@]}"; do basename "$w" | cut -d- -f2; done | sort -u)
if [ "$(echo "$versions" | wc -l)" -ne 1 ]; then
	echo "bundle.sh: $wheels holds wheels of several versions ($(echo $versions)); keep one" >&2
	exit 1
fi
version=$versions
for arch in x86_64 aarch64; do
	if ! ls "$wheels"/hostguard-*-py3-none-manylinux*_"$arch".whl >/dev/null 2>&1; then
		echo "bundle.sh: warning: no $arch wheel in $wheels: the bundle cannot serve $arch instances" >&2
	fi
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -R Procfile .ebextensions "$work/"
cp -R "$app/mysite" "$app/manage.py" "$work/"
mkdir "$work/wheels"
cp "${found[@]}" "$work/wheels/"
{
	sed "s/^hostguard==.*/hostguard==$version/" requirements.txt
	printf '\n# The app'"'"'s requirements (%s/requirements.txt)\n' "$app"
	cat "$app/requirements.txt"
} >"$work/requirements.txt"
if ! grep -qx "hostguard==$version" "$work/requirements.txt"; then
	echo "bundle.sh: requirements.txt has no hostguard== line to pin" >&2
	exit 1
fi
rm -f "$out"
(cd "$work" && python3 -m zipfile -c bundle.zip Procfile .ebextensions mysite manage.py requirements.txt wheels)
mv "$work/bundle.zip" "$out"
echo "bundle.sh: wrote $out (hostguard $version: $(cd "$work/wheels" && echo *))"
