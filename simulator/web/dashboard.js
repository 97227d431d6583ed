/*
 * The live dashboard (GET /): plain browser JavaScript over the control API, no build step.
 *
 * Rules:
 * - It never blocks the fleet. Every poll is a setTimeout chain (the next request leaves only
 *   when the last one is answered, so a slow run is asked less, never more): the run's counters
 *   every 1 s, the grid's states every 2 s (every 5 s above BIG_GRID chargers: the codes cost
 *   the fleet's event loop some 40 ms on 10,000), the stats every 2 s, an open drawer every
 *   2 s, the actor tree every 5 s and only while its section is open (above BIG_TREE chargers: when it opens,
 *   on "refresh" and after a crash, no more often than every 5 s), the faults (GET /api/chaos)
 *   every 5 s whatever happens (the stream's faults, and the rows POST and DELETE answer, are
 *   drawn in between). Events are buffered as they arrive and drawn at most every 500 ms; the
 *   list keeps the newest MAX_EVENTS.
 * - The token: when the API answers 401 the page asks for it once, keeps it in sessionStorage
 *   (the tab's life only), sends it as `Authorization: Bearer` and, for EventSource (which
 *   cannot set a header), as `?access_token=`.
 * - A problem document's `detail` is what the user is shown when a request is refused.
 * - Time series (exchanges per second, latency p50/p95 per action, the fleet) are kept here,
 *   on the run's clock (seconds since it started), and drawn with SimCharts (charts.js), the
 *   same chart code as the HTML report; the faults injected are laid over them.
 *
 * `window.dashboard` exposes a few read-only helpers for tests (where a charger's cell is, the
 * fault marks).
 */
