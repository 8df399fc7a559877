// healthswarm dashboard, Swarm panel: one card per organisation's node (how its peers see it, how old its
// status is), the selected node's threat field as bars with its threshold marked, its warnings with why it
// acted, and the assets whose risk the swarm raised. Uses el(), api() and app from app.js, which loads first.
"use strict";

const SWARM_RELOAD_MS = 15_000;
const SWARM_STATES = ["alive", "suspect", "dead", "left"];
const swarmState = { loaded: 0, busy: false, selected: null, status: null, risk: null };

function swarmAge(seconds) {
  if (seconds < 90) return `${Math.round(seconds)} s ago`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} days ago`;
}

// An organisation's state as the other nodes see it: the worst view held by most of them (a node's own
// status always says it is alive, so it does not vote on itself).
function swarmPeerView(name, nodes) {
  const votes = new Map();
  for (const n of nodes) for (const m of n.members) if (m.name === name && n.name !== name) votes.set(m.state, (votes.get(m.state) || 0) + 1);
  if (!votes.size) return { state: "unknown", votes: "no peer reports it" };
  const most = Math.max(...votes.values());
  const state = ["dead", "suspect", "left", "alive"].find((s) => votes.get(s) === most) || "unknown";
  return { state, votes: [...votes].map(([s, c]) => `${c} × ${s}`).join(", ") };
}

function swarmPriority(level, threshold) {
  return level >= threshold ? "high" : level >= threshold / 2 ? "elevated" : "low";
}

function swarmCard(n, nodes, now) {
  const view = swarmPeerView(n.name, nodes);
  const seconds = n.age_seconds ?? (n.written ? (Date.parse(now) - Date.parse(n.written)) / 1000 : null);
  const age = seconds === null ? "" : swarmAge(seconds);
  // the server calls a status stale when it is older than a few of the node's rounds: the node stopped or hangs,
  // and what its file says (everybody alive) is its last word, not the present
  const stale = n.stale && !n.error;
  const top = n.threat_field[0];
  const seen = SWARM_STATES.map((s) => [s, n.members.filter((m) => m.state === s).length]).filter(([, c]) => c);
  const drops = Object.values(n.dropped).reduce((a, b) => a + b, 0);
  const title = stale ? `no status from ${n.name} for ${age.replace(" ago", "")} (it rewrites it every ${n.period} s; `
    + `stale after ${n.stale_after} s) — the last views of it: ${view.votes}` : `peers see ${n.name}: ${view.votes}`;
  return el("div", { class: "node-card" + (n.error ? " broken" : "") + (stale ? " stale" : "")
    + (swarmState.selected === n.name ? " sel" : ""),
  "data-node": n.name, tabindex: 0, title,
  on: { click: () => selectNode(n.name), keydown: (e) => { if (e.key === "Enter") selectNode(n.name); } } },
  el("div", {}, stale ? el("span", { class: "state stale", text: "stale" }) : el("span", { class: "state " + view.state, text: view.state }),
    " ", el("strong", { text: n.name }), age ? el("span", { class: "age" + (stale ? " old" : ""), text: age }) : null),
  n.error ? el("div", { class: "error", text: n.error }) : el("div", { class: "muted",
    text: `sees ${seen.map(([s, c]) => `${c} ${s}`).join(" · ")} · ${plural(n.items ?? 0, "item")}` }),
  n.error ? null : el("div", { class: "muted", text: top
    ? `top ${top.key.replace(/^indicator:[^:]+:/, "")} ${top.level.toFixed(2)} · ${plural(n.actions.length, "warning")}`
    : "threat field empty" }),
  n.error ? null : el("div", { class: "muted", text: (stale ? `last status ${age}: stopped? · ` : `status ${age} · `)
    + `digest ${(n.field_digest || "—").slice(0, 8)}` + (drops ? ` · ${drops} dropped` : "") }));
}

function swarmBar(k, threshold, scale) {
  const pct = (v) => `${(100 * Math.min(v, scale) / scale).toFixed(1)}%`;
  const label = k.reporters && k.reporters.length ? k.reporters.join(", ") : `${k.organisations} organisation${k.organisations === 1 ? "" : "s"}`;
  return el("div", { class: "level-row", "data-key": k.key },
    el("div", { class: "level-key", title: k.key, text: k.key }),
    el("div", { class: "level-track", title: `level ${k.level} · elevated at ${threshold / 2} · high at ${threshold}` },
      el("div", { class: "level-fill " + swarmPriority(k.level, threshold), style: `width:${pct(k.level)}` }),
      el("div", { class: "level-mark half", style: `left:${pct(threshold / 2)}` }),
      el("div", { class: "level-mark", style: `left:${pct(threshold)}` })),
    el("div", { class: "level-value", text: k.level.toFixed(2) }),
    el("div", { class: "level-who muted", text: label }));
}

// "198.51.100.77 reported by …: priority high; first seen here … in …": the first clause as the headline, the
// retro-hunt's answer on its own line.
function swarmWarning(text) {
  const [head, ...rest] = text.split("; ");
  const priority = /priority (high|elevated)/.exec(head);
  return el("li", { class: "warning " + (priority ? priority[1] : "") }, head,
    ...rest.map((r) => el("div", { class: r.startsWith("first seen here") ? "found" : "muted", text: r })));
}

// What the analyst must read first: warnings our own data confirmed, then priority high, then elevated.
function swarmRanked(actions) {
  const rank = (a) => (a.includes("; first seen here") ? 0 : 2) + (a.includes("priority high") ? 0 : 1);
  return actions.map((a, i) => [rank(a), i, a]).sort((x, y) => x[0] - y[0] || x[1] - y[1]).map((x) => x[2]);
}

function swarmDetail(n) {
  if (!n) return [el("p", { class: "muted", text: "Click a node." })];
  if (n.error) return [el("h3", { text: n.name }), el("p", { class: "error", text: n.error })];
  const scale = Math.max(2 * n.threshold, ...n.threat_field.map((k) => k.level));
  const drops = Object.entries(n.dropped);
  return [el("h3", { class: "node-title", text: `${n.name}: what its node sees` }),
    el("p", { class: "muted", text: `${n.folder}/status.json written ${n.written ? n.written.replace("T", " ") : "—"}`
      + (n.age_seconds !== null && n.age_seconds !== undefined ? ` (${swarmAge(n.age_seconds)})` : "")
      + ` · round ${n.round ?? "—"} · ${n.addr || ""}` }),
    n.stale ? el("p", { class: "stale-note", text: `This status is older than ${n.stale_after} s (the node rewrites it every `
      + `${n.period} s): the node has stopped or hangs, and what follows is what it saw last.` }) : null,
    el("h4", { text: "Threat field (top keys)" }),
    el("div", { class: "legend" }, el("span", {}, el("i", { class: "level-fill elevated" }), `elevated ≥ ${n.threshold / 2} (dotted line)`),
      el("span", {}, el("i", { class: "level-fill high" }), `high ≥ ${n.threshold}, the threshold (solid line)`)),
    n.threat_field.length ? el("div", { class: "levels" }, ...n.threat_field.map((k) => swarmBar(k, n.threshold, scale)))
      : el("p", { class: "muted", text: "The field is empty." }),
    el("h4", { text: `Warnings (${n.actions.length})` }),
    n.actions.length ? el("ul", { class: "warnings" }, ...swarmRanked(n.actions).map(swarmWarning)) : el("p", { class: "muted", text: "None." }),
    el("h4", { text: `Risk raised (${n.risk_raised.length})` }),
    n.risk_raised.length ? el("ul", { class: "warnings" }, ...n.risk_raised.map((r) => el("li", { text: r })))
      : el("p", { class: "muted", text: "None." }),
    el("p", { class: "muted", text: "Dropped messages: " + (drops.length ? drops.map(([r, c]) => `${r} ${c}`).join(", ") : "none") })];
}

function swarmRisk(risk) {
  if (!risk.assets.length) return [el("p", { class: "muted", text: "The swarm has raised no asset's risk." })];
  return [el("table", { id: "swarm-risk-table" }, el("tr", {}, ...["asset", "factor", "why"].map((h) => el("th", { text: h }))),
    ...risk.assets.map((a) => el("tr", {}, el("td", { class: "asset", text: a.asset }), el("td", { class: "factor", text: `×${a.factor}` }),
      el("td", { text: a.why }))))];
}

function renderSwarm() {
  const { status, risk } = swarmState;
  const nodes = status.nodes;
  if (!nodes.length) {
    document.getElementById("swarm-nodes").replaceChildren(el("p", { class: "muted",
      text: "No swarm node in this workspace (run `healthswarm demo`, or a node with this workspace)." }));
  } else {
    if (!nodes.some((n) => n.name === swarmState.selected)) {
      // open on the node with the most to say: a live one first, then warnings, then the first that read fine
      const busiest = nodes.filter((n) => !n.error).sort((a, b) => a.stale - b.stale || b.actions.length - a.actions.length)[0];
      swarmState.selected = (busiest || nodes[0]).name;
    }
    document.getElementById("swarm-nodes").replaceChildren(...nodes.map((n) => swarmCard(n, nodes, status.now)));
  }
  document.getElementById("swarm-detail").replaceChildren(...swarmDetail(nodes.find((n) => n.name === swarmState.selected)).filter(Boolean));
  document.getElementById("swarm-risk").replaceChildren(...swarmRisk(risk));
}

function selectNode(name) {
  swarmState.selected = name;
  renderSwarm();
}

async function loadSwarm() {
  if (swarmState.busy) return;
  swarmState.busy = true;
  try {
    [swarmState.status, swarmState.risk] = await Promise.all([api("/swarm/status"), api("/swarm/risk")]);
    renderSwarm();
  } catch (err) {
    document.getElementById("swarm-nodes").replaceChildren(el("p", { class: "error", text: "Swarm view unavailable: " + err.message }));
  } finally {
    swarmState.loaded = Date.now();
    swarmState.busy = false;
  }
}

function mountSwarm() {
  const panel = el("section", { class: "panel wide", id: "swarm" }, el("h2", { text: "Swarm" }),
    el("div", { id: "swarm-nodes", class: "nodes" }, el("p", { class: "muted", text: "Loading…" })),
    el("div", { class: "swarm" }, el("div", { id: "swarm-detail" }),
      el("div", {}, el("h4", { text: "Assets with risk raised by the swarm" }), el("div", { id: "swarm-risk" }))));
  const main = document.getElementById("main");
  const attack = document.getElementById("attack");
  main.insertBefore(panel, attack ? attack.closest("section") : null);
}

// app.js signs in asynchronously: load once it knows the role, then reload now and then (nodes rewrite their
// status every round; the panel need not follow every round).
document.addEventListener("DOMContentLoaded", () => {
  mountSwarm();
  setInterval(() => {
    if (!app.role || document.getElementById("main").hidden) return;
    if (!swarmState.loaded || Date.now() - swarmState.loaded > SWARM_RELOAD_MS) loadSwarm();
  }, 1000);
});
