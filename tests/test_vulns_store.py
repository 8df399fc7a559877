"""The advisories and findings repository, on SQLite and PostgreSQL (the `store` fixture runs both)."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import select

from conftest import shared
from healthswarm.inventory.advisories import load_advisories, match_findings
from healthswarm.model import Asset, FindingStatus, Inventory, Organisation, Zone
from healthswarm.store import Store
from healthswarm.store.inventory import replace_inventory
from healthswarm.store.tables import findings as findings_table
from healthswarm.store.vulns import (
    advisory_from_dict,
    advisory_to_dict,
    count_advisories,
    load_findings,
    replace_findings,
    save_advisories,
)
from healthswarm.store.vulns import load_advisories as stored_advisories


def _inventory() -> Inventory:
    def device(asset_id: str, vendor: str, product: str, version: str, kind: str) -> Asset:
        return Asset(id=asset_id, organisation="h1", zone="h1-iomt", kind=kind, name=asset_id, vendor=vendor,
                     product=product, version=version)

    return Inventory(
        organisations=(Organisation("h1", "Hospital One", "hospital"),),
        zones=(Zone("h1-iomt", "h1", "IoMT", "iomt"),),
        assets=(
            device("pump-1", "BD", "Alaris 8015 PC unit", "9.19", "infusion-pump"),
            device("vent-1", "Hamilton Medical", "T1 Ventilator", "2.2.3", "ventilator"),
            device("vent-2", "Hamilton Medical", "T1 Ventilator", "", "ventilator"),
            device("pc-1", "Dell", "OptiPlex 7090", "1.0", "workstation"),
        ),
    )


def test_advisories_round_trip_and_upsert(store: Store) -> None:
    advisories, problems = load_advisories([shared("csaf-icsma")])
    assert problems == []
    with store.transaction() as conn:
        assert save_advisories(conn, advisories) == 144
    with store.read() as conn:
        loaded = stored_advisories(conn)
        assert count_advisories(conn) == 144
    assert sorted(loaded, key=lambda a: a.id) == sorted(advisories, key=lambda a: a.id)
    # upsert: the same id again replaces, it does not duplicate
    changed = dataclasses.replace(advisories[0], title="revised title")
    with store.transaction() as conn:
        save_advisories(conn, [changed])
    with store.read() as conn:
        assert count_advisories(conn) == 144
        (again,) = stored_advisories(conn, ids=[changed.id])
    assert again.title == "revised title" and again == changed


def test_advisory_dict_round_trip_is_exact() -> None:
    advisories, _ = load_advisories([shared("csaf-icsma", "icsma-22-251-01.json")])
    assert advisory_from_dict(advisory_to_dict(advisories[0])) == advisories[0]


def test_findings_replace_and_filters(store: Store) -> None:
    advisories, _ = load_advisories([shared("csaf-icsma", "icsma-17-017-02.json"),
                                     shared("csaf-icsma", "icsma-21-047-01.json")])
    inventory = _inventory()
    found = match_findings(advisories, inventory.assets)
    assert found
    with store.transaction() as conn:
        replace_inventory(conn, inventory)
        save_advisories(conn, advisories)
        assert replace_findings(conn, found) == len(found)
    with store.read() as conn:
        everything = load_findings(conn)
        vent2 = load_findings(conn, asset="vent-2")
        possibly = load_findings(conn, status=FindingStatus.POSSIBLY_AFFECTED)
        low = load_findings(conn, severity="low")
        medium_or_low = load_findings(conn, severity=["medium", "low"])
        one_advisory = load_findings(conn, advisory="ICSMA-17-017-02")
    assert sorted(everything, key=_key) == sorted(found, key=_key)  # explanation and all
    assert {f.asset_id for f in vent2} == {"vent-2"}
    assert {f.asset_id for f in possibly} == {"vent-2"}
    assert low and all(f.severity == "low" for f in low)
    assert len(medium_or_low) == len(everything)
    assert {f.asset_id for f in one_advisory} == {"pump-1"}
    assert everything[0].cvss_score == max(f.cvss_score or 0 for f in found)  # most severe first
    # a second match replaces the findings whole
    with store.transaction() as conn:
        replace_findings(conn, found[:1])
    with store.read() as conn:
        assert len(load_findings(conn)) == 1


def test_findings_write_is_one_transaction(store: Store) -> None:
    advisories, _ = load_advisories([shared("csaf-icsma", "icsma-21-047-01.json")])
    inventory = _inventory()
    found = match_findings(advisories, inventory.assets)
    with store.transaction() as conn:
        replace_inventory(conn, inventory)
        save_advisories(conn, advisories)
        replace_findings(conn, found)
    broken = dataclasses.replace(found[0], asset_id="no-such-asset")  # violates the foreign key
    with pytest.raises(Exception), store.transaction() as conn:  # noqa: B017 - driver-specific error class
        replace_findings(conn, [broken])
    with store.read() as conn:
        assert len(conn.execute(select(findings_table.c.id)).all()) == len(found)


def _key(f):  # type: ignore[no-untyped-def]
    return (f.asset_id, f.advisory_id, f.cve)
