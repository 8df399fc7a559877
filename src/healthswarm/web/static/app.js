// healthswarm dashboard: vanilla JavaScript and SVG over /api/v1, live through server-sent events.
"use strict";

const STAGES = ["reconnaissance", "initial-access", "execution", "lateral-movement", "objectives"];
const LEVELS = ["informational", "low", "medium", "high", "critical"];
const CRIT_LEVELS = ["none", "low", "medium", "high", "critical"];   // the inventory's criticality levels
const SEV_COLOURS = ["#8a96a3", "#3fa34d", "#d6b000", "#f07a1a", "#e5383b"];
const STATES = ["new", "triaged", "contained", "eradicated", "recovered", "closed", "false-positive"];
const SVG = "http://www.w3.org/2000/svg";
const app = { token: null, role: null, positions: new Map(), links: [], zoneBoxes: new Map(), orgBoxes: new Map(), selected: null,
  source: null, rendered: 0 };
// The live-update stream is a request that never ends: a headless `chromium --screenshot --virtual-time-budget=…`
// waits for the page to go quiet and would never take its picture. So the page first renders without it and
// opens it on the first sign of a person (pointer, key, wheel, touch) or after STREAM_DELAY_MS, whichever comes
// first (while the tab is visible); a budget under the delay (docs/api.md: 5,000 ms) sees a finished page.
const STREAM_DELAY_MS = 15_000;
const STREAM_TRIGGERS = ["pointerdown", "pointermove", "keydown", "wheel", "touchstart"];

function el(tag, attrs = {}, ...children) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "on") for (const [ev, fn] of Object.entries(v)) node.addEventListener(ev, fn);
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

async function api(path, options = {}) {
  const headers = { Authorization: "Bearer " + app.token, ...(options.headers || {}) };
  const res = await fetch("/api/v1" + path, { ...options, headers });
  const body = await res.json();
  if (!res.ok) { const err = new Error(body.detail || body.title || res.statusText); err.status = res.status; throw err; }
  return body;
}

function readToken() {
  const m = location.hash.match(/token=([^&]+)/);
  if (m) { sessionStorage.setItem("hs-token", decodeURIComponent(m[1])); history.replaceState(null, "", location.pathname); }
  return sessionStorage.getItem("hs-token");
}

async function start() {
  app.token = readToken();
  const login = document.getElementById("login");
  login.addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem("hs-token", document.getElementById("token-input").value.trim());
    start();
  });
  if (!app.token) { login.hidden = false; return; }
  try {
    const who = await api("/whoami");
    app.role = who.role;
    document.getElementById("who").textContent = who.name + " (" + who.role + ")";
  } catch (err) {
    sessionStorage.removeItem("hs-token");
    login.hidden = false;
    document.getElementById("login-error").textContent = err.message;
    return;
  }
  login.hidden = true;
  document.getElementById("main").hidden = false;
  await refresh();
  listenSoon();
}

function listenSoon() {
  if (app.source) return;
  const live = document.getElementById("live");
  live.textContent = "standby";
  live.title = `live updates start when you move or type, or within ${STREAM_DELAY_MS / 1000} s`;
  let timer = null;
  const go = () => {
    if (document.visibilityState === "hidden") return;   // visibilitychange calls again when the tab shows
    clearTimeout(timer);
    for (const t of STREAM_TRIGGERS) window.removeEventListener(t, go, true);
    document.removeEventListener("visibilitychange", later);
    if (!app.source) listen();
  };
  const later = () => { clearTimeout(timer); if (document.visibilityState !== "hidden") timer = setTimeout(go, STREAM_DELAY_MS); };
  for (const t of STREAM_TRIGGERS) window.addEventListener(t, go, { capture: true, passive: true });
  document.addEventListener("visibilitychange", later);
  later();
}

