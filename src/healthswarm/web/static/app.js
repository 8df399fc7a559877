// healthswarm dashboard: vanilla JavaScript and SVG over /api/v1, live through server-sent events.
"use strict";

const STAGES = ["reconnaissance", "initial-access", "execution", "lateral-movement", "objectives"];
const LEVELS = ["informational", "low", "medium", "high", "critical"];
const SEV_COLOURS = ["#8a96a3", "#3fa34d", "#d6b000", "#f07a1a", "#e5383b"];
const STATES = ["new", "triaged", "contained", "eradicated", "recovered", "closed", "false-positive"];
const SVG = "http://www.w3.org/2000/svg";
const app = { token: null, role: null, positions: new Map(), deps: [], selected: null, source: null };

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
  listen();
}

async function refresh() {
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
  app.source.addEventListener("hello", () => { live.textContent = "live"; live.className = "live on"; });
  app.source.addEventListener("change", () => refresh());
  app.source.onerror = () => { live.textContent = "reconnecting"; live.className = "live off"; };
}

function renderCounts(s) {
  const box = document.getElementById("counts");
  box.replaceChildren(
    el("span", { text: `${s.open_incidents} open incidents` }),
    el("span", { text: `${s.open_by_severity.critical} critical` }),
    el("span", { text: `${s.alerts} alerts, ${s.alerts_in_incidents} of them in ${s.incidents} incidents`,
      title: "stored alerts (each once); an incident's count is the stored alerts it holds" }),
    el("span", { text: `${s.assets} assets · ${s.findings} findings` }));
}

function fit(text, width, charWidth) {
  const most = Math.max(4, Math.floor(width / charWidth));
  return text.length > most ? text.slice(0, most - 1) + "…" : text;
}

function assetClass(a) { return a.incident ? "sev" + a.incident.severity : "calm"; }

function renderMap(eco) {
  const svg = document.getElementById("map");
  const orgs = eco.organisations, width = 1200, pad = 10, cell = 16;
  const colW = (width - pad * (orgs.length + 1)) / Math.max(orgs.length, 1);
  const perRow = Math.max(1, Math.floor((colW - 20) / cell));
  const zonesOf = (o) => eco.zones.filter((z) => z.organisation === o.id);
  const assetsOf = (z) => eco.assets.filter((a) => a.zone === z.id);
  const layers = { deps: el("svg:g"), boxes: el("svg:g"), nodes: el("svg:g") };
  app.positions.clear();
  let height = 0;
  orgs.forEach((o, i) => {
    const x = pad + i * (colW + pad);
    let y = 34;
    const zoneNodes = [];
    for (const z of zonesOf(o)) {
      const members = assetsOf(z);
      const rows = Math.max(1, Math.ceil(members.length / perRow));
      const h = 22 + rows * cell + 6;
      zoneNodes.push(el("svg:rect", { class: "zone", x: x + 6, y, width: colW - 12, height: h, rx: 4 }),
        el("svg:text", { x: x + 12, y: y + 14, text: fit(`${z.name} · ${z.exposure}`, colW - 24, 6) }));
      members.forEach((a, k) => {
        const cx = x + 16 + (k % perRow) * cell, cy = y + 30 + Math.floor(k / perRow) * cell;
        app.positions.set(a.id, [cx, cy]);
        const r = 4 + Math.min(a.criticality, 4);
        const title = `${a.name} (${a.kind})` + (a.incident ? ` — ${a.incident.id}: severity ${LEVELS[a.incident.severity]}, ${a.incident.stage}` : "")
          + (a.findings ? ` — ${a.findings} findings` : "");
        layers.nodes.append(el("svg:circle", { class: "asset " + assetClass(a), cx, cy, r: r * 0.9, "data-asset-id": a.id,
          on: { click: () => showAsset(a.id) } }, el("svg:title", { text: title })));
      });
      y += h + 6;
    }
    height = Math.max(height, y + pad);
    layers.boxes.append(el("svg:rect", { class: "org", x, y: 6, width: colW, height: 0, rx: 6, "data-org": o.id }),
      el("svg:text", { class: "orgname", x: x + 8, y: 24, text: fit(o.name, colW - 16, 7.5) },
        el("svg:title", { text: `${o.name} (${o.kind})` })), ...zoneNodes);
  });
  layers.boxes.querySelectorAll("rect.org").forEach((r) => r.setAttribute("height", height - 12));
  const hot = new Set(eco.assets.filter((a) => a.incident).map((a) => a.id));
  app.deps = [];
  for (const d of eco.dependencies.concat(eco.flows)) {
    const p = app.positions.get(d.source), q = app.positions.get(d.target);
    if (!p || !q) continue;
    const line = el("svg:line", { class: "dep" + (hot.has(d.source) && hot.has(d.target) ? " hot" : ""),
      x1: p[0], y1: p[1], x2: q[0], y2: q[1] }, el("svg:title", { text: `${d.source} → ${d.target} (${d.kind || d.protocol})` }));
    layers.deps.append(line);
  }
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.replaceChildren(layers.boxes, layers.deps, layers.nodes);
  const legend = document.getElementById("legend");
  legend.replaceChildren(el("span", {}, el("i", { class: "calm" }), "no open incident"),
    ...LEVELS.map((l, i) => el("span", {}, el("i", { class: "sev" + i }), l)), el("span", { text: "· size: criticality" }));
}

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
      el("span", { class: "muted", text: `${LEVELS[i.severity]} · ${i.state} · ${i.alerts} alerts` }),
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
  const detail = document.getElementById("detail");
  const parts = [el("h3", { class: "incident-title", text: `${inc.id}: ${inc.title}` }),
    el("p", {}, `Severity ${LEVELS[inc.severity]} · stage ${inc.stage} · state `, el("strong", { id: "incident-state", text: inc.state }),
      ` · ${minute(inc.first_seen)} → ${minute(inc.last_seen)} UTC (${inc.alerts} alerts)`),
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
  parts.push(el("h4", { text: "Timeline" }), el("ol", { class: "timeline" }, ...inc.timeline.map((e) =>
    el("li", {}, el("time", { text: e.timestamp.replace("T", " ").slice(0, 19) }), el("strong", { text: e.level + " " }), e.title,
      el("div", { class: "muted", text: [e.tactics.join(", "), e.assets.join(", "), e.note].filter(Boolean).join(" · ") })))));
  if (inc.history.length) parts.push(el("h4", { text: "History" }), el("ul", {}, ...inc.history.map((h) =>
    el("li", { text: `${h.timestamp.slice(0, 19)} ${h.actor} (${h.role}): ${JSON.stringify(h.before)} → ${JSON.stringify(h.after)} ${h.note}` }))));
  detail.replaceChildren(...parts.filter(Boolean));
}

