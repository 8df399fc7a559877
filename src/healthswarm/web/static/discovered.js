// healthswarm dashboard, Discovered: what the traffic shows against the declared inventory (the diff `healthswarm
// inventory discover` prints) — new devices, undeclared flows, contradicted versions, silent declared assets — with
// Accept (merged into the inventory like `inventory merge`: validated, all or nothing) and Ignore (remembered in the
// workspace). Uses el(), api(), app and refresh() from app.js, which loads first; reloads with the rest of the page.
"use strict";

(() => {
  const SECTIONS = [
    ["device", "New devices", ["address", "organisation / zone", "kind", "model (confidence)", "services", "first seen"]],
    ["flow", "Undeclared flows", ["severity", "from", "to", "protocol", "connections / events", "concerns", "first seen"]],
    ["version", "Contradicted versions", ["asset", "field", "declared", "observed", "confidence"]],
    ["silent", "Silent declared assets", ["asset", "kind", "zone", "addresses"]],
  ];
  const SHOWN = 12;   // rows per section before "show all"
  const open = new Set();   // sections the person expanded
  const when = (iso) => (iso ? iso.replace("T", " ").slice(0, 16) : "");
  const canChange = () => app.role === "analyst" || app.role === "admin";

  function cells(section, d) {
    if (section === "device") {
      const fp = d.fingerprint;
      const model = fp ? `${[fp.vendor, fp.product, fp.version].filter(Boolean).join(" ")} (${fp.confidence.toFixed(2)})` : "—";
      return [d.ip, `${d.organisation || "?"} / ${d.zone || "?"}`, d.kind, model, d.services.join(", ") || "—", when(d.first_seen)];
    }
    if (section === "flow") {
      return [d.severity, d.source, d.target, d.protocol + (d.port ? "/" + d.port : ""), `${d.connections} / ${d.events}`,
        d.concerns.join("; ") + (d.attack_like ? " (looks like an attack: accept only if legitimate)" : ""), when(d.first_seen)];
    }
    if (section === "version") return [d.asset_id, d.field, d.declared, d.observed, d.confidence.toFixed(2)];
    return [d.asset_id, d.kind, d.zone, d.addresses.join(", ")];
  }

  function say(text, cls = "muted") {
    document.getElementById("discovered-msg").replaceChildren(el("span", { class: cls, text }));
  }

  async function act(verb, item) {
    try {
      const body = await api("/discovered/" + verb, { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ keys: [item.key] }) });
      if (verb === "accept") {
        const m = body.merged;
        say(`Accepted ${item.title}: ${plural(m.added_assets.length, "new asset")}, ${m.replaced_assets.length} updated, ${plural(m.added_flows, "flow")} `
          + `merged into the inventory (patch kept as discover/accepted/${m.patch}).`);
        render(body.view);
        await refresh();   // the map and counts show the changed inventory
      } else {
        say(`Ignored ${item.title}: it will not be listed again.`);
        render(body);
      }
    } catch (err) { say(`${verb === "accept" ? "Not accepted" : "Not ignored"} (nothing changed): ${err.message}`, "error"); }
  }

  function actions(item) {
    if (!canChange()) return el("td");
    return el("td", { class: "disc-actions" },
      item.acceptable ? el("button", { class: "accept", text: "Accept", title: "merge into the inventory", on: { click: () => act("accept", item) } })
        : el("span", { class: "muted", text: "—", title: item.why_not }),
      el("button", { class: "ignore", text: "Ignore", title: "do not list again", on: { click: () => act("ignore", item) } }));
  }

  function section(view, [key, title, columns]) {
    const items = view.items.filter((i) => i.section === key);
    const c = view.counts[key];
    const head = el("h3", { text: `${title}: ${c.shown}` + (c.ignored ? ` (${c.ignored} ignored)` : "") });
    if (!items.length) return el("div", { class: "disc-section", "data-section": key }, head);
    const rows = (open.has(key) ? items : items.slice(0, SHOWN)).map((i) => el("tr", { "data-key": i.key, class: "sev-" + i.severity },
      ...cells(key, i.detail).map((v) => el("td", { text: String(v) })), actions(i)));
    const more = items.length > SHOWN && !open.has(key)
      ? el("button", { class: "more", text: `show all ${items.length}`, on: { click: () => { open.add(key); load(); } } }) : null;
    return el("div", { class: "disc-section", "data-section": key }, head,
      el("table", {}, el("tr", {}, ...columns.map((h) => el("th", { text: h })), el("th", { text: canChange() ? "decide" : "" })), ...rows), more);
  }

  function render(view) {
    const s = view.summary;
    const box = document.getElementById("discovered");
    box.replaceChildren(
      el("p", { class: "muted", text: `${s.events} events (${s.flow_events} flow records), ${when(view.window.first)} → ${when(view.window.last)} UTC: `
        + `${s.devices_seen} devices (${s.undeclared_devices} undeclared), ${s.flows} flows (${s.undeclared_flows} undeclared, ${s.undeclared_flows_high} high), `
        + `${s.silent_assets} silent assets, ${s.contradictions} contradicted versions — as healthswarm inventory discover counts them.` }),
      ...SECTIONS.map((sec) => section(view, sec)));
  }

  async function load() {
    try { render(await api("/discovered")); } catch (err) {
      document.getElementById("discovered").replaceChildren(el("p", { class: "error", text: "Discovery unavailable: " + err.message }));
    }
  }

  const panel = el("section", { class: "panel wide", id: "discovered-panel" }, el("h2", { text: "Discovered (traffic against the inventory)" }),
    el("p", { id: "discovered-msg" }), el("div", { id: "discovered" }));
  document.getElementById("main").append(panel);
  const baseRefresh = refresh;
  refresh = async function () { await Promise.all([baseRefresh(), load()]); };
})();
