"""`healthswarm demo` as a list of steps: each stage adds its own step, the runner shows them in order.

A step takes the shared DemoRun, does its stage's work through the library, and returns what to
show (Rich renderables) and a summary (plain data for `--format json`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import orjson
from rich.table import Table
from sqlalchemy import func, select

from healthswarm import respond
from healthswarm.demo import ECOSYSTEM, LOGS, RULES, STAFF
from healthswarm.demo.flows import flow_model_step
from healthswarm.demo.steps import DemoRun, Step, StepResult
from healthswarm.detect.learn.asset_baseline import BaselineConfig
from healthswarm.detect.stage import detect_stored
from healthswarm.detect.suite import SuiteSpec, build_suite
from healthswarm.ingest.pipeline import IngestStats, Pipeline
from healthswarm.ingest.sources.file import ingest_file, source_name
from healthswarm.inventory import load_inventory
from healthswarm.inventory.advisories import load_advisories, match_findings
from healthswarm.model import Alert, Finding, FindingStatus, Level
from healthswarm.model.words import path_text, severity_word
from healthswarm.risk.aco import AcoParams
from healthswarm.risk.attack_graph import build_attack_graph, resolve_targets
from healthswarm.risk.engine import find_paths, parse_attacker
from healthswarm.risk.live import annotate_incidents
from healthswarm.risk.mitigate import build_model, solve
from healthswarm.share.egress import REMOVED_WORDS
from healthswarm.share.pipeline import import_signed
from healthswarm.share.sanitise import policy_for
from healthswarm.share.service import report_for_peers, sensitive_values
from healthswarm.share.signing import TrustStore, load_or_create_keys
from healthswarm.store import Store
from healthswarm.store.alerts import load_incidents
from healthswarm.store.inventory import replace_inventory
from healthswarm.store.tables import events
from healthswarm.store.vulns import load_findings, replace_findings, save_advisories
from healthswarm.swarm.demo import demo_step as swarm_demo_step


def load_ecosystem(demo: DemoRun) -> StepResult:
    demo.inventory = load_inventory([ECOSYSTEM])
    with demo.store.transaction() as conn:
        replace_inventory(conn, demo.inventory)
    inv = demo.inventory
    table = Table(title="The reference ecosystem")
    # the same patients sit in several systems (HIS, EHR, RIS): the largest one says how many, a sum would not
    for column in ("organisation", "kind", "zones", "assets", "medical devices", "patient records (largest system)"):
        table.add_column(column, justify="right" if column not in ("organisation", "kind") else "left")
    for org in inv.organisations:
        assets = [a for a in inv.assets if a.organisation == org.id]
        table.add_row(org.name, org.kind, str(sum(z.organisation == org.id for z in inv.zones)), str(len(assets)),
                      str(sum(a.is_medical_device for a in assets)),
                      f"{max((a.records or 0 for a in assets), default=0):,}")
    summary = {"organisations": len(inv.organisations), "assets": len(inv.assets),
               "medical_devices": sum(a.is_medical_device for a in inv.assets),
               "flows": len(inv.flows), "dependencies": len(inv.dependencies)}
    return StepResult(summary, [table])


_SEVERITIES = ("critical", "high", "medium", "low")


def match_advisories(demo: DemoRun) -> StepResult:
    advisories, problems = load_advisories([demo.advisories_path])
    demo.findings = match_findings(advisories, demo.inventory.assets)
    with demo.store.transaction() as conn:
        save_advisories(conn, advisories)
        replace_findings(conn, demo.findings)
    assets = {a.id: a for a in demo.inventory.assets}
    names = {o.id: o.name for o in demo.inventory.organisations}
    table = Table(title="Exposure from medical-device advisories")
    # a finding is one CVE on one asset: counted as `vulns list` and the dashboard's Exposure count them
    for column in ("organisation", "affected assets", "possibly affected", *(f"{s} findings" for s in _SEVERITIES),
                   "safety-critical exposed"):
        table.add_column(column, justify="left" if column == "organisation" else "right")
    per_org: dict[str, list[Finding]] = {}
    for f in demo.findings:
        per_org.setdefault(assets[f.asset_id].organisation, []).append(f)
    for org, found in sorted(per_org.items()):
        affected = {f.asset_id for f in found if f.status is FindingStatus.AFFECTED}
        possibly = {f.asset_id for f in found if f.status is FindingStatus.POSSIBLY_AFFECTED} - affected
        severities = Counter(f.severity for f in found)
        critical_devices = {a for a in affected | possibly if assets[a].criticality.safety >= Level.HIGH}
        table.add_row(names[org], str(len(affected)), str(len(possibly)),
                      *(str(severities.get(s, 0)) for s in _SEVERITIES), str(len(critical_devices)))
    top = Table(title="Most exposed safety-critical device models")
    for column in ("kind", "vendor / product", "version", "devices", "worst CVE", "CVSS", "advisory", "status"):
        top.add_column(column, justify="right" if column in ("devices", "CVSS") else "left")
    models: dict[tuple[str, str, str], list[Finding]] = {}
    for f in demo.findings:
        a = assets[f.asset_id]
        if a.criticality.safety >= Level.HIGH:
            models.setdefault((a.kind, f"{a.vendor} / {a.product}", a.version or "?"), []).append(f)
    ranked = sorted(models.items(), key=lambda item: -max(f.cvss_score or 0 for f in item[1]))
    for (kind, product, version), found in ranked[:8]:
        worst = max(found, key=lambda f: f.cvss_score or 0)
        top.add_row(kind, product, version, str(len({f.asset_id for f in found})), worst.cve,
                    f"{worst.cvss_score:.1f}" if worst.cvss_score is not None else "", worst.advisory_id,
                    str(worst.status))
    summary = {
        "advisories": len(advisories), "advisory_problems": [str(p) for p in problems],
        "findings": len(demo.findings),
        "affected_assets": len({f.asset_id for f in demo.findings if f.status is FindingStatus.AFFECTED}),
        "possibly_affected_assets": len({f.asset_id for f in demo.findings
                                         if f.status is FindingStatus.POSSIBLY_AFFECTED}),
        "by_severity": dict(Counter(f.severity for f in demo.findings)),
    }
    return StepResult(summary, [table, top])


def ingest_logs(demo: DemoRun) -> StepResult:
    pipeline = Pipeline.for_store(demo.store)
    files = {}
    try:
        for path in sorted(LOGS.iterdir()):
            result = ingest_file(pipeline, path)
            stats = pipeline.per_source.get(source_name(path), IngestStats())
            files[path.name] = {"format": result.format, "events": stats.stored,
                                "rejects": sum(stats.rejects.values()), "source": source_name(path)}
    finally:
        pipeline.close()
    resolved = _resolved_share(demo.store)
    table = Table(title="The scenario's logs, ingested")
    for column in ("file", "format", "events stored", "rejected", "tied to an inventory asset"):
        table.add_column(column, justify="left" if column in ("file", "format") else "right")
    for name, info in files.items():
        table.add_row(name, info["format"], str(info["events"]), str(info["rejects"]),
                      f"{resolved.get(info.pop('source'), 0.0):.0%}")
    return StepResult({"files": files}, [table])


def _resolved_share(store: Store) -> dict[str, float]:
    """Per source, the share of stored events tied to an inventory asset."""
    query = select(events.c.source, func.count(), func.count(events.c.asset_id)).group_by(events.c.source)
    with store.read() as conn:
        return {row[0]: row[2] / row[1] for row in conn.execute(query) if row[1]}


# What the demo's organisations expect on their clinical interfaces (the healthcare rules'
# placeholders; a real deployment sets them in config.toml under [sigma.placeholders]).
DEMO_PLACEHOLDERS = {
    "hl7_known_facilities": ["STA", "NFH", "CITYLAB", "RIM"],
    "dicom_known_ae_titles": ["STA_ROUTER", "STA_RAD01", "NFH_ROUTER", "RIM_PACS", "RIM_GW", "RIM_RAD01"],
}


# The demo's logs span two hours, so the per-asset baselines warm up on the first 45 minutes of each
# asset's traffic (the default asks for 50 events over 24 hours).
DEMO_BASELINE = BaselineConfig(warmup_events=8, warmup_hours=0.75)


def detect_and_correlate(demo: DemoRun) -> StepResult:
    suite = build_suite(SuiteSpec(rules=[RULES], placeholders=DEMO_PLACEHOLDERS, baseline=DEMO_BASELINE, staff=STAFF,
                                  cache_dir=demo.workspace / "cache" / "sigma"), demo.inventory.assets)
    ruleset = suite.ruleset
    result = detect_stored(demo.store, suite.detectors)
    annotate_incidents(demo.store)  # predicted next targets on every open incident
    demo.incidents = result.incidents
    firsts = _distinct(sorted(result.alerts, key=lambda a: a.timestamp))
    shown = firsts[:25]
    alerts = Table(title=f"Alerts ({len(ruleset.rules)} Sigma rules, the sensors, baselines, clinical and "
                         f"privacy analytics, over {result.events} events): the first of each rule and asset set "
                         f"({len(shown)} of {len(firsts)} sets), of {len(result.alerts)} alerts")
    for column in ("time (UTC)", "detector", "level", "rule", "ATT&CK", "assets"):
        alerts.add_column(column)
    for alert in shown:
        alerts.add_row(alert.timestamp.strftime("%H:%M:%S"), alert.detector, alert.level, alert.title,
                       " ".join(t.id for t in alert.techniques), ", ".join(alert.assets[:3]))
    with demo.store.read() as conn:
        predicted = {i.id: i.annotations.get("predicted_next", []) for i in load_incidents(conn)}
    incidents = Table(title="Incidents (with the attacker's likely next targets)", caption=result.summary_line())
    # the targets come ranked by p × harm (risk.live), so a lower p may come first: the heading says so
    for column in ("incident", "severity", "stage (kill chain, UTC)", "alerts", "assets", "title",
                   "predicted next (p; ranked by p × harm)"):
        incidents.add_column(column)
    for inc in result.incidents:
        nxt = ", ".join(f"{p['asset']} {p['probability']:.2f}" for p in predicted.get(inc.id, [])[:3])
        incidents.add_row(inc.id, severity_word(inc.severity), path_text(inc.as_dict()["path"]) or str(inc.stage),
                          str(len(inc.alert_ids)),
                          ", ".join(sorted(inc.assets)[:4]) + (" …" if len(inc.assets) > 4 else ""), inc.title, nxt)
    summary = {
        "rules": len(ruleset.rules), "rule_problems": len(ruleset.problems), "events": result.events,
        "alerts": len(result.alerts), "alerts_by_rule": dict(Counter(a.title for a in result.alerts)),
        "stored": result.totals,
        "incidents": [{"id": i.id, "severity": i.severity, "stage": str(i.stage), "alerts": len(i.alert_ids),
                       "assets": sorted(i.assets), "predicted_next": [p["asset"] for p in predicted.get(i.id, [])]}
                      for i in result.incidents],
    }
    return StepResult(summary, [alerts, incidents])


def _distinct(alerts: list[Alert]) -> list[Alert]:
    """The first alert of each rule and asset set: the table shows what happened, not every repeat."""
    seen: set[tuple[str, tuple[str, ...]]] = set()
    out = []
    for alert in alerts:
        if (alert.rule_id, alert.assets) not in seen:
            seen.add((alert.rule_id, alert.assets))
            out.append(alert)
    return out


def respond_to_incident(demo: DemoRun) -> StepResult:
    """A case for the phishing incident, the phishing playbook in dry run, the notification clocks."""
    summary, show = respond.demo_step(demo.store, demo.workspace)
    return StepResult(summary, list(show))


def attack_paths(demo: DemoRun) -> StepResult:
    """From the phishing foothold to the shared PACS: how likely, along which moves, and what to fix first."""
    with demo.store.read() as conn:
        graph = build_attack_graph(demo.inventory, load_findings(conn))
    attacker = parse_attacker(DEMO_ATTACKER, graph.facts)
    targets = resolve_targets(graph.facts, DEMO_TARGET)
    found = find_paths(graph.view(attacker.profile, attacker.organisation), targets, 3, 8, 10.0, False, "auto",
                       AcoParams())
    table = Table(title=f"Attack paths {DEMO_ATTACKER} → {DEMO_TARGET} ({found.method}: {found.reason})")
    for column in ("#", "p", "moves"):
        table.add_column(column)
    for n, path in enumerate(found.paths, 1):
        steps = [f"{m['to']} ({m.get('description', '')})" for m in path.moves
                 if m.get("kind") != "privilege" and not (m.get("kind") == "adjacency"
                                                          and not m["to"].startswith("inside zone"))]
        table.add_row(str(n), f"{path.p:.3f}", "\n".join(steps))
    plan = solve(graph, build_model(graph, [attacker], targets), DEMO_BUDGET, "auto", False, [attacker], targets)
    # risk is harm × the probability that the target falls by any path (risk.mitigate.RISK_DEFINITION), so it is
    # not the best path's p above: say which figure it is, to the same three decimals
    fixes = Table(title=f"What to fix first (budget {DEMO_BUDGET:g}, {plan.method}"
                        f"{', optimal' if plan.optimal else ''}): risk to {DEMO_TARGET} (harm × probability it "
                        f"falls) {_risk(plan.true_baseline)} → {_risk(plan.true_residual)}")
    for column in ("control", "what", "cost"):
        fixes.add_column(column)
    for control in plan.chosen:
        c = control.as_dict()
        fixes.add_row(str(c["kind"]), str(c["label"]), f"{c['cost']:g}")
    summary = {"attacker": DEMO_ATTACKER, "target": DEMO_TARGET, "method": found.method,
               "paths": [{"p": round(p.p, 4), "steps": p.steps} for p in found.paths],
               "unreachable": list(found.unreachable), "mitigation": plan.as_dict()}
    return StepResult(summary, [table, fixes])


def _risk(value: float | None) -> str:
    return "?" if value is None else f"{value:.3f}"


def share_with_peer(demo: DemoRun) -> StepResult:
    """St. Aurelia's phishing incident reaches Northfield: sanitised, leak-checked, signed, verified."""
    main = max(demo.incidents, key=lambda i: (DEMO_FOOTHOLD in i.assets, i.severity))
    known = sensitive_values(demo.store, DEMO_SENDER)
    released = report_for_peers(demo.store, demo.workspace, DEMO_SENDER, policy_for("amber", "sector"), main.id)
    bundle_path = demo.workspace / "outbox" / f"{main.id}.stix.json"
    bundle_path.parent.mkdir(parents=True, exist_ok=True)
    bundle_path.write_bytes(orjson.dumps(released.payload, option=orjson.OPT_INDENT_2))
    # the peer is a second agent with its own workspace, which trusts St. Aurelia's public key
    peer_workspace = demo.workspace / "peers" / DEMO_RECEIVER
    TrustStore.in_workspace(peer_workspace).trust(DEMO_SENDER, load_or_create_keys(demo.workspace).public_text)
    received = import_signed(orjson.loads(bundle_path.read_bytes()), peer_workspace, str(bundle_path))
    table = Table(title=f"{main.id} shared by {DEMO_SENDER} with {DEMO_RECEIVER} (TLP:AMBER, sector group)")
    table.add_column("step")
    table.add_column("result")
    table.add_row("exported", f"{released.objects} STIX 2.1 objects → {bundle_path}")
    table.add_row("sanitised", ", ".join(f"{REMOVED_WORDS.get(k, k)} ×{v}" for k, v in released.removed.items())
                  or "nothing to remove")
    table.add_row("leak check", f"clean: none of the {sum(1 for _ in known.values())} sensitive values of "
                                f"{DEMO_SENDER} (hosts, users, patients, addresses), in any encoding")
    table.add_row("signed", f"Ed25519 key {released.key_id} over RFC 8785 canonical JSON, by the egress gate")
    table.add_row(f"verified by {DEMO_RECEIVER}", f"signature valid: {received.peer.name}'s key "
                                                  f"{received.peer.key_id}, from its own trust store")
    received_iocs = sorted(f"{i.type}:{i.value}" for i in received.result.indicators if i.type != "attack-technique")
    techniques = sum(1 for i in received.result.indicators if i.type == "attack-technique")
    table.add_row("received by the peer", f"{', '.join(received_iocs) or 'no observables'}; {techniques} ATT&CK "
                                          "techniques")
    summary = {"incident": main.id, "objects": released.objects, "sanitised": released.removed,
               "peer_key": received.peer.key_id,
               "indicators": sorted(f"{i.type}:{i.value}" for i in received.result.indicators)}
    return StepResult(summary, [table])


