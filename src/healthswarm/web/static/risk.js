// healthswarm dashboard, live risk: an opened incident's predicted next targets on the map, and an
// attack path (attacker profile → target asset) drawn as a polyline over the map's asset nodes.
// Builds on app.js (app, el, api, renderMap, showIncident, showAsset), which it wraps.
"use strict";

(() => {
  const risk = { predicted: new Set(), paths: null, suggested: false };
  const baseRenderMap = renderMap, baseShowIncident = showIncident, baseShowAsset = showAsset;

  function markPredicted() {
    document.querySelectorAll("#map circle.asset").forEach((c) => c.classList.toggle("predicted", risk.predicted.has(c.dataset.assetId)));
  }

  function drawPaths() {
    const svg = document.getElementById("map");
    svg.querySelector("#risk-layer")?.remove();
    if (!risk.paths || !risk.paths.length) return;
    const layer = el("svg:g", { id: "risk-layer" });
    risk.paths.forEach((p, n) => {
      const points = p.assets.map((a) => app.positions.get(a)).filter(Boolean);
      if (points.length < 1) return;
      if (points.length === 1) points.push(points[0]);
      layer.append(el("svg:polyline", { class: "attack-path" + (n ? " alt" : ""), "data-path": n, "data-target": p.target,
        points: points.map((q) => q.join(",")).join(" ") }, el("svg:title", { text: `p=${p.p} · ${p.states.join(" → ")}` })));
      if (!n) for (const [x, y] of points) layer.append(el("svg:circle", { class: "attack-step", cx: x, cy: y, r: 3 }));
    });
    svg.append(layer);
  }

  async function showPredicted(id) {
    let found;
    try { found = await api(`/incidents/${encodeURIComponent(id)}/predicted`); } catch (err) { return; }
    if (!app.selected || app.selected.kind !== "incident" || app.selected.id !== id) return;
    risk.predicted = new Set(found.predicted_next.map((p) => p.asset));
    markPredicted();
    const detail = document.getElementById("detail");
    detail.querySelector("#predicted")?.remove();
    const box = el("div", { id: "predicted" }, el("h4", { text: "Predicted next targets" }));
    if (!found.annotated) box.append(el("p", { class: "muted", text: "Not computed for this incident yet." }));
    else if (!found.predicted_next.length) box.append(el("p", { class: "muted", text: "Nothing within reach." }));
    else box.append(el("table", {}, el("tr", {}, ...["asset", "privilege", "p", "harm", "how"].map((h) => el("th", { text: h }))),
      ...found.predicted_next.map((p) => el("tr", { "data-asset-id": p.asset },
        ...[p.asset, p.privilege, p.probability, p.harm, p.how].map((v) => el("td", { text: v }))))));
    const timeline = detail.querySelector("h4");
    timeline ? detail.insertBefore(box, timeline) : detail.append(box);
  }

  async function findPath(event) {
    event.preventDefault();
    const from = document.getElementById("path-from").value.trim(), to = document.getElementById("path-to").value.trim();
    const status = document.getElementById("path-status");
    status.textContent = "searching…";
    try {
      const found = await api(`/risk/paths?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}&k=3`);
      risk.paths = found.paths;
      drawPaths();
      status.textContent = found.paths.length
        ? `${plural(found.paths.length, "path")}, most likely p=${found.paths[0].p} in ${plural(found.paths[0].steps, "step")} (${found.method})`
        : `no path: ${found.reason}`;
    } catch (err) {
      risk.paths = null;
      drawPaths();
      status.textContent = err.message;
    }
  }

  renderMap = function (eco) { baseRenderMap(eco); markPredicted(); drawPaths(); };
  showIncident = async function (id) { await baseShowIncident(id); await showPredicted(id); };
  showAsset = async function (id) { risk.predicted = new Set(); markPredicted(); await baseShowAsset(id); };

  // real values, not look-alike placeholders: the server suggests a question (the first open incident's foothold
  // and a crown jewel) and the choices; the placeholders only say what shape a value has
  async function suggest() {
    let found;
    try { found = await api("/risk/paths/suggested"); } catch (err) { return; }
    risk.suggested = true;
    const from = document.getElementById("path-from"), to = document.getElementById("path-to");
    const profiles = Object.keys(found.profiles);
    document.getElementById("path-from-list").replaceChildren(...profiles.flatMap((p) => [el("option", { value: p, label: found.profiles[p] }),
      ...found.organisations.map((o) => el("option", { value: `${p}@${o}` }))]));
    document.getElementById("path-to-list").replaceChildren(...found.targets.map((t) => el("option", { value: t })));
    if (!from.value && found.from) from.value = found.from;
    if (!to.value && found.to) to.value = found.to;
    document.getElementById("path-form").title = found.why;
  }

  const form = el("form", { id: "path-form", class: "path-form", on: { submit: findPath } },
    el("label", { for: "path-from" }, "Attack path from attacker "),
    el("input", { id: "path-from", list: "path-from-list", placeholder: "profile[@organisation]", required: "",
      title: "an attacker profile, optionally @organisation" }),
    el("label", { for: "path-to" }, " to asset "),
    el("input", { id: "path-to", list: "path-to-list", placeholder: "asset id", required: "", title: "the target asset's id" }),
    el("datalist", { id: "path-from-list" }), el("datalist", { id: "path-to-list" }),
    " ", el("button", { type: "submit" }, "Draw"), " ",
    el("button", { type: "button", on: { click: () => { risk.paths = null; drawPaths(); document.getElementById("path-status").textContent = ""; } } }, "Clear"),
    " ", el("span", { id: "path-status", class: "muted", "aria-live": "polite" }));
  document.getElementById("map").before(form);
  const baseRefresh = refresh;
  refresh = async function () { await baseRefresh(); if (!risk.suggested) await suggest(); };
})();
