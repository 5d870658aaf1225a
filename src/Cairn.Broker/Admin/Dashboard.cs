namespace Cairn.Broker.Admin;

/// <summary>
/// The dashboard at GET /: one static page with a little script that polls the JSON API (topics, groups, each
/// group's lag history) and draws the lag charts as inline SVG. No build step, no external assets.
/// </summary>
internal static class Dashboard
{
    public const string ContentSecurityPolicy =
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

    public const string Html = """
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Cairn broker</title>
<style>
  :root { --fg:#1d2329; --muted:#66717c; --line:#dde3e8; --bg:#f6f8fa; --card:#fff; --accent:#2f6fde; --warn:#c2410c; --ok:#15803d; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
  header { display: flex; align-items: baseline; gap: 16px; padding: 14px 24px; background: #14202b; color: #eef3f7; }
  header h1 { margin: 0; font-size: 18px; letter-spacing: .3px; }
  header .meta { color: #a9b6c2; font-size: 12px; }
  header .status { margin-left: auto; font-size: 12px; color: #a9b6c2; }
  main { padding: 18px 24px 40px; max-width: 1280px; }
  h2 { font-size: 15px; margin: 22px 0 10px; }
  .card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; margin-bottom: 12px; }
  table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
  th, td { text-align: left; padding: 4px 10px 4px 0; border-bottom: 1px solid var(--line); white-space: nowrap; }
  th { color: var(--muted); font-weight: 600; font-size: 12px; }
  td.num, th.num { text-align: right; padding-right: 14px; }
  tr:last-child td { border-bottom: 0; }
  tr.offline td { color: var(--warn); } tr.offline td:last-child { white-space: normal; }
  .group-head { display: flex; flex-wrap: wrap; align-items: baseline; gap: 18px; margin-bottom: 8px; }
  .group-head .name { font-weight: 700; font-size: 15px; }
  .pill { font-size: 11px; padding: 1px 8px; border-radius: 10px; background: #e8eef5; color: #334; }
  .pill.Stable { background: #dcfce7; color: #14532d; } .pill.Empty { background: #eef2f6; color: #475569; }
  .pill.PreparingRebalance, .pill.CompletingRebalance { background: #fef3c7; color: #78350f; }
  .big { font-size: 22px; font-weight: 700; font-variant-numeric: tabular-nums; }
  .big.lagging { color: var(--warn); } .big.caught-up { color: var(--ok); }
  .label { color: var(--muted); font-size: 12px; margin-right: 4px; }
  .cols { display: grid; grid-template-columns: minmax(320px, 1fr) minmax(320px, 560px); gap: 16px; align-items: start; }
  svg.chart { width: 100%; height: 150px; display: block; }
  svg.chart text { font-size: 10px; fill: var(--muted); }
  .empty { color: var(--muted); font-style: italic; }
  .error { color: #b91c1c; }
</style>
</head>
<body>
<header>
  <h1>Cairn</h1>
  <span class="meta" id="broker">connecting…</span>
  <span class="status" id="status"></span>
</header>
<main>
  <h2>Consumer groups</h2>
  <div id="groups"><div class="card empty">loading…</div></div>
  <h2>Topics</h2>
  <div class="card" id="topics"><span class="empty">loading…</span></div>
</main>
<script>
"use strict";
const params = new URLSearchParams(location.search);
const REFRESH_MS = Math.max(1000, Number(params.get("refresh") || 5000));
const HISTORY_GROUPS = 50;

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  for (const c of children) if (c != null) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}
const fmt = n => n == null ? "-" : Number(n).toLocaleString("en-US");
function bytes(n) {
  if (n == null) return "-";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"]; let i = 0; n = Number(n);
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(1)) + " " + u[i];
}
function duration(s) {
  if (s == null) return "-";
  s = Number(s);
  if (s < 1) return s === 0 ? "0 s" : s.toFixed(2) + " s";
  if (s < 120) return s.toFixed(1) + " s";
  if (s < 7200) return (s / 60).toFixed(1) + " min";
  if (s < 172800) return (s / 3600).toFixed(1) + " h";
  return (s / 86400).toFixed(1) + " d";
}
async function getJson(path) {
  const r = await fetch(path, { headers: { "Accept": "application/json" }, cache: "no-store" });
  if (!r.ok) throw new Error(path + ": HTTP " + r.status);
  return r.json();
}
const enc = encodeURIComponent;

function table(headers, rows) {
  const t = el("table");
  t.append(el("tr", null, ...headers.map(h => el("th", { class: h.num ? "num" : "", text: h.text }))));
  for (const r of rows) t.append(el("tr", null, ...r.map((c, i) => el("td", { class: headers[i].num ? "num" : "" }, c))));
  return t;
}

// The y axis' top: 2, 4, 6, 8, 10, 20, 40... (at least the value), so 0, half and top are distinct whole numbers.
function niceCeil(v) {
  if (v <= 2) return 2;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 4, 6, 8, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function ago(seconds) {
  if (seconds >= 120) return "-" + Math.round(seconds / 60) + " min";
  return "-" + Math.round(seconds) + " s";
}

// Lag over the last hour (the window the broker keeps). While the broker has sampled for less than that, the
// x axis spans what it has (at least a few sample intervals), so a young broker's chart is not a sliver at the edge.
function chart(samples, windowSeconds, intervalSeconds) {
  const NS = "http://www.w3.org/2000/svg", W = 560, H = 150, L = 46, R = 8, T = 10, B = 22;
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`); svg.setAttribute("class", "chart"); svg.setAttribute("preserveAspectRatio", "none");
  const add = (tag, attrs, text) => { const e = document.createElementNS(NS, tag); for (const k in attrs) e.setAttribute(k, attrs[k]); if (text != null) e.textContent = text; svg.append(e); return e; };
  const now = Date.now();
  const oldest = samples.length ? Date.parse(samples[0].time) : now;
  const spanSeconds = Math.min(windowSeconds, Math.max((now - oldest) / 1000 * 1.05, intervalSeconds * 5, 10));
  const from = now - spanSeconds * 1000;
  const max = niceCeil(Math.max(0, ...samples.map(s => s.lagRecords)));
  const x = t => L + (W - L - R) * (t - from) / (now - from);
  const y = v => T + (H - T - B) * (1 - v / max);
  for (const f of [0, 0.5, 1]) {
    add("line", { x1: L, x2: W - R, y1: y(max * f), y2: y(max * f), stroke: "#e5e9ee", "stroke-width": 1 });
    add("text", { x: L - 6, y: y(max * f) + 3, "text-anchor": "end" }, fmt(Math.round(max * f)));
  }
  add("text", { x: L, y: H - 6 }, ago(spanSeconds));
  add("text", { x: (L + W - R) / 2, y: H - 6, "text-anchor": "middle" }, ago(spanSeconds / 2));
  add("text", { x: W - R, y: H - 6, "text-anchor": "end" }, "now");
  const pts = samples.filter(s => Date.parse(s.time) >= from).map(s => [x(Date.parse(s.time)), y(s.lagRecords), s]);
  if (pts.length === 0) { add("text", { x: (L + W) / 2, y: H / 2, "text-anchor": "middle" }, "no samples yet"); return svg; }
  if (pts.length > 1) {
    const area = `M${pts[0][0]},${y(0)} ` + pts.map(p => `L${p[0]},${p[1]}`).join(" ") + ` L${pts[pts.length - 1][0]},${y(0)} Z`;
    add("path", { d: area, fill: "rgba(47,111,222,.12)", stroke: "none" });
    add("polyline", { points: pts.map(p => p[0] + "," + p[1]).join(" "), fill: "none", stroke: "#2f6fde", "stroke-width": 2, "vector-effect": "non-scaling-stroke", "stroke-linejoin": "round" });
  }
  const last = pts[pts.length - 1];
  const dot = add("circle", { cx: last[0], cy: last[1], r: 3.5, fill: "#2f6fde" });
  dot.append(Object.assign(document.createElementNS(NS, "title"), { textContent: `${fmt(last[2].lagRecords)} records, ${duration(last[2].lagSeconds)} behind` }));
  return svg;
}

async function renderGroups(groups) {
  const box = document.getElementById("groups");
  if (groups.length === 0) { box.replaceChildren(el("div", { class: "card empty", text: "no consumer groups yet" })); return; }
  const cards = await Promise.all(groups.map(async (g, i) => {
    const [detail, history] = await Promise.all([
      getJson("/api/v1/groups/" + enc(g.groupId)).catch(() => null),
      i < HISTORY_GROUPS ? getJson("/api/v1/groups/" + enc(g.groupId) + "/lag-history").catch(() => null) : null,
    ]);
    const lagClass = "big lag " + (g.lagRecords > 0 ? "lagging" : "caught-up");
    const head = el("div", { class: "group-head" },
      el("span", { class: "name", text: g.groupId }),
      el("span", { class: "pill " + g.state, text: g.state }),
      el("span", null, el("span", { class: "label", text: "lag" }),
        el("span", { class: lagClass, "data-lag": String(g.lagRecords), text: fmt(g.lagRecords) }), " records"),
      el("span", null, el("span", { class: "label", text: "oldest unconsumed" }), el("b", { class: "lag-seconds", text: duration(g.lagSeconds) })),
      el("span", null, el("span", { class: "label", text: "members" }), String(g.members)));
    const parts = detail ? table(
      [{ text: "topic" }, { text: "partition", num: 1 }, { text: "committed", num: 1 }, { text: "log end", num: 1 }, { text: "lag", num: 1 }, { text: "lag time", num: 1 }],
      detail.partitions.map(p => [p.topic, p.partition, fmt(p.committedOffset), fmt(p.logEndOffset), fmt(p.lag), duration(p.lagSeconds)]))
      : el("span", { class: "empty", text: "no committed offsets" });
    const right = history ? el("div", { class: "lag-chart" }, el("div", { class: "label", text: `total lag (records) over the last hour, sampled every ${history.intervalSeconds} s` }),
      chart(history.samples, history.windowSeconds, history.intervalSeconds)) : el("div");
    return el("div", { class: "card group", "data-group": g.groupId }, head, el("div", { class: "cols" }, parts, right));
  }));
  box.replaceChildren(...cards);
}

function renderTopics(topics) {
  const box = document.getElementById("topics");
  if (topics.length === 0) { box.replaceChildren(el("span", { class: "empty", text: "no topics yet" })); return; }
  const rows = [];
  for (const t of topics) for (const p of t.partitions)
    rows.push([t.name, p.partition, fmt(p.logStartOffset), fmt(p.logEndOffset), fmt(p.records), bytes(p.sizeBytes),
      p.offline ? "offline: " + p.offlineReason : "online"]);
  box.replaceChildren(table([{ text: "topic" }, { text: "partition", num: 1 }, { text: "log start", num: 1 }, { text: "log end", num: 1 },
    { text: "records", num: 1 }, { text: "size", num: 1 }, { text: "status" }], rows));
  box.querySelectorAll("tr").forEach((tr, i) => {
    if (i === 0) return;
    tr.setAttribute("data-topic", rows[i - 1][0]);
    if (rows[i - 1][6] !== "online") tr.setAttribute("class", "offline");
  });
}

async function refresh() {
  const status = document.getElementById("status");
  try {
    const [broker, topics, groups] = await Promise.all([getJson("/api/v1/broker"), getJson("/api/v1/topics"), getJson("/api/v1/groups")]);
    document.getElementById("broker").textContent = `cluster ${broker.clusterId} · node ${broker.nodeId} · Kafka on ${broker.advertised} · v${broker.version}`;
    await renderGroups(groups.groups);
    renderTopics(topics.topics);
    status.className = "status"; status.textContent = "updated " + new Date().toLocaleTimeString("en-GB");
    document.body.setAttribute("data-loaded", "true");
  } catch (e) {
    status.className = "status error"; status.textContent = "refresh failed: " + e.message;
  }
}
refresh();
setInterval(refresh, REFRESH_MS);
</script>
</body>
</html>
""";
}
