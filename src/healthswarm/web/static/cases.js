// healthswarm dashboard, Cases panel: response cases with their phase and live regulatory deadline timers
// (counting down in the browser, coloured by status); click a case for its detail. Uses el(), api() and app
// from app.js, which loads first.
"use strict";

const CASE_PHASES = ["detection-analysis", "containment", "eradication", "recovery", "post-incident"];
const CASES_RELOAD_MS = 30_000;
const caseState = { loaded: 0, offset: 0, items: [], selected: null, busy: false, msg: "" };

function caseNow() { return Date.now() + caseState.offset; }

// A duration as model.words.span words it for the CLI and the API: unsigned, the two largest units that matter
// ("40 s", "5 min", "2 h 10 min", "3 d 4 h"), so a timer here reads as the same deadline's `left` there.
function span(seconds) {
  let rest = Math.round(Math.abs(seconds));
  const d = Math.floor(rest / 86400); rest -= d * 86400;
  const h = Math.floor(rest / 3600); rest -= h * 3600;
  const m = Math.floor(rest / 60), s = rest - m * 60;
  if (d) return h ? `${d} d ${h} h` : `${d} d`;
  if (h) return m ? `${h} h ${m} min` : `${h} h`;
  return m ? `${m} min` : `${s} s`;
}

// as respond.deadlines.format_left: "6 h overdue" once the deadline has passed
function caseLeftText(ms) { return ms < 0 ? `${span(ms / 1000)} overdue` : span(ms / 1000); }

// A deadline's status and time left at the browser's (server-corrected) clock.
function caseClock(d) {
  if (d.status === "met" || !d.due) return { status: d.status, text: d.status === "met" ? "met" : d.left };
  const now = caseNow(), due = Date.parse(d.due), warn = Date.parse(d.warn_at);
  const status = now >= due ? "overdue" : now >= warn ? "warning" : "ok";
  return { status, text: caseLeftText(due - now) };
}

function caseTimer(d, label = true) {
  return el("span", { class: "timer", "data-deadline": d.id, "data-due": d.due || "", "data-warn": d.warn_at || "",
    "data-met": d.status === "met" ? "1" : "", title: `${d.article}: ${d.obligation} (to ${d.recipient})` },
  label ? el("b", { text: d.article + " " }) : null, el("span", { class: "left" }));
}

function tickCases() {
  document.querySelectorAll("#cases .timer").forEach((node) => {
    const c = caseClock({ status: node.dataset.met ? "met" : "", due: node.dataset.due, warn_at: node.dataset.warn });
    node.className = "timer " + c.status;
    node.querySelector(".left").textContent = c.text;
  });
}

function renderCases() {
  const list = document.getElementById("case-list");
  if (!caseState.items.length) { list.replaceChildren(el("p", { class: "muted", text: "No cases open." })); return; }
  list.replaceChildren(...caseState.items.map((c) => el("div", {
    class: "case-row s" + c.severity + (caseState.selected === c.id ? " sel" : ""), "data-case-id": c.id, tabindex: 0,
    on: { click: () => showCase(c.id), keydown: (e) => { if (e.key === "Enter") showCase(c.id); } } },
  el("strong", { text: c.id }), " ", el("span", { class: "phase", text: c.phase }), " ", c.title,
  el("div", { class: "muted", text: `incident ${c.incident || "—"} · owners ${c.owners.join(", ") || "—"} · version ${c.version}`
    + ` · aware since ${c.aware_at.slice(0, 16).replace("T", " ")} UTC` }),
  el("div", { class: "timers" }, ...c.deadlines.filter((d) => d.due).map((d) => caseTimer(d))),
  c.deadline_problem ? el("div", { class: "error", text: c.deadline_problem }) : null)));
  tickCases();
}

async function loadCases() {
  if (caseState.busy) return;
  caseState.busy = true;
  try {
    const page = await api("/cases?limit=500");
    caseState.offset = Date.parse(page.now) - Date.now();
    caseState.items = page.items;
    renderCases();
    const note = document.getElementById("case-note");
    const editing = note && (note.value || document.activeElement === note);  // keep what the analyst types
    if (caseState.selected && !editing) await showCase(caseState.selected);
  } finally {
    caseState.loaded = Date.now();
    caseState.busy = false;
  }
}

