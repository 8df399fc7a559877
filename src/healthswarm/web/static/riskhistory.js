// healthswarm dashboard, Risk over time: each organisation's risk at each assessment (`healthswarm risk assess`, the
// agent's live risk) as one line per organisation, in SVG. The figure is the one `risk assess` shows: the expected harm
// of the worst attacker profile on that organisation. Uses el(), api() and refresh() from app.js, which loads first.
"use strict";

(() => {
  const COLOURS = ["#4fa3ff", "#f07a1a", "#3fa34d", "#e5383b", "#b59cff", "#d6b000", "#2fb8ac", "#ff8fb1"];
  const W = 900, H = 260, L = 52, R = 170, T = 12, B = 30;
  const clock = (iso) => iso.replace("T", " ").slice(0, 16);

  function render(h) {
    const box = document.getElementById("risk-history");
    const orgs = Object.entries(h.organisations);
    if (!h.points) { box.replaceChildren(el("p", { class: "muted", text: "No risk assessed yet (healthswarm risk assess)." })); return; }
    const all = orgs.flatMap(([, pts]) => pts);
    const times = all.map((p) => Date.parse(p.assessed_at));
    const t0 = Math.min(...times), t1 = Math.max(...times), span = Math.max(1, t1 - t0);
    const top = Math.max(1e-9, ...all.map((p) => p.expected_harm)) * 1.08;
    const x = (iso) => L + (W - L - R) * (times.length > 1 && t1 > t0 ? (Date.parse(iso) - t0) / span : 0.5);
    const y = (v) => T + (H - T - B) * (1 - v / top);
    const svg = el("svg:svg", { viewBox: `0 0 ${W} ${H}`, class: "risk-chart", role: "img", "aria-label": "risk of each organisation over time" });
    for (let i = 0; i <= 4; i++) {
      const v = (top * i) / 4;
      svg.append(el("svg:line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }),
        el("svg:text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", text: v.toFixed(1) }));
    }
    svg.append(el("svg:text", { x: L, y: H - 8, text: clock(new Date(t0).toISOString()) + " UTC" }),
      el("svg:text", { x: W - R, y: H - 8, "text-anchor": "end", text: clock(new Date(t1).toISOString()) + " UTC" }));
    orgs.forEach(([org, pts], i) => {
      const colour = COLOURS[i % COLOURS.length];
      const g = el("svg:g", { class: "risk-line", "data-organisation": org });
      g.append(el("svg:polyline", { points: pts.map((p) => `${x(p.assessed_at).toFixed(1)},${y(p.expected_harm).toFixed(1)}`).join(" "),
        fill: "none", stroke: colour, "stroke-width": 2 }));
      for (const p of pts) {
        const dot = el("svg:circle", { cx: x(p.assessed_at).toFixed(1), cy: y(p.expected_harm).toFixed(1), r: 3, fill: colour });
        dot.append(el("svg:title", { text: `${org} ${clock(p.assessed_at)} UTC: expected harm ${p.expected_harm.toFixed(3)} `
          + (p.profile ? `(${p.profile}, ${p.assets_at_risk} assets at risk; ${p.source})` : `(no profile reaches it; ${p.source})`) }));
        g.append(dot);
      }
      const last = pts[pts.length - 1];
      g.append(el("svg:text", { x: W - R + 8, y: 16 + 16 * i, style: `fill:${colour}`, text: `${org} ${last.expected_harm.toFixed(2)}` }));
      svg.append(g);
    });
    box.replaceChildren(el("p", { class: "muted", text: `${h.measure}; ${h.points} points, ${orgs.length} organisations; the legend gives the latest.` }), svg);
  }

  async function load() {
    try { render(await api("/risk/history")); } catch (err) {
      document.getElementById("risk-history").replaceChildren(el("p", { class: "error", text: "Risk history unavailable: " + err.message }));
    }
  }

  const panel = el("section", { class: "panel wide", id: "risk-history-panel" }, el("h2", { text: "Risk of each organisation over time" }),
    el("div", { id: "risk-history" }));
  document.getElementById("main").append(panel);
  const baseRefresh = refresh;
  refresh = async function () { await Promise.all([baseRefresh(), load()]); };
})();
