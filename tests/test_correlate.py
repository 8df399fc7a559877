"""Alerts become incidents: joined by shared entities in a window, merged, suppressed, rated."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from healthswarm.detect.correlate import IDLE_ALERTS, Correlator, Suppression
from healthswarm.model import Alert, Asset, AttackRef, Criticality, EventRef, Level
from healthswarm.model.incident import Incident, Stage

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
    assert second.timeline[1].note.startswith("joined after 10 min: shares user:sta\\j.meyer")
    assert len(c.incidents) == 2


def test_the_title_counts_the_other_alerts_in_the_singular_and_the_plural() -> None:
    c = Correlator(ASSETS)
    incident = c.add(alert(0, "macro", "high", ("ws-3",), "execution", user=["u"]))
    assert incident.title == "rule macro on ws-3"
    c.add(alert(5, "nltest", "medium", (), "discovery", user=["u"]))
    assert incident.title == "rule macro on ws-3 (+1 alert)"
    c.add(alert(9, "whoami", "low", (), "discovery", user=["u"]))
    assert incident.title == "rule macro on ws-3 (+2 alerts)"


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


# --- incremental rating, and eviction that changes nothing but memory -------------------------------------

def _stream(n: int, entities: int, seed: int, spacing: timedelta, jitter: timedelta = timedelta(0),
            drift: int = 10**9, on_assets: float = 0.1) -> list[Alert]:
    """`n` alerts naming one or two of `entities` addresses (so incidents merge), a share `on_assets` of them on
    ASSETS, `spacing` apart and up to `jitter` out of order; every `drift` alerts the addresses are new ones."""
    import random

    rng = random.Random(seed)
    levels = ("low", "medium", "high", "critical")
    tactics = ("discovery", "execution", "lateral-movement", "")
    out = []
    for i in range(n):
        when = T0 + spacing * i - jitter * rng.random()
        ips = sorted({f"10.0.{i // drift}.{rng.randrange(entities)}" for _ in range(rng.choice((1, 1, 2)))})
        assets = (rng.choice(ASSETS).id,) if rng.random() < on_assets else ()
        tactic = rng.choice(tactics)
        out.append(Alert(detector="sigma", rule_id=f"r{i % 7}", title=f"rule {i % 7}", level=rng.choice(levels),
                         timestamp=when, events=(EventRef("f", i, f"k{i}"),), assets=assets,
                         tactics=(AttackRef(id="", shortname=tactic),) if tactic else (),
                         details={"entities": {"ip": ips}}))
    return out


def _survivors(c: Correlator, alerts: list[Alert]) -> dict[str, dict[str, Any]]:
    """Every incident the alerts made, as a caller of a bounded Correlator sees them: each one `add()` returned,
    less those merged into another (what the correlate worker writes)."""
    seen: dict[str, Incident] = {}
    for a in alerts:
        incident = c.add(a)
        if incident is not None:
            seen[incident.id] = incident
    merged = {m for i in seen.values() for m in i.merged_from}
    return {k: i.as_dict() for k, i in seen.items() if k in c.incidents or k not in merged}


def test_incremental_rating_matches_a_full_pass_even_out_of_order() -> None:
    c = Correlator(ASSETS)
    for a in _stream(600, 12, seed=1, spacing=timedelta(minutes=1), jitter=timedelta(minutes=30)):
        c.add(a)
    assert c.stats.merges > 0
    levels = ("informational", "low", "medium", "high", "critical")
    for incident in c.incidents.values():
        assert [e.timestamp for e in incident.timeline] == sorted(e.timestamp for e in incident.timeline)
        worst = max(incident.timeline, key=lambda e: (levels.index(e.level), -e.timestamp.timestamp()))
        assert incident.title.startswith(worst.title)
        safety = max((a.criticality.safety for a in ASSETS if a.id in incident.assets), default=Level.NONE)
        spread = incident.stage >= Stage.LATERAL_MOVEMENT
        assert incident.severity == min(4, incident.alert_severity + (safety >= Level.HIGH) + spread)


def test_eviction_gives_the_incidents_of_the_unbounded_correlator() -> None:
    # three days of alerts with a 6 h window: most incidents end and are evicted along the way; alerts come up
    # to 20 minutes out of order, within the 30 minutes of lateness allowed
    alerts = _stream(3_000, 40, seed=2, spacing=timedelta(minutes=1.5), jitter=timedelta(minutes=20), drift=100)
    window = timedelta(hours=6)
    unbounded = Correlator(ASSETS, window=window)
    for a in alerts:  # in the same order, out of order as it is (add_all would sort)
        unbounded.add(a)
    bounded = Correlator(ASSETS, window=window, lateness=timedelta(minutes=30))
    got = _survivors(bounded, alerts)
    assert len(bounded.incidents) < len(unbounded.incidents), "some incidents were evicted"
    assert got == {i.id: i.as_dict() for i in unbounded.incidents.values()}


def test_memory_stays_bounded_over_a_long_stream() -> None:
    # 60,000 alerts a minute apart (six weeks), addresses drifting so that old ones are never seen again (an
    # asset named all along would keep one incident joinable, and so in memory, for ever)
    c = Correlator(ASSETS, window=timedelta(hours=2), lateness=timedelta(minutes=30))
    sizes = []
    for i, a in enumerate(_stream(60_000, 300, seed=3, spacing=timedelta(minutes=1), drift=500, on_assets=0)):
        c.add(a)
        if i % 97 == 0:
            sizes.append((len(c.incidents), len(c._seen_alerts), len(c._by_entity), len(c._worst), len(c._safety)))
    incidents, alert_ids, entities, worst, safety = (max(column) for column in zip(*sizes, strict=True))
    # what is held: at most the alerts of one address generation (500) and of the window, the lateness and one
    # sweep interval after it (2 h 37 min, 157 alerts): never the 60,000 of the stream
    assert alert_ids <= 500 + 157
    assert incidents == worst == safety <= alert_ids
    assert entities <= 2 * 300  # the addresses of two generations at most
    assert c.stats.alerts == 60_000 and c.stats.duplicates == 0


def test_an_evicted_alert_is_no_longer_known_to_the_correlator() -> None:
    c = Correlator(ASSETS, window=timedelta(hours=1), lateness=timedelta(minutes=10))
    first = alert(0, "x", assets=("ws-3",))
    c.add(first)
    c.add(alert(24 * 60, "y", assets=("ws-9",)))  # a day later: the first incident can join nothing more
    assert len(c.incidents) == 1 and first.id not in c._seen_alerts
    # a redelivery would be placed again here: the correlate worker asks the store first (tests/test_worker.py)
    assert c.add(first) is not None


def test_a_source_far_behind_the_others_still_groups_and_its_incidents_do_not_pile_up() -> None:
    """A lagging source (an audit feed read in bulk) brings alerts far older than the eviction horizon: each burst
    of them still forms its incident, and the incidents it leaves behind are evicted once idle rather than kept
    for as long as no newer alert comes."""
    c = Correlator(ASSETS, window=timedelta(hours=24), lateness=timedelta(hours=1))
    bursts = 3 * IDLE_ALERTS // 2
    c.add(alert(2 * 24 * 60 * bursts, "newest", assets=("ws-9",)))  # the other sources are done: the clock is ahead
    held = []
    for burst in range(bursts):  # the late source: bursts two days apart, each of a user of its own
        placed = {c.add(alert(burst * 2 * 24 * 60 + m, f"r{m}", user=[f"u{burst}"])).id for m in range(3)}
        assert len(placed) == 1, "a burst forms one incident"
        held.append(len(c.incidents))
    assert max(held) <= 2 * IDLE_ALERTS // 3 + 2  # idle for IDLE_ALERTS alerts, found by the next sweep after that
    assert c.stats.alerts == 3 * bursts + 1 and len(c._joined) == len(c.incidents)