async function refresh() {
  app.rendered = Date.now();
  const [summary, eco, incidents, attack, exposure] = await Promise.all([
    api("/summary"), api("/ecosystem"), api("/incidents?limit=500"), api("/attack"), api("/exposure")]);
  renderCounts(summary);
  renderMap(eco);
  renderBoard(incidents.items);
  renderAttack(attack);
  renderExposure(exposure);
  if (app.selected) app.selected.kind === "incident" ? showIncident(app.selected.id) : showAsset(app.selected.id);
}

function listen() {
  if (app.source) app.source.close();
  const live = document.getElementById("live");
  app.source = new EventSource("/api/v1/stream?access_token=" + encodeURIComponent(app.token));
  app.source.addEventListener("hello", () => {
    live.textContent = "live"; live.className = "live on"; live.title = "live updates";
    // the stream reports changes after its start (or a reconnection): catch up on what changed before it
    if (Date.now() - app.rendered > 1000) refresh();
  });
  app.source.addEventListener("change", () => refresh());
  app.source.onerror = () => { live.textContent = "reconnecting"; live.className = "live off"; };
}

function renderCounts(s) {
  const box = document.getElementById("counts");
  box.replaceChildren(
    // the figures and words of `healthswarm status`
    el("span", { text: `${plural(s.open_incidents, "open incident")} of ${s.incidents}` }),
    el("span", { text: `${s.open_by_severity.critical} of them critical` }),
    el("span", { text: `${plural(s.alerts, "alert")}, ${s.alerts_in_incidents} of them in incidents`,
      title: "stored alerts (each once); an incident's count is the stored alerts it holds" }),
    el("span", { text: `${plural(s.assets, "asset")} · ${plural(s.findings, "finding")}` }));
}

function fit(text, width, charWidth) {
  const most = Math.max(4, Math.floor(width / charWidth));
  return text.length > most ? text.slice(0, most - 1) + "…" : text;
}

function assetClass(a) { return a.incident ? "sev" + a.incident.severity : "calm"; }