async function caseChange(id, path, body) {
  try {
    await api(`/cases/${encodeURIComponent(id)}/${path}`, { method: "POST",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    caseState.msg = "";
    if (path === "notes") document.getElementById("case-note").value = "";
  } catch (err) {
    caseState.msg = err.message;  // e.g. a 409: somebody changed the case meanwhile
  }
  caseState.loaded = 0;  // reload on the next tick should a periodic load be running now
  await loadCases();
}

function caseControls(c) {
  const note = el("input", { id: "case-note", placeholder: "note…", maxlength: 4000 });
  const phase = el("select", { id: "case-phase" }, ...CASE_PHASES.map((p) => el("option", { value: p, text: p })));
  phase.value = c.phase;
  return el("div", { class: "case-controls" },
    el("p", {}, note, " ", el("button", { id: "case-note-add", on: { click: () => {
      if (note.value.trim()) caseChange(c.id, "notes", { version: c.version, text: note.value });
    } } }, "Add note")),
    el("p", {}, "Move to ", phase, " ", el("button", { id: "case-phase-apply", on: { click: () =>
      caseChange(c.id, "phase", { version: c.version, phase: phase.value }) } }, "Apply")),
    el("p", { id: "case-msg", class: "error", text: caseState.msg }));
}

function caseTable(headers, rows) {
  return el("table", {}, el("tr", {}, ...headers.map((h) => el("th", { text: h }))),
    ...rows.map((r) => el("tr", {}, ...r.map((v) => el("td", { text: v ?? "" })))));
}

async function showCase(id) {
  if (caseState.selected !== id) caseState.msg = "";
  caseState.selected = id;
  document.querySelectorAll("#case-list .case-row").forEach((r) => r.classList.toggle("sel", r.dataset.caseId === id));
  const [c, audit] = await Promise.all([api("/cases/" + encodeURIComponent(id)),
    api(`/cases/${encodeURIComponent(id)}/audit`)]);
  const v = audit.verification;
  const parts = [el("h3", { class: "case-title", text: `${c.id}: ${c.title}` }),
    el("p", {}, "Phase ", el("strong", { id: "case-phase-now", text: c.phase }), ` · severity ${LEVELS[c.severity]} · version ${c.version}`
      + ` · incident ${c.incident_id || "—"} · aware since ${c.aware_at.slice(0, 19).replace("T", " ")} UTC`),
    el("p", { class: v.ok ? "muted" : "error", id: "case-chain",
      text: v.ok ? `Audit chain verified (${v.entries} entries)` : `Audit chain BROKEN at entry ${v.first_bad}: ${v.reason}` }),
    el("h4", { text: "Deadlines" }),
    el("table", {}, el("tr", {}, ...["article", "obligation", "to", "due (UTC)", "time left"].map((h) => el("th", { text: h }))),
      ...c.deadlines.map((d) => el("tr", {}, el("td", { text: d.article }), el("td", { text: d.obligation }),
        el("td", { text: d.recipient }), el("td", { text: d.due ? d.due.slice(0, 16).replace("T", " ") : "—" }),
        el("td", {}, d.due ? caseTimer(d, false) : el("span", { class: "clock " + d.status, text: d.left })))))];
  if (app.role === "analyst" || app.role === "admin") parts.push(caseControls(c));
  parts.push(el("h4", { text: `Tasks (${c.tasks.length})` }),
    caseTable(["id", "title", "owner", "status"], c.tasks.map((t) => [t.id, t.title, t.owner, t.status])),
    el("h4", { text: `Notes (${c.notes.length})` }),
    el("ul", { id: "case-notes" }, ...c.notes.map((n) => el("li", { text: `${n.at.slice(0, 19).replace("T", " ")} UTC ${n.author}: ${n.text}` }))),
    el("h4", { text: `Observables (${c.observables.length})` }),
    el("div", { class: "chips" }, ...c.observables.map((o) => el("span", { text: `${o.type}: ${o.value}` }))),
    el("h4", { text: `Evidence (${c.evidence.length})` }),
    caseTable(["kind", "reference", "description"], c.evidence.slice(0, 30).map((e) => [e.kind, e.ref, e.description])),
    el("h4", { text: `Audit log (${audit.entries.length})` }),
    caseTable(["#", "at (UTC)", "actor", "action"], audit.entries.map((e) => [e.seq, e.at.slice(0, 19).replace("T", " "), e.actor, e.action])));
  document.getElementById("case-detail").replaceChildren(...parts);
  tickCases();
}

function mountCases() {
  const panel = el("section", { class: "panel wide", id: "cases" }, el("h2", { text: "Cases" }),
    el("div", { class: "cases" }, el("div", { id: "case-list" }, el("p", { class: "muted", text: "Loading…" })),
      el("div", { id: "case-detail" }, el("p", { class: "muted", text: "Click a case." }))));
  const main = document.getElementById("main");
  const attack = document.getElementById("attack");
  main.insertBefore(panel, attack ? attack.closest("section") : null);
}

// app.js signs in asynchronously: load once it knows the role, tick the timers every second, reload now and then.
document.addEventListener("DOMContentLoaded", () => {
  mountCases();
  setInterval(() => {
    if (!app.role || document.getElementById("main").hidden) return;
    if (!caseState.loaded || Date.now() - caseState.loaded > CASES_RELOAD_MS) loadCases().catch((err) => console.warn(err));
    else tickCases();
  }, 1000);
});
