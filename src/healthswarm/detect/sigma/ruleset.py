"""The compiled form of a rule set: plain dataclasses and tuples, no pySigma objects, so it pickles
fast and a cached rule set loads without importing pySigma at all. (No `slots=True`: slotted
dataclasses unpickle through a Python-level `__setstate__`, several times slower.)"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from healthswarm.errors import Problem
from healthswarm.model import AttackRef

#: Bump when the compiled form or the matching semantics change: it keys the cache.
ENGINE_VERSION = "sigma-engine-6"


@dataclass
class RuleMeta:
    """What an alert says about the rule that raised it."""

    key: str  # the rule's id, else its name, else source#title: how correlations refer to it
    id: str
    title: str
    level: str
    source: str
    name: str = ""
    status: str = ""
    description: str = ""
    tags: tuple[str, ...] = ()
    techniques: tuple[AttackRef, ...] = ()
    tactics: tuple[AttackRef, ...] = ()
    logsource: tuple[str | None, str | None, str | None] = (None, None, None)


@dataclass
class CompiledRule:
    meta: RuleMeta
    routes: tuple[tuple[Any, ...], ...]
    condition: tuple[Any, ...]


@dataclass
class CompiledCorrelation:
    meta: RuleMeta
    type: str  # event_count | value_count | temporal | temporal_ordered
    rules: tuple[str, ...]  # keys of the referenced rules, in order
    group_by: tuple[str, ...]
    timespan: float  # seconds
    operator: str  # lt lte gt gte eq neq
    count: float
    value_field: str | None = None  # value_count: the field whose distinct values are counted
    aliases: dict[str, dict[str, str]] = field(default_factory=dict)  # alias → rule key → field
    generate: bool = False


@dataclass
class RuleSet:
    """Every rule found: compiled, or listed in `problems` with the reason it cannot be evaluated.

    `notes` are warnings about rules that do compile (e.g. a log source with no known channel, so the
    rule is tested on all events of its product)."""

    rules: list[CompiledRule] = field(default_factory=list)
    correlations: list[CompiledCorrelation] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notes: list[Problem] = field(default_factory=list)
    files: int = 0
    key: str = ""
    cached: bool = False
    tables: Any = None  # the engine's linked tables (engine.Tables), computed once and cached

    @property
    def total(self) -> int:
        return len(self.rules) + len(self.correlations) + len(self.problems)