function renderMap(eco) {
  // organisations are columns, their zones boxes, assets dots. Links are bundled so the map stays readable: the
  // links between two zones of one organisation are one arc in the column's left gutter, the links between two
  // organisations one arc over the top; links whose two ends are both in open incidents stay single red lines,
  // and a selected asset's own links are drawn one by one (drawOwnLinks).
  const svg = document.getElementById("map");
  const orgs = eco.organisations, width = 1200, pad = 26, cell = 16;
  const colW = (width - pad * (orgs.length + 1)) / Math.max(orgs.length, 1);
  const perRow = Math.max(1, Math.floor((colW - 20) / cell));
  const top = orgs.length > 1 ? 26 + 14 * (orgs.length - 1) : 6;   // room for the arcs between organisations
  const zonesOf = (o) => eco.zones.filter((z) => z.organisation === o.id);
  const assetsOf = (z) => eco.assets.filter((a) => a.zone === z.id);
  const layers = { bundles: el("svg:g", { id: "bundles" }), boxes: el("svg:g"), deps: el("svg:g"), own: el("svg:g", { id: "own-links" }),
    nodes: el("svg:g") };
  app.positions.clear();
  app.zoneBoxes = new Map();
  app.orgBoxes = new Map();
  let height = 0;
  orgs.forEach((o, i) => {
    const x = pad + i * (colW + pad);
    app.orgBoxes.set(o.id, { x, i, w: colW });
    let y = top + 28;
    const zoneNodes = [];
    for (const z of zonesOf(o)) {
      const members = assetsOf(z);
      const rows = Math.max(1, Math.ceil(members.length / perRow));
      const h = 22 + rows * cell + 6;
      app.zoneBoxes.set(z.id, { x: x + 6, y, w: colW - 12, h, org: o.id, name: z.name });
      zoneNodes.push(el("svg:rect", { class: "zone", x: x + 6, y, width: colW - 12, height: h, rx: 4, "data-zone": z.id }),
        el("svg:text", { x: x + 12, y: y + 14, text: fit(`${z.name} · ${z.exposure}`, colW - 24, 6) }));
      members.forEach((a, k) => {
        const cx = x + 16 + (k % perRow) * cell, cy = y + 30 + Math.floor(k / perRow) * cell;
        app.positions.set(a.id, [cx, cy]);
        const r = 4 + Math.min(a.criticality, 4);
        const title = `${a.name} (${a.kind})` + (a.incident ? ` — ${a.incident.id}: severity ${LEVELS[a.incident.severity]}, ${a.incident.stage}` : "")
          + (a.findings ? ` — ${plural(a.findings, "finding")}` : "");
        layers.nodes.append(el("svg:circle", { class: "asset " + assetClass(a), cx, cy, r: r * 0.9, "data-asset-id": a.id,
          on: { click: () => showAsset(a.id) } }, el("svg:title", { text: title })));
      });
      y += h + 6;
    }
    height = Math.max(height, y + pad);
    layers.boxes.append(el("svg:rect", { class: "org", x, y: top, width: colW, height: 0, rx: 6, "data-org": o.id }),
      el("svg:text", { class: "orgname", x: x + 8, y: top + 18, text: fit(o.name, colW - 16, 7.5) },
        el("svg:title", { text: `${o.name} (${o.kind})` })), ...zoneNodes);
  });
  layers.boxes.querySelectorAll("rect.org").forEach((r) => r.setAttribute("height", height - top - 6));
  const hot = new Set(eco.assets.filter((a) => a.incident).map((a) => a.id));
  const where = new Map(eco.assets.map((a) => [a.id, a]));
  app.links = [];
  const bundles = new Map();
  for (const d of eco.dependencies.concat(eco.flows)) {
    const s = where.get(d.source), t = where.get(d.target);
    if (!s || !t || !app.positions.has(d.source) || !app.positions.has(d.target)) continue;
    const what = d.kind ? `dependency (${d.kind})` : `flow ${d.protocol}${d.port ? "/" + d.port : ""}`;
    const link = { source: d.source, target: d.target, what, hot: hot.has(d.source) && hot.has(d.target) };
    app.links.push(link);
    if (link.hot) {
      const p = app.positions.get(d.source), q = app.positions.get(d.target);
      layers.deps.append(el("svg:line", { class: "dep hot", x1: p[0], y1: p[1], x2: q[0], y2: q[1] },
        el("svg:title", { text: `${d.source} → ${d.target}: ${what}, both ends in open incidents` })));
    }
    // one bundle per unordered pair of zones (same organisation) or of organisations
    const kind = s.organisation === t.organisation ? (s.zone === t.zone ? "zone-inner" : "zones") : "orgs";
    const ends = kind === "orgs" ? [s.organisation, t.organisation].sort() : [s.zone, t.zone].sort();
    const key = kind + ":" + ends.join("|");
    if (!bundles.has(key)) bundles.set(key, { kind, ends, links: [], hot: 0, pairs: new Map() });
    const b = bundles.get(key);
    b.links.push(link);
    b.hot += link.hot ? 1 : 0;
    const pair = `${s.zone} → ${t.zone}`;
    b.pairs.set(pair, (b.pairs.get(pair) || 0) + 1);
  }
  const widthOf = (n) => (1 + 1.3 * Math.log2(n)).toFixed(2);
  const describe = (b, label) => `${label}: ${b.links.length} link${b.links.length === 1 ? "" : "s"}`
    + (b.hot ? ` (${b.hot} with both ends in open incidents)` : "") + " — "
    + [...b.pairs].sort((x, y) => y[1] - x[1]).slice(0, 8).map(([p, c]) => `${p} ×${c}`).join(", ")
    + (b.pairs.size > 8 ? ", …" : "") + ". Click an asset for its own links.";
  for (const b of bundles.values()) {
    if (b.kind === "zone-inner") {
      const z = app.zoneBoxes.get(b.ends[0]);
      const rect = layers.boxes.querySelector(`rect.zone[data-zone="${CSS.escape(b.ends[0])}"]`);
      if (rect) rect.append(el("svg:title", { text: describe(b, `inside ${z.name}`) }));
      continue;
    }
    let d, mid;
    if (b.kind === "zones") {
      const [a, c] = b.ends.map((z) => app.zoneBoxes.get(z));
      const y1 = a.y + a.h / 2, y2 = c.y + c.h / 2, bulge = Math.min(pad - 4, 6 + Math.abs(y2 - y1) / 10);
      d = `M${a.x} ${y1} C${a.x - bulge} ${y1} ${a.x - bulge} ${y2} ${c.x} ${y2}`;
      mid = [a.x - bulge * 0.75, (y1 + y2) / 2];
    } else {
      const [a, c] = b.ends.map((o) => app.orgBoxes.get(o));
      const x1 = a.x + a.w / 2 + (c.i - a.i) * 8, x2 = c.x + c.w / 2 + (a.i - c.i) * 8;
      const rise = 10 + 14 * Math.abs(c.i - a.i) - 6;
      d = `M${x1} ${top} C${x1} ${top - rise * 1.33} ${x2} ${top - rise * 1.33} ${x2} ${top}`;
      mid = [(x1 + x2) / 2, top - rise];
    }
    const label = b.kind === "zones" ? `${app.zoneBoxes.get(b.ends[0]).name} ↔ ${app.zoneBoxes.get(b.ends[1]).name}`
      : `${b.ends[0]} ↔ ${b.ends[1]}`;
    layers.bundles.append(el("svg:path", { class: "bundle " + b.kind + (b.hot ? " hot" : ""), d, "stroke-width": widthOf(b.links.length),
      "data-ends": b.ends.join("|"), "data-links": b.links.length }, el("svg:title", { text: describe(b, label) })));
    if (b.kind === "orgs" || b.links.length > 2) {
      layers.bundles.append(el("svg:text", { class: "bundle-count", x: mid[0], y: mid[1] + 3, "text-anchor": "middle", text: b.links.length }));
    }
  }
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.replaceChildren(layers.boxes, layers.bundles, layers.deps, layers.own, layers.nodes);
  const legend = document.getElementById("legend");
  legend.replaceChildren(el("span", {}, el("i", { class: "calm" }), "no open incident"),
    ...LEVELS.map((l, i) => el("span", {}, el("i", { class: "sev" + i }), l)), el("span", { text: "· size: criticality" }),
    el("span", { class: "muted", text: "· lines: links bundled between zones (left) and organisations (top), thicker for more; "
      + "red: both ends in open incidents; click an asset for its own links" }));
}

