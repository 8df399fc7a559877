"""Rule loading: bad rules are listed per rule with a reason while the others keep working; the whole SigmaHQ
set loads; the compiled-rule cache is keyed by content and engine version."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from conftest import shared
from healthswarm.detect.sigma import SigmaEngine, load_rules
from healthswarm.detect.sigma.regexes import RegexRejected, compile_safe
from sigma_support import windows_event

GOOD = """
title: good rule
id: 11111111-1111-1111-1111-111111111111
logsource: {product: windows}
detection:
    sel:
        Name: trigger
    condition: sel
level: high
"""


def rule(detection: str, title: str = "bad rule", extra: str = "") -> str:
    body = textwrap.indent(textwrap.dedent(detection).strip("\n"), "    ")
    return f"title: {title}\nlogsource: {{product: windows}}\ndetection:\n{body}\nlevel: low\n{extra}"


BAD: dict[str, tuple[str, str]] = {
    "broken_yaml.yml": ("title: x\ndetection: [unclosed\n  sel: {", "invalid YAML"),
    "unknown_modifier.yml": (rule("sel:\n  Name|frobnicate: x\ncondition: sel"), "frobnicate"),
    "invalid_regex.yml": (rule("sel:\n  Name|re: 'a(b'\ncondition: sel"), "is invalid"),
    # catastrophic and beyond a linear-time engine (backreference): refused (RE2-expressible ones run on RE2)
    "catastrophic_regex.yml": (rule("sel:\n  Name|re: '(a+)+\\1$'\ncondition: sel"), "is invalid"),
    "missing_condition_ref.yml": (rule("sel:\n  Name: x\ncondition: sel and nothere"), "nothere"),
    "placeholder.yml": (rule("sel:\n  Name|expand: '%unset%'\ncondition: sel"), "%unset%"),
    "not_a_mapping.yml": ("- just\n- a list\n", "not a mapping"),
    "value_sum.yml": (textwrap.dedent("""
        title: unsupported correlation
        correlation:
            type: value_sum
            rules: [11111111-1111-1111-1111-111111111111]
            group-by: [User]
            timespan: 5m
            condition: {gte: 10, field: Bytes}
        level: high
        """), "value_sum"),
    "unknown_reference.yml": (textwrap.dedent("""
        title: dangling correlation
        correlation:
            type: event_count
            rules: [does-not-exist]
            group-by: [User]
            timespan: 5m
            condition: {gte: 2}
        level: high
        """), "does-not-exist"),
}


def test_each_bad_rule_is_listed_with_file_and_reason_and_good_rules_still_work(tmp_path: Path) -> None:
    (tmp_path / "good.yml").write_text(GOOD, encoding="utf-8")
    for name, (text, _) in BAD.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    ruleset = load_rules([tmp_path])
    assert [r.meta.title for r in ruleset.rules] == ["good rule"]
    messages = {Path(p.location.file).name: str(p) for p in ruleset.problems}
    for name, (_, reason) in BAD.items():
        assert name in messages, f"{name} not reported; problems: {list(messages)}"
        assert reason in messages[name], f"{name}: {messages[name]!r} does not mention {reason!r}"
    assert len(ruleset.problems) == len(BAD)
    engine = SigmaEngine(ruleset)
    assert engine.match(windows_event({"Channel": "x", "EventID": 1, "Name": "TRIGGER"})) == [0]


def test_missing_rule_path_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    ruleset = load_rules([tmp_path / "nope"])
    assert not ruleset.rules
    assert "no such file or folder" in str(ruleset.problems[0])


@pytest.mark.parametrize(("pattern", "engine"), [
    ("^abc$", "re"), ("a.*b", "re"), ("(a+)+$", "re2"), ("(a|aa)*c", "re2"), ("x.*y.*z.*w", "re2"),
    ("(?i)^cmd\\.exe$", "re"), ("(foo)\\1", "re"),
])
def test_regex_engine_choice(pattern: str, engine: str) -> None:
    _, chosen = compile_safe(pattern)
    assert chosen == engine


@pytest.mark.parametrize("pattern", ["(a+)+\\1", "((a*)*b)(?=c)", "a(b"])
def test_regex_rejected(pattern: str) -> None:
    with pytest.raises(RegexRejected):
        compile_safe(pattern)


def test_cache_hit_is_fast_and_keyed_by_content(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "good.yml").write_text(GOOD, encoding="utf-8")
    cache = tmp_path / "cache"
    cold = load_rules([rules], cache_dir=cache)
    warm = load_rules([rules], cache_dir=cache)
    assert not cold.cached and warm.cached
    assert [r.meta.id for r in warm.rules] == [r.meta.id for r in cold.rules]
    (rules / "good.yml").write_text(GOOD.replace("trigger", "other"), encoding="utf-8")
    changed = load_rules([rules], cache_dir=cache)
    assert not changed.cached, "a changed rule file must not be served from the cache"
    engine = SigmaEngine(changed)
    assert engine.match(windows_event({"Channel": "x", "EventID": 1, "Name": "other"})) == [0]


def test_attack_tags_resolve_to_names(tmp_path: Path) -> None:
    shared("attack", "enterprise-attack.json")
    (tmp_path / "r.yml").write_text(GOOD + "tags:\n    - attack.execution\n    - attack.t1059.001\n",
                                    encoding="utf-8")
    meta = load_rules([tmp_path]).rules[0].meta
    assert [(t.id, t.name) for t in meta.techniques] == [("T1059.001", "PowerShell")]
    assert [(t.id, t.name) for t in meta.tactics] == [("TA0002", "Execution")]


def test_attack_without_data_keeps_ids(tmp_path: Path) -> None:
    (tmp_path / "r.yml").write_text(GOOD + "tags:\n    - attack.execution\n    - attack.t1059.001\n",
                                    encoding="utf-8")
    meta = load_rules([tmp_path], attack_dir=tmp_path / "no-attack-data").rules[0].meta
    assert [(t.id, t.name) for t in meta.techniques] == [("T1059.001", "")]
    assert [t.shortname for t in meta.tactics] == ["execution"]


@pytest.mark.slow
def test_all_sigmahq_rules_load_and_unevaluable_ones_have_reasons(tmp_path: Path) -> None:
    base = shared("sigma")
    folders = sorted(base.glob("rules*"))
    ruleset = load_rules(folders, cache_dir=tmp_path)
    files = sum(1 for f in folders for p in f.rglob("*") if p.suffix in (".yml", ".yaml"))
    assert files >= 3700
    assert ruleset.total >= files, "every rule is either compiled or listed"
    assert len(ruleset.problems) <= 40, [str(p) for p in ruleset.problems]
    for problem in ruleset.problems:
        assert problem.location.file and problem.message, problem
    # the only unevaluable SigmaHQ rules are those needing site-specific |expand values
    assert all("placeholder" in p.message for p in ruleset.problems), [str(p) for p in ruleset.problems]
    # the second load comes from the cache (how fast is bench/detection.py's business, not a test's)
    warm = load_rules(folders, cache_dir=tmp_path)
    assert warm.cached and len(warm.rules) == len(ruleset.rules)


def test_processing_pipeline_maps_rule_fields_to_ecs(tmp_path: Path) -> None:
    """Rules written against another taxonomy meet ECS events through a pySigma processing pipeline."""
    from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
    from sigma.processing.transformations import FieldMappingTransformation

    from sigma_support import ecs_event

    (tmp_path / "r.yml").write_text(textwrap.dedent("""
        title: curl to pastebin
        logsource: {product: linux, category: process_creation}
        detection:
            sel:
                CommandLine|contains: 'pastebin.com'
            condition: sel
        """), encoding="utf-8")
    pipeline = ProcessingPipeline(name="to ECS", items=[ProcessingItem(
        FieldMappingTransformation({"CommandLine": "process.command_line"}))])
    event = ecs_event({"observer.type": "auditd", "process.command_line": "curl https://PASTEBIN.com/raw/x"})
    assert SigmaEngine(load_rules([tmp_path], pipeline=pipeline)).match(event) == [0]
    assert SigmaEngine(load_rules([tmp_path])).match(event) == [], "without the mapping the field is not there"