def swarm_warning(demo: DemoRun) -> StepResult:
    """One agent per organisation on loopback sockets: St. Aurelia's indicators spread by gossip."""
    summary, show = swarm_demo_step(demo.store, demo.workspace, demo.inventory, sockets=True, corroborate=True)
    return StepResult(summary, list(show))


DEMO_FOOTHOLD = "sta-ws-03"  # where the phishing mail was opened
DEMO_SENDER = "st-aurelia"
DEMO_RECEIVER = "northfield"
DEMO_ATTACKER = "phishing@st-aurelia"
DEMO_TARGET = "rim-pacs-01"
DEMO_BUDGET = 10.0


STEPS: Sequence[Step] = (
    Step("Load the reference ecosystem", load_ecosystem),
    Step("Match medical-device advisories", match_advisories),
    Step("Ingest the scenario's logs", ingest_logs),
    Step("Detect: Sigma, sensors, baselines, clinical analytics, patient privacy; correlate", detect_and_correlate),
    Step("Respond: a case, the phishing playbook (dry run), the regulators' clocks", respond_to_incident),
    Step("Attack paths to the shared PACS, and what to fix first", attack_paths),
    Step("Warn the neighbour: a signed, sanitised STIX bundle", share_with_peer),
    Step("The swarm: every organisation's agent warned by gossip", swarm_warning),
    Step("Learned models in the pipeline: the flow classifier on labelled flows (--flows)", flow_model_step),
)