// The selected asset's own dependencies and flows, one line each, its partners ringed; none when `id` is null.
function drawOwnLinks(id) {
  const layer = document.getElementById("own-links");
  if (!layer) return;
  const own = id ? (app.links || []).filter((l) => l.source === id || l.target === id) : [];
  const partners = new Set(own.map((l) => (l.source === id ? l.target : l.source)));
  layer.replaceChildren(...own.map((l) => {
    const p = app.positions.get(l.source), q = app.positions.get(l.target);
    return el("svg:line", { class: "dep own" + (l.source === id ? " out" : " in"), x1: p[0], y1: p[1], x2: q[0], y2: q[1],
      "data-source": l.source, "data-target": l.target }, el("svg:title", { text: `${l.source} → ${l.target}: ${l.what}` }));
  }));
  document.querySelectorAll("#map circle.asset").forEach((c) => c.classList.toggle("partner", partners.has(c.dataset.assetId)));
  document.getElementById("map").classList.toggle("focus", Boolean(id));
}

// "1 alert", "13 alerts": a count with its noun, as the CLI words it
function plural(n, one, many = one + "s") { return `${n} ${n === 1 ? one : many}`; }

// "2026-11-27 08:05" from an ISO timestamp (UTC, as the API gives them)
function minute(iso) { return iso ? iso.replace("T", " ").slice(0, 16) : ""; }

// "execution 08:05 → lateral-movement 08:31 → objectives 09:40": the stages an incident went through
function pathText(path) { return (path || []).map((p) => `${p.stage} ${minute(p.first_seen).slice(11)}`).join(" → "); }

