#!/usr/bin/env bash
# Renders a poolbench HTML report in a real browser (headless Chromium) and
# checks what a reader would see.
#
#   scripts/browser-check.sh REPORT.html OUTDIR
#
# Writes into OUTDIR:
#   screenshot.png   the page at 1280 px wide (height: $SHOT_HEIGHT, default 9000)
#   dom.html         the DOM Chromium built from the report (--dump-dom)
#   probe-dom.html   the DOM of a probe copy (the report plus a measuring
#                    script; the report itself has no script)
#   chromium.log     Chromium's log (--enable-logging=stderr --v=0)
# and checks that:
#   1. the report source references no external URL (http(s) in src/href/url());
#   2. every <svg> chart of the source is in the DOM, with non-zero width and
#      height attributes;
#   3. in layout, every chart has a non-zero rendered size, no two text labels
#      of a chart overlap, and no label spills outside its chart;
#   4. nothing failed to load: all host names resolve to nothing
#      (--host-resolver-rules), so any network attempt would log a net:: error,
#      and the log is searched for failed loads;
#   5. the screenshot is a PNG;
#   6. what says how far a figure can be trusted is drawn, not just present in
#      the source: with 2 or more repeats per cell, interval whiskers
#      (g.range) with a non-zero rendered height; where the null subject ran,
#      the floor (the dashed zero line of the above-floor chart, .rule) with a
#      non-zero rendered width; where latency charts carry the clock's
#      resolution, its band (.band) with a non-zero rendered height; and the
#      summary tables' intervals (.ci) laid out.
# Chromium is installed with apt-get (Debian's `chromium`) when missing; if apt
# itself is unavailable the check is skipped with a message and exit 0.
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: $0 REPORT.html OUTDIR" >&2
    exit 2
fi
report=$1
out=$2
if [[ ! -f $report ]]; then
    echo "browser-check: no such report: $report" >&2
    exit 2
fi
mkdir -p "$out"
report_abs=$(cd "$(dirname "$report")" && pwd)/$(basename "$report")
out_abs=$(cd "$out" && pwd)

fail() {
    echo "browser-check: FAIL: $*" >&2
    exit 1
}

find_chromium() {
    local c
    for c in chromium chromium-browser google-chrome; do
        if command -v "$c" >/dev/null 2>&1; then
            command -v "$c"
            return 0
        fi
    done
    return 1
}

if ! browser=$(find_chromium); then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "browser-check: SKIPPED: no Chromium and no apt-get to install it with"
        exit 0
    fi
    as_root=()
    if [[ $(id -u) -ne 0 ]]; then
        if command -v sudo >/dev/null 2>&1; then
            as_root=(sudo -n)
        else
            fail "Chromium is missing and installing it needs root (no sudo)"
        fi
    fi
    echo "browser-check: installing Debian's chromium with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    "${as_root[@]}" apt-get update -qq >/dev/null || fail "apt-get update failed"
    "${as_root[@]}" apt-get install -y -qq --no-install-recommends chromium >/dev/null ||
        fail "apt-get install chromium failed"
    browser=$(find_chromium) || fail "apt-get installed chromium but no chromium binary is on PATH"
fi
echo "browser-check: using $("$browser" --version 2>/dev/null | head -1)"

# 1. Static check of the source: only in-page anchors and local url(#...).
if grep -Eoi '(src|href)="[a-z][a-z0-9+.-]*:[^"]*"|url\([^#)][^)]*\)|@import' "$report" >"$out_abs/external-refs.txt"; then
    fail "the report references external resources: $(head -3 "$out_abs/external-refs.txt" | tr '\n' ' ')"
fi
if grep -Eq 'https?://' "$report"; then
    fail "the report contains an http(s) URL: $(grep -Eo 'https?://[^" <]*' "$report" | head -3 | tr '\n' ' ')"
fi

profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
common=(
    --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking
    --disable-extensions --disable-sync --hide-scrollbars --mute-audio
    --user-data-dir="$profile"
    --host-resolver-rules="MAP * ~NOTFOUND"
    --enable-logging=stderr --v=0
    --virtual-time-budget=5000
)
run_browser() {
    # Chromium may linger on D-Bus lookups in containers; bound every call.
    timeout 180 "$browser" "${common[@]}" "$@"
}

