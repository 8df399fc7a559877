"""`healthswarm risk assess|paths|whatif|mitigate`: attack paths, cascades and what to fix first."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from healthswarm.cli.context import app_context, command_line
from healthswarm.cli.output import OutputFormat as _Full
from healthswarm.cli.output import console, emit, err_console
from healthswarm.errors import InputError, Location, Problem
from healthswarm.model.words import counted
from healthswarm.risk.aco import AcoParams
from healthswarm.risk.assess import assess as assess_exposure
from healthswarm.risk.attack_graph import AttackGraph, resolve_targets
from healthswarm.risk.engine import default_targets, find_campaign, find_paths, parse_attacker
from healthswarm.risk.history import record_exposures
from healthswarm.risk.inputs import load_findings_file
from healthswarm.risk.likelihood import load_likelihood
from healthswarm.risk.mitigate import build_model, solve
from healthswarm.risk.profiles import PROFILES
from healthswarm.risk.reach import load_policy
from healthswarm.risk.service import stored_attack_graph
from healthswarm.risk.whatif import what_if

app = typer.Typer(help="Attack paths to patients, cascades across organisations, and what to fix first.",
                  no_args_is_help=True)


class Format(StrEnum):
    table = "table"
    json = "json"


class PathMethod(StrEnum):
    auto = "auto"
    exact = "exact"
    aco = "aco"


class PlanMethod(StrEnum):
    auto = "auto"
    milp = "milp"
    greedy = "greedy"


FindingsOpt = Annotated[Path | None, typer.Option("--findings", help="Findings JSON (`vulns list --format json`) "
                                                                     "instead of the stored findings")]
EpssOpt = Annotated[Path | None, typer.Option("--epss", help="EPSS scores (CSV or JSON) raising exploit odds")]
KevOpt = Annotated[Path | None, typer.Option("--kev", help="CISA KEV catalogue (JSON or CSV)")]
PolicyOpt = Annotated[Path | None, typer.Option("--zone-policy", help="Zone-to-zone policy (YAML/JSON)")]
FormatOpt = Annotated[Format, typer.Option("--format")]
MIN_P = 0.01


def _graph(ctx: typer.Context, findings: Path | None, epss: Path | None, kev: Path | None,
           policy: Path | None) -> AttackGraph:
    with app_context(ctx).store.read() as conn:
        graph = stored_attack_graph(conn, load_findings_file(findings) if findings else None,
                                    load_policy(policy) if policy else None, load_likelihood(epss, kev))
    if not graph.facts.inventory.assets:
        raise InputError(Problem(Location("workspace"), "no inventory stored",
                                 f"`{command_line(ctx, 'inventory load FILE')}` or `{command_line(ctx, 'demo')}` "
                                 "first"))
    if not graph.facts.findings:
        err_console.print(f"note: no vulnerability findings {'in ' + str(findings) if findings else 'stored'}: only "
                          "moves that need no vulnerability are considered; "
                          f"`{command_line(ctx, 'vulns import PATH')}` then `{command_line(ctx, 'vulns match')}` "
                          "add them", markup=False, highlight=False)
    return graph


def _json(value: Any) -> None:
    sys.stdout.buffer.write(orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS, default=str)
                            + b"\n")
    sys.stdout.flush()


def _notes(graph: AttackGraph) -> None:
    for note in graph.notes:
        console.print(f"[dim]note: {note}[/dim]")


@app.command()
def assess(
    ctx: typer.Context,
    profile: Annotated[list[str] | None, typer.Option(
        "--profile", help="Attacker profile (repeatable) [default: all]")] = None,
    organisation: Annotated[str | None, typer.Option("--org", help="Entries only in this organisation")] = None,
    min_p: Annotated[float, typer.Option(help="Ignore assets reached with lower probability")] = MIN_P,
    findings: FindingsOpt = None, epss: EpssOpt = None, kev: KevOpt = None, zone_policy: PolicyOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Exposure per attacker profile and organisation: expected harm and the assets most at risk.

    A whole assessment of the stored state (no --profile, --org or --findings) is kept in the risk history."""
    graph = _graph(ctx, findings, epss, kev, zone_policy)
    attackers = [parse_attacker(p, graph.facts) for p in profile] if profile else list(PROFILES.values())
    exposures = assess_exposure(graph, attackers, organisation, min_p)
    # the risk history keeps whole assessments of the stored state only, so its points compare with each other
    recorded = (record_exposures(app_context(ctx).store, graph, exposures)
                if not profile and organisation is None and findings is None and min_p == MIN_P else [])
    if fmt is Format.json:
        _json({"graph": {"nodes": graph.node_count, "moves": graph.edge_count, "build_seconds": graph.build_seconds,
                         "notes": graph.notes}, "exposures": [e.as_dict() for e in exposures]})
        return
    rows = [{"profile": e.profile, "organisation": e.organisation, "expected harm": f"{e.expected_harm:.3f}",
             "assets at risk": e.assets_at_risk,
             "most at risk": [f"{r.asset} {r.privilege} p={r.p:.2f}" for r in e.top]} for e in exposures]
    emit(rows, _Full.table, ["profile", "organisation", "expected harm", "assets at risk", "most at risk"],
         title=f"exposure ({graph.node_count} states, {graph.edge_count} moves in the graph, before any "
               "attacker's entry moves)")
    if recorded:
        console.print(f"[dim]recorded in the risk history: {counted(len(recorded), 'organisation')}[/dim]")
    _notes(graph)