function renderBoard(incidents) {
  // each incident's card stands in the furthest stage its alerts reached; the stages it went through on the
  // way there hold a trail mark with the time it got there, so a chain reads across the columns
  const board = document.getElementById("board");
  board.replaceChildren(...STAGES.map((stage) => {
    const open = (i) => ({ click: () => showIncident(i.id), keydown: (e) => { if (e.key === "Enter") showIncident(i.id); } });
    const cards = incidents.filter((i) => i.stage === stage).map((i) => el("div", {
      class: "card s" + i.severity, "data-incident-id": i.id, tabindex: 0, on: open(i) },
      el("strong", { text: i.id }), el("br"), i.title, el("br"),
      el("span", { class: "muted", text: `${LEVELS[i.severity]} · ${i.state} · ${plural(i.alerts, "alert")}` }),
      (i.path || []).length > 1 ? el("div", { class: "path", text: pathText(i.path) }) : null));
    const trails = incidents.filter((i) => i.stage !== stage).flatMap((i) => (i.path || [])
      .filter((p) => p.stage === stage).map((p) => el("div", {
        class: "trail s" + i.severity, "data-trail-id": i.id, "data-stage": stage, tabindex: 0, on: open(i),
        title: `${i.id} reached ${stage} at ${minute(p.first_seen)} UTC; now at ${i.stage}` },
        `${i.id} · ${minute(p.first_seen).slice(11)} → ${i.stage}`)));
    const body = cards.concat(trails);
    return el("div", { class: "col" }, el("h3", { text: stage }), ...(body.length ? body : [el("p", { class: "muted", text: "—" })]));
  }));
}

function highlight(ids) {
  document.querySelectorAll("#map .asset").forEach((c) => c.classList.toggle("sel", ids.has(c.dataset.assetId)));
  document.querySelectorAll(".card").forEach((c) => c.classList.toggle("sel", app.selected && c.dataset.incidentId === app.selected.id));
}

async function showIncident(id) {
  app.selected = { kind: "incident", id };
  const inc = await api("/incidents/" + encodeURIComponent(id));
  highlight(new Set(inc.assets));
  drawOwnLinks(null);
  const detail = document.getElementById("detail");
  const parts = [el("h3", { class: "incident-title", text: `${inc.id}: ${inc.title}` }),
    el("p", {}, `Severity ${LEVELS[inc.severity]} · stage ${inc.stage} · state `, el("strong", { id: "incident-state", text: inc.state }),
      ` · ${minute(inc.first_seen)} → ${minute(inc.last_seen)} UTC (${plural(inc.alerts, "alert")})`),
    (inc.path || []).length ? el("p", { class: "path", text: "Kill chain: " + pathText(inc.path) }) : null,
    el("div", { class: "chips" }, "Assets: ", ...inc.assets.map((a) => el("span", { text: a }))),
    el("div", { class: "chips" }, "ATT&CK: ", ...inc.techniques.map((t) => el("span", { text: t }))),
    el("div", { class: "chips" }, "Organisations: ", ...inc.organisations.map((o) => el("span", { text: o })))];
  if (app.role === "analyst" || app.role === "admin") {
    const select = el("select", { id: "state-select" }, ...STATES.map((s) => el("option", { value: s, text: s })));
    select.value = inc.state;
    parts.push(el("p", {}, "Move to ", select, " ", el("button", { on: { click: async () => {
      await api(`/incidents/${encodeURIComponent(id)}/state`, { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ state: select.value, note: "from the dashboard" }) });
      await refresh();
    } } }, "Apply")));
  }
  parts.push(el("h4", { text: "Timeline (UTC)" }), el("ol", { class: "timeline" }, ...inc.timeline.map((e) =>
    el("li", {}, el("time", { text: e.timestamp.replace("T", " ").slice(0, 19) }), el("strong", { text: e.level + " " }), e.title,
      el("div", { class: "muted", text: [e.tactics.join(", "), e.assets.join(", "), e.note].filter(Boolean).join(" · ") })))));
  if (inc.history.length) parts.push(el("h4", { text: "History" }), el("ul", {}, ...inc.history.map((h) =>
    el("li", { text: `${h.timestamp.replace("T", " ").slice(0, 19)} UTC ${h.actor} (${h.role}): ${JSON.stringify(h.before)} → ${JSON.stringify(h.after)} ${h.note}` }))));
  detail.replaceChildren(...parts.filter(Boolean));
}

