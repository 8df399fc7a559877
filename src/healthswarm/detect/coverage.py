"""ATT&CK coverage as an analyst reads it: which techniques the loaded rules cover, and which fired.

`coverage_layer(ruleset, alerts)` → an ATT&CK Navigator layer (layer format 4.5, enterprise domain):
each technique a loaded rule names gets a score (the number of rules that cover it); techniques that
fired are coloured and carry the number of detections and the rules that fired. `heatmap_png` draws
the same as a tactic × technique grid. `write_coverage(path, …)` writes both (`<name>.json`, `<name>.png`).
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from healthswarm.detect.attack import catalog
from healthswarm.model import Alert
from healthswarm.model.words import counted

LAYER_VERSION = "4.5"
NAVIGATOR_VERSION = "5.1.0"
#: Enterprise tactics in ATT&CK's own order (short names as the Navigator and Sigma tags use them).
TACTIC_ORDER = ("reconnaissance", "resource-development", "initial-access", "execution", "persistence",
                "privilege-escalation", "defense-evasion", "stealth", "defense-impairment", "credential-access",
                "discovery", "lateral-movement", "collection", "command-and-control", "exfiltration", "impact")
FIRED_COLOR = "#e8453c"

#: ATT&CK v19 split Impair Defenses (T1562) into Impair Defenses → T1685 (tools, logging) and T1686 (firewalls,
#: network security), and moved log clearing (T1070.001/.002) under T1685. SigmaHQ tags use the new ids; data
#: sets labelled before (Security-Datasets), the Navigator's v18 matrix and the ATT&CK bundle in
#: ../shared/data use the old. Inferred from the SigmaHQ rules' titles (no official crosswalk is bundled):
#: new id → the v18 id it names.
RENUMBERED = {
    "T1685": "T1562", "T1685.001": "T1562.002", "T1685.002": "T1562.008", "T1685.004": "T1562.012",
    "T1685.005": "T1070.001", "T1685.006": "T1070.002",
    "T1686": "T1562", "T1686.001": "T1562.007", "T1686.002": "T1562", "T1686.003": "T1562.004",
}


def v18_id(technique: str) -> str:
    """A technique id as ATT&CK v18 numbers it (`T1685.001` → `T1562.002`); other ids unchanged."""
    tid = technique.upper()
    return RENUMBERED.get(tid, RENUMBERED.get(tid.split(".")[0], tid) if tid.split(".")[0] in RENUMBERED
                          and "." in tid and tid not in RENUMBERED else tid)
COVERED_COLORS = ("#ffffff", "#cfe3f7", "#2f6fb5")


def _rule_techniques(ruleset: Any) -> dict[str, set[str]]:
    """technique id → keys of the loaded rules (single-event and correlation) that name it."""
    out: dict[str, set[str]] = defaultdict(set)
    for rule in [*getattr(ruleset, "rules", ()), *getattr(ruleset, "correlations", ())]:
        for ref in rule.meta.techniques:
            out[v18_id(ref.id)].add(rule.meta.key)
    return out


def coverage_summary(ruleset: Any, alerts: Iterable[Alert] = ()) -> dict[str, Any]:
    """Per technique: rules covering it, detections and rules that fired; plus totals."""
    covered = _rule_techniques(ruleset)
    detections: Counter[str] = Counter()
    fired_rules: dict[str, Counter[str]] = defaultdict(Counter)
    for alert in alerts:
        for ref in alert.techniques:
            tid = v18_id(ref.id)
            detections[tid] += 1
            fired_rules[tid][alert.title or alert.rule_id] += 1
    techniques = sorted(set(covered) | set(detections))
    return {
        "techniques": {t: {"rules": len(covered.get(t, ())), "detections": detections.get(t, 0),
                           "fired_rules": dict(fired_rules[t].most_common())} for t in techniques},
        "covered": len(covered),
        "covered_parents": len({t.split(".")[0] for t in covered}),
        "fired": len(detections),
        "fired_parents": len({t.split(".")[0] for t in detections}),
    }


def coverage_layer(ruleset: Any, alerts: Iterable[Alert] = (), name: str = "healthswarm coverage",
                   description: str = "") -> dict[str, Any]:
    """An ATT&CK Navigator layer (format 4.5) of the loaded rules' techniques and what fired."""
    summary = coverage_summary(ruleset, alerts)
    attack = catalog()
    top = max((row["rules"] for row in summary["techniques"].values()), default=1) or 1
    entries = []
    for tid, row in summary["techniques"].items():
        entry: dict[str, Any] = {
            "techniqueID": tid,
            "score": row["rules"],
            "enabled": True,
            "showSubtechniques": False,
            "metadata": [{"name": "rules loaded", "value": str(row["rules"])},
                         {"name": "detections", "value": str(row["detections"])}],
        }
        if row["detections"]:
            entry["color"] = FIRED_COLOR
            fired = "; ".join(f"{title} ({n})" for title, n in list(row["fired_rules"].items())[:5])
            entry["comment"] = f"fired: {counted(row['detections'], 'detection')} — {fired}"
        if "." in tid:
            entry["showSubtechniques"] = False
        name_of = attack.techniques.get(tid, "")
        if name_of:
            entry["metadata"].insert(0, {"name": "technique", "value": name_of})
        entries.append(entry)
    parents = {e["techniqueID"].split(".")[0] for e in entries if "." in e["techniqueID"]}
    for entry in entries:  # expand parents whose sub-techniques are scored, so the Navigator shows them
        if entry["techniqueID"] in parents:
            entry["showSubtechniques"] = True
    return {
        "name": name,
        "versions": {"layer": LAYER_VERSION, "navigator": NAVIGATOR_VERSION, "attack": _attack_version()},
        "domain": "enterprise-attack",
        "description": description or (
            f"Techniques covered by the loaded rules ({summary['covered']} techniques, {summary['covered_parents']} "
            f"parent techniques; score = rules) and fired ({summary['fired']}, red)."),
        "sorting": 3,
        "layout": {"layout": "side", "showID": True, "showName": True},
        "hideDisabled": False,
        "techniques": entries,
        "gradient": {"colors": list(COVERED_COLORS), "minValue": 0, "maxValue": min(top, 50)},
        "legendItems": [{"label": "covered by loaded rules (score: rules)", "color": COVERED_COLORS[2]},
                        {"label": "fired", "color": FIRED_COLOR}],
        "showTacticRowBackground": False,
        "selectTechniquesAcrossTactics": True,
        "selectSubtechniquesWithParent": False,
        "metadata": [{"name": "generator", "value": "healthswarm"},
                     {"name": "techniques covered", "value": str(summary["covered"])},
                     {"name": "techniques fired", "value": str(summary["fired"])}],
    }


