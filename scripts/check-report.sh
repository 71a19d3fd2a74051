#!/bin/sh
# Checks that an ovn-heater report renders in a real headless Chromium, offline: the page loads
# from file:// with the network off, the rendered DOM holds the status, summary and statistics
# tables, every chart placeholder was drawn by the inlined uPlot (at least MIN_CHARTS of them,
# none failed), and a screenshot REPORT.png was written (a missing screenshot fails the check).
# Prints the page size, the time the page took to build its charts (measured in the page, from
# navigation start) and Chromium's wall time; the budget is 5 MB and 5 s at 10,000 VMs.
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
case $min_charts in
    '' | *[!0-9]*) echo "MIN_CHARTS must be a number, not '$min_charts'" >&2; exit 2 ;;
esac
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
    echo "SKIPPED check-report: chromium not found; apt-get install chromium" >&2
    exit 77
fi

abs=$(cd "$(dirname "$report")" && pwd)/$(basename "$report")
png=${abs%.html}.png
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
flags="--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
       --disable-component-update --disable-sync --disable-extensions --user-data-dir=$profile"

now_ms() { echo $(($(date +%s%N) / 1000000)); }

start=$(now_ms)
# shellcheck disable=SC2086
dom=$(timeout 120 "$browser" $flags --dump-dom "file://$abs" 2>/dev/null || true)
wall=$(($(now_ms) - start))
rm -f "$png"
# shellcheck disable=SC2086
timeout 120 "$browser" $flags --hide-scrollbars --window-size=1280,2400 --screenshot="$png" "file://$abs" \
    >/dev/null 2>&1 || true

fail=0
ok() { echo "ok: $1"; }
missing() {
    echo "MISSING: $1" >&2
    fail=1
}
check() {
    if printf '%s' "$dom" | grep -q -- "$1"; then ok "$2"; else missing "$2"; fi
}
# The value of attribute $1 on <body>, empty when absent.
body_attr() {
    printf '%s' "$dom" | grep -o "<body[^>]*" | head -n 1 | sed -n "s/.* $1=\"\\([^\"]*\\)\".*/\\1/p"
}

size=$(wc -c <"$abs")
echo "page: $abs ($size bytes)"
check 'id="status"' "status line"
check 'id="summary"' "summary table"
check 'class="stats"' "per-stage statistics table"
check '<th>p99</th>' "p99 column"

placeholders=$(printf '%s' "$dom" | grep -o '<div class="chart[^"]*" data-kind=' | wc -l)
drawn=$(printf '%s' "$dom" | grep -o 'class="uplot' | wc -l)
drawn_by_script=$(body_attr data-charts-drawn)
render_ms=$(body_attr data-render-ms)
if [ "$drawn" -ge "$min_charts" ] && [ "$drawn" -eq "$placeholders" ] && [ "$drawn_by_script" = "$drawn" ]; then
    ok "$drawn of $placeholders charts drawn"
else
    missing "charts: $drawn drawn (script says '${drawn_by_script}'), $placeholders placeholders, expected at least $min_charts"
fi
# (The page's own script mentions the class too: match the attribute only.)
if printf '%s' "$dom" | grep -q 'class="chart chart-error"'; then
    missing "a chart failed: $(printf '%s' "$dom" | grep -o 'chart could not be drawn: [^<"]*' | head -n 1)"
fi
if [ -n "$render_ms" ]; then
    verdict="within the 5000 ms budget"
    [ "$render_ms" -le 5000 ] || verdict="OVER the 5000 ms budget"
    echo "render: charts built $render_ms ms after navigation start ($verdict); chromium ran $wall ms in all"
else
    missing "render time (the page's script did not finish)"
fi
if [ -s "$png" ]; then
    ok "screenshot $png"
else
    missing "screenshot $png (chromium --screenshot wrote nothing)"
fi
exit $fail