@app.command()
def paths(
    ctx: typer.Context,
    attacker: Annotated[str, typer.Option("--from", help="Attacker PROFILE or PROFILE@ORGANISATION: "
                                                         + ", ".join(PROFILES))],
    to: Annotated[str, typer.Option("--to", help="Target ASSET, KIND, medical-device, or X@ORGANISATION; "
                                                 "comma-separated for several")],
    k: Annotated[int, typer.Option("-k", min=1, max=100, help="How many paths")] = 5,
    max_steps: Annotated[int, typer.Option(min=1, max=30, help="Most attacker actions per path")] = 8,
    method: Annotated[PathMethod, typer.Option(help="auto picks per question and size")] = PathMethod.auto,
    diverse: Annotated[bool, typer.Option(help="Ask the ant colony for diverse alternatives")] = False,
    campaign: Annotated[bool, typer.Option(help="Most harmful campaign across all targets under --budget")] = False,
    budget: Annotated[int | None, typer.Option(min=0, help="Capability budget [default: the profile's]")] = None,
    skill: Annotated[int | None, typer.Option(min=1, max=3, help="Override the profile's skill (1-3)")] = None,
    time_limit: Annotated[float, typer.Option(min=0.01, help="Seconds the search may take")] = 10.0,
    iterations: Annotated[int, typer.Option(min=1, help="ACO iterations")] = 60,
    ants: Annotated[int, typer.Option(min=1, help="ACO ants per iteration")] = 20,
    seed: Annotated[int, typer.Option(help="ACO random seed")] = 7,
    findings: FindingsOpt = None, epss: EpssOpt = None, kev: KevOpt = None, zone_policy: PolicyOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """The most likely attack paths (or the most harmful campaign) from an attacker to targets."""
    graph = _graph(ctx, findings, epss, kev, zone_policy)
    who = parse_attacker(attacker, graph.facts, skill)
    targets = resolve_targets(graph.facts, to)
    view = graph.view(who.profile, who.organisation)
    params = AcoParams(ants=ants, iterations=iterations, seed=seed)
    if campaign:
        spend = budget if budget is not None else who.profile.budget
        result = find_campaign(view, graph, targets, spend, max_steps, time_limit, method.value, params)
        doc = {"attacker": attacker, "targets": targets, "budget": spend, **result.as_dict()}
        header = (f"campaign by {result.method}: expected harm {result.value:.3f}, capability spent "
                  f"{result.cost}/{spend}\nwhy: {result.reason}")
        found = result.paths
    else:
        res = find_paths(view, targets, k, max_steps, time_limit, diverse, method.value, params)
        doc = {"attacker": attacker, "targets": targets, **res.as_dict()}
        header = f"method: {res.method}\nwhy: {res.reason}"
        if res.unreachable:
            header += f"\nunreachable for {attacker}: {', '.join(res.unreachable)}"
        found = res.paths
    if fmt is Format.json:
        _json(doc)
        return
    console.print(header, markup=False)
    for n, path in enumerate(found, start=1):
        console.print(f"\n[bold]#{n}[/bold] {path.target}  p={path.p:.4f}  actions={path.steps}  "
                      f"capability={path.cost}")
        for move in path.moves:
            if move.get("kind") == "privilege" or (move.get("kind") == "adjacency"
                                                   and not move["to"].startswith("inside zone")):
                continue
            console.print(f"   {move['to']:<30} {move.get('description', '')}  (p={move.get('p')})",
                          markup=False, soft_wrap=True)
    if not found:
        why = "" if graph.facts.findings else " (no vulnerability findings are stored, so no exploit was open to it)"
        console.print(f"no path found from {attacker} to {to} within {max_steps} actions{why}", markup=False)
    _notes(graph)


@app.command()
def whatif(
    ctx: typer.Context,
    compromise: Annotated[list[str], typer.Option("--compromise", help="Asset that falls (repeatable)")],
    skill: Annotated[int, typer.Option(min=1, max=3, help="Attacker skill for onward moves")] = 2,
    min_p: Annotated[float, typer.Option(help="Ignore consequences less likely than this")] = 0.01,
    findings: FindingsOpt = None, epss: EpssOpt = None, kev: KevOpt = None, zone_policy: PolicyOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """If these assets fall: what the attacker reaches next and which services fail, per organisation."""
    graph = _graph(ctx, findings, epss, kev, zone_policy)
    result = what_if(graph, compromise, skill=skill, min_p=min_p)
    org_of = {a.id: a.organisation for a in graph.facts.inventory.assets}
    doc = result.as_dict(org_of)
    if fmt is Format.json:
        _json(doc)
        return
    for org, parts in sorted(doc["organisations"].items()):
        rows = [{"asset": r["asset"], "effect": f"attacker gets {r['privilege']}", "p": f"{r['p']:.3f}",
                 "harm": f"{r['harm']:.2f}", "how": r["how"]} for r in parts["attack"]]
        rows += [{"asset": r["asset"], "effect": "service affected", "p": f"{r['p']:.3f}", "harm": "",
                  "how": r["via"] or ("compromised" if r["asset"] in compromise else "falls to the attacker")}
                 for r in parts["service"]]
        emit(rows, _Full.table, ["asset", "effect", "p", "harm", "how"], title=f"{org}")


@app.command()
def mitigate(
    ctx: typer.Context,
    budget: Annotated[float, typer.Option(min=0, help="Budget in cost units (e.g. person-days)")],
    profile: Annotated[list[str] | None, typer.Option(
        "--from", help="Attacker profile (repeatable) [default: all]")] = None,
    to: Annotated[str | None, typer.Option("--to", help="Targets [default: the 10 assets of highest harm]")] = None,
    k: Annotated[int, typer.Option("-k", min=1, max=50, help="Candidate paths per attacker and target")] = 5,
    method: Annotated[PlanMethod, typer.Option(help="auto: MILP where it fits, greedy at scale")] = PlanMethod.auto,
    compare: Annotated[bool, typer.Option(help="Also run the greedy and report its optimality gap")] = False,
    costs: Annotated[Path | None, typer.Option(help="JSON {control kind: unit cost}")] = None,
    time_limit: Annotated[float, typer.Option(min=0.1, help="Seconds for the MILP")] = 30.0,
    findings: FindingsOpt = None, epss: EpssOpt = None, kev: KevOpt = None, zone_policy: PolicyOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Choose controls within a budget that cut the most risk (exact MILP or greedy), with their effect."""
    graph = _graph(ctx, findings, epss, kev, zone_policy)
    attackers = [parse_attacker(p, graph.facts) for p in profile] if profile else list(PROFILES.values())
    targets = resolve_targets(graph.facts, to) if to else default_targets(graph.facts)
    unit_costs = _costs(costs) if costs else None
    model = build_model(graph, attackers, targets, k=k, costs=unit_costs)
    plan = solve(graph, model, budget, method.value, compare, attackers, targets, time_limit=time_limit)
    if fmt is Format.json:
        _json({"budget": budget, "targets": targets, "attackers": profile or sorted(PROFILES), **plan.as_dict()})
        return
    d = plan.as_dict()
    console.print(f"method: {plan.method}{' (optimal)' if plan.optimal else ''}  {plan.note}", markup=False)
    console.print(f"risk {d['baseline_risk']:.4f} -> {d['residual_risk']:.4f} on the candidate paths "
                  f"({d['reduction']:.0%} less); re-evaluated on the whole graph: {d['true_baseline_risk']} -> "
                  f"{d['true_residual_risk']}", markup=False)
    console.print("risk = harm × P(at least one path succeeds); P is never below the best path's p", markup=False)
    for pair in d["pairs"]:
        console.print(f"  {pair['target']} ({pair['attacker']}): P {pair['p']:.4f} over "
                      f"{counted(pair['paths'], 'path')}, best path {pair['best_path_p']:.4f}; harm {pair['harm']:.2f}"
                      f"; risk {pair['risk']:.4f} -> {pair['residual_risk']:.4f}", markup=False)
    for name in ("greedy", "aco"):
        if plan.gap and name in plan.gap:
            g = plan.gap[name]
            console.print(f"{name} on the same model: residual {g['residual']}, optimality gap {g['relative_gap']} "
                          f"({g['seconds']} s)", markup=False)
    emit([c.as_dict() for c in plan.chosen], _Full.table, ["kind", "label", "cost"],
         title=f"controls: cost {plan.cost:g} of {budget:g}")


def _costs(path: Path) -> dict[str, float]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(Problem(Location(str(path)), f"cannot read costs: {exc}", "JSON {kind: cost}")) from None
    if not isinstance(doc, dict) or not all(isinstance(v, int | float) and v >= 0 for v in doc.values()):
        raise InputError(Problem(Location(str(path)), "costs must map control kinds to non-negative numbers",
                                 "e.g. {\"patch\": 2, \"segment\": 10}"))
    return {str(k): float(v) for k, v in doc.items()}
