// healthswarm dashboard, Models: the workspace's trained models (`healthswarm model train`) with their model cards'
// confusion matrix and ROC curve where the card has them. The plots are fetched with the token and shown as data: URLs
// (an <img> cannot send the token; an SVG shown as an image runs nothing). Uses el(), api(), app and refresh() from app.js.
"use strict";

(() => {
  const LABELS = { "confusion.svg": "confusion matrix", "roc.svg": "ROC curve" };

  async function image(url, label) {
    const res = await fetch(url, { headers: { Authorization: "Bearer " + app.token } });
    if (!res.ok) throw new Error(`${label}: ${res.status}`);
    const data = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(await res.text());
    return el("figure", {}, el("img", { src: data, alt: label, class: "model-plot" }), el("figcaption", { class: "muted", text: label }));
  }

  async function card(m) {
    const figures = await Promise.all(Object.entries(m.plots).filter(([, url]) => url).map(([name, url]) => image(url, LABELS[name] || name)));
    const missing = Object.entries(m.plots).filter(([, url]) => !url).map(([name]) => LABELS[name] || name);
    const metrics = Object.entries(m.metrics).slice(0, 6).map(([k, v]) => `${k} ${typeof v === "number" ? +v.toFixed(4) : v}`).join(" · ");
    return el("div", { class: "model-card", "data-model": m.name },
      el("h3", { text: `${m.name} (${m.kind})` }),
      el("p", { class: "muted", text: [m.status === "ok" ? `trained ${m.created.replace("T", " ").slice(0, 16)} UTC` : `cannot be loaded: ${m.status}`,
        metrics].filter(Boolean).join(" — ") }),
      el("div", { class: "model-plots" }, ...figures),
      missing.length ? el("p", { class: "muted", text: `no ${missing.join(" or ")} in this model's folder` }) : null);
  }

  async function load() {
    const box = document.getElementById("models");
    try {
      const models = await api("/models");
      if (!models.length) { box.replaceChildren(el("p", { class: "muted", text: "No trained models in this workspace (healthswarm model train)." })); return; }
      box.replaceChildren(...await Promise.all(models.map(card)));
    } catch (err) { box.replaceChildren(el("p", { class: "error", text: "Models unavailable: " + err.message })); }
  }

  const panel = el("section", { class: "panel wide", id: "models-panel" }, el("h2", { text: "Models" }), el("div", { id: "models" }));
  document.getElementById("main").append(panel);
  const baseRefresh = refresh;
  refresh = async function () { await Promise.all([baseRefresh(), load()]); };
})();
