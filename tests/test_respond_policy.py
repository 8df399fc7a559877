"""Playbooks by policy (respond/policy.py, respond/service.respond_by_policy) on a real store with the shipped
playbooks: which incidents the policy covers, safe actions run and the rest wait in the case, the
patient-safety guardrail holds whatever the policy says, and a playbook starts once per incident."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from healthswarm.errors import ConfigError
from healthswarm.model.incident import Incident, IncidentState
from healthswarm.respond.case_store import load_audit, load_case
from healthswarm.respond.playbooks.conditions import condition_problems
from healthswarm.respond.playbooks.library import Library
from healthswarm.respond.policy import AUTO, ResponsePolicy
from healthswarm.respond.service import respond_by_policy
from healthswarm.store import Store
from healthswarm.store.alerts import save_incidents
from healthswarm.store.inventory import replace_inventory
from healthswarm.store.respond_tables import respond_cases, respond_watchlist
from respond_helpers import T0, ward_inventory

LIBRARY = Library.load()
ASSETS = {a.id: a for a in ward_inventory().assets}


def incident(incident_id: str, severity: int, assets: set[str], techniques: set[str] = frozenset(),
             entities: set[tuple[str, str]] = frozenset(), tactics: set[str] = frozenset(),
             state: IncidentState = IncidentState.NEW) -> Incident:
    return Incident(incident_id, f"incident {incident_id}", T0, T0 + timedelta(minutes=5), state=state,
                    severity=severity, assets=set(assets), organisations={"h1"}, techniques=set(techniques),
                    tactics=set(tactics), entities=set(entities))


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store.open(f"sqlite:///{tmp_path / 'hs.db'}")
    with store.transaction() as conn:
        replace_inventory(conn, ward_inventory())
    return store


def save(store: Store, *items: Incident) -> None:
    with store.transaction() as conn:
        save_incidents(conn, items)


def test_auto_conditions_name_shipped_playbooks_and_parse() -> None:
    assert set(AUTO) <= set(LIBRARY.stems)
    assert not [p for condition in AUTO.values() for p in condition_problems(condition)]


def test_what_the_policy_covers() -> None:
    policy = ResponsePolicy(min_severity=3, techniques=("T1486",), tactics=("exfiltration",))
    doc = incident("I-1", 2, {"ws-1"}).as_dict()
    assert policy.covers(doc, ASSETS) == ""
    assert policy.covers({**doc, "severity": 3}, ASSETS) == "severity 3 ≥ 3"
    assert policy.covers({**doc, "techniques": ["T1486.001"]}, ASSETS) == "technique T1486.001"
    assert policy.covers({**doc, "tactics": ["Exfiltration"]}, ASSETS) == "tactic Exfiltration"
    assert policy.covers({**doc, "assets": ["pump-1", "ecg-1"]}, ASSETS) == "safety-critical asset pump-1"
    assert ResponsePolicy(safety_critical=False).covers({**doc, "assets": ["pump-1"]}, ASSETS) == ""
    assert policy.covers({**doc, "severity": 4, "state": "closed"}, ASSETS) == ""


def test_safe_actions_run_the_rest_wait_and_a_playbook_starts_once(store: Store, tmp_path: Path) -> None:
    phishing = incident("I-phish", 3, {"ws-1"}, {"T1566.001"},
                        {("ip", "203.0.113.9"), ("domain", "evil.example"), ("user", "jdoe")})
    quiet = incident("I-quiet", 1, {"ws-1"})
    save(store, phishing, quiet)
    policy = ResponsePolicy(playbooks=("auto",), auto_actions=("watchlist-add",))
    (response,) = respond_by_policy(store, policy, ["I-phish", "I-quiet"], library=LIBRARY, workspace=tmp_path,
                                    now=T0 + timedelta(hours=1))
    assert response.opened and response.reason == "severity 3 ≥ 3"
    assert [r.name for r in response.runs] == [LIBRARY.find("phishing-credential-theft").name]
    statuses = {(p.kind, p.target): p.status for r in response.runs for p in r.proposals}
    assert statuses[("watchlist-add", "ipv4:203.0.113.9")] == "executed"  # safe: run by the policy
    assert statuses[("isolate-host", "ws-1")] == "proposed"  # disruptive: waits for an analyst
    with store.read() as conn:
        watched = conn.execute(select(func.count()).select_from(respond_watchlist)).scalar_one()
        case = load_case(conn, response.case)
    assert watched >= 1
    assert any(t.title.startswith("Approve and run isolate-host on ws-1") for t in case.tasks)
    assert response.waiting == sum(t.title.startswith("Approve and run") for t in case.tasks)

    # a restart (a new store object on the same database) and the same incidents again: nothing starts twice
    again = Store.open(str(store.engine.url))
    (second,) = respond_by_policy(again, policy, None, library=LIBRARY, workspace=tmp_path,
                                  now=T0 + timedelta(hours=2))
    assert not second.opened and second.case == response.case and second.runs == []
    with again.read() as conn:
        runs = [e for e in load_audit(conn, response.case) if e.action == "playbook-run"]
        cases = conn.execute(select(func.count()).select_from(respond_cases)).scalar_one()
    assert len(runs) == 1 and cases == 1


def test_the_guardrail_holds_a_life_critical_device_whatever_the_policy_says(store: Store, tmp_path: Path) -> None:
    pump = incident("I-pump", 2, {"pump-1", "ws-1"}, {"T0831"})
    save(store, pump)
    reckless = ResponsePolicy(min_severity=4, auto_actions=("isolate-host", "quarantine-port", "watchlist-add"))
    (response,) = respond_by_policy(store, reckless, ["I-pump"], library=LIBRARY, workspace=tmp_path, now=T0)
    assert response.reason == "safety-critical asset pump-1"  # below min_severity, covered for the pump
    assert LIBRARY.find("medical-device-compromise").name in [r.name for r in response.runs]
    on_pump = [p for r in response.runs for p in r.proposals if p.target == "pump-1"]
    assert {p.kind for p in on_pump} >= {"isolate-host", "quarantine-port"}
    assert all(p.status == "awaiting-approval" and p.approval is not None for p in on_pump)
    assert not (tmp_path / "respond" / response.case / "isolate-host-pump-1.nft").exists()
    with store.read() as conn:
        case = load_case(conn, response.case)
    held = [t.title for t in case.tasks if "pump-1" in t.title and "patient safety" in t.title]
    assert held and all("first:" in title for title in held)  # the clinical fallback comes first


def test_a_grown_incident_updates_its_case_and_starts_what_now_matches(store: Store, tmp_path: Path) -> None:
    save(store, incident("I-grow", 3, {"ws-1"}))
    policy = ResponsePolicy(playbooks=("auto", "notify-stakeholders"))
    (first,) = respond_by_policy(store, policy, ["I-grow"], library=LIBRARY, workspace=tmp_path, now=T0)
    assert [r.name for r in first.runs] == [LIBRARY.find("notify-stakeholders").name]
    save(store, incident("I-grow", 3, {"ws-1", "mon-1"}, {"T1486"}))  # correlation grew it
    (second,) = respond_by_policy(store, policy, ["I-grow"], library=LIBRARY, workspace=tmp_path, now=T0)
    assert not second.opened and second.case == first.case
    assert {r.name for r in second.runs} == {LIBRARY.find("medical-device-compromise").name,
                                            LIBRARY.find("ransomware-imaging").name}
    with store.read() as conn:
        case = load_case(conn, first.case)
        grew = [e.data for e in load_audit(conn, first.case) if e.action == "incident-grew"]
    assert "mon-1" in case.assets and "T1486" in case.techniques
    assert grew and grew[0]["assets"] == ["mon-1"]


def test_the_agent_refuses_an_unknown_playbook_or_action(store: Store, tmp_path: Path) -> None:
    import threading

    from healthswarm.agent.config import RespondConfig
    from healthswarm.agent.respond import PolicyResponder

    with pytest.raises(ConfigError, match=r"respond\.playbooks: no playbook 'phishing'"):
        PolicyResponder(store, RespondConfig(playbooks=("phishing",)), tmp_path, threading.Lock(), LIBRARY)
    with pytest.raises(ConfigError, match=r"respond\.auto_actions: no action 'reboot'"):
        PolicyResponder(store, RespondConfig(auto_actions=("reboot",)), tmp_path, threading.Lock(), LIBRARY)


def test_the_respond_section_of_agent_toml() -> None:
    from healthswarm.agent.config import DEFAULT_CONFIG, RespondConfig, load_config, parse_config

    assert "[respond]" in DEFAULT_CONFIG and load_config(None).respond == RespondConfig()  # comments = defaults
    config = parse_config({"respond": {"min_severity": 4, "techniques": ["T1486"], "playbooks": ["auto"]}})
    assert config.respond.enabled and config.respond.covers({"severity": 2, "techniques": ["T1486"]}, {})
    with pytest.raises(ConfigError, match=r"respond\.playbook: unknown key"):
        parse_config({"respond": {"playbook": ["auto"]}})
    with pytest.raises(ConfigError, match=r"respond\.min_severity: expected 0 \(informational\) to 4"):
        parse_config({"respond": {"min_severity": 5}})


def test_external_observables_leave_out_what_is_ours() -> None:
    """`case.external-observables` with the demo inventory: an own workstation's address and name, the
    organisation's domain, internal ranges and dotless names stay out; the attacker's side is given."""
    from healthswarm.inventory import load_inventory
    from healthswarm.respond.actions import ActionContext, resolve_targets
    from healthswarm.respond.cases import Case, Observable

    demo = load_inventory([Path(__file__).resolve().parents[1] / "src" / "healthswarm" / "demo" / "ecosystem.yaml"])
    ours = [("ipv4", "10.10.1.103"), ("domain", "sta-ws-03"), ("domain", "portal.sta.example"),
            ("domain", "evil.sta.example"), ("url", "https://PORTAL.sta.example:8443/login"),
            ("email", "it@sta.example"), ("ipv4", "192.168.7.7"), ("ipv6", "::ffff:10.10.1.103"),
            ("domain", "WS-UNKNOWN-9"), ("domain", "fileserver.st-aurelia.local"), ("url", "http://10.10.0.20/x"),
            ("filename", "invoice.pdf.exe")]
    outside = [("ipv4", "198.51.100.77"), ("domain", "update-cdn.example.net"), ("url", "https://evil.example/a"),
               ("email", "hr@phish.example"), ("sha256", "a" * 64), ("ipv4", "203.0.113.9")]
    case = Case("CASE-1", "t", T0, T0, observables=[Observable(t, v) for t, v in ours + outside])
    ctx = ActionContext(case=case, assets={a.id: a for a in demo.assets}, now=T0)
    assert resolve_targets("case.external-observables", ctx) == [f"{t}:{v}" for t, v in outside]
