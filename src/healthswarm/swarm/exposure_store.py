"""Swarm-raised risk kept with the asset, in the existing `assets.attributes` column.

`swarm.risk` holds the factor ("1.5") and `swarm.why` the explanation, so `GET /api/v1/assets/{id}`
(which returns an asset's attributes) shows them with no new table or migration. Why the asset row
and not a table of its own: a raise is a current property of the asset (it is recomputed from the
field every round and lifted when the field evaporates), not a history — the history is the node's
`actions.jsonl`. Only the `swarm.` attributes are ever touched; reloading the inventory drops them
and the next review writes them again.
"""

from __future__ import annotations

from sqlalchemy import select, update

from healthswarm.store import Store
from healthswarm.store.tables import assets

PREFIX = "swarm."
FACTOR, WHY = PREFIX + "risk", PREFIX + "why"


def store_raises(store: Store, organisation: str, wanted: dict[str, tuple[float, str]]) -> int:
    """Make the organisation's assets carry exactly `wanted` (asset → factor, why); returns rows changed."""
    changed = 0
    with store.transaction() as conn:
        rows = conn.execute(select(assets.c.id, assets.c.attributes).where(assets.c.organisation == organisation))
        for ident, attributes in rows.all():
            kept = {k: v for k, v in dict(attributes or {}).items() if not k.startswith(PREFIX)}
            if ident in wanted:
                factor, why = wanted[ident]
                kept |= {FACTOR: f"{factor:g}", WHY: why}
            if kept != dict(attributes or {}):
                conn.execute(update(assets).where(assets.c.id == ident).values(attributes=kept))
                changed += 1
    return changed


def stored_raises(store: Store, organisation: str | None = None) -> dict[str, tuple[float, str]]:
    """asset → (factor, why) as stored, for one organisation or all."""
    query = select(assets.c.id, assets.c.attributes)
    if organisation is not None:
        query = query.where(assets.c.organisation == organisation)
    with store.read() as conn:
        return {ident: (float(attrs[FACTOR]), str(attrs.get(WHY, ""))) for ident, attrs in conn.execute(query).all()
                if attrs and FACTOR in attrs}
