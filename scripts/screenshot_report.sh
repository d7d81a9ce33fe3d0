#!/usr/bin/env bash
# Screenshot an HTML report with headless Chromium, to check that a page (and the figures inlined
# in it) actually renders in a browser; crates/repro-report/tests/it/report_screenshot.rs uses it.
#
#   scripts/screenshot_report.sh REPORT.html OUT.png [WIDTH HEIGHT]     (default 1280 960)
#
# Needs `chromium` (or `chromium-browser`) on PATH: apt-get install -y chromium. Exits non-zero
# with a message when Chromium is missing, times out (60 s) or writes no screenshot.
set -euo pipefail

die() { echo "screenshot_report: $*" >&2; exit 1; }

[ $# -eq 2 ] || [ $# -eq 4 ] || die "usage: $0 REPORT.html OUT.png [WIDTH HEIGHT]"
html=$1 out=$2 width=${3:-1280} height=${4:-960}
[ -f "$html" ] || die "no such file: $html"
case "$width$height" in *[!0-9]*) die "WIDTH and HEIGHT must be whole numbers";; esac

browser=$(command -v chromium || command -v chromium-browser || true)
[ -n "$browser" ] || die "chromium not found on PATH (apt-get install -y chromium)"

abs_html=$(realpath "$html")
abs_out=$(realpath -m "$out")
mkdir -p "$(dirname "$abs_out")"
rm -f "$abs_out"
# A throwaway profile, so parallel runs do not fight over one.
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT

status=0
timeout 60 "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars \
  --no-first-run --disable-dev-shm-usage --user-data-dir="$profile" \
  --screenshot="$abs_out" --window-size="$width,$height" "file://$abs_html" \
  >"$profile/chromium.log" 2>&1 || status=$?

if [ ! -s "$abs_out" ]; then
  tail -n 20 "$profile/chromium.log" >&2 || true
  [ "$status" -eq 124 ] && die "chromium timed out after 60 s"
  die "chromium (exit $status) wrote no screenshot to $abs_out"
fi
echo "$abs_out"