def _attack_version() -> str:
    return "18"


def _tactics_of(tid: str, ruleset_tactics: dict[str, set[str]]) -> Sequence[str]:
    attack = catalog()
    found = attack.technique_tactics.get(tid) or attack.technique_tactics.get(tid.split(".")[0])
    return tuple(found) if found else tuple(sorted(ruleset_tactics.get(tid, ()))) or ("(unknown)",)


def heatmap_png(path: Path, ruleset: Any, alerts: Iterable[Alert] = (), title: str = "") -> Path:
    """A PNG grid: one column per tactic, one cell per parent technique covered (shade: rules, log scale;
    red border and bold: fired)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LinearSegmentedColormap
    from matplotlib.patches import Rectangle

    alerts = list(alerts)
    summary = coverage_summary(ruleset, alerts)
    rule_tactics: dict[str, set[str]] = defaultdict(set)
    for rule in [*getattr(ruleset, "rules", ()), *getattr(ruleset, "correlations", ())]:
        for technique in rule.meta.techniques:
            rule_tactics[v18_id(technique.id)].update(t.shortname or t.id for t in rule.meta.tactics)
    parents: dict[str, dict[str, int]] = defaultdict(lambda: {"rules": 0, "detections": 0})
    for tid, row in summary["techniques"].items():
        parent = tid.split(".")[0]
        parents[parent]["rules"] += row["rules"]
        parents[parent]["detections"] += row["detections"]
    columns: dict[str, list[str]] = defaultdict(list)
    for parent in sorted(parents):
        for tactic in _tactics_of(parent, rule_tactics):
            columns[tactic].append(parent)
    order = [t for t in TACTIC_ORDER if t in columns] + sorted(t for t in columns if t not in TACTIC_ORDER)
    height = max((len(v) for v in columns.values()), default=1)
    cmap = LinearSegmentedColormap.from_list("cov", COVERED_COLORS[1:])
    top = max((v["rules"] for v in parents.values()), default=1) or 1
    fig, ax = plt.subplots(figsize=(max(6.0, 1.25 * len(order)), max(3.0, 0.2 * height + 1.2)), dpi=110)
    for x, tactic in enumerate(order):
        cells = sorted(columns[tactic], key=lambda p: (-parents[p]["detections"], -parents[p]["rules"], p))
        for y, parent in enumerate(cells):
            row = parents[parent]
            shade = math.log1p(row["rules"]) / math.log1p(top)
            fired = row["detections"] > 0
            ax.add_patch(Rectangle((x, -y - 1), 0.95, 0.9, facecolor=cmap(shade),
                                   edgecolor=FIRED_COLOR if fired else "none", linewidth=1.6 if fired else 0))
            ax.text(x + 0.47, -y - 0.55, parent, ha="center", va="center", fontsize=5.5,
                    fontweight="bold" if fired else "normal", color="black" if shade < 0.6 else "white")
    ax.set_xlim(0, len(order))
    ax.set_ylim(-height - 0.2, 0.2)
    ax.set_xticks([i + 0.47 for i in range(len(order))])
    ax.set_xticklabels([t.replace("-", "\n") for t in order], fontsize=6)
    ax.xaxis.tick_top()
    ax.set_yticks([])
    for side in ("left", "right", "bottom", "top"):
        ax.spines[side].set_visible(False)
    ax.set_title(title or f"ATT&CK coverage: {summary['covered_parents']} parent techniques covered by the loaded "
                 f"rules (shade: rules), {summary['fired_parents']} fired (red border)", fontsize=8, pad=22)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def write_coverage(path: Path, ruleset: Any, alerts: Iterable[Alert] = (), name: str = "healthswarm coverage"
                   ) -> list[Path]:
    """Write the Navigator layer at `path` (JSON) and the heat map beside it (`.png`); the paths written."""
    alerts = list(alerts)
    path = Path(path)
    if path.suffix.lower() != ".json":
        path = path.with_name(path.name + ".json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(coverage_layer(ruleset, alerts, name), indent=2) + "\n", encoding="utf-8")
    png = heatmap_png(path.with_suffix(".png"), ruleset, alerts)
    return [path, png]