async function showAsset(id) {
  app.selected = { kind: "asset", id };
  const a = await api("/assets/" + encodeURIComponent(id));
  highlight(new Set([id]));
  document.getElementById("detail").replaceChildren(
    el("h3", { text: `${a.name} (${a.kind})` }),
    el("p", { class: "muted", text: `${a.id} · ${a.organisation} / ${a.zone} · ${a.vendor} ${a.product} ${a.version}` }),
    el("p", { text: `Criticality: safety ${a.criticality.safety}, confidentiality ${a.criticality.confidentiality}, availability ${a.criticality.availability}` }),
    el("h4", { text: `Incidents (${a.incidents.length})` }),
    el("ul", {}, ...a.incidents.map((i) => el("li", {}, el("a", { href: "#", on: { click: (e) => { e.preventDefault(); showIncident(i.id); } }, text: i.id }), " " + i.title))),
    el("h4", { text: `Findings (${a.findings.length})` }),
    el("table", {}, el("tr", {}, ...["advisory", "CVE", "CVSS", "severity", "status"].map((h) => el("th", { text: h }))),
      ...a.findings.slice(0, 50).map((f) => el("tr", {}, ...[f.advisory_id, f.cve, f.cvss_score ?? "", f.severity, f.status].map((v) => el("td", { text: v }))))));
}

function renderAttack(m) {
  const box = document.getElementById("attack");
  if (!m.tactics.length) { box.replaceChildren(el("p", { class: "muted", text: "No techniques seen yet." })); return; }
  box.replaceChildren(...m.tactics.map((t) => el("div", { class: "tactic" }, el("h3", { text: t.tactic }),
    ...t.techniques.map((c) => el("div", { class: "tech", style: `--a:${(0.2 + 0.8 * c.count / m.max).toFixed(2)}`,
      title: `${c.id} ${c.name}: ${c.count} alerts` }, el("strong", { text: c.id }), " ", c.name, ` (${c.count})`)))));
}

function renderExposure(orgs) {
  const box = document.getElementById("exposure");
  const most = Math.max(1, ...orgs.map((o) => o.findings));
  const sevs = ["critical", "high", "medium", "low", "none"];
  box.replaceChildren(...orgs.map((o) => el("div", {},
    el("div", { text: `${o.name}: ${o.findings} findings on ${o.assets_affected} assets (${o.safety_critical_affected} safety-critical), worst CVSS ${o.max_cvss ?? "—"}` }),
    el("div", { class: "bar", style: `width:${(100 * o.findings / most).toFixed(1)}%` },
      ...sevs.filter((s) => o.by_severity[s]).map((s) => el("div", { class: "sev" + (4 - sevs.indexOf(s)),
        style: `width:${(100 * o.by_severity[s] / o.findings).toFixed(1)}%`, title: `${s}: ${o.by_severity[s]}` }))))));
}

document.addEventListener("DOMContentLoaded", () => { start().catch((err) => console.warn(err)); });
