#!/bin/sh
# Checks that an ovn-heater report renders in a real headless Chromium: the page loads from
# file:// with the network off, and the rendered DOM holds the summary and statistics tables
# and the SVG charts. Also writes a screenshot next to the report (report.png).
#
# usage: scripts/check-report.sh RESULTS_DIR/report.html [MIN_CHARTS]
# exit:  0 rendered as expected, 1 something is missing, 2 bad usage, 77 chromium not installed
set -eu

report=${1:-}
min_charts=${2:-1}
if [ -z "$report" ] || [ ! -f "$report" ]; then
    echo "usage: $0 RESULTS_DIR/report.html [MIN_CHARTS]" >&2
    exit 2
fi
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
    echo "SKIPPED check-report: chromium not found; apt-get install chromium" >&2
    exit 77
fi

abs=$(cd "$(dirname "$report")" && pwd)/$(basename "$report")
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
flags="--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
       --disable-component-update --disable-sync --user-data-dir=$profile"

# shellcheck disable=SC2086
dom=$(timeout 120 "$browser" $flags --dump-dom "file://$abs" 2>/dev/null)
# shellcheck disable=SC2086
timeout 120 "$browser" $flags --window-size=1200,3000 --screenshot="${abs%.html}.png" "file://$abs" >/dev/null 2>&1 || true

fail=0
check() {
    if printf '%s' "$dom" | grep -q -- "$1"; then
        echo "ok: $2"
    else
        echo "MISSING: $2" >&2
        fail=1
    fi
}
check 'id="summary"' "summary table"
check 'class="stats"' "per-stage statistics table"
check '<th>p99</th>' "p99 column"
charts=$(printf '%s' "$dom" | grep -o '<svg class="chart"' | wc -l)
if [ "$charts" -ge "$min_charts" ]; then
    echo "ok: $charts SVG charts rendered"
else
    echo "MISSING: only $charts SVG charts rendered, expected at least $min_charts" >&2
    fail=1
fi
if [ -s "${abs%.html}.png" ]; then
    echo "ok: screenshot ${abs%.html}.png"
fi
exit $fail