shot_height=${SHOT_HEIGHT:-9000}
run_browser --window-size="1280,$shot_height" --screenshot="$out_abs/screenshot.png" \
    "file://$report_abs" >"$out_abs/chromium.log" 2>&1 || fail "Chromium could not take the screenshot (see $out_abs/chromium.log)"
run_browser --window-size=1280,4000 --dump-dom "file://$report_abs" \
    >"$out_abs/dom.html" 2>>"$out_abs/chromium.log" || fail "Chromium could not dump the DOM (see $out_abs/chromium.log)"

# 3. A probe copy: the report plus a script that measures the layout and
#    writes its findings into the DOM as attributes.
probe="$out_abs/probe.html"
probe_js='<script>
(function () {
  var charts = document.querySelectorAll("svg.chart"), bad = [];
  charts.forEach(function (svg) {
    var r = svg.getBoundingClientRect();
    svg.setAttribute("data-rendered", Math.round(r.width) + "x" + Math.round(r.height));
    if (r.width < 1 || r.height < 1) bad.push(svg.id + ": zero rendered size");
    var texts = Array.prototype.slice.call(svg.querySelectorAll("text"))
      .map(function (t) { return { t: t, b: t.getBoundingClientRect() }; })
      .filter(function (x) { return x.b.width > 0; });
    texts.forEach(function (x) {
      if (x.b.left < r.left - 1 || x.b.right > r.right + 1 || x.b.top < r.top - 1 || x.b.bottom > r.bottom + 1)
        bad.push(svg.id + ": label \"" + x.t.textContent + "\" spills outside the chart");
    });
    svg.querySelectorAll(".swatch, .marker").forEach(function (m) {
      var mb = m.getBoundingClientRect();
      texts.forEach(function (x) {
        var w = Math.min(x.b.right, mb.right) - Math.max(x.b.left, mb.left);
        var h = Math.min(x.b.bottom, mb.bottom) - Math.max(x.b.top, mb.top);
        if (m.classList.contains("swatch") && w > 1 && h > 1)
          bad.push(svg.id + ": label \"" + x.t.textContent + "\" covers a colour swatch");
      });
    });
    for (var i = 0; i < texts.length; i++) for (var j = i + 1; j < texts.length; j++) {
      var a = texts[i].b, b = texts[j].b;
      var w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
      var h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
      if (w > 1 && h > 1) bad.push(svg.id + ": labels \"" + texts[i].t.textContent + "\" and \"" + texts[j].t.textContent + "\" overlap");
    }
  });
  // 6. Trust elements, counted only where they rendered with a size.
  var sized = function (sel, dim) {
    return Array.prototype.slice.call(document.querySelectorAll(sel)).filter(function (e) {
      var b = e.getBoundingClientRect();
      return dim === "h" ? b.height > 0.5 : b.width > 0.5;
    }).length;
  };
  document.body.setAttribute("data-probe-ranges", String(sized("svg.chart g.range", "h")));
  document.body.setAttribute("data-probe-rules", String(sized("svg.chart line.rule", "w")));
  document.body.setAttribute("data-probe-bands", String(sized("svg.chart rect.band", "h")));
  document.body.setAttribute("data-probe-cis", String(sized("table.summary .ci", "w")));
  document.body.setAttribute("data-probe-charts", String(charts.length));
  document.body.setAttribute("data-probe-problems", bad.join(" | ") || "none");
})();
</script>'
# Content after </html> is parsed into <body>, so appending suffices (and
# needs no escaping of the script).
{ cat "$report_abs"; printf '%s\n' "$probe_js"; } >"$probe"
run_browser --window-size=1280,4000 --dump-dom "file://$probe" \
    >"$out_abs/probe-dom.html" 2>>"$out_abs/chromium.log" || fail "Chromium could not run the layout probe"

