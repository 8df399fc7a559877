"""Sigma correlation rules in the stream: event_count, value_count, temporal, temporal_ordered; windows,
group-by, aliases, generate, and bounded memory."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

from healthswarm.detect.sigma import SigmaDetector, load_rules
from healthswarm.model import Alert, Event
from sigma_support import LOGIN_RULES as BASE
from sigma_support import ecs_event

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def detector(tmp_path: Path, correlation: str) -> SigmaDetector:
    (tmp_path / "base.yml").write_text(BASE, encoding="utf-8")
    (tmp_path / "corr.yml").write_text(textwrap.dedent(correlation), encoding="utf-8")
    ruleset = load_rules([tmp_path])
    assert not ruleset.problems, [str(p) for p in ruleset.problems]
    return SigmaDetector(ruleset)


def login(outcome: str, user: str, seconds: float, source_ip: str = "10.0.0.1") -> Event:
    return ecs_event({"observer.type": "test", "event.action": "login", "event.outcome": outcome, "user.name": user,
                      "source.ip": source_ip}, when=T0 + timedelta(seconds=seconds))


def correlated(alerts: list[Alert]) -> list[Alert]:
    return [a for a in alerts if a.detector == "sigma-correlation"]


def run(det: SigmaDetector, events: list[Event]) -> list[Alert]:
    out: list[Alert] = []
    for event in events:
        out.extend(det.detect(event))
    out.extend(det.flush())
    return out


EVENT_COUNT = """
    title: brute force
    id: 00000000-0000-0000-0000-0000000000c1
    correlation:
        type: event_count
        rules: [failed_login]
        group-by: [user.name]
        timespan: 1m
        condition: {gte: 3}
    level: high
    tags: [attack.credential-access, attack.t1110]
    """


def test_event_count_fires_per_group_within_the_window(tmp_path: Path) -> None:
    det = detector(tmp_path, EVENT_COUNT)
    events = [login("failure", "alice", s) for s in (0, 10, 20)] + [login("failure", "bob", s) for s in (0, 10)]
    alerts = correlated(run(det, events))
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert.rule_id == "00000000-0000-0000-0000-0000000000c1" and alert.level == "high"
    assert len(alert.events) == 3 and alert.details["group_by"] == {"user.name": "alice"}
    assert [t.id for t in alert.techniques] == ["T1110"]
    assert alert.details["entities"] == {"user": ["alice"], "ip": ["10.0.0.1"]}, "entities for the correlator"


def test_event_count_window_slides(tmp_path: Path) -> None:
    det = detector(tmp_path, EVENT_COUNT)
    spread = [login("failure", "alice", s) for s in (0, 40, 80, 120)]  # never 3 within 60 s
    assert correlated(run(det, spread)) == []


def test_generate_false_silences_the_referenced_rule(tmp_path: Path) -> None:
    det = detector(tmp_path, EVENT_COUNT)
    alerts = run(det, [login("failure", "alice", 0), login("success", "alice", 1)])
    assert [a.title for a in alerts] == ["successful login"]


def test_generate_true_keeps_the_referenced_rule(tmp_path: Path) -> None:
    loud = EVENT_COUNT.replace("        rules: [failed_login]", "        rules: [failed_login]\n        generate: true")
    det = detector(tmp_path, loud)
    alerts = run(det, [login("failure", "alice", 0)])
    assert [a.title for a in alerts] == ["failed login"]


def test_value_count_counts_distinct_values(tmp_path: Path) -> None:
    det = detector(tmp_path, """
        title: password spray
        correlation:
            type: value_count
            rules: [failed_login]
            group-by: [source.ip]
            timespan: 5m
            condition: {gte: 3, field: user.name}
        level: high
        """)
    same_user = [login("failure", "alice", s) for s in range(5)]
    assert correlated(run(det, same_user)) == []
    spray = [login("failure", u, i) for i, u in enumerate(["a", "b", "b", "c"])]
    alerts = correlated(run(det, spray))
    assert len(alerts) == 1 and alerts[0].details["value"] == 3


def test_temporal_needs_every_rule_in_the_window(tmp_path: Path) -> None:
    det = detector(tmp_path, """
        title: failure then success
        correlation:
            type: temporal
            rules: [failed_login, successful_login]
            group-by: [user.name]
            timespan: 1m
        level: high
        """)
    assert correlated(run(det, [login("failure", "alice", 0), login("success", "bob", 5)])) == []
    alerts = correlated(run(det, [login("success", "carol", 0), login("failure", "carol", 5)]))
    assert len(alerts) == 1, "temporal does not care about order"


def test_temporal_ordered_cares_about_order(tmp_path: Path) -> None:
    det = detector(tmp_path, """
        title: failure then success, in order
        correlation:
            type: temporal_ordered
            rules: [failed_login, successful_login]
            group-by: [user.name]
            timespan: 1m
        level: high
        """)
    assert correlated(run(det, [login("success", "carol", 0), login("failure", "carol", 5)])) == []
    assert len(correlated(run(det, [login("failure", "dave", 0), login("success", "dave", 5)]))) == 1
    late = [login("failure", "erin", 0), login("success", "erin", 120)]
    assert correlated(run(det, late)) == [], "outside the timespan"


TOO_FEW_SUCCESSES = """
    title: too few successes
    correlation:
        type: event_count
        rules: [successful_login]
        group-by: [user.name]
        timespan: 1m
        condition: {lt: 2}
    level: medium
    """


def test_lt_condition_fires_when_the_window_closes(tmp_path: Path) -> None:
    det = detector(tmp_path, TOO_FEW_SUCCESSES)
    alerts = correlated(run(det, [login("success", "alice", 0), login("success", "bob", 0),
                                  login("success", "bob", 1)]))
    assert [a.details["group_by"]["user.name"] for a in alerts] == ["alice"]


def test_expire_judges_only_the_windows_whose_timespan_has_passed(tmp_path: Path) -> None:
    det = detector(tmp_path, TOO_FEW_SUCCESSES)
    for event in (login("success", "alice", 0), login("success", "bob", 50)):
        det.detect(event)
    assert correlated(det.expire(T0 + timedelta(seconds=30))) == [], "no window has closed yet"
    closed = correlated(det.expire(T0 + timedelta(seconds=61)))
    assert [a.details["group_by"]["user.name"] for a in closed] == ["alice"]  # bob's minute is still running
    det.detect(login("success", "bob", 70))  # bob's second success in his window: not "too few"
    assert correlated(det.expire(T0 + timedelta(seconds=200))) == []
    assert correlated(det.flush()) == []  # alice was judged once, bob's window is gone


def test_aliases_map_group_fields_per_rule(tmp_path: Path) -> None:
    det = detector(tmp_path, """
        title: same host
        correlation:
            type: temporal
            rules: [failed_login, successful_login]
            group-by: [who]
            timespan: 1m
            aliases:
                who:
                    failed_login: user.name
                    successful_login: source.ip
        level: high
        """)
    events = [login("failure", "10.9.9.9", 0), login("success", "x", 1, source_ip="10.9.9.9")]
    assert len(correlated(run(det, events))) == 1


def test_memory_is_bounded(tmp_path: Path) -> None:
    (tmp_path / "base.yml").write_text(BASE, encoding="utf-8")
    (tmp_path / "corr.yml").write_text(textwrap.dedent(EVENT_COUNT), encoding="utf-8")
    det = SigmaDetector(load_rules([tmp_path]), max_groups=50, max_window=5)
    for i in range(2000):
        det.detect(login("failure", f"user{i}", i / 100))
    state = det.correlations._state[0]
    assert len(state) == 50
    assert all(len(w) <= 5 for w in state.values())