(function () {
  "use strict";

  var RUN_EVERY = 1000;
  var STATES_EVERY = 2000;
  var STATES_EVERY_BIG = 5000; /* above BIG_GRID chargers: the grid's codes cost the fleet ~4 us each */
  var BIG_GRID = 2000;
  var STATS_EVERY = 2000;
  var DRAWER_EVERY = 2000;
  var TREE_EVERY = 5000;
  var BIG_TREE = 1000; /* chargers above which the tree is fetched only when asked or on a crash */
  var CHAOS_EVERY = 5000; /* GET /api/chaos, whatever happens: the stream's faults are drawn between */
  var MAX_FIRING_MARKS = 60; /* firings of one recurring fault drawn one by one on the charts */
  var EVENTS_DRAW_EVERY = 500;
  var MAX_EVENTS = 300;
  var MAX_POINTS = 900; /* 30 min of stats at one point per 2 s */
  var TOP_ACTIONS = 6;
  var TOKEN_KEY = "sim-api-token";
  var DEFAULT_KINDS = "boot,status,tx_started,tx_stopped,connected,disconnected,connect_failed," +
    "call_timeout,crash,fault,command";
  var EVENT_KINDS = ["frame_out", "frame_unsent", "frame_in", "call_timeout", "unmatched_result",
    "message_dropped", "boot", "status", "tx_started", "tx_acked", "tx_stopped",
    "config_changed", "note", "connected", "disconnected", "connect_failed", "crash",
    "loop_lag", "csms_frame_in", "csms_frame_out", "csms_note", "command", "fault",
    "fault_ended"];
  var ERROR_CODES = ["ConnectorLockFailure", "EVCommunicationError", "GroundFailure",
    "HighTemperature", "InternalError", "LocalListConflict", "OtherError",
    "OverCurrentFailure", "OverVoltage", "PowerMeterFailure", "PowerSwitchFailure",
    "ReaderFailure", "ResetFailure", "UnderVoltage", "WeakSignal"];
  /* One colour per state code of GET /api/chargers/states (its legend names them). */
  var STATE_COLORS = ["#e2e8f0", "#718096", "#48bb78", "#ecc94b", "#3182ce", "#9f7aea",
    "#e53e3e", "#ed8936", "#2d3748"];

  function $(id) { return document.getElementById(id); }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (key) {
        if (key === "text") node.textContent = attrs[key];
        else if (key === "className") node.className = attrs[key];
        else node.setAttribute(key, attrs[key]);
      });
    }
    (children || []).forEach(function (child) {
      if (child != null) node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function fmt(n, digits) {
    if (n == null || Number.isNaN(n)) return "–";
    if (typeof n !== "number") return String(n);
    return n.toLocaleString(undefined, { maximumFractionDigits: digits == null ? 0 : digits });
  }

  function seconds(s) { return s == null ? "–" : SimCharts.formatSeconds(s); }

  /* A recurring fault's period: "250 ms" below a second, as seconds() above. */
  function period(s) { return s < 1 ? fmt(s * 1000, 1) + " ms" : seconds(s); }

  function notice(text) {
    var box = $("notice");
    box.textContent = text || "";
    box.hidden = !text;
  }

  /* --- the API, with the token ------------------------------------------------------------ */

  var tokenAsked = null;

  function token() { return sessionStorage.getItem(TOKEN_KEY); }

  function askToken() {
    if (!tokenAsked) {
      tokenAsked = new Promise(function (resolve) {
        var dialog = $("token-dialog");
        dialog.addEventListener("close", function onClose() {
          dialog.removeEventListener("close", onClose);
          var value = $("token-input").value.trim();
          $("token-input").value = "";
          if (value) sessionStorage.setItem(TOKEN_KEY, value);
          tokenAsked = null;
          resolve();
          openStreams();
        });
        dialog.showModal();
      });
    }
    return tokenAsked;
  }

  /* Problem (RFC 9457) or transport error, as one line for a person. */
  function ApiError(status, detail) {
    this.status = status;
    this.message = detail;
  }

  async function api(path, init) {
    for (;;) {
      var options = Object.assign({ headers: {} }, init || {});
      options.headers = Object.assign({ Accept: "application/json" }, options.headers);
      if (token()) options.headers.Authorization = "Bearer " + token();
      var response;
      try {
        response = await fetch(path, options);
      } catch (error) {
        throw new ApiError(0, "the simulator does not answer (" + error.message + ")");
      }
      if (response.status === 401) {
        sessionStorage.removeItem(TOKEN_KEY);
        await askToken();
        continue;
      }
      var type = response.headers.get("content-type") || "";
      var body = type.indexOf("json") >= 0 ? await response.json() : await response.text();
      if (!response.ok) {
        var detail = body && body.detail ? body.detail : response.status + " " + response.statusText;
        throw new ApiError(response.status, detail);
      }
      return body;
    }
  }

  function post(path, body) {
    return api(path, { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body) });
  }

  /* Call `task` now and again `every` ms after each answer (or failure). */
  function poll(every, task) { /* every: milliseconds, or a function that tells them */
    var timer = null;
    async function tick() {
      timer = null;
      try {
        await task();
      } catch (error) {
        if (error instanceof ApiError) notice(error.message);
        else throw error;
      } finally {
        timer = setTimeout(tick, typeof every === "function" ? every() : every);
      }
    }
    tick();
    return { now: function () { if (timer) { clearTimeout(timer); tick(); } } };
  }

  /* --- the run and its counters ----------------------------------------------------------- */

  var run = null; /* the last GET /api/run, and when (performance.now()) it came */
  var runAt = 0;

  function runClock() {
    if (!run) return 0;
    var ahead = run.status === "running" && run.time === "real" ? (performance.now() - runAt) / 1000 : 0;
    return run.elapsed + ahead;
  }

  var COUNTERS = [
    ["chargers", function (r) { return r.fleet.size; }],
    ["started", function (r) { return r.fleet.started; }],
    ["connected", function (r) { return r.fleet.connected; }],
    ["in transaction", function (r) { return r.fleet.in_transaction; }],
    ["msgs in /s", function (r) { return r.live.messages_in_per_s; }, 1],
    ["msgs out /s", function (r) { return r.live.messages_out_per_s; }, 1],
    ["frames in", function (r) { return r.live.frames_in; }],
    ["frames out", function (r) { return r.live.frames_out; }],
    ["callerrors rx", function (r) { return r.live.call_errors_received; }],
    ["timeouts", function (r) { return r.live.timeouts; }],
    ["reconnects", function (r) { return r.live.reconnects; }],
    ["crashes", function (r) { return r.live.crashes; }],
  ];

  function drawCounters(r) {
    var box = $("counters");
    if (!box.children.length) {
      COUNTERS.forEach(function (c) {
        box.appendChild(el("div", { className: "counter", "data-counter": c[0] }, [
          el("div", { className: "value", text: "–" }), el("div", { className: "label", text: c[0] })]));
      });
    }
    COUNTERS.forEach(function (c, i) {
      var value = c[1](r);
      var cell = box.children[i];
      cell.firstChild.textContent = fmt(value, c[2]);
      cell.setAttribute("data-value", String(value));
    });
  }

  async function pollRun() {
    var r = await api("/api/run");
    run = r;
    runAt = performance.now();
    document.title = r.name + " · OCPP chaos simulator";
    $("run-name").textContent = r.name;
    var badge = $("run-status");
    badge.textContent = r.status;
    badge.className = "badge " + r.status;
    $("run-meta").textContent = "seed " + r.seed + " · " + r.time + " time · " + seconds(r.elapsed) +
      (r.duration != null ? " of " + seconds(r.duration) : "") + " · run " + r.run_id;
    $("stop-run").disabled = r.status !== "running";
    drawCounters(r);
    fleetPoint(r);
    notice("");
  }

  $("stop-run").addEventListener("click", async function () {
    if (!window.confirm("Stop the run? (a graceful end, as Ctrl-C)")) return;
    try {
      await post("/api/run/stop", {});
    } catch (error) {
      notice(error.message);
    }
  });

  /* --- the grid of chargers --------------------------------------------------------------- */

  var nothing = { now: function () {} };
  var treePoller = nothing, drawerPoller = nothing;

  var grid = { ids: [], codes: [], legend: {}, cell: 8, cols: 1, index: {} };

  function layoutGrid() {
    var canvas = $("grid");
    var width = Math.max(200, canvas.parentNode.clientWidth);
    var n = Math.max(1, grid.ids.length);
    /* The biggest cell (2..18 px, 1 px gap) that fits every charger in ~360 px of height. */
    var cell = Math.floor(Math.sqrt((width * 360) / n));
    cell = Math.max(3, Math.min(18, cell));
    var cols = Math.max(1, Math.floor(width / cell));
    var rows = Math.ceil(n / cols);
    var ratio = window.devicePixelRatio || 1;
    canvas.style.height = rows * cell + "px";
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(rows * cell * ratio);
    grid.cell = cell;
    grid.cols = cols;
  }

  function drawGrid() {
    var canvas = $("grid");
    var ctx = canvas.getContext("2d");
    var ratio = window.devicePixelRatio || 1;
    var cell = grid.cell;
    var gap = cell >= 6 ? 1 : 0;
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    /* One fillStyle per state: 10,000 rectangles in a few milliseconds. */
    for (var code = 0; code < STATE_COLORS.length; code++) {
      ctx.fillStyle = STATE_COLORS[code];
      for (var i = 0; i < grid.codes.length; i++) {
        if (grid.codes[i] !== code) continue;
        ctx.fillRect((i % grid.cols) * cell, Math.floor(i / grid.cols) * cell, cell - gap, cell - gap);
      }
    }
    canvas.setAttribute("data-count", String(grid.ids.length));
  }

  function drawLegend() {
    var counts = {};
    grid.codes.forEach(function (c) { counts[c] = (counts[c] || 0) + 1; });
    var box = $("legend");
    box.textContent = "";
    Object.keys(grid.legend).forEach(function (code) {
      box.appendChild(el("span", { "data-state": grid.legend[code], "data-count": String(counts[code] || 0) }, [
        el("i", { style: "background:" + (STATE_COLORS[code] || "#000") }),
        grid.legend[code] + " " + fmt(counts[code] || 0)]));
    });
  }

  async function pollStates() {
    var s = await api("/api/chargers/states");
    var resized = s.ids.length !== grid.ids.length;
    grid.ids = s.ids;
    grid.codes = s.codes;
    grid.legend = s.legend;
    if (resized) {
      grid.index = {};
      s.ids.forEach(function (id, i) { grid.index[id] = i; });
      var list = $("charger-ids");
      list.textContent = "";
      s.ids.slice(0, 2000).forEach(function (id) { list.appendChild(el("option", { value: id })); });
      layoutGrid();
    }
    drawGrid();
    drawLegend();
  }

  function cellAt(event) {
    var canvas = $("grid");
    var box = canvas.getBoundingClientRect();
    var col = Math.floor((event.clientX - box.left) / grid.cell);
    var row = Math.floor((event.clientY - box.top) / grid.cell);
    if (col < 0 || col >= grid.cols) return -1;
    var i = row * grid.cols + col;
    return i >= 0 && i < grid.ids.length ? i : -1;
  }

  $("grid").addEventListener("mousemove", function (event) {
    var tip = $("grid-tip");
    var i = cellAt(event);
    if (i < 0) { tip.hidden = true; return; }
    tip.textContent = grid.ids[i] + " · " + (grid.legend[grid.codes[i]] || grid.codes[i]);
    tip.style.left = ((i % grid.cols) * grid.cell + grid.cell + 4) + "px";
    tip.style.top = (Math.floor(i / grid.cols) * grid.cell - 4) + "px";
    tip.hidden = false;
  });
  $("grid").addEventListener("mouseleave", function () { $("grid-tip").hidden = true; });
  $("grid").addEventListener("click", function (event) {
    var i = cellAt(event);
    if (i >= 0) openDrawer(grid.ids[i]);
  });
  $("find-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var id = $("find-id").value.trim();
    if (id) openDrawer(id);
  });
  var resizeTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () { layoutGrid(); drawGrid(); }, 150);
  });

  /* --- time series: exchanges per second, latency, the fleet ------------------------------ */

  var series = { times: [], total: [], actions: {}, last: null };
  var fleetSeries = { times: [], connected: [], inTx: [] };
  var charts = { rate: null, latency: null, fleet: null, rateActions: "", latencyAction: null };
  var faultMarks = [];
  var faultMarksFrom = 0, faultMarksTo = 0; /* the run's times the marks were laid out over */
  var faultMarksKey = ""; /* the marks the charts were last given, as JSON */

  function keep(list, value) {
    list.push(value);
    if (list.length > MAX_POINTS) list.shift();
  }

  function actionSeries(name) {
    var a = series.actions[name];
    if (!a) {
      a = series.actions[name] = { rate: [], p50: [], p95: [], count: 0 };
      series.times.forEach(function () { a.rate.push(null); a.p50.push(null); a.p95.push(null); });
      var option = el("option", { value: name, text: name });
      $("latency-action").appendChild(option);
    }
    return a;
  }

  function statsPoint(s) {
    var last = series.last;
    series.last = s;
    if (!last || s.t <= last.t) return;
    var dt = s.t - last.t;
    /* A new action's arrays are padded to the times before this point is added to any. */
    Object.keys(s.actions).forEach(actionSeries);
    keep(series.times, s.t);
    keep(series.total, Math.max(0, (s.exchanges - last.exchanges) / dt));
    Object.keys(series.actions).forEach(function (name) {
      var now = s.actions[name];
      var before = last.actions[name];
      var a = series.actions[name];
      var done = now ? now.sent + now.received : 0;
      var was = before ? before.sent + before.received : 0;
      keep(a.rate, now ? Math.max(0, (done - was) / dt) : 0);
      /* p50 / p95 cover the action's last answers, however old: drawn only while new ones
       * come, a gap otherwise (not a flat line of stale latencies). */
      var fresh = !!now && now.count > (before ? before.count : 0);
      keep(a.p50, fresh ? now.p50 : null);
      keep(a.p95, fresh ? now.p95 : null);
      a.count = done;
    });
  }

  function topActions() {
    return Object.keys(series.actions).sort(function (a, b) {
      return series.actions[b].count - series.actions[a].count || (a < b ? -1 : 1);
    }).slice(0, TOP_ACTIONS);
  }

  function drawRate() {
    var top = topActions();
    var values = [series.total].concat(top.map(function (n) { return series.actions[n].rate; }));
    if (!charts.rate || charts.rateActions !== top.join(",")) {
      if (charts.rate) charts.rate.destroy();
      charts.rateActions = top.join(",");
      charts.rate = SimCharts.timeSeries($("chart-rate"), {
        title: "Exchanges per second", time: false, yLabel: "exchanges/s", faults: faultMarks,
        times: series.times,
        series: [{ label: "all", values: series.total, fill: true }].concat(top.map(function (n) {
          return { label: n, values: series.actions[n].rate };
        })),
      });
    } else {
      charts.rate.update(series.times, values);
    }
  }

  function drawLatency() {
    var chosen = $("latency-action").value;
    var names = chosen ? [chosen] : topActions().slice(0, 3);
    var key = names.join(",");
    var values = [];
    var labels = [];
    names.forEach(function (n) {
      var a = series.actions[n];
      if (!a) return;
      values.push(a.p50, a.p95);
      labels.push(n + " p50", n + " p95");
    });
    if (!charts.latency || charts.latencyAction !== key) {
      if (charts.latency) charts.latency.destroy();
      charts.latencyAction = key;
      charts.latency = SimCharts.timeSeries($("chart-latency"), {
        title: "Latency p50 / p95" + (chosen ? " · " + chosen : ""), time: false, yLabel: "seconds",
        faults: faultMarks, times: series.times,
        series: labels.map(function (label, i) { return { label: label, values: values[i] }; }),
      });
    } else {
      charts.latency.update(series.times, values);
    }
  }

  function fleetPoint(r) {
    var times = fleetSeries.times;
    if (times.length && r.elapsed <= times[times.length - 1]) return;
    keep(times, r.elapsed);
    keep(fleetSeries.connected, r.fleet.connected);
    keep(fleetSeries.inTx, r.fleet.in_transaction);
    if (!charts.fleet) {
      charts.fleet = SimCharts.timeSeries($("chart-fleet"), {
        title: "Chargers", time: false, faults: faultMarks, times: times,
        series: [{ label: "connected", values: fleetSeries.connected, fill: true },
          { label: "in transaction", values: fleetSeries.inTx }],
      });
    } else {
      charts.fleet.update(times, [fleetSeries.connected, fleetSeries.inTx]);
    }
  }

  async function pollStats() {
    statsPoint(await api("/api/stats"));
    drawRate();
    drawLatency();
    markFaults(); /* a recurring fault's new firings */
  }

  $("latency-action").addEventListener("change", drawLatency);

  /* --- faults: the form, the timeline, the overlay ---------------------------------------- */

  var catalog = [];
  var chaos = { active: [], scheduled: [], ended: [] };
  var streamFaults = {}; /* fault row id -> {t, label, ...}: faults seen on the stream, not (yet) listed */

  function paramInput(p) {
    var input;
    if (p.choices && p.choices.length) {
      input = el("select", { name: p.name });
      /* No default: a blank first option leaves the param out of the request ("(any)": the
       * fault's own rule for an absent value), or must be changed when the param is required. */
      if (p.default == null) input.appendChild(el("option", { value: "", text: p.required ? "(choose)" : "(any)" }));
      p.choices.forEach(function (c) { input.appendChild(el("option", { value: String(c), text: String(c) })); });
      input.value = p.default == null ? "" : String(p.default);
      if (p.required) input.required = true;
    } else if (p.kind === "bool") {
      input = el("input", { type: "checkbox", name: p.name });
      input.checked = !!p.default;
    } else {
      input = el("input", { name: p.name, type: p.kind === "int" || p.kind === "float" ? "number" : "text" });
      if (p.kind === "int") input.step = "1";
      if (p.kind === "float") input.step = "any";
      if (p.default != null) input.value = String(p.default);
    }
    input.setAttribute("data-kind", p.kind || "");
    input.title = p.description || "";
    return el("label", { title: p.description || "" }, [p.name + " (" + (p.kind || "value") + ")", input]);
  }

  function showFault() {
    var spec = catalog.filter(function (f) { return f.fault === $("fault-name").value; })[0];
    var box = $("fault-params");
    box.textContent = "";
    box.appendChild(el("legend", { text: "params" }));
    if (!spec) return;
    var lasting = spec.lasting == null ? "" : " · lasts: " + (typeof spec.lasting === "number" ? seconds(spec.lasting) + " unless for says" : spec.lasting);
    $("fault-family").textContent = spec.family + " · target: " + spec.target + lasting;
    $("fault-for").required = spec.lasting === "required";
    $("fault-description").textContent = spec.description || "";
    spec.params.forEach(function (p) { box.appendChild(paramInput(p)); });
    box.hidden = !spec.params.length;
  }

  async function loadCatalog() {
    catalog = await api("/api/chaos/catalog");
    var select = $("fault-name");
    select.textContent = "";
    catalog.forEach(function (f) {
      select.appendChild(el("option", { value: f.fault, text: f.fault + " (" + f.family + ")" }));
    });
    showFault();
  }

  /* A schedule or duration field: a number of seconds, or a duration as written ("30s"). */
  function durationValue(text) {
    text = text.trim();
    if (!text) return undefined;
    return /^[0-9.]+$/.test(text) ? Number(text) : text;
  }

  function faultBody() {
    var body = { fault: $("fault-name").value, target: {} };
    var ids = $("target-ids").value.split(",").map(function (s) { return s.trim(); }).filter(Boolean);
    if (ids.length) body.target.ids = ids;
    if ($("target-group").value.trim()) body.target.group = $("target-group").value.trim();
    if ($("target-tag").value.trim()) body.target.tag = $("target-tag").value.trim();
    var fraction = Number($("target-fraction").value);
    if ($("target-fraction").value !== "" && fraction !== 1) body.target.fraction = fraction;
    if ($("target-connector").value !== "") body.target.connector = Number($("target-connector").value);
    if (Number($("fault-at").value) > 0) body.at = Number($("fault-at").value);
    var every = durationValue($("fault-every").value);
    if (every !== undefined) body.every = every;
    var lasting = durationValue($("fault-for").value);
    if (lasting !== undefined) body["for"] = lasting;
    var probability = $("fault-probability").value;
    if (probability !== "" && Number(probability) !== 1) body.probability = Number(probability);
    var params = {};
    $("fault-params").querySelectorAll("[name]").forEach(function (input) {
      var kind = input.getAttribute("data-kind");
      if (input.type === "checkbox") params[input.name] = input.checked;
      else if (input.value === "") return;
      else if (kind === "int" || kind === "float") params[input.name] = Number(input.value);
      else if (kind === "duration") params[input.name] = durationValue(input.value);
      else params[input.name] = input.value;
    });
    if (Object.keys(params).length) body.params = params;
    return body;
  }

  $("fault-name").addEventListener("change", showFault);
  $("fault-form").addEventListener("submit", async function (event) {
    event.preventDefault();
    var result = $("fault-result");
    result.textContent = "injecting…";
    try {
      var row = await post("/api/chaos", faultBody());
      result.textContent = "injected " + row.fault + " (" + row.id + ") on " +
        fmt(row.chargers.length) + " charger(s)";
      takeRow(row);
    } catch (error) {
      result.textContent = error.message;
      result.setAttribute("data-error", "true");
      return;
    }
    result.removeAttribute("data-error");
  });

  /* The GET /api/chaos row an injection id belongs to: "api3.2" -> "api3" (a fault of the
   * API), "1.4" or "1.4.7" -> "chaos1" (rule 1 of the fleet file; firing 4, wave target 7). */
  function faultOf(injection) {
    var head = String(injection).split(".")[0];
    return /^[0-9]+$/.test(head) ? "chaos" + head : head;
  }

  function allFaultRows() {
    return chaos.active.concat(chaos.scheduled, chaos.ended);
  }

  function drawTimeline() {
    var rows = allFaultRows().slice().sort(function (a, b) { return b.at - a.at; });
    var known = {};
    rows.forEach(function (r) { known[r.id] = true; });
    var list = $("fault-timeline");
    list.textContent = "";
    rows.forEach(function (r) {
      var end = null;
      if (r.state !== "ended") {
        end = el("button", { type: "button", text: "end" });
        end.addEventListener("click", async function () {
          try { takeRow(await api("/api/chaos/" + encodeURIComponent(r.id), { method: "DELETE" })); }
          catch (error) { notice(error.message); }
        });
      }
      list.appendChild(el("li", { "data-fault": r.fault, "data-id": r.id }, [
        el("span", { className: "meta", text: seconds(r.at) }),
        el("strong", { text: r.fault }),
        el("span", { className: "state " + r.state, text: r.state }),
        el("span", { text: fmt(r.chargers.length) + " charger(s)" + (r.every != null ? " every " + period(r.every) : "") +
          (r.until != null ? " until " + seconds(r.until) : "") }),
        el("span", { className: "meta", text: r.source }),
        end]));
    });
    Object.keys(streamFaults).forEach(function (injection) {
      if (known[injection]) return;
      var f = streamFaults[injection];
      list.appendChild(el("li", { "data-fault": f.label, "data-id": injection }, [
        el("span", { className: "meta", text: seconds(f.t) }), el("strong", { text: f.label }),
        el("span", { className: "state", text: "seen" }),
        el("span", { text: fmt(f.chargers) + " charger(s)" }), el("span", { className: "meta", text: f.source })]));
    });
    markFaults();
  }

  /* The first time the charts show (seconds on the run's clock). */
  function chartsFrom() {
    var firsts = [series.times[0], fleetSeries.times[0]].filter(function (t) { return t != null; });
    return firsts.length ? Math.min.apply(null, firsts) : 0;
  }

  /* The marks of one fault row between `from` and `to` (run seconds). A fault that fires once
   * is one mark, shaded until its `until`; a recurring one is one mark per firing (at +
   * k * every), each shaded over its `for`: never one span from its first firing to its
   * latest end. Past MAX_FIRING_MARKS firings in view it is one unshaded line, "every ...". */
  function rowMarks(r, from, to) {
    if (r.every == null || !(r.every > 0)) {
      return [{ t: r.at, end: r.until == null ? undefined : r.until, label: r.fault }];
    }
    var lasts = r["for"] == null ? 0 : r["for"];
    var last = to;
    if (r.state === "ended" && r.until != null) last = Math.min(last, r.until); /* no firing after its end */
    var first = Math.max(0, Math.ceil((from - lasts - r.at) / r.every));
    var final = Math.floor((last - r.at) / r.every);
    if (final < first) return [];
    if (final - first + 1 > MAX_FIRING_MARKS) {
      return [{ t: r.at + first * r.every, label: r.fault + " every " + period(r.every) }];
    }
    var marks = [];
    for (var k = first; k <= final; k++) {
      var t = r.at + k * r.every;
      var end = r["for"] == null ? undefined : t + r["for"];
      if (end !== undefined && r.state === "ended" && r.until != null) end = Math.min(end, r.until);
      marks.push({ t: t, end: end, label: r.fault });
    }
    return marks;
  }

  /* Lay the faults over the charts: the rows of GET /api/chaos, and those seen only on the
   * stream since (one line each). Called as the rows change and as the run's time goes on (a
   * recurring fault fires again). */
  function markFaults() {
    var from = faultMarksFrom = chartsFrom();
    var to = faultMarksTo = runClock();
    var known = {};
    faultMarks = [];
    allFaultRows().forEach(function (r) {
      known[r.id] = true;
      faultMarks = faultMarks.concat(rowMarks(r, from, to));
    });
    Object.keys(streamFaults).forEach(function (injection) {
      if (!known[injection]) faultMarks.push({ t: streamFaults[injection].t, label: streamFaults[injection].label });
    });
    var key = JSON.stringify(faultMarks);
    if (key === faultMarksKey) return; /* the charts are not redrawn for nothing */
    faultMarksKey = key;
    [charts.rate, charts.latency, charts.fleet].forEach(function (c) { if (c) c.setFaults(faultMarks); });
  }

  /* A row the API answered (POST or DELETE /api/chaos) takes its place in the list at once:
   * the list itself is polled every CHAOS_EVERY only. */
  function takeRow(row) {
    ["active", "scheduled", "ended"].forEach(function (state) {
      chaos[state] = chaos[state].filter(function (r) { return r.id !== row.id; });
    });
    (chaos[row.state] || chaos.active).push(row);
    drawTimeline();
  }

  async function pollChaos() {
    chaos = await api("/api/chaos");
    drawTimeline();
  }

  /* --- the live event stream -------------------------------------------------------------- */

  var streams = { list: null, faults: null };
  var faultsDirty = false;
  var crashDirty = false;
  var pending = [];
  var paused = false;
  var shown = 0;

  function streamUrl(kinds, chargers) {
    var query = [];
    if (kinds) query.push("kind=" + encodeURIComponent(kinds));
    if (chargers) query.push("charger=" + encodeURIComponent(chargers));
    if (token()) query.push("access_token=" + encodeURIComponent(token()));
    return "/api/events" + (query.length ? "?" + query.join("&") : "");
  }

  function listen(source, onEvent) {
    EVENT_KINDS.concat(["dropped", "message"]).forEach(function (kind) {
      source.addEventListener(kind, function (message) {
        var data;
        try { data = JSON.parse(message.data); } catch (error) { return; }
        onEvent(kind === "message" ? (data.kind || "message") : kind, data);
      });
    });
  }

  function openStreams() {
    if (streams.list) streams.list.close();
    if (streams.faults) streams.faults.close();
    var state = $("events-state");
    var list = streams.list = new EventSource(streamUrl($("events-kind").value.trim(), $("events-charger").value.trim()));
    list.onopen = function () { state.textContent = "live"; };
    list.onerror = function () {
      /* Closed for good: the API refused the stream (a kind or charger it does not know) or
       * the run ended; otherwise the browser reconnects by itself. */
      state.textContent = list.readyState === EventSource.CLOSED
        ? "closed (is every kind and charger of the filter known?)" : "reconnecting…";
    };
    listen(list, function (kind, data) {
      if (paused && kind !== "dropped") return;
      pending.push([kind, data]);
      if (pending.length > MAX_EVENTS * 4) pending.splice(0, pending.length - MAX_EVENTS);
    });
    /* A second, narrow stream for the faults timeline and crashes, whatever the list shows. */
    var faults = streams.faults = new EventSource(streamUrl("fault,crash", ""));
    listen(faults, function (kind, data) {
      if (kind === "fault" && !data.skipped) {
        var key = data.injection ? faultOf(data.injection) : data.fault;
        var seen = streamFaults[key];
        if (seen) seen.chargers += 1;
        else streamFaults[key] = { t: runClock(), label: data.fault, chargers: 1, source: data.source || "chaos" };
        faultsDirty = true;
      } else if (kind === "crash") {
        crashDirty = true;
      }
    });
  }


  function describe(kind, d) {
    switch (kind) {
      case "status": return "connector " + d.connector + ": " + d.old + " → " + d.new + (d.error_code && d.error_code !== "NoError" ? " (" + d.error_code + ")" : "");
      case "tx_started": return "connector " + d.connector + " tag " + d.id_tag + " meter " + d.meter_start;
      case "tx_stopped": return "connector " + d.connector + " tx " + d.transaction_id + " " + d.reason + " meter " + d.meter_stop;
      case "boot": return d.status + " (interval " + d.interval + ")";
      case "command": return d.command + (d.connector != null ? " connector " + d.connector : "") + (d.source ? " from " + d.source : "") + (d.skipped ? " skipped: " + d.skipped : "");
      case "fault": return d.fault + (d.params && Object.keys(d.params).length ? " " + JSON.stringify(d.params) : "") + (d.skipped ? " skipped: " + d.skipped : "");
      case "crash": return d.error;
      case "connect_failed": return d.error + " (attempt " + d.attempt + ")";
      case "connected": return d.url + (d.subprotocol ? " (" + d.subprotocol + ")" : "");
      case "disconnected": return (d.code != null ? d.code + " " : "") + (d.reason || "");
      case "frame_in": case "frame_out": case "csms_frame_in": case "csms_frame_out":
        return d.raw;
      default: return JSON.stringify(d);
    }
  }

  function drawEvents() {
    /* The stream's faults are drawn as they come; GET /api/chaos (heavy on a big fleet)
     * waits for its own turn, every CHAOS_EVERY whatever happens. */
    if (faultsDirty) { faultsDirty = false; drawTimeline(); }
    if (crashDirty) { crashDirty = false; treeWanted = true; if ($("tree-section").open) treePoller.now(); }
    if (!pending.length) return;
    var batch = pending;
    pending = [];
    var list = $("events");
    var fragment = document.createDocumentFragment();
    var start = Math.max(0, batch.length - MAX_EVENTS);
    if (start > 0) {
      fragment.appendChild(el("li", { className: "meta", text: "… " + start + " more not drawn" }));
    }
    for (var i = start; i < batch.length; i++) {
      var kind = batch[i][0];
      var d = batch[i][1];
      var item;
      if (kind === "dropped") {
        item = el("li", { className: "dropped", "data-kind": "dropped", text: "dropped " + d.dropped + " events (this page fell behind the fleet)" });
      } else {
        item = el("li", { "data-kind": kind, title: JSON.stringify(d) }, [
          el("span", { className: "kind", text: kind }),
          el("span", { className: "who", text: (d.charger || "") }), " ", describe(kind, d)]);
      }
      fragment.insertBefore(item, fragment.firstChild);
    }
    list.insertBefore(fragment, list.firstChild);
    shown += batch.length - start;
    while (list.children.length > MAX_EVENTS) list.removeChild(list.lastChild);
  }

  $("events-kind").value = DEFAULT_KINDS;
  $("events-filter").addEventListener("submit", function (event) {
    event.preventDefault();
    $("events").textContent = "";
    pending = [];
    openStreams();
  });
  $("events-pause").addEventListener("click", function () {
    paused = !paused;
    this.textContent = paused ? "Resume" : "Pause";
  });

  /* --- the charger's drawer --------------------------------------------------------------- */

  var drawer = { id: null, shown: "" };

  function openDrawer(id) {
    drawer.id = id;
    drawer.shown = "";
    $("drawer").hidden = false;
    $("drawer-title").textContent = id;
    $("drawer").setAttribute("data-charger", id);
    $("drawer-result").textContent = "";
    $("drawer-connectors").textContent = "loading…";
    $("drawer-ask").hidden = true;
    drawerPoller.now();
  }

  $("drawer-close").addEventListener("click", function () {
    drawer.id = null;
    $("drawer").hidden = true;
  });

  /* Ask one value in the drawer (the tag, an error code); resolves with it, or null. */
  function ask(label, initial, choices) {
    var form = $("drawer-ask");
    var input = $("drawer-ask-input");
    $("drawer-ask-label").textContent = label;
    input.value = initial || "";
    input.setAttribute("list", choices ? "error-codes" : "");
    form.hidden = false;
    input.focus();
    return new Promise(function (resolve) {
      function done(value) {
        form.hidden = true;
        form.removeEventListener("submit", onSubmit);
        $("drawer-ask-cancel").removeEventListener("click", onCancel);
        resolve(value);
      }
      function onSubmit(event) { event.preventDefault(); done(input.value.trim() || null); }
      function onCancel() { done(null); }
      form.addEventListener("submit", onSubmit);
      $("drawer-ask-cancel").addEventListener("click", onCancel);
    });
  }

  async function command(name, connector) {
    var id = drawer.id;
    var body = { "do": name };
    if (connector != null) body.connector = connector;
    if (name === "present_tag") {
      var tag = await ask("tag to present at connector " + connector, "TAG-1");
      if (!tag) return;
      body.params = { id_tag: tag };
    } else if (name === "fault") {
      var code = await ask("error code of connector " + connector, "OtherError", true);
      if (!code) return;
      body.params = { error_code: code };
    }
    var result = $("drawer-result");
    result.removeAttribute("data-error");
    try {
      var answer = await post("/api/chargers/" + encodeURIComponent(id) + "/commands", body);
      result.textContent = answer.command + " sent to " + answer.charger +
        (answer.connectors && answer.connectors.length ? " connector " + answer.connectors.join(", ") : "");
    } catch (error) {
      result.textContent = error.message;
      result.setAttribute("data-error", "true");
    }
    drawerPoller.now();
  }

  var CONNECTOR_COMMANDS = ["plug", "unplug", "present_tag", "stop", "fault", "clear_fault"];

  function drawDrawer(c) {
    /* Rebuilt only when it changed: a button is not replaced under the user's pointer. */
    var text = JSON.stringify(c);
    if (text === drawer.shown) return;
    drawer.shown = text;
    $("drawer-summary").textContent = "group " + c.group + " · link " + c.link + " · boot " + c.boot +
      " · restarts " + c.restarts + " · outbox " + c.outbox;
    $("drawer").setAttribute("data-link", c.link);
    var table = el("table", null, [el("tr", null, ["connector", "status", "transaction", "energy", ""].map(function (h) {
      return el("th", { text: h });
    }))]);
    c.connectors.forEach(function (k) {
      var tx = k.transaction;
      var buttons = el("div", { className: "buttons" }, CONNECTOR_COMMANDS.map(function (name) {
        var b = el("button", { type: "button", "data-command": name, "data-connector": String(k.id), text: name.replace("_", " ") });
        b.addEventListener("click", function () { command(name, k.id); });
        return b;
      }));
      table.appendChild(el("tr", { "data-connector": String(k.id), "data-status": k.status }, [
        el("td", { text: String(k.id) }),
        el("td", { text: k.status + (k.error_code && k.error_code !== "NoError" ? " (" + k.error_code + ")" : "") }),
        el("td", { text: tx ? "#" + (tx.id != null ? tx.id : "?") + " " + tx.id_tag + " since " + seconds(tx.started) + " (meter " + tx.meter_start + ")" : (k.transaction_id != null ? "#" + k.transaction_id : "–") }),
        el("td", { text: k.energy_wh != null ? fmt(k.energy_wh / 1000, 2) + " kWh" : "–" }),
        el("td", null, [buttons])]));
    });
    var box = $("drawer-connectors");
    box.textContent = "";
    box.appendChild(table);
    if (c.configuration && c.configuration.length) {
      box.appendChild(el("details", null, [el("summary", { text: "configuration (" + c.configuration.length + " keys)" }),
        el("table", null, c.configuration.map(function (k) {
          return el("tr", null, [el("td", { text: k.key }), el("td", { text: k.value == null ? "" : String(k.value) }),
            el("td", { className: "meta", text: k.readonly ? "read-only" : "" })]);
        }))]));
    }
    var crash = $("drawer-crash");
    crash.textContent = "";
    if (c.last_crash) {
      crash.appendChild(el("div", { className: "crash" }, [
        "last crash at " + seconds(c.last_crash.t) + ": " + c.last_crash.error,
        el("details", null, [el("summary", { text: "traceback" }), el("pre", { text: c.last_crash.traceback })])]));
    }
    var frames = $("drawer-frames");
    frames.textContent = "";
    (c.frames || []).slice().reverse().forEach(function (f) {
      frames.appendChild(el("li", { className: f.direction, title: f.raw }, [
        seconds(f.t) + " " + (f.direction === "in" ? "←" : "→") + " " + (f.action || "") + " " + f.raw]));
    });
  }

  async function pollDrawer() {
    if (!drawer.id) return;
    var id = drawer.id;
    try {
      var c = await api("/api/chargers/" + encodeURIComponent(id));
      if (drawer.id === id) drawDrawer(c);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404 && drawer.id === id) {
        $("drawer-connectors").textContent = error.message;
        return;
      }
      throw error;
    }
  }

  document.querySelector("[data-charger-wide]").addEventListener("click", function () { command("reboot", null); });
  ERROR_CODES.forEach(function (code) { $("error-codes").appendChild(el("option", { value: code })); });

  /* --- the actor tree --------------------------------------------------------------------- */

  var treeOpen = {}; /* paths of the nodes the user opened */

  function crashedIn(node) {
    if (node._crashed != null) return node._crashed;
    var own = !!(node.supervisor && node.supervisor.crashes && node.supervisor.crashes.length);
    node._crashed = own || node.children.some(crashedIn);
    return node._crashed;
  }

  function crashList(crashes) {
    return crashes.map(function (c) {
      return el("div", { className: "crash", "data-error": c.error }, [
        seconds(c.t) + " " + c.error,
        el("details", null, [el("summary", { text: "traceback" }), el("pre", { text: c.traceback })])]);
    });
  }

  function nodeLabel(node) {
    var parts = [el("span", { text: node.name })];
    if (node.charger) parts.push(" ", el("span", { className: "meta", text: "[" + node.charger + "]" }));
    if (node.waits_on) parts.push(" ", el("span", { className: "waits", text: "waits on " + node.waits_on }));
    if (node.supervisor) {
      var s = node.supervisor;
      parts.push(" ", el("span", { className: "sup" + (s.crashes.length ? " crashed" : ""),
        text: "restarts " + s.restarts + (s.crashes.length ? " · " + s.crashes.length + " crash(es)" : "") }));
    }
    return parts;
  }

  function treeNode(node, path) {
    var key = path + "/" + node.name;
    if (!node.children.length && !(node.supervisor && node.supervisor.crashes.length)) {
      return el("div", { className: "leaf", "data-node": node.name }, nodeLabel(node));
    }
    var box = el("details", { "data-node": node.name }, [el("summary", null, nodeLabel(node))]);
    var filled = false;
    function fill() {
      if (filled) return;
      filled = true;
      if (node.supervisor) crashList(node.supervisor.crashes).forEach(function (c) { box.appendChild(c); });
      node.children.forEach(function (child) { box.appendChild(treeNode(child, key)); });
    }
    /* Children are built when a node opens: a 10,000-charger tree stays cheap to draw. */
    box.addEventListener("toggle", function () {
      if (box.open) { treeOpen[key] = true; fill(); } else { delete treeOpen[key]; }
    });
    if (treeOpen[key] || crashedIn(node) || !path) { box.open = true; fill(); }
    return box;
  }

  function drawTree(root) {
    var crashes = [];
    (function collect(node) {
      if (node.supervisor && node.supervisor.crashes.length) crashes.push(node);
      node.children.forEach(collect);
    })(root);
    var summary = $("crashes");
    summary.textContent = "";
    crashes.forEach(function (node) {
      var s = node.supervisor;
      var open = el("button", { type: "button", text: s.charger });
      open.addEventListener("click", function () { openDrawer(s.charger); });
      summary.appendChild(el("div", { "data-crashed": s.charger }, [open, " restarts " + s.restarts + ", crashes:"]
        .concat(crashList(s.crashes))));
    });
    $("tree-state").textContent = crashes.length ? crashes.length + " charger(s) crashed" : "no crash";
    var box = $("tree");
    box.textContent = "";
    box.appendChild(treeNode(root, ""));
  }

  var treeWanted = false; /* the tree was opened, refreshed or a charger crashed since it was drawn */

  async function pollTree() {
    if (!$("tree-section").open) return;
    var big = run && run.fleet.size > BIG_TREE;
    if (big && !treeWanted) return; /* a 10,000-charger tree is not built every few seconds */
    treeWanted = false;
    drawTree(await api("/api/tree"));
  }

  $("tree-refresh").addEventListener("click", function (event) {
    event.preventDefault();
    treeWanted = true;
    treePoller.now();
  });

  $("tree-section").addEventListener("toggle", function () {
    treeWanted = true;
    if (this.open) treePoller.now();
  });

  /* --- start ------------------------------------------------------------------------------ */


  async function start() {
    try {
      await pollRun(); /* asks for the token first, if the API wants one */
    } catch (error) {
      notice(error.message);
    }
    openStreams();
    poll(RUN_EVERY, pollRun);
    poll(function () { return grid.ids.length > BIG_GRID ? STATES_EVERY_BIG : STATES_EVERY; },
         pollStates);
    poll(STATS_EVERY, pollStats);
    poll(CHAOS_EVERY, pollChaos);
    drawerPoller = poll(DRAWER_EVERY, pollDrawer);
    treePoller = poll(TREE_EVERY, pollTree);
    setInterval(drawEvents, EVENTS_DRAW_EVERY);
    try { await loadCatalog(); } catch (error) { notice(error.message); }
  }

  window.dashboard = {
    /* The centre of charger `id`'s cell, in CSS pixels from the canvas's top left (tests). */
    cellCenter: function (id) {
      var i = grid.index[id];
      if (i == null) return null;
      return { x: (i % grid.cols) * grid.cell + grid.cell / 2, y: Math.floor(i / grid.cols) * grid.cell + grid.cell / 2 };
    },
    chargers: function () { return grid.ids.length; },
    /* The fault marks laid over the charts, and the run's times they were laid out over. */
    faults: function () { return { marks: faultMarks.slice(), from: faultMarksFrom, until: faultMarksTo }; },
    /* Lay the grid out and draw it again, now; its time in milliseconds. */
    redraw: function () {
      var started = performance.now();
      layoutGrid();
      drawGrid();
      return performance.now() - started;
    },
  };

  start().catch(function (error) { notice(error.message || String(error)); });
})();