# 2. Charts in the DOM, sized.
src_svgs=$(grep -o '<svg[^>]*>' "$report" | wc -l)
dom_svgs=$(grep -o '<svg[^>]*>' "$out_abs/dom.html" | wc -l)
[[ $src_svgs -gt 0 ]] || fail "the report has no <svg> chart"
[[ $dom_svgs -eq $src_svgs ]] || fail "the DOM has $dom_svgs <svg> elements, the source $src_svgs"
unsized=$(grep -o '<svg[^>]*>' "$out_abs/dom.html" | grep -Ev 'width="[1-9][0-9.]*"' | head -3 || true)
[[ -z $unsized ]] || fail "charts without a non-zero width: $unsized"
unsized=$(grep -o '<svg[^>]*>' "$out_abs/dom.html" | grep -Ev 'height="[1-9][0-9.]*"' | head -3 || true)
[[ -z $unsized ]] || fail "charts without a non-zero height: $unsized"

probe_charts=$(grep -o 'data-probe-charts="[0-9]*"' "$out_abs/probe-dom.html" | grep -o '[0-9]*' || true)
[[ -n $probe_charts ]] || fail "the layout probe did not run (no data-probe-charts in the probe DOM)"
[[ $probe_charts -eq $src_svgs ]] || fail "the layout probe saw $probe_charts charts, the source has $src_svgs"
problems=$(sed -n 's/.*data-probe-problems="\([^"]*\)".*/\1/p' "$out_abs/probe-dom.html" | head -1)
problems=$(printf "%s" "$problems" | sed "s/&quot;/\"/g; s/&lt;/</g; s/&gt;/>/g; s/&amp;/\&/g")
[[ $problems == none ]] || fail "layout problems: $problems"
zero=$(grep -o 'data-rendered="[0-9]*x[0-9]*"' "$out_abs/probe-dom.html" | grep -E '"0x|x0"' | head -3 || true)
[[ -z $zero ]] || fail "charts rendered with zero size: $zero"

# 6. Trust elements drawn where the run calls for them.
probe_count() {
    grep -o "data-probe-$1=\"[0-9]*\"" "$out_abs/probe-dom.html" | grep -o '[0-9]*' | head -1
}
ranges=$(probe_count ranges)
rules=$(probe_count rules)
bands=$(probe_count bands)
cis=$(probe_count cis)
[[ -n $ranges && -n $rules && -n $bands && -n $cis ]] || fail "the layout probe did not count the trust elements"
repeats=$(sed -n 's|.*<dt>repeats per cell</dt><dd>\([0-9]*\)</dd>.*|\1|p' "$report" | head -1)
if [[ -n $repeats && $repeats -ge 2 ]]; then
    [[ $ranges -gt 0 ]] || fail "$repeats repeats per cell, but no interval whisker was drawn with a height"
    [[ $cis -gt 0 ]] || fail "$repeats repeats per cell, but the summary tables show no interval"
fi
if grep -q '>null (floor)</text>' "$report"; then
    [[ $rules -gt 0 ]] || fail "the null subject ran, but no floor line was drawn"
fi
if grep -q 'class="band"' "$report"; then
    [[ $bands -gt 0 ]] || fail "the clock's resolution band is in the source but was not drawn"
fi

# 4. Nothing failed to load.
if grep -Ei 'net::ERR_|Failed to load resource|Not allowed to load local resource|ERR_FILE_NOT_FOUND|Refused to (load|apply)' "$out_abs/chromium.log" >"$out_abs/failed-loads.txt"; then
    fail "failed loads in the Chromium log: $(head -3 "$out_abs/failed-loads.txt" | tr '\n' ' ')"
fi
rm -f "$out_abs/failed-loads.txt" "$out_abs/external-refs.txt"

# 5. The screenshot.
[[ -s $out_abs/screenshot.png ]] || fail "no screenshot was written"
[[ $(head -c 8 "$out_abs/screenshot.png" | od -An -tx1 | tr -d ' \n') == 89504e470d0a1a0a ]] ||
    fail "screenshot.png is not a PNG"

rendered=$(grep -o 'data-rendered="[0-9]*x[0-9]*"' "$out_abs/probe-dom.html" | sed 's/data-rendered=//; s/"//g' | sort | uniq -c | awk '{printf "%s×%s ", $1, $2}')
echo "browser-check: OK: $src_svgs charts in the DOM, all sized (rendered: $rendered), no overlapping or clipped labels, nothing failed to load"
echo "browser-check: drawn: $ranges interval whiskers, $cis table intervals, $rules floor line(s), $bands clock-resolution band(s) (repeats per cell: ${repeats:-unknown})"
echo "browser-check: screenshot $out_abs/screenshot.png, DOM $out_abs/dom.html"
