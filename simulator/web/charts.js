/*
 * SimCharts: the chart code shared by the live dashboard (GET /) and the HTML report
 * (`sim report LEDGER --html`). Plain browser JavaScript on top of the vendored uPlot
 * (vendor/uPlot.iife.min.js, global `uPlot`; its stylesheet vendor/uPlot.min.css and
 * charts.css belong on the page too). No build step, no module system: load it with
 * <script src="charts.js"> or inline it in a <script>; it defines one global, `SimCharts`.
 *
 * API
 * ---
 * SimCharts.timeSeries(el, options) -> chart
 *   el        a block element; the chart fills its width and follows it when it resizes.
 *   options   {
 *     title:   string (optional),
 *     times:   [number]   x values, seconds (unix seconds when `time` is true),
 *     series:  [{label: string, values: [number|null], color?: string, fill?: bool}]
 *              one y array per series, as long as `times`; null leaves a gap,
 *     faults:  [{t: number, label: string, end?: number}] (optional) drawn as dashed
 *              vertical markers with their label; with `end`, the span is shaded too. Labels
 *              stack on three rows; one that would overlap a label of every row is left out
 *              (its marker stays), so a page with many faults names them elsewhere too,
 *     time:    bool, default true: x is a date-time axis; false: x is seconds shown as
 *              "12 s" / "3 min" (a run's relative time),
 *     height:  pixels, default 220,
 *     yLabel:  string (optional) the y axis label,
 *     maxPoints: number (optional) `push` keeps at most this many points (live use),
 *   }
 *   chart.update(times, seriesValues)  replace the data; seriesValues = [[y...], ...] in the
 *                                      order of options.series.
 *   chart.push(t, values)              append one point (values: one y per series); trims to
 *                                      maxPoints.
 *   chart.setFaults(faults)            replace the fault markers and redraw.
 *   chart.faultLabels()                the fault labels of the last draw: [{label, x, row,
 *                                      width}] (CSS pixels); `data-fault-labels` counts them.
 *   chart.points()                     how many x values the chart holds.
 *   chart.plot                         the uPlot instance; chart.destroy() removes it.
 *
 * SimCharts.histogram(el, options) -> chart
 *   options   {
 *     title:   string (optional),
 *     buckets: [string]  one label per bucket, e.g. "≤ 50 ms" (the bins' upper bounds),
 *     counts:  [number]  one count per bucket: drawn as bars,
 *     series:  [{label, counts, color?}] instead of `counts`: several distributions on one
 *              chart, drawn as stepped lines,
 *     height:  pixels, default 200,
 *   }
 *   chart.update(counts | [counts...]), chart.points(), chart.plot, chart.destroy().
 *
 * Every chart sets `data-points` (number of x values) and `data-chart` ("time"/"histogram")
 * on its element, and is listed in SimCharts.instances, so a test or a page can check that a
 * chart has data.
 *
 * SimCharts.palette: the series colours; SimCharts.formatSeconds(s): "45 s", "2m30s", "1h30m".
 */
