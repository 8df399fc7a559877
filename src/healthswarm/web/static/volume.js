// healthswarm dashboard, Alert volume: stored alerts per detector over time, one row per detector and one cell per
// time bucket, shaded by count (log scale, so one loud detector does not hide the quiet ones). Uses el(), api()
// and refresh() from app.js, which loads first; reloads with the rest of the page.
"use strict";

(() => {
  const clock = (iso) => iso.replace("T", " ").slice(0, 16);
  const span = (s) => (s % 86400 === 0 ? `${s / 86400} d` : s % 3600 === 0 ? `${s / 3600} h` : `${s / 60} min`);

  function renderVolume(v) {
    const box = document.getElementById("volume");
    if (!v.detectors.length) { box.replaceChildren(el("p", { class: "muted", text: "No alerts stored yet (healthswarm detect)." })); return; }
    const most = Math.max(...v.detectors.flatMap((d) => d.counts));
    const shade = (c) => (c ? (0.18 + 0.82 * Math.log1p(c) / Math.log1p(most)).toFixed(2) : 0);
    const n = v.buckets.length, step = Math.max(1, Math.ceil(n / 8));
    const head = el("div", { class: "vol-row vol-axis" }, el("span", { class: "vol-name" }),
      el("div", { class: "vol-cells", style: `--n:${n}` }, ...v.buckets.map((b, i) => el("span", { text: i % step ? "" : clock(b).slice(i ? 11 : 0) }))),
      el("span", { class: "vol-total", text: "total" }));
    const rows = v.detectors.map((d) => el("div", { class: "vol-row", "data-detector": d.detector },
      el("span", { class: "vol-name", text: d.detector }),
      el("div", { class: "vol-cells", style: `--n:${n}` }, ...d.counts.map((c, i) => el("span", { class: "vol-cell" + (c ? " on" : ""),
        "data-count": c, style: `--a:${shade(c)}`, text: c || "", title: `${d.detector}: ${c} alert${c === 1 ? "" : "s"} from ${clock(v.buckets[i])} UTC (${span(v.bucket_seconds)})` }))),
      el("span", { class: "vol-total", text: d.total })));
    box.replaceChildren(el("p", { class: "muted", text: `${clock(v.start)} → ${clock(v.end)} UTC, one cell per ${span(v.bucket_seconds)}; `
      + `brighter: more alerts (log scale, brightest ${most})` }), head, ...rows);
  }

  async function loadVolume() {
    try { renderVolume(await api("/alerts/volume?buckets=48")); } catch (err) {
      document.getElementById("volume").replaceChildren(el("p", { class: "error", text: "Alert volume unavailable: " + err.message }));
    }
  }

  const panel = el("section", { class: "panel wide", id: "volume-panel" }, el("h2", { text: "Alert volume per detector" }), el("div", { id: "volume" }));
  const attack = document.getElementById("attack");
  document.getElementById("main").insertBefore(panel, attack ? attack.closest("section") : null);
  const baseRefresh = refresh;
  refresh = async function () { await Promise.all([baseRefresh(), loadVolume()]); };
})();