async function showAsset(id) {
  app.selected = { kind: "asset", id };
  const a = await api("/assets/" + encodeURIComponent(id));
  highlight(new Set([id]));
  drawOwnLinks(id);
  document.getElementById("detail").replaceChildren(
    el("h3", { text: `${a.name} (${a.kind})` }),
    el("p", { class: "muted", text: `${a.id} · ${a.organisation} / ${a.zone} · ${a.vendor} ${a.product} ${a.version}` }),
    el("p", { class: "criticality" }, "Criticality: ", ...["safety", "confidentiality", "availability"].flatMap((k, n) => [n ? ", " : "",
      `${k} `, el("span", { class: "level l" + a.criticality[k], "data-dimension": k,
        text: (a.criticality_levels || {})[k] || CRIT_LEVELS[a.criticality[k]] || a.criticality[k] })])),
    el("h4", { text: `Incidents (${a.incidents.length})` }),
    el("ul", { class: "asset-incidents" }, ...a.incidents.map((i) => el("li", {}, el("a", { href: "#", class: "incident-link",
      on: { click: (e) => { e.preventDefault(); showIncident(i.id); } }, text: i.id }), " " + i.title))),
    el("h4", { text: `Findings (${a.findings.length})` }),
    el("table", {}, el("tr", {}, ...["advisory", "CVE", "CVSS", "severity", "status"].map((h) => el("th", { text: h }))),
      ...a.findings.slice(0, 50).map((f) => el("tr", {}, ...[f.advisory_id, f.cve, f.cvss_score ?? "", f.severity, f.status].map((v) => el("td", { text: v }))))));
}

function renderAttack(m) {
  const box = document.getElementById("attack");
  // alerts naming a technique but no tactic have no column; the map says how many it leaves out
  const apart = m.without_tactic ? [el("p", { class: "muted", style: "grid-column:1/-1;margin:0",
    text: `${plural(m.without_tactic, "alert")} with an ATT&CK technique but no tactic, not on the map.` })] : [];
  if (!m.tactics.length) {
    box.replaceChildren(...(apart.length ? apart : [el("p", { class: "muted", text: "No techniques seen yet." })]));
    return;
  }
  box.replaceChildren(...m.tactics.map((t) => el("div", { class: "tactic" }, el("h3", { text: t.tactic }),
    ...t.techniques.map((c) => el("div", { class: "tech", style: `--a:${(0.2 + 0.8 * c.count / m.max).toFixed(2)}`,
      title: `${c.id} ${c.name}: ${plural(c.count, "alert")}` }, el("strong", { text: c.id }), " ", c.name, ` (${c.count})`)))), ...apart);
}

function renderExposure(orgs) {
  const box = document.getElementById("exposure");
  const most = Math.max(1, ...orgs.map((o) => o.findings));
  const sevs = ["critical", "high", "medium", "low", "none"];
  box.replaceChildren(...orgs.map((o) => el("div", {},
    el("div", { text: `${o.name}: ${plural(o.findings, "finding")} on ${plural(o.assets_affected, "asset")} (${o.safety_critical_affected} safety-critical), worst CVSS ${o.max_cvss ?? "—"}` }),
    el("div", { class: "bar", style: `width:${(100 * o.findings / most).toFixed(1)}%` },
      ...sevs.filter((s) => o.by_severity[s]).map((s) => el("div", { class: "sev" + (4 - sevs.indexOf(s)),
        style: `width:${(100 * o.by_severity[s] / o.findings).toFixed(1)}%`, title: `${s}: ${o.by_severity[s]}` }))))));
}

document.addEventListener("DOMContentLoaded", () => { start().catch((err) => console.warn(err)); });
