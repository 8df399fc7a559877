"""Discovery as events arrive (`inventory.discover.live.LiveDiscovery`), fed batch by batch as the agent's
detection hands on stored events: the picture it keeps is the one `inventory discover` and the Discovered view
read, no event counted twice or missed, and an undeclared flow into a safety-critical device raises its alert."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from healthswarm.demo import ECOSYSTEM, LOGS
from healthswarm.ingest.pipeline import Pipeline
from healthswarm.ingest.sources.file import ingest_file
from healthswarm.inventory import load_inventory
from healthswarm.inventory.discover.live import LiveDiscovery
from healthswarm.inventory.discover.service import (
    STATE,
    discover_incremental,
    discover_stored,
    discovered_view,
    observe_stored,
)
from healthswarm.model import Inventory
from healthswarm.store import Store
from healthswarm.store.events import search_events
from healthswarm.store.inventory import replace_inventory

# a workstation opens SMB on an ICU infusion pump (sta-pump-05, safety critical): nobody declared that
SMB_TO_PUMP = (b'{"timestamp":"2026-11-27T10:00:00.000000+0000","event_type":"flow","src_ip":"10.10.1.103",'
               b'"src_port":50123,"dest_ip":"10.10.4.15","dest_port":445,"proto":"TCP","app_proto":"smb",'
               b'"flow":{"pkts_toserver":4,"pkts_toclient":3,"bytes_toserver":800,"bytes_toclient":300}}\n')


@pytest.fixture(scope="module")
def inventory() -> Inventory:
    return load_inventory([ECOSYSTEM])


@pytest.fixture
def store(tmp_path: Path, inventory: Inventory) -> Iterator[Store]:
    store = Store.open(f"sqlite:///{tmp_path / 'healthswarm.db'}")
    with store.transaction() as conn:
        replace_inventory(conn, inventory)
    eve = tmp_path / "eve.json"
    eve.write_bytes(SMB_TO_PUMP)
    pipeline = Pipeline.for_store(store)
    for path in [*sorted(LOGS.iterdir()), eve]:
        ingest_file(pipeline, path)
    pipeline.close()
    yield store
    store.close()


def batches(store: Store, after: int = 0, size: int = 100) -> Iterator[tuple[list, int]]:
    """(events, id of the last) as the agent's detection step reads them after its cursor."""
    while True:
        with store.read() as conn:
            stored = search_events(conn, after_id=after, limit=size)
        if not stored:
            return
        after = stored[-1].id
        yield [s.event for s in stored], after


def saved_through(workspace: Path) -> int:
    return int(orjson.loads((workspace / STATE).read_bytes())["after_id"])


def test_fed_batch_by_batch_the_picture_is_the_batch_commands(store: Store, inventory: Inventory,
                                                              tmp_path: Path) -> None:
    live = LiveDiscovery(store, tmp_path, inventory, through=0, interval=0.0)
    alerts = []
    last = 0
    for events, last in batches(store):
        alerts += live.observe(events, last)
    assert saved_through(tmp_path) == last and live.discovery.events == 587
    # the undeclared SMB into the ICU pump: an alert with ATT&CK for ICS ids, once
    assert [a.title for a in alerts] == ["Undeclared smb/445 flow into safety-critical infusion-pump sta-pump-05"]
    assert {t.id for t in alerts[0].techniques} == {"T0886", "T0867"} and "attack.ics" in alerts[0].tags
    # what `inventory discover` and the Discovered view show now: the same as reading every stored event afresh
    _, fresh, _ = discover_stored(store)
    view = discovered_view(store, tmp_path)
    assert view.report.summary() == fresh.summary() and view.report.summary()["events"] == 587
    assert any(i.title == "sta-ws-03 → sta-pump-05 smb/445" for i in view.items)
    _, _, _, read = discover_incremental(store, tmp_path / STATE)
    assert read == 0   # nothing left for the batch command to read


def test_a_picture_ahead_of_the_cursor_is_rebuilt_and_a_gap_is_read(store: Store, inventory: Inventory,
                                                                    tmp_path: Path) -> None:
    every = list(batches(store))
    half = every[2][1]
    # `inventory discover` ran over every event; the agent's cursor is at `half`: no event may count twice
    discover_incremental(store, tmp_path / STATE)
    live = LiveDiscovery(store, tmp_path, inventory, through=half, interval=0.0)
    assert live.discovery.events == live.caught_up == half
    for events, last in every[3:]:
        live.observe(events, last)
    assert live.discovery.to_dict() == observe_stored(store).to_dict()
    # a picture behind the cursor reads the gap from the store
    gap = tmp_path / "gap"
    LiveDiscovery(store, gap, inventory, through=half, interval=0.0)
    live = LiveDiscovery(store, gap, inventory, through=every[-1][1], interval=0.0)
    assert live.caught_up == every[-1][1] - half and live.discovery.to_dict() == observe_stored(store).to_dict()
    with pytest.raises(ValueError, match="behind the picture"):
        live.observe(every[0][0], every[0][1])


def test_the_picture_is_written_every_interval_and_on_save(store: Store, inventory: Inventory, tmp_path: Path) -> None:
    now = [1000.0]
    live = LiveDiscovery(store, tmp_path, inventory, interval=60.0, clock=lambda: now[0])
    first, second, third, *_ = batches(store)
    live.observe(*first)
    assert saved_through(tmp_path) == 0   # not yet due
    now[0] += 61
    live.observe(*second)
    assert saved_through(tmp_path) == second[1]
    live.observe(*third)
    assert saved_through(tmp_path) == second[1]
    live.save()   # on shutdown
    assert saved_through(tmp_path) == third[1]


def test_run_among_the_callers_detectors_advance_keeps_the_picture_in_step(store: Store, inventory: Inventory,
                                                                           tmp_path: Path) -> None:
    """The agent's way: the detector runs in its detection step, `advance` follows the step's cursor."""
    live = LiveDiscovery(store, tmp_path, inventory, interval=0.0)
    alerts = []
    for events, last in batches(store, size=250):
        alerts += [a for e in events for a in live.detector.detect(e)]
        live.advance(last)
    assert len(alerts) == 1 and saved_through(tmp_path) == last
    assert live.discovery.to_dict() == observe_stored(store).to_dict()
