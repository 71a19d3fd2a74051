// Draws the report's charts with uPlot from the JSON in #report-data (built by charts.rs):
// one uPlot per <div class="chart" data-chart="N">, stage boundaries on time axes, units on
// every tick and hover value (µs/ms/s, %, MB), drag to zoom, double-click to reset.
// Written against uPlot 1.6; no network, no other library.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var DASH_AFTER = 20; // the palette's size: repeats are dashed

  function fixed(v, digits) {
    return v.toFixed(Math.max(0, Math.min(digits, 6)));
  }
  // A value with about 3 significant digits, in the unit that suits it.
  function sig3(v) {
    var a = Math.abs(v);
    return a >= 100 ? fixed(v, 0) : a >= 10 ? fixed(v, 1) : fixed(v, 2);
  }
  function secondsUnit(maxAbs) {
    return maxAbs >= 1 ? [1, "s"] : maxAbs >= 1e-3 ? [1e3, "ms"] : [1e6, "µs"];
  }
  function bytesUnit(maxAbs) {
    return maxAbs >= 1e9 ? [1e-9, "GB"] : maxAbs >= 1e6 ? [1e-6, "MB"] : [1e-3, "kB"];
  }
  function unitOf(kind, maxAbs) {
    switch (kind) {
      case "seconds": return secondsUnit(maxAbs);
      case "bytes": return bytesUnit(maxAbs);
      case "percent": return [1, "%"];
      case "share": return [1, "%"];
      default: return [1, ""];
    }
  }
  // One value, e.g. in the hover legend.
  function fmtValue(kind, v) {
    if (v == null || !isFinite(v)) return "–";
    if (kind === "count") return Math.round(v).toLocaleString("en");
    var u = unitOf(kind, Math.abs(v));
    return sig3(v * u[0]) + (u[1] ? " " + u[1] : "");
  }
  // Axis ticks: one unit for the whole axis, as many decimals as the tick step needs, so
  // sub-millisecond axes read "250 µs", never "0.000".
  function fmtTicks(kind, splits, incr) {
    var maxAbs = 0;
    splits.forEach(function (s) { if (s != null) maxAbs = Math.max(maxAbs, Math.abs(s)); });
    if (kind === "count") return splits.map(function (s) { return s == null ? "" : Math.round(s).toLocaleString("en"); });
    var u = unitOf(kind, maxAbs);
    var step = incr > 0 ? incr * u[0] : maxAbs * u[0];
    // As many decimals as the step has: 0.25 ms steps read 0.25, 0.50, 0.75.
    var digits = step > 0 ? Math.max(0, -Math.floor(Math.log10(step) + 1e-9)) : 0;
    while (digits < 6 && step > 0 && Math.abs(step * Math.pow(10, digits) - Math.round(step * Math.pow(10, digits))) > 1e-6) digits++;
    return splits.map(function (s) {
      if (s == null) return "";
      var v = s * u[0];
      var t = Math.abs(v) < 1e-12 ? "0" : fixed(v, digits);
      return u[1] ? t + " " + u[1] : t;
    });
  }

  // Stage boundaries: a dashed line and the stage's name at each stage start, and at the end
  // of the last stage.
  function drawStages(u) {
    var ctx = u.ctx, b = u.bbox, dpr = devicePixelRatio || 1;
    ctx.save();
    ctx.beginPath();
    ctx.rect(b.left, b.top, b.width, b.height);
    ctx.clip();
    ctx.strokeStyle = "#777";
    ctx.fillStyle = "#444";
    ctx.lineWidth = dpr;
    ctx.setLineDash([4 * dpr, 4 * dpr]);
    ctx.font = 11 * dpr + "px system-ui, sans-serif";
    ctx.textBaseline = "top";
    ctx.textAlign = "left"; // uPlot leaves whatever its last axis used
    var marks = [];
    data.stages.forEach(function (st) { marks.push([st.start_s, st.name]); });
    var last = data.stages[data.stages.length - 1];
    if (last && last.end_s != null) marks.push([last.end_s, "end"]);
    // Labels go right of their line (left of it near the right edge), on the first of three
    // rows where they do not overlap the previous label.
    var rowEnds = [-Infinity, -Infinity, -Infinity];
    marks.forEach(function (m) {
      var x = Math.round(u.valToPos(m[0], "x", true));
      if (x < b.left - 1 || x > b.left + b.width + 1) return;
      ctx.beginPath();
      ctx.moveTo(x, b.top);
      ctx.lineTo(x, b.top + b.height);
      ctx.stroke();
      var w = ctx.measureText(m[1]).width, pad = 3 * dpr;
      var lx = x + pad + w > b.left + b.width ? x - pad - w : x + pad;
      var row = rowEnds.findIndex(function (end) { return lx > end; });
      if (row < 0) return;
      rowEnds[row] = lx + w + pad;
      ctx.fillText(m[1], lx, b.top + 2 * dpr + row * 13 * dpr);
    });
    ctx.restore();
  }

  function seriesOpts(chart, s, i) {
    var kind = s.scale === "y2" ? chart.y2_unit : chart.y_unit;
    var o = {
      label: s.label,
      stroke: s.color,
      scale: s.scale,
      width: 1.5,
      spanGaps: false,
      // The recorded value, also for points drawn on the top edge.
      value: function (u, v, si, idx) { return fmtValue(kind, idx == null ? v : s.values[idx]); },
    };
    if (i >= DASH_AFTER) o.dash = [6, 3];
    if (s.style === "points") {
      o.paths = function () { return null; };
      o.points = { show: true, space: 0, size: 4, width: 0, fill: s.color, stroke: s.color };
    } else if (s.style === "bars") {
      o.paths = uPlot.paths.bars({ size: [1, Infinity], align: -1, gap: 1 });
      o.fill = s.color + "b0";
      o.points = { show: false };
    } else if (s.style === "edge") {
      o.width = 1;
      o.stroke = s.color + "80";
      o.points = { show: false };
    } else {
      o.points = { show: false };
    }
    return o;
  }

  // The y axis covers the series that are not failures; failures above it are drawn on its
  // top edge. Returns the top of the y axis and the columns to draw.
  function fitToSuccesses(chart) {
    var top = 0, all = 0;
    chart.series.forEach(function (s) {
      if (s.scale !== "y") return;
      s.values.forEach(function (v) {
        if (v == null) return;
        all = Math.max(all, v);
        if (!s.on_top_edge) top = Math.max(top, v);
      });
    });
    top = (top > 0 ? top : all > 0 ? all : 1) * 1.05;
    var columns = [chart.x];
    chart.series.forEach(function (s) {
      columns.push(s.on_top_edge ? s.values.map(function (v) { return v == null ? null : Math.min(v, top); }) : s.values);
    });
    return { top: top, columns: columns };
  }

  var COUNT_INCRS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6, 1e7, 1e8];

  function build(el, chart) {
    var width = Math.max(320, el.clientWidth || 560);
    var fitted = fitToSuccesses(chart);
    var series = [{
      label: chart.x_label,
      value: function (u, v) { return fmtValue(chart.x_unit, v); },
    }];
    chart.series.forEach(function (s, i) { series.push(seriesOpts(chart, s, i)); });
    var scales = { x: { time: false } };
    if (chart.log_x) scales.x.distr = 3;
    if (chart.x_range) scales.x.range = function () { return chart.x_range.slice(); };
    scales.y = { range: [0, fitted.top] };
    var axes = [
      {
        label: chart.x_label,
        values: function (u, splits, ax, space, incr) {
          // Log axes: each tick in its own unit (1 ms, 10 ms, 100 ms, 1 s).
          if (chart.log_x) return splits.map(function (v) { return v == null ? "" : fmtValue(chart.x_unit, v); });
          return fmtTicks(chart.x_unit, splits, incr);
        },
      },
      {
        scale: "y",
        size: 70,
        values: function (u, splits, ax, space, incr) { return fmtTicks(chart.y_unit, splits, incr); },
      },
    ];
    if (chart.y_unit === "count") axes[1].incrs = COUNT_INCRS;
    if (chart.y2_unit) {
      scales.y2 = { range: [0, 100] };
      axes.push({
        scale: "y2",
        side: 1,
        size: 50,
        grid: { show: false },
        values: function (u, splits, ax, space, incr) { return fmtTicks(chart.y2_unit, splits, incr); },
      });
    }
    var opts = {
      width: width,
      height: 260,
      series: series,
      scales: scales,
      axes: axes,
      bands: chart.bands.map(function (b) {
        return { series: [b[0] + 1, b[1] + 1], fill: chart.series[b[0]].color + "26" };
      }),
      cursor: { drag: { x: true, y: false }, points: { size: 6 } },
      legend: { live: true },
      hooks: chart.stage_lines ? { draw: [drawStages] } : {},
    };
    return new uPlot(opts, fitted.columns, el);
  }

  var plots = [];
  document.querySelectorAll("div.chart[data-chart]").forEach(function (el) {
    var chart = data.charts[+el.getAttribute("data-chart")];
    try {
      plots.push([el, build(el, chart)]);
    } catch (e) {
      el.classList.add("chart-error");
      el.textContent = "chart could not be drawn: " + e;
    }
  });
  var resizeTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () {
      plots.forEach(function (p) {
        p[1].setSize({ width: Math.max(320, p[0].clientWidth), height: 260 });
      });
    }, 150);
  });
  // Read by scripts/check-report.sh: time from navigation start until every chart was built.
  document.body.setAttribute("data-charts-drawn", String(plots.length));
  document.body.setAttribute("data-render-ms", String(Math.round(performance.now())));
})();
