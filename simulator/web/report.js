/*
 * The HTML report's charts (`sim report LEDGER --html`): reads the JSON block
 * #sim-report-data that simulator/report/html.py writes and draws it with SimCharts
 * (charts.js, shared with the dashboard). Runs once, inline, after the page's body.
 *
 * Data: {series: {bucket_s, t_s, connected, transactions_running, frames_sent_per_s,
 * frames_received_per_s}, faults: [{t, end, label}], bins: [label], latencies:
 * [{action, results, counts}]}; times are seconds since the run's start.
 *
 * When it is done, window.simReport = {charts: [{id, title, points}]} and
 * <body data-report="ready">; a failure is thrown (the console shows it) and the page
 * says data-report="failed".
 */
(function () {
  "use strict";
  var body = document.body;
  try {
    var data = JSON.parse(document.getElementById("sim-report-data").textContent);
    var s = data.series;
    var faults = data.faults;
    var drawn = [];

    function time(id, title, yLabel, series) {
      var el = document.getElementById(id);
      var chart = SimCharts.timeSeries(el, {
        title: title, yLabel: yLabel, time: false, times: s.t_s, series: series,
        faults: faults, height: 200,
      });
      drawn.push({ id: id, title: title, points: chart.points() });
    }

    time("chart-connected", "Connected chargers", "chargers", [
      { label: "connected", values: s.connected, fill: true },
    ]);
    time("chart-frames", "Frames per second (exchanges)", "frames/s", [
      { label: "sent by the chargers", values: s.frames_sent_per_s },
      { label: "received from the CSMS", values: s.frames_received_per_s },
    ]);
    time("chart-transactions", "Transactions running", "transactions", [
      { label: "running", values: s.transactions_running, fill: true },
    ]);

    var boxes = document.querySelectorAll("#latency-charts .latency");
    data.latencies.forEach(function (h, i) {
      var el = boxes[i];
      var title = h.action + " (" + h.results + " answers)";
      var chart = SimCharts.histogram(el, {
        title: title, buckets: data.bins, counts: h.counts, label: "answers", height: 160,
      });
      drawn.push({ id: "latency-" + h.action, title: title, points: chart.points() });
    });

    window.simReport = { charts: drawn };
    body.setAttribute("data-report", "ready");
  } catch (error) {
    body.setAttribute("data-report", "failed");
    throw error;
  }
})();
