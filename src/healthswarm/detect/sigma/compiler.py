"""pySigma rule objects → the engine's compiled form (`CompiledRule`, `CompiledCorrelation`).

The detection is taken from pySigma's own post-processed condition tree (so `1 of sel*`, `all of
them`, `|all`, `neq`, lists and parentheses mean exactly what pySigma says), then each field/value
leaf becomes an atom (`values.py`). Anything the engine cannot evaluate raises `CompileError` with
the reason; the loader lists it per rule.
"""

from __future__ import annotations

from typing import Any

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule

from healthswarm.detect.attack import AttackCatalog
from healthswarm.detect.sigma.logsource import routes_for
from healthswarm.detect.sigma.ruleset import CompiledCorrelation, CompiledRule, RuleMeta
from healthswarm.detect.sigma.values import CompileError, Context, Node, convert_value

SUPPORTED_CORRELATIONS = ("event_count", "value_count", "temporal", "temporal_ordered")
LEVEL_DEFAULT = "medium"


def rule_key(rule: SigmaRule | SigmaCorrelationRule) -> str:
    if rule.id is not None:
        return str(rule.id)
    if rule.name:
        return rule.name
    source = str(rule.source.path) if rule.source else ""
    return f"{source}#{rule.title}"


def _meta(rule: SigmaRule | SigmaCorrelationRule, attack: AttackCatalog) -> RuleMeta:
    tags = tuple(f"{t.namespace}.{t.name}" for t in rule.tags)
    techniques, tactics = attack.from_tags(tags)
    logsource = getattr(rule, "logsource", None)
    return RuleMeta(
        key=rule_key(rule),
        id=str(rule.id) if rule.id else (rule.name or ""),
        title=rule.title,
        level=str(rule.level).lower() if rule.level else LEVEL_DEFAULT,
        source=str(rule.source.path) if rule.source else "",
        name=rule.name or "",
        status=str(rule.status).lower() if rule.status else "",
        description=(rule.description or "").strip(),
        tags=tags,
        techniques=techniques,
        tactics=tactics,
        logsource=(logsource.product, logsource.category, logsource.service) if logsource else (None, None, None),
    )


def _simplify(kind: str, children: list[Node]) -> Node:
    flat: list[Node] = []
    for child in children:
        if child[0] == kind:
            flat.extend(child[1])
        else:
            flat.append(child)
    if len(flat) == 1:
        return flat[0]
    return (kind, tuple(flat))


def condition_node(item: Any, ctx: Context) -> Node:
    """A pySigma condition tree → a node tree of atoms."""
    if isinstance(item, ConditionAND):
        return _simplify("and", [condition_node(a, ctx) for a in item.args])
    if isinstance(item, ConditionOR):
        return _simplify("or", [condition_node(a, ctx) for a in item.args])
    if isinstance(item, ConditionNOT):
        return ("not", condition_node(item.args[0], ctx))
    if isinstance(item, ConditionFieldEqualsValueExpression):
        return convert_value(item.field, item.value, ctx)
    if isinstance(item, ConditionValueExpression):
        return convert_value(None, item.value, ctx)
    raise CompileError(f"unsupported condition element {type(item).__name__}")


def _errors(rule: SigmaRule | SigmaCorrelationRule) -> None:
    if rule.errors:
        raise CompileError("; ".join(str(e) for e in rule.errors))


def compile_rule(rule: SigmaRule, ctx: Context, attack: AttackCatalog) -> tuple[CompiledRule, str]:
    """The compiled rule and a routing note ('' when its log source is fully known)."""
    _errors(rule)
    try:
        trees = [c.parsed for c in rule.detection.parsed_condition]
    except SigmaError as exc:
        raise CompileError(f"condition: {exc}") from None
    if not trees:
        raise CompileError("the detection has no condition")
    nodes = [condition_node(t, ctx) for t in trees]
    condition = nodes[0] if len(nodes) == 1 else _simplify("or", nodes)
    routes, note = routes_for(rule.logsource.product, rule.logsource.category, rule.logsource.service)
    return CompiledRule(meta=_meta(rule, attack), routes=routes, condition=condition), note


_OPERATORS = ("lt", "lte", "gt", "gte", "eq", "neq")


def check_correlation(rule: SigmaCorrelationRule) -> str:
    """The correlation's type, if this engine supports it (checked before references are resolved)."""
    _errors(rule)
    kind = str(rule.type).lower()
    if kind not in SUPPORTED_CORRELATIONS:
        raise CompileError(f"correlation type {kind!r} is not supported (expected one of "
                           f"{', '.join(SUPPORTED_CORRELATIONS)})")
    return kind


def compile_correlation(rule: SigmaCorrelationRule, attack: AttackCatalog) -> CompiledCorrelation:
    kind = check_correlation(rule)
    condition = rule.condition
    operator = getattr(getattr(condition, "op", None), "name", "").lower()
    if operator not in _OPERATORS:
        raise CompileError("correlation condition must be one comparison (gte, gt, lte, lt, eq, neq)")
    fieldref = getattr(condition, "fieldref", None)
    if isinstance(fieldref, list):
        if len(fieldref) != 1:
            raise CompileError("value_count over several fields is not supported")
        fieldref = fieldref[0]
    if kind == "value_count" and not fieldref:
        raise CompileError("value_count needs condition.field")
    refs: list[str] = []
    for ref in rule.rules or []:
        target = getattr(ref, "rule", None)
        if target is None:
            raise CompileError(f"referenced rule {ref.reference!r} was not found among the loaded rules")
        refs.append(rule_key(target))
    aliases: dict[str, dict[str, str]] = {}
    for alias in rule.aliases:
        aliases[alias.alias] = {rule_key(r.rule) if hasattr(r, "rule") else r.reference: f
                                for r, f in alias.mapping.items()}
    return CompiledCorrelation(
        meta=_meta(rule, attack),
        type=kind,
        rules=tuple(refs),
        group_by=tuple(rule.group_by or ()),
        timespan=float(rule.timespan.seconds),
        operator=operator,
        count=float(condition.count),
        value_field=fieldref,
        aliases=aliases,
        generate=bool(rule.generate),
    )
