#!/usr/bin/env bash
# Screenshot an HTML report (from `simctl report … -o report.html`) with headless Chromium.
#
#   scripts/report-screenshot.sh report.html [screenshot.png] [width] [height]
#
# Defaults: screenshot.png next to the report (same name, .png), 1200 x 4000 pixels (the top of
# a long report; raise the height to capture more). Needs Debian's chromium
# (apt-get install -y chromium).
set -euo pipefail

if [ $# -lt 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
  sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
report=$1
out=${2:-${report%.*}.png}
width=${3:-1200}
height=${4:-4000}

if [ ! -f "$report" ]; then
  echo "error: $report: no such file" >&2
  exit 2
fi
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
  echo "error: chromium not found; install it with: apt-get install -y chromium" >&2
  exit 1
fi

abs_report=$(cd "$(dirname "$report")" && pwd)/$(basename "$report")
abs_out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT

"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
  --user-data-dir="$profile" --window-size="$width,$height" \
  --screenshot="$abs_out" "file://$abs_report" >/dev/null 2>&1
if [ ! -s "$abs_out" ]; then
  echo "error: chromium wrote no screenshot" >&2
  exit 1
fi
echo "screenshot written to $out (${width}x${height})"
