"""pySigma value types → condition nodes made of atoms. One converter per type in `CONVERTERS`.

A node is a plain tuple: `("atom", atom)`, `("and", children)`, `("or", children)`, `("not", child)`,
`("const", bool)`. Modifiers have already been applied by pySigma when the rule was parsed
(`contains` put wildcards around a string, `base64offset` produced an expansion, `windash` variants,
`cidr` a network, `gt` a comparison, `fieldref` a reference, ...); what remains is to map the
resulting value objects onto atoms with the right case rule.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sigma.types import (
    CompareOperators,
    Placeholder,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaQueryExpression,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SigmaTimestampPart,
    SpecialChars,
)

from healthswarm.detect.sigma.atoms import MULTI, SINGLE
from healthswarm.detect.sigma.regexes import compile_safe
from healthswarm.model.words import counted

Node = tuple[Any, ...]


class CompileError(ValueError):
    """A rule cannot be evaluated by this engine; the message says why."""


class Context:
    """What value conversion needs besides the value: configured `|expand` placeholder values."""

    def __init__(self, placeholders: Mapping[str, Sequence[str]] | None = None) -> None:
        self.placeholders = {k: list(v) for k, v in (placeholders or {}).items()}


def _parts(value: SigmaString) -> tuple[str | int, ...]:
    out: list[str | int] = []
    for part in value.s:
        if isinstance(part, str):
            if out and isinstance(out[-1], str):
                out[-1] += part
            else:
                out.append(part)
        elif part is SpecialChars.WILDCARD_MULTI:
            if not out or out[-1] != MULTI:  # `**` means `*`
                out.append(MULTI)
        elif part is SpecialChars.WILDCARD_SINGLE:
            out.append(SINGLE)
        else:
            raise CompileError(f"unexpected part {part!r} in value {value.original!r}")
    return tuple(out)


def string_node(field: str | None, parts: tuple[str | int, ...], cased: bool) -> Node:
    """The cheapest atom that tests a (wildcard) string exactly as a glob would."""
    if field is None:
        return ("atom", ("keyword", None, parts, cased))

    def lit(s: str | int) -> str:
        return str(s) if cased else str(s).lower()

    n = len(parts)
    if n == 0:
        return ("atom", ("eq", field, "", cased))
    if n == 1 and isinstance(parts[0], str):
        return ("atom", ("eq", field, lit(parts[0]), cased))
    if n == 2 and parts[0] == MULTI and isinstance(parts[1], str):
        return ("atom", ("endswith", field, lit(parts[1]), cased))
    if n == 2 and parts[1] == MULTI and isinstance(parts[0], str):
        return ("atom", ("startswith", field, lit(parts[0]), cased))
    if n == 3 and parts[0] == MULTI and parts[2] == MULTI and isinstance(parts[1], str):
        return ("atom", ("contains", field, lit(parts[1]), cased))
    return ("atom", ("glob", field, parts, cased))


def _string(field: str | None, value: SigmaString, ctx: Context) -> Node:
    cased = isinstance(value, SigmaCasedString)
    if value.contains_placeholder():
        missing = sorted({p.name for p in value.s if isinstance(p, Placeholder)} - set(ctx.placeholders))
        if missing:
            raise CompileError(f"{counted(len(missing), '|expand placeholder')} with no configured values: "
                               + ", ".join("%" + m + "%" for m in missing))
        expanded = value.replace_placeholders(lambda p: iter(ctx.placeholders[p.name]))
        return ("or", tuple(string_node(field, _parts(v), cased) for v in expanded))
    return string_node(field, _parts(value), cased)


def _number(field: str | None, value: SigmaNumber, ctx: Context) -> Node:
    number = value.number
    return string_node(field, (str(number),), False)


def _bool(field: str | None, value: SigmaBool, ctx: Context) -> Node:
    return string_node(field, ("true" if value.boolean else "false",), False)


def _null(field: str | None, value: SigmaNull, ctx: Context) -> Node:
    if field is None:
        raise CompileError("null needs a field")
    return ("atom", ("null", field, None, False))


def _exists(field: str | None, value: SigmaExists, ctx: Context) -> Node:
    return ("atom", ("exists", field, bool(value.exists), False))


_FLAGS = {SigmaRegularExpressionFlag.IGNORECASE: "i", SigmaRegularExpressionFlag.MULTILINE: "m",
          SigmaRegularExpressionFlag.DOTALL: "s"}


def _regex(field: str | None, value: SigmaRegularExpression, ctx: Context) -> Node:
    if field is None:
        raise CompileError("regular expressions without a field (keywords) are not supported")
    pattern = value.regexp.to_plain() if hasattr(value.regexp, "to_plain") else str(value.regexp)
    flags = "".join(sorted(_FLAGS[f] for f in value.flags))
    try:
        compile_safe(pattern, flags)  # reject now, with the reason, not at match time
    except ValueError as exc:
        raise CompileError(str(exc)) from None
    return ("atom", ("re", field, (pattern, flags), True))


def _cidr(field: str | None, value: SigmaCIDRExpression, ctx: Context) -> Node:
    if field is None:
        raise CompileError("cidr needs a field")
    return ("atom", ("cidr", field, str(value.network), False))


_OPERATORS = {CompareOperators.LT: "lt", CompareOperators.LTE: "lte", CompareOperators.GT: "gt",
              CompareOperators.GTE: "gte", CompareOperators.NEQ: "neq"}


def _compare(field: str | None, value: SigmaCompareExpression, ctx: Context) -> Node:
    if field is None:
        raise CompileError("numeric comparison needs a field")
    return ("atom", ("cmp", field, (_OPERATORS[value.op], float(value.number.number)), False))


def _fieldref(field: str | None, value: SigmaFieldReference, ctx: Context) -> Node:
    if field is None:
        raise CompileError("fieldref needs a field")
    mode = "startswith" if getattr(value, "starts_with", False) else "endswith" if getattr(
        value, "ends_with", False) else "eq"
    return ("atom", ("fieldref", field, (value.field, mode), False))


def _expansion(field: str | None, value: SigmaExpansion, ctx: Context) -> Node:
    return ("or", tuple(convert_value(field, v, ctx) for v in value.values))


def _timepart(field: str | None, value: SigmaTimestampPart, ctx: Context) -> Node:
    if field is None:
        raise CompileError("timestamp part modifiers need a field")
    return ("atom", ("timepart", field, (value.timestamp_part.name.lower(), int(value.number)), False))


def _query(field: str | None, value: SigmaQueryExpression, ctx: Context) -> Node:
    raise CompileError("query expressions are backend-specific and cannot be evaluated on events")


#: Most specific types first (SigmaCasedString before SigmaString, SigmaTimestampPart before SigmaNumber).
CONVERTERS: list[tuple[type, Callable[[str | None, Any, Context], Node]]] = [
    (SigmaString, _string),
    (SigmaTimestampPart, _timepart),
    (SigmaNumber, _number),
    (SigmaBool, _bool),
    (SigmaNull, _null),
    (SigmaExists, _exists),
    (SigmaRegularExpression, _regex),
    (SigmaCIDRExpression, _cidr),
    (SigmaCompareExpression, _compare),
    (SigmaFieldReference, _fieldref),
    (SigmaExpansion, _expansion),
    (SigmaQueryExpression, _query),
]


def convert_value(field: str | None, value: Any, ctx: Context) -> Node:
    for kind, converter in CONVERTERS:
        if isinstance(value, kind):
            return converter(field, value, ctx)
    raise CompileError(f"unsupported value type {type(value).__name__} for field {field!r}")
