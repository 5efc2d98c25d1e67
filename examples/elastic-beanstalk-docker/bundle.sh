#!/usr/bin/env bash
# Builds the Elastic Beanstalk source bundle for the Docker platform: this
# directory (Dockerfile, .ebextensions, .platform) and the app (../django,
# or APP=dir) with its requirements.txt, which the Dockerfile copies.
#
#   ./bundle.sh
#
# Writes lhy-web-docker.zip here. Needs python3 (for the zip).
set -euo pipefail
cd "$(dirname "$0")"
app=${APP:-../django}
out=${OUT:-lhy-web-docker.zip}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -R Dockerfile .ebextensions .platform "$work/"
cp -R "$app/mysite" "$app/manage.py" "$app/requirements.txt" "$work/"
rm -f "$out"
(cd "$work" && python3 -m zipfile -c bundle.zip Dockerfile .ebextensions .platform mysite manage.py requirements.txt)
mv "$work/bundle.zip" "$out"
echo "bundle.sh: wrote $out"
