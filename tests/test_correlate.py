"""Alerts become incidents: joined by shared entities in a window, merged, suppressed, rated."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from healthswarm.detect.correlate import Correlator, Suppression
from healthswarm.model import Alert, Asset, AttackRef, Criticality, EventRef, Level
from healthswarm.model.incident import Stage

T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
ASSETS = [
    Asset("ws-3", "h1", "corp", "workstation", "WS 3", hostnames=("ws-03",)),
    Asset("fs-1", "h1", "corp", "file-server", "FS 1"),
    Asset("dc-1", "h1", "corp", "domain-controller", "DC 1", hostnames=("dc-01",)),
    Asset("pump-1", "h1", "iomt", "infusion-pump", "Pump", criticality=Criticality(safety=Level.CRITICAL)),
    Asset("ws-9", "h2", "corp", "workstation", "WS 9"),
]


def alert(minutes: int, rule: str, level: str = "medium", assets: tuple[str, ...] = (), tactic: str = "",
          **entities: list[str]) -> Alert:
    tactics = (AttackRef(id="", shortname=tactic),) if tactic else ()
    return Alert(detector="sigma", rule_id=rule, title=f"rule {rule}", level=level,
                 timestamp=T0 + timedelta(minutes=minutes), events=(EventRef("f", minutes, f"k{minutes}{rule}"),),
                 tactics=tactics, assets=assets, details={"entities": entities})


def test_shared_entities_join_and_unrelated_alerts_stay_apart() -> None:
    c = Correlator(ASSETS)
    first = c.add(alert(0, "macro", "high", ("ws-3",), "execution", user=["STA\\j.meyer"]))
    second = c.add(alert(10, "nltest", "medium", (), "discovery", user=["sta\\J.Meyer"]))  # same user, other case
    other = c.add(alert(12, "scan", "low", ("ws-9",), "discovery"))
    assert first is second and other is not first
    assert second.timeline[1].note.startswith("joined: shares user:sta\\j.meyer")
    assert len(c.incidents) == 2


def test_alerts_outside_the_window_start_a_new_incident() -> None:
    c = Correlator(ASSETS, window=timedelta(hours=1))
    a = c.add(alert(0, "x", assets=("ws-3",)))
    b = c.add(alert(120, "y", assets=("ws-3",)))
    assert a is not b


def test_hubs_never_join() -> None:
    c = Correlator(ASSETS)
    a = c.add(alert(0, "x", assets=("ws-3", "dc-1")))
    b = c.add(alert(5, "y", assets=("ws-9", "dc-1"), host=["DC-01"]))
    assert a is not b and ("asset", "dc-1") in a.entities


def test_a_bridging_alert_merges_incidents_and_stage_and_severity_follow() -> None:
    c = Correlator(ASSETS)
    a = c.add(alert(0, "macro", "high", ("ws-3",), "execution"))
    b = c.add(alert(5, "pump-smb", "medium", ("pump-1",), "discovery", ip=["10.10.4.12"]))
    assert a is not b
    bridge = c.add(alert(30, "lateral", "medium", ("ws-3",), "lateral-movement", ip=["10.10.4.12"]))
    assert bridge is a and c.stats.merges == 1 and b.id in a.merged_from and b.id not in c.incidents
    assert a.stage is Stage.LATERAL_MOVEMENT
    # high (3) + a safety-critical pump (+1) + spread (+1), capped at critical (4)
    assert a.severity == 4 and a.organisations == {"h1"}
    assert len(a.timeline) == 3 and sorted(a.alert_ids) == sorted(e.alert_id for e in a.timeline)
    assert [e.timestamp for e in a.timeline] == sorted(e.timestamp for e in a.timeline)


def test_duplicates_and_suppressions_are_counted_not_silently_lost() -> None:
    rule_off = Suppression("known scanner", T0 + timedelta(hours=1), rule_id="scan")
    host_off = Suppression("maintenance of ws-9", T0 + timedelta(hours=1), entity=("asset", "ws-9"))
    c = Correlator(ASSETS, suppressions=[rule_off, host_off])
    x = alert(0, "macro", assets=("ws-3",))
    assert c.add(x) is not None and c.add(x) is None
    assert c.add(alert(1, "scan", assets=("ws-3",))) is None
    assert c.add(alert(2, "other", assets=("ws-9",))) is None
    assert c.add(alert(90, "scan", assets=("ws-3",))) is not None  # the suppression has expired
    assert c.stats.duplicates == 1
    assert c.stats.suppressed == {"known scanner": 1, "maintenance of ws-9": 1}
