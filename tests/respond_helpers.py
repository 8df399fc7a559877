"""Shared helpers of the tests/test_respond_*.py modules (it holds no tests itself)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete

from healthswarm.model import Asset, Criticality, Inventory, Level, Organisation, Zone
from healthswarm.respond.actions import ActionContext
from healthswarm.respond.cases import Case, Observable
from healthswarm.store import Store
from healthswarm.store.respond_tables import RESPOND_TABLES

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def prepare(store: Store) -> Store:
    """Empty the response tables (the PostgreSQL store is shared by the session's tests)."""
    with store.transaction() as conn:
        for table in reversed(RESPOND_TABLES):
            conn.execute(delete(table))
    return store


def ward_inventory() -> Inventory:
    org = Organisation("h1", "Hospital One", "hospital", "DE")
    zones = (Zone("h1-it", "h1", "IT", "internal"), Zone("h1-iomt", "h1", "IoMT", "iomt"),
             Zone("h1-clin", "h1", "Clinical", "clinical"))
    assets = (
        Asset("ws-1", "h1", "h1-it", "workstation", "Office PC", addresses=("10.0.1.10",)),
        Asset("pump-1", "h1", "h1-iomt", "infusion-pump", "ICU pump 1", addresses=("10.0.4.11",),
              criticality=Criticality(safety=Level.CRITICAL)),
        Asset("mon-1", "h1", "h1-iomt", "patient-monitor", "ICU monitor 1", addresses=("10.0.4.21", "fd00::21"),
              criticality=Criticality(safety=Level.HIGH)),
        Asset("ehr-1", "h1", "h1-clin", "ehr", "EHR", addresses=("10.0.2.10",), records=250_000,
              criticality=Criticality(confidentiality=Level.CRITICAL, availability=Level.HIGH)),
        Asset("ecg-1", "h1", "h1-iomt", "medical-device", "ECG cart", addresses=("10.0.5.41",),
              criticality=Criticality(safety=Level.MEDIUM)),
    )
    return Inventory((org,), zones, assets)


def case_of(assets: list[str], **kw: object) -> Case:
    case = Case("CASE-test", "test case", T0, T0, assets=assets, **kw)  # type: ignore[arg-type]
    return case


def context(case: Case, **kw: object) -> ActionContext:
    inv = ward_inventory()
    return ActionContext(case=case, assets={a.id: a for a in inv.assets}, now=T0, **kw)  # type: ignore[arg-type]


__all__ = ["T0", "Observable", "case_of", "context", "prepare", "ward_inventory"]