(function (global) {
  "use strict";

  var palette = [
    "#2b6cb0", "#d97706", "#2f855a", "#c53030", "#6b46c1",
    "#0e7490", "#b7791f", "#97266d", "#4a5568", "#38a169",
  ];
  var FAULT_COLOR = "rgba(197, 48, 48, 0.85)";
  var FAULT_SPAN = "rgba(197, 48, 48, 0.08)";
  var LABEL_ROWS = 3; /* rows of fault labels at the top of a chart */
  var LABEL_GAP = 6; /* CSS pixels at least between two fault labels on one row */
  var LABEL_BACKGROUND = "rgba(255, 255, 255, 0.85)";
  var instances = [];
  /* Tick steps of a relative-time axis, seconds: round seconds, minutes and hours. */
  var RELATIVE_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400];

  /* 45 s, 2 min, 2m30s, 1 h, 1h30m, 2d4h: a relative time (seconds) on an axis. */
  function formatSeconds(s) {
    var sign = s < 0 ? "-" : "";
    var a = Math.abs(s);
    if (a < 60) return sign + +a.toFixed(1) + " s";
    a = Math.round(a);
    if (a < 3600) return sign + (a % 60 ? Math.floor(a / 60) + "m" + (a % 60) + "s" : a / 60 + " min");
    var minutes = Math.round(a / 60);
    if (a < 86400) return sign + (minutes % 60 ? Math.floor(minutes / 60) + "h" + (minutes % 60) + "m" : minutes / 60 + " h");
    var hours = Math.round(a / 3600);
    return sign + (hours % 24 ? Math.floor(hours / 24) + "d" + (hours % 24) + "h" : hours / 24 + " d");
  }

  function widthOf(el) {
    return Math.max(240, Math.floor(el.clientWidth || el.getBoundingClientRect().width || 600));
  }

  /* Resize the plot with its container; uPlot does not do it by itself. */
  function follow(el, plot, height) {
    if (typeof ResizeObserver === "undefined") return null;
    var last = widthOf(el);
    var observer = new ResizeObserver(function () {
      var width = widthOf(el);
      if (width !== last) {
        last = width;
        plot.setSize({ width: width, height: height });
      }
    });
    observer.observe(el);
    return observer;
  }

  function mark(el, kind, points) {
    el.setAttribute("data-chart", kind);
    el.setAttribute("data-points", String(points));
  }

  /* The fault overlay: a dashed vertical line per fault, its span shaded when it has an end,
   * its label at the top on one of LABEL_ROWS rows: the first row (left to right) where it
   * overlaps no label already drawn; a label that fits on no row is left out (its line stays:
   * the page names the faults elsewhere, in a table or a list). Returns the labels drawn:
   * [{label, x, row, width}], x and width in CSS pixels from the canvas's left. */
  function drawFaults(u, faults) {
    var drawn = [];
    if (!faults || !faults.length) return drawn;
    var ctx = u.ctx;
    var box = u.bbox;
    var ratio = (global.uPlot && global.uPlot.pxRatio) || global.devicePixelRatio || 1;
    var font = Math.round(10 * ratio);
    var xmin = u.scales.x.min;
    var xmax = u.scales.x.max;
    var shown = [];
    ctx.save();
    ctx.beginPath();
    ctx.rect(box.left, box.top, box.width, box.height);
    ctx.clip();
    for (var i = 0; i < faults.length; i++) {
      var fault = faults[i];
      var end = fault.end == null ? fault.t : fault.end;
      if (end < xmin || fault.t > xmax) continue;
      var x = Math.round(u.valToPos(fault.t, "x", true));
      if (fault.end != null) {
        var x2 = Math.round(u.valToPos(Math.min(fault.end, xmax), "x", true));
        ctx.fillStyle = FAULT_SPAN;
        ctx.fillRect(x, box.top, Math.max(1, x2 - x), box.height);
      }
      ctx.strokeStyle = FAULT_COLOR;
      ctx.lineWidth = Math.max(1, ratio);
      ctx.setLineDash([4 * ratio, 3 * ratio]);
      ctx.beginPath();
      ctx.moveTo(x + 0.5, box.top);
      ctx.lineTo(x + 0.5, box.top + box.height);
      ctx.stroke();
      if (fault.label) shown.push({ x: x, label: String(fault.label) });
    }
    ctx.setLineDash([]);
    ctx.font = font + "px sans-serif";
    ctx.textBaseline = "top";
    ctx.textAlign = "left";
    shown.sort(function (a, b) { return a.x - b.x; });
    var rowEnds = [];
    for (var r = 0; r < LABEL_ROWS; r++) rowEnds.push(-Infinity);
    var gap = LABEL_GAP * ratio;
    shown.forEach(function (item) {
      var left = item.x + 3 * ratio;
      var width = ctx.measureText(item.label).width;
      for (var row = 0; row < LABEL_ROWS; row++) {
        if (left < rowEnds[row] + gap) continue;
        var top = box.top + 2 * ratio + row * (font + 2 * ratio);
        rowEnds[row] = left + width;
        ctx.fillStyle = LABEL_BACKGROUND; /* the other faults' lines do not cross the text */
        ctx.fillRect(left - ratio, top - ratio, width + 2 * ratio, font + 2 * ratio);
        ctx.fillStyle = FAULT_COLOR;
        ctx.fillText(item.label, left, top);
        drawn.push({ label: item.label, x: left / ratio, row: row, width: width / ratio });
        return;
      }
    });
    ctx.restore();
    return drawn;
  }

  function timeSeries(el, options) {
    var opts = options || {};
    var faults = (opts.faults || []).slice();
    var labels = [];
    var height = opts.height || 220;
    var isTime = opts.time !== false;
    var maxPoints = opts.maxPoints || 0;
    var series = [{}];
    var data = [(opts.times || []).slice()];
    (opts.series || []).forEach(function (s, i) {
      var color = s.color || palette[i % palette.length];
      series.push({
        label: s.label,
        stroke: color,
        width: 1.5,
        fill: s.fill ? color + "22" : undefined,
        spanGaps: false,
        points: { show: false },
      });
      data.push((s.values || []).slice());
    });
    var xAxis = { stroke: "#555", grid: { stroke: "#eee" } };
    if (!isTime) {
      xAxis.incrs = RELATIVE_STEPS;
      xAxis.values = function (u, splits) { return splits.map(formatSeconds); };
    }
    var yAxis = { stroke: "#555", grid: { stroke: "#eee" }, size: 56 };
    if (opts.yLabel) yAxis.label = opts.yLabel;
    var plot = new global.uPlot({
      title: opts.title,
      width: widthOf(el),
      height: height,
      scales: { x: { time: isTime } },
      series: series,
      axes: [xAxis, yAxis],
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
      hooks: { draw: [function (u) {
        labels = drawFaults(u, faults);
        el.setAttribute("data-fault-labels", String(labels.length));
      }] },
    }, data, el);
    var observer = follow(el, plot, height);
    mark(el, "time", data[0].length);

    var chart = {
      plot: plot,
      element: el,
      points: function () { return data[0].length; },
      update: function (times, seriesValues) {
        data = [times.slice()].concat(seriesValues.map(function (v) { return v.slice(); }));
        plot.setData(data);
        mark(el, "time", data[0].length);
      },
      push: function (t, values) {
        data[0].push(t);
        for (var i = 1; i < data.length; i++) data[i].push(values[i - 1] == null ? null : values[i - 1]);
        var excess = maxPoints ? data[0].length - maxPoints : 0;
        if (excess > 0) {
          for (var j = 0; j < data.length; j++) data[j].splice(0, excess);
        }
        plot.setData(data);
        mark(el, "time", data[0].length);
      },
      setFaults: function (list) {
        faults = (list || []).slice();
        if (data[0].length) plot.redraw(false, false); /* (uPlot cannot redraw no data: the next draw shows them) */
      },
      faultLabels: function () { return labels.slice(); },
      destroy: function () {
        if (observer) observer.disconnect();
        plot.destroy();
        var at = instances.indexOf(chart);
        if (at >= 0) instances.splice(at, 1);
      },
    };
    instances.push(chart);
    return chart;
  }

  function histogram(el, options) {
    var opts = options || {};
    var buckets = (opts.buckets || []).slice();
    var height = opts.height || 200;
    var many = opts.series != null;
    var list = many ? opts.series : [{ label: opts.label || "count", counts: opts.counts || [] }];
    var xs = buckets.map(function (_, i) { return i; });
    var series = [{
      label: "bucket",
      value: function (u, v) { return v == null ? "" : (buckets[v] || ""); },
    }];
    var data = [xs];
    list.forEach(function (s, i) {
      var color = s.color || palette[i % palette.length];
      series.push({
        label: s.label,
        stroke: color,
        fill: many ? undefined : color + "99",
        width: many ? 1.5 : 1,
        points: { show: false },
        paths: many
          ? global.uPlot.paths.stepped({ align: 0 })
          : global.uPlot.paths.bars({ size: [0.8, Infinity] }),
      });
      data.push((s.counts || []).slice());
    });
    var plot = new global.uPlot({
      title: opts.title,
      width: widthOf(el),
      height: height,
      scales: {
        x: { time: false, range: function () { return [-0.5, Math.max(0.5, buckets.length - 0.5)]; } },
        y: { range: function (u, min, max) { return [0, Math.max(1, max) * 1.1]; } },
      },
      series: series,
      axes: [
        {
          stroke: "#555",
          grid: { show: false },
          splits: function () { return xs; },
          values: function (u, splits) {
            var step = Math.ceil(splits.length / Math.max(1, Math.floor(u.bbox.width / (70 * (global.devicePixelRatio || 1)))));
            return splits.map(function (v, i) { return i % step === 0 ? (buckets[v] || "") : ""; });
          },
        },
        { stroke: "#555", grid: { stroke: "#eee" }, size: 56 },
      ],
      legend: { live: true },
      cursor: { drag: { x: false, y: false } },
    }, data, el);
    var observer = follow(el, plot, height);
    mark(el, "histogram", xs.length);

    var chart = {
      plot: plot,
      element: el,
      points: function () { return xs.length; },
      update: function (counts) {
        var rows = many ? counts : [counts];
        data = [xs].concat(rows.map(function (c) { return c.slice(); }));
        plot.setData(data);
        mark(el, "histogram", xs.length);
      },
      destroy: function () {
        if (observer) observer.disconnect();
        plot.destroy();
        var at = instances.indexOf(chart);
        if (at >= 0) instances.splice(at, 1);
      },
    };
    instances.push(chart);
    return chart;
  }

  global.SimCharts = {
    timeSeries: timeSeries,
    histogram: histogram,
    instances: instances,
    palette: palette,
    formatSeconds: formatSeconds,
  };
})(typeof window !== "undefined" ? window : this);
