"""Sigma rules evaluated natively on healthswarm events.

`load_rules(paths, cache_dir)` → a `RuleSet` (every rule compiled, or listed with its reason);
`SigmaDetector(ruleset)` → `detect(event)` / `flush()` give `Alert`s; `SigmaEngine` is the matcher
underneath (routing, field index, Aho-Corasick, memoised atoms). See docs/detection.md.
"""

#: The healthcare rule pack shipped with healthswarm.
from pathlib import Path as _Path

from healthswarm.detect.sigma.cache import CACHE_SUBDIR, load_rules
from healthswarm.detect.sigma.detector import SigmaDetector, make_alert
from healthswarm.detect.sigma.engine import SigmaEngine, event_view
from healthswarm.detect.sigma.ruleset import ENGINE_VERSION, CompiledCorrelation, CompiledRule, RuleMeta, RuleSet

HEALTHCARE_RULES = _Path(__file__).parent / "rules"

__all__ = [
    "CACHE_SUBDIR",
    "ENGINE_VERSION",
    "HEALTHCARE_RULES",
    "CompiledCorrelation",
    "CompiledRule",
    "RuleMeta",
    "RuleSet",
    "SigmaDetector",
    "SigmaEngine",
    "event_view",
    "load_rules",
    "make_alert",
]
