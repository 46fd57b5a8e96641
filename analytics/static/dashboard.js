// mailpulse dashboard: reads the token from location.hash (#token=...), polls /api/* with it and draws with
// the plotly.js served by mailpulse itself. Each chart gets data-points="N" once it has drawn N points.
"use strict";

(() => {
  const RANGES = { "1h": 3600e3, "24h": 86400e3, "7d": 7 * 86400e3 };
  const STATUS_COLORS = {
    SCHEDULED: "#cbd5e1", QUEUED: "#94a3b8", SENT: "#60a5fa", DELIVERED: "#16a34a", OPENED: "#14b8a6",
    CLICK: "#8b5cf6", UNDELIVERED: "#f59e0b", FAILED: "#dc2626", CANCELED: "#a8a29e", INBOUND: "#a855f7",
    DEFERRED: "#fb923c", BLOCKED: "#b45309", SPAMREPORT: "#be123c", UNSUBSCRIBE: "#64748b",
  };
  const STATUS_ORDER = Object.keys(STATUS_COLORS);
  const METRIC_COLORS = { failure_rate: "#dc2626", bounce_rate: "#f59e0b" };
  // Alert rule metrics -> the rate of schemas/outcomes.py they watch (the API's "rates" keys).
  const METRIC_RATES = { failure_rate: "failure", bounce_rate: "bounced" };
  const OUTCOME_CLASSES = ["delivered", "bounced", "failed", "canceled"];
  // Deliverability signal rates (schemas/outcomes.py) -> the count each divides.
  const SIGNALS = { spam: "spam_reported", unsubscribe: "unsubscribed", block: "blocked", deferral: "deferred" };
  const meta = (name, fallback) => {
    const value = Number(document.querySelector(`meta[name="${name}"]`)?.content);
    return Number.isFinite(value) && value > 0 ? value : fallback;
  };
  const REFRESH_MS = meta("mailpulse-refresh-s", 10) * 1000;
  const WORST_MIN_VOLUME = meta("mailpulse-worst-min-volume", 10);

  const hash = new URLSearchParams(location.hash.slice(1));
  const token = hash.get("token") || "";
  let range = RANGES[hash.get("range")] ? hash.get("range") : "24h";
  // #from=...&to=... (ISO-8601) pins the page to that range instead of one ending now.
  const pinned = hash.get("from") && hash.get("to") ? { from: hash.get("from"), to: hash.get("to") } : null;
  let timer = null;
  let inFlight = false;

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function api(path, params) {
    const url = new URL(path, location.origin);
    for (const [key, value] of Object.entries(params)) url.searchParams.set(key, String(value));
    const response = await fetch(url, { headers: { Authorization: `Bearer ${token}` }, cache: "no-store" });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      const detail = body.error || (body.errors || []).join("; ") || response.statusText;
      throw new ApiError(response.status, `${path}: ${response.status} ${detail}`);
    }
    return body;
  }

  // --- formatting -------------------------------------------------------------------------------------
  const { duration, rate: pct, int } = MailpulseFormat;
  // Plotly reads tags (<b>, <br>, <a href>) and entities in labels; keys (domains, tags) come from mail,
  // so they are escaped to show as typed. Everything outside charts is set with textContent.
  const plotlyText = (s) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  // plotly.js ignores time zones in date strings: hand it local wall-clock time.
  function local(iso) {
    const d = new Date(iso);
    const p = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  }
  function localShort(iso) { return local(iso).slice(5, 16); }

  // --- plotting ---------------------------------------------------------------------------------------
  function theme() {
    const css = getComputedStyle(document.documentElement);
    const v = (name) => css.getPropertyValue(name).trim();
    return { fg: v("--fg"), muted: v("--muted"), grid: v("--grid"), line: v("--line"), panel: v("--panel") };
  }

  function layout(extra) {
    const t = theme();
    return {
      margin: { l: 56, r: 16, t: 8, b: 40 },
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
      font: { family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 12, color: t.fg },
      xaxis: { gridcolor: t.grid, linecolor: t.line, zeroline: false },
      yaxis: { gridcolor: t.grid, linecolor: t.line, zeroline: false, rangemode: "tozero" },
      legend: { orientation: "h", y: -0.18, font: { color: t.muted } },
      hovermode: "x unified",
      ...extra,
    };
  }

  const CONFIG = { displayModeBar: false, responsive: true };

  async function draw(id, traces, lay, points) {
    const el = document.getElementById(id);
    if (points === 0) {
      await Plotly.purge(el);
      el.innerHTML = '<div class="empty">no data in this range</div>';
    } else {
      if (el.querySelector(".empty")) el.innerHTML = "";
      await Plotly.react(el, traces, lay, CONFIG);
    }
    el.dataset.points = String(points);
  }

  function statusesOf(points) {
    const seen = new Set();
    for (const p of points) for (const [s, n] of Object.entries(p.volumes)) if (n > 0) seen.add(s);
    const known = STATUS_ORDER.filter((s) => seen.has(s));
    return known.concat([...seen].filter((s) => !STATUS_ORDER.includes(s)).sort());
  }

  function drawVolume(ts) {
    const x = ts.points.map((p) => local(p.t));
    const traces = statusesOf(ts.points).map((status) => ({
      type: "bar", name: status, x, y: ts.points.map((p) => p.volumes[status] || 0),
      marker: { color: STATUS_COLORS[status] || "#9ca3af" },
    }));
    const lay = layout({ barmode: "stack", bargap: 0.15 });
    lay.legend = { ...lay.legend, traceorder: "normal" };
    return draw("chart-volume", traces, lay, ts.points.length);
  }

  // Only buckets with data come back: break a line where buckets are missing instead of drawing across.
  function gapped(points, bucketS, value) {
    const x = [], y = [];
    let previous = null;
    for (const p of points) {
      const t = Date.parse(p.t);
      if (previous !== null && t - previous > bucketS * 1000) {
        x.push(local(new Date(previous + bucketS * 1000).toISOString()));
        y.push(null);
      }
      x.push(local(p.t));
      y.push(value(p));
      previous = t;
    }
    return { x, y };
  }

  function drawRates(ts, rules) {
    const traces = ["failure_rate", "bounce_rate"].map((metric) => ({
      type: "scatter", mode: "lines+markers", name: metric.replace("_", " "), connectgaps: false,
      ...gapped(ts.points, ts.bucket_s, (p) => {
        const value = p.rates[METRIC_RATES[metric]];
        return value === null ? null : value * 100;
      }),
      line: { color: METRIC_COLORS[metric], width: 2, shape: "linear" }, marker: { size: 4 },
      hovertemplate: "%{y:.2f}%",
    }));
    const thresholds = rules.filter((r) => METRIC_COLORS[r.metric]);
    const shapes = thresholds.map((r) => ({
      type: "line", xref: "paper", x0: 0, x1: 1, y0: r.threshold * 100, y1: r.threshold * 100,
      line: { color: METRIC_COLORS[r.metric], width: 1.5, dash: "dash" },
    }));
    const annotations = thresholds.map((r) => ({
      xref: "paper", x: 1, xanchor: "right", y: r.threshold * 100, yanchor: "bottom", showarrow: false,
      text: plotlyText(`${r.name}${r.by ? ` by ${r.by}` : ""} > ${pct(r.threshold, 0)}`),
      font: { size: 11, color: METRIC_COLORS[r.metric] }, bgcolor: theme().panel, borderpad: 2,
    }));
    const top = Math.max(
      1, ...thresholds.map((r) => r.threshold * 100),
      ...traces.flatMap((t) => t.y.filter((y) => y !== null)),
    );
    const lay = layout({ shapes, annotations });
    lay.yaxis = { ...lay.yaxis, ticksuffix: "%", range: [0, top * 1.15] };
    const points = ts.points.filter((p) => p.messages > 0).length;
    return draw("chart-rates", traces, lay, points);
  }

  function drawFunnel(funnel) {
    const steps = funnel.steps;
    document.getElementById("funnel-rule").textContent = funnel.rule;
    const list = document.getElementById("funnel-steps");
    list.replaceChildren(...steps.map((s) => {
      const item = document.createElement("li");
      const count = document.createElement("span");
      count.id = `funnel-${s.stage}`;
      count.dataset.value = String(s.messages);
      count.textContent = int(s.messages);
      item.append(`${s.stage} `, count);
      return item;
    }));
    const trace = {
      type: "funnel", y: steps.map((s) => s.stage), x: steps.map((s) => s.messages),
      textinfo: "value+percent initial",
      marker: { color: steps.map((s) => STATUS_COLORS[s.stage] || STATUS_COLORS.CLICK) },
      connector: { fillcolor: theme().grid, line: { width: 0 } },
    };
    const lay = layout({ margin: { l: 96, r: 16, t: 8, b: 24 }, hovermode: "closest" });
    const points = steps.some((s) => s.messages > 0) ? steps.length : 0;
    return draw("chart-funnel", [trace], lay, points);
  }

  function drawLatency(latency) {
    const estimator = document.getElementById("latency-estimator");
    estimator.textContent = `p50 · p95 · p99, ${latency.estimator.split(" (")[0]}`;
    estimator.title = latency.estimator;
    const colors = { p50: "#2563eb", p95: "#9333ea", p99: "#db2777" };
    const traces = ["p50", "p95", "p99"].map((q) => ({
      type: "scatter", mode: "lines+markers", name: q, line: { color: colors[q], width: 2 },
      marker: { size: 4 }, connectgaps: false,
      ...gapped(latency.points, latency.bucket_s, (p) => {
        const ms = p.time_to_deliver_ms[q];
        return ms === null ? null : ms / 1000;
      }),
      hovertemplate: "%{y:.2f} s",
    }));
    const lay = layout();
    lay.yaxis = { ...lay.yaxis, ticksuffix: " s" };
    const points = latency.points.filter((p) => p.time_to_deliver_ms.count > 0).length;
    return draw("chart-latency", traces, lay, points);
  }

  function drawWorst(breakdown) {
    const rows = breakdown.rows.filter((r) => r.rates.failure !== null);
    const trace = {
      type: "bar", orientation: "h", y: rows.map((r) => plotlyText(r.key || "(none)")),
      x: rows.map((r) => r.rates.failure * 100), marker: { color: "#dc2626" },
      text: rows.map((r) => `${pct(r.rates.failure)} of ${int(r.messages)}`), textposition: "outside",
      cliponaxis: false,
      hovertemplate: "%{y}: %{x:.2f}%<extra></extra>",
    };
    const lay = layout({ margin: { l: 140, r: 16, t: 8, b: 32 }, hovermode: "closest" });
    lay.yaxis = { ...lay.yaxis, autorange: "reversed", automargin: true };
    const widest = Math.max(1, ...rows.map((r) => r.rates.failure * 100));
    lay.xaxis = { ...lay.xaxis, ticksuffix: "%", range: [0, widest * 1.3] };
    document.getElementById("worst-note").textContent =
      `by failure rate (bounced + failed), at least ${int(WORST_MIN_VOLUME)} with an outcome`;
    return draw("chart-worst", [trace], lay, rows.length);
  }

  function drawSpam(ts, rules) {
    const color = "#dc2626";
    const trace = {
      type: "scatter", mode: "lines+markers", name: "spam rate", connectgaps: false,
      ...gapped(ts.points, ts.bucket_s, (p) => (p.rates.spam === null ? null : p.rates.spam * 100)),
      line: { color, width: 2 }, marker: { size: 4 }, hovertemplate: "%{y:.3f}%",
    };
    const thresholds = rules.filter((r) => r.metric === "spam_rate");
    const shapes = thresholds.map((r) => ({
      type: "line", xref: "paper", x0: 0, x1: 1, y0: r.threshold * 100, y1: r.threshold * 100,
      line: { color, width: 1.5, dash: "dash" },
    }));
    const annotations = thresholds.map((r) => ({
      xref: "paper", x: 1, xanchor: "right", y: r.threshold * 100, yanchor: "bottom", showarrow: false,
      text: plotlyText(`${r.name}${r.by ? ` by ${r.by}` : ""} > ${pct(r.threshold, 1)}`),
      font: { size: 11, color }, bgcolor: theme().panel, borderpad: 2,
    }));
    const top = Math.max(0.1, ...thresholds.map((r) => r.threshold * 100), ...trace.y.filter((y) => y !== null));
    const lay = layout({ shapes, annotations });
    lay.yaxis = { ...lay.yaxis, ticksuffix: "%", range: [0, top * 1.15] };
    return draw("chart-spam", [trace], lay, ts.points.filter((p) => p.rates.spam !== null).length);
  }

  // One row per mailbox provider; each cell keeps the exact rate in data-value.
  function drawProviders(breakdown) {
    const body = document.querySelector("#providers tbody");
    body.replaceChildren();
    for (const r of breakdown.rows) {
      const row = body.insertRow();
      const cells = [
        [r.key, undefined], [int(r.messages), r.messages], [pct(r.rates.delivered), r.rates.delivered],
        [pct(r.rates.bounced), r.rates.bounced], [pct(r.rates.block), r.rates.block],
        [pct(r.rates.spam, 3), r.rates.spam], [pct(r.rates.deferral), r.rates.deferral],
      ];
      const names = ["key", "messages", "delivered", "bounced", "block", "spam", "deferral"];
      cells.forEach(([text, value], i) => {
        const cell = row.insertCell();
        cell.textContent = text;
        cell.id = `provider-${r.key}-${names[i]}`;
        if (value !== undefined) cell.dataset.value = JSON.stringify(value);
      });
    }
    document.getElementById("providers").dataset.points = String(breakdown.rows.length);
  }

  function drawClasses(breakdown) {
    const rows = breakdown.rows.filter((r) => r.counts.bounced > 0);
    const trace = {
      type: "bar", orientation: "h", y: rows.map((r) => plotlyText(r.key || "(none given)")),
      x: rows.map((r) => r.counts.bounced), marker: { color: "#f59e0b" },
      text: rows.map((r) => `${int(r.counts.bounced)} (${int(r.counts.blocked)} blocked)`),
      textposition: "outside", cliponaxis: false, hovertemplate: "%{y}: %{x}<extra></extra>",
    };
    const lay = layout({ margin: { l: 160, r: 16, t: 8, b: 32 }, hovermode: "closest" });
    lay.yaxis = { ...lay.yaxis, autorange: "reversed", automargin: true };
    lay.xaxis = { ...lay.xaxis, range: [0, Math.max(1, ...trace.x) * 1.4] };
    const el = document.getElementById("chart-classes");
    el.dataset.bounced = JSON.stringify(Object.fromEntries(rows.map((r) => [r.key, r.counts.bounced])));
    return draw("chart-classes", [trace], lay, rows.length);
  }

  // Each figure's element shows it formatted and keeps the exact value the API gave in data-value.
  function drawCards(s) {
    const set = (id, text, value) => {
      const el = document.getElementById(id);
      el.textContent = text;
      if (value !== undefined) el.dataset.value = JSON.stringify(value);
    };
    set("h-messages", int(s.messages), s.messages);
    set("h-messages-sub", `+ ${int(s.pending)} pending (no outcome yet)`);
    for (const name of OUTCOME_CLASSES) {
      set(`h-${name}`, pct(s.rates[name]), s.rates[name]);
      set(`h-${name}-n`, int(s.counts[name]), s.counts[name]);
    }
    set("h-opened", pct(s.rates.opened), s.rates.opened);
    set("h-opened-n", int(s.counts.opened), s.counts.opened);
    for (const [name, count] of Object.entries(SIGNALS)) {
      set(`h-${name}`, pct(s.rates[name], name === "spam" ? 3 : 2), s.rates[name]);
      set(`h-${name}-n`, int(s.counts[count]), s.counts[count]);
    }
    const ttd = s.time_to_deliver_ms;
    set("h-ttd", duration(ttd.p50));
    set("h-ttd-sub", `p50 · p95 ${duration(ttd.p95)} · p99 ${duration(ttd.p99)}`);
  }

  function drawAlerts(alerts) {
    const note = alerts.rules
      .map((r) => `${r.name}: ${r.metric.replace("_", " ")} > ${pct(r.threshold, r.threshold < 0.01 ? 1 : 0)}`
        + ` over ${r.window_s} s`
        + `${r.by ? ` by ${r.by}` : ""}, min ${r.min_volume}`)
      .join(" · ");
    document.getElementById("rules-note").textContent = note;
    const body = document.querySelector("#alerts tbody");
    body.replaceChildren();
    if (alerts.events.length === 0) {
      const row = body.insertRow();
      const cell = row.insertCell();
      cell.colSpan = 7;
      cell.className = "empty";
      cell.textContent = "no alerts in this range";
      return;
    }
    for (const e of alerts.events) {
      const row = body.insertRow();
      const badge = document.createElement("span");
      badge.className = `state ${e.state}`;
      badge.textContent = e.state;
      const cells = [local(e.at), e.rule, e.dimension ? `${e.dimension}=${e.key}` : "all mail", badge,
        pct(e.value, e.threshold < 0.01 ? 3 : 2), pct(e.threshold, e.threshold < 0.01 ? 1 : 0), int(e.volume)];
      for (const value of cells) {
        const cell = row.insertCell();
        if (value instanceof Node) cell.append(value); else cell.textContent = value;
      }
    }
  }

  // --- refresh loop -----------------------------------------------------------------------------------
  function showError(message) {
    const banner = document.getElementById("banner");
    banner.hidden = message === null;
    banner.textContent = message || "";
  }

  async function refresh() {
    if (inFlight) return;
    inFlight = true;
    const updated = document.getElementById("updated");
    const to = pinned ? new Date(pinned.to) : new Date();
    const q = pinned || { from: new Date(to - RANGES[range]).toISOString(), to: to.toISOString() };
    try {
      const all = { limit: 1000, min_volume: 1 };
      const [summary, ts, latency, worst, funnel, alerts, providers, classes] = await Promise.all([
        api("/api/summary", q),
        api("/api/timeseries", q),
        api("/api/latency", q),
        api("/api/breakdown", {
          ...q, by: "recipient_domain", order: "failure", limit: 10, min_volume: WORST_MIN_VOLUME,
        }),
        api("/api/funnel", q),
        api("/api/alerts", { ...q, limit: 50 }),
        api("/api/breakdown", { ...q, ...all, by: "mailbox_provider", order: "messages" }),
        api("/api/breakdown", { ...q, ...all, by: "bounce_classification", order: "bounced" }),
      ]);
      drawCards(summary);
      drawAlerts(alerts);
      drawProviders(providers);
      await Promise.all([
        drawVolume(ts), drawRates(ts, alerts.rules), drawFunnel(funnel), drawLatency(latency), drawWorst(worst),
        drawClasses(classes), drawSpam(ts, alerts.rules),
      ]);
      showError(null);
      updated.dataset.state = "ok";
      updated.textContent = `updated ${to.toLocaleTimeString()} · ${localShort(summary.from)} → ${localShort(summary.to)}`;
    } catch (err) {
      const hint = err.status === 401 || err.status === 503
        ? " — open the URL `mailpulse dashboard` printed (…/dashboard#token=…)" : "";
      showError(`${err.message}${hint}`);
      updated.dataset.state = "error";
      updated.textContent = "not updated";
    } finally {
      inFlight = false;
    }
  }

  function selectRange(next) {
    range = next;
    hash.set("range", range);
    history.replaceState(null, "", `#${hash.toString()}`);
    for (const b of document.querySelectorAll("#ranges button")) {
      b.setAttribute("aria-pressed", String(b.dataset.range === range));
    }
    refresh();
  }

  function schedule() {
    clearInterval(timer);
    timer = document.getElementById("live").checked && !pinned ? setInterval(refresh, REFRESH_MS) : null;
  }

  for (const b of document.querySelectorAll("#ranges button")) {
    b.addEventListener("click", () => selectRange(b.dataset.range));
  }
  document.getElementById("live").addEventListener("change", schedule);
  if (!token) showError("no token: open the URL `mailpulse dashboard` printed (…/dashboard#token=…)");
  selectRange(range);
  schedule();
})();
