"""Repository of the infrastructure model: replace it whole, read it whole."""

from __future__ import annotations

from sqlalchemy import Connection, delete, func, insert, select

from healthswarm.model import Asset, Criticality, Dependency, Flow, Inventory, Level, Organisation, Zone
from healthswarm.model.inventory import Hl7Identity
from healthswarm.store.tables import assets, dependencies, findings, flows, organisations, zones

_CHUNK = 5_000


def _chunks(rows: list[dict], size: int = _CHUNK):  # type: ignore[no-untyped-def]
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def replace_inventory(conn: Connection, inventory: Inventory) -> None:
    """Replace the stored inventory with `inventory`, inside the caller's transaction."""
    for table in (findings, dependencies, flows, assets, zones, organisations):
        conn.execute(delete(table))
    batches = [
        (organisations, [{"id": o.id, "name": o.name, "kind": o.kind, "country": o.country}
                         for o in inventory.organisations]),
        (zones, [{"id": z.id, "organisation": z.organisation, "name": z.name, "exposure": z.exposure}
                 for z in inventory.zones]),
        (assets, [_asset_row(a) for a in inventory.assets]),
        (flows, [{"source": f.source, "target": f.target, "protocol": f.protocol, "port": f.port}
                 for f in inventory.flows]),
        (dependencies, [{"source": d.source, "target": d.target, "kind": d.kind}
                        for d in inventory.dependencies]),
    ]
    for table, rows in batches:
        for chunk in _chunks(rows):
            conn.execute(insert(table), chunk)


def _asset_row(a: Asset) -> dict:
    return {
        "id": a.id, "organisation": a.organisation, "zone": a.zone, "kind": a.kind, "name": a.name,
        "vendor": a.vendor, "product": a.product, "version": a.version, "cpe": a.cpe,
        "addresses": list(a.addresses), "hostnames": list(a.hostnames),
        "safety": int(a.criticality.safety), "confidentiality": int(a.criticality.confidentiality),
        "availability": int(a.criticality.availability), "records": a.records,
        "attributes": dict(a.attributes), "hl7": a.hl7.as_dict() if a.hl7 else None,
    }


def load_inventory(conn: Connection) -> Inventory:
    orgs = tuple(Organisation(r.id, r.name, r.kind, r.country)
                 for r in conn.execute(select(organisations).order_by(organisations.c.id)))
    zs = tuple(Zone(r.id, r.organisation, r.name, r.exposure)
               for r in conn.execute(select(zones).order_by(zones.c.id)))
    assets_ = tuple(
        Asset(
            id=r.id, organisation=r.organisation, zone=r.zone, kind=r.kind, name=r.name, vendor=r.vendor,
            product=r.product, version=r.version, cpe=r.cpe, addresses=tuple(r.addresses),
            hostnames=tuple(r.hostnames),
            criticality=Criticality(Level(r.safety), Level(r.confidentiality), Level(r.availability)),
            records=r.records, attributes=dict(r.attributes),
            hl7=Hl7Identity(tuple(r.hl7.get("applications", ())), r.hl7.get("facility", "")) if r.hl7 else None,
        )
        for r in conn.execute(select(assets).order_by(assets.c.id))
    )
    fl = tuple(Flow(r.source, r.target, r.protocol, r.port)
               for r in conn.execute(select(flows).order_by(flows.c.id)))
    deps = tuple(Dependency(r.source, r.target, r.kind)
                 for r in conn.execute(select(dependencies).order_by(dependencies.c.id)))
    return Inventory(orgs, zs, assets_, fl, deps)


def count_assets(conn: Connection) -> int:
    return conn.execute(select(func.count()).select_from(assets)).scalar_one()
