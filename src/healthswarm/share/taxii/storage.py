"""TAXII 2.1 storage in the store: collections, object versions, status resources, tokens and rights."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, String, and_, bindparam, cast, delete, func, or_, select, union, update
from sqlalchemy.dialects.postgresql import ARRAY

from healthswarm.store.taxii_tables import (
    taxii_collections,
    taxii_objects,
    taxii_rights,
    taxii_status,
    taxii_tokens,
)

TAXII_MEDIA = "application/taxii+json;version=2.1"
STIX_MEDIA = "application/stix+json;version=2.1"
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,249}--[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                 r"[0-9a-fA-F]{12}$")
_STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


def taxii_stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_taxii_stamp(text: str) -> datetime:
    if not _STAMP.match(text):
        raise ValueError(f"{text!r} is not a TAXII timestamp (YYYY-MM-DDTHH:MM:SS[.s+]Z)")
    return datetime.fromisoformat(text[:-1] + "+00:00").astimezone(UTC)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# -- tokens and rights ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Principal:
    name: str
    role: str  # admin | peer
    token_hash: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def create_token(conn: Connection, name: str, role: str = "peer") -> str:
    """A new random bearer token (returned once; only its hash is stored)."""
    if role not in {"admin", "peer"}:
        raise ValueError(f"role {role!r}: expected admin or peer")
    token = secrets.token_urlsafe(32)
    conn.execute(taxii_tokens.insert().values(token_hash=hash_token(token), name=name, role=role,
                                              created=datetime.now(UTC)))
    return token


def grant(conn: Connection, token: str, collection_id: str, read: bool, write: bool) -> None:
    digest = hash_token(token)
    conn.execute(delete(taxii_rights).where(and_(taxii_rights.c.token_hash == digest,
                                                 taxii_rights.c.collection_id == collection_id)))
    conn.execute(taxii_rights.insert().values(token_hash=digest, collection_id=collection_id,
                                              can_read=read, can_write=write))


def principal(conn: Connection, token: str) -> Principal | None:
    digest = hash_token(token)
    row = conn.execute(select(taxii_tokens).where(taxii_tokens.c.token_hash == digest)).first()
    return Principal(row.name, row.role, digest) if row else None


def rights(conn: Connection, who: Principal, collection_id: str) -> tuple[bool, bool]:
    if who.is_admin:
        return True, True
    row = conn.execute(select(taxii_rights.c.can_read, taxii_rights.c.can_write).where(and_(
        taxii_rights.c.token_hash == who.token_hash, taxii_rights.c.collection_id == collection_id))).first()
    return (bool(row.can_read), bool(row.can_write)) if row else (False, False)


# -- collections --------------------------------------------------------------------------------------
def create_collection(conn: Connection, api_root: str, title: str, description: str = "",
                      collection_id: str | None = None, alias: str | None = None) -> str:
    ident = collection_id or str(uuid.uuid4())
    conn.execute(taxii_collections.insert().values(
        id=ident, api_root=api_root, title=title, description=description, alias=alias,
        media_types=[STIX_MEDIA], created=datetime.now(UTC)))
    return ident


def collections(conn: Connection, api_root: str) -> list[Any]:
    return list(conn.execute(select(taxii_collections).where(taxii_collections.c.api_root == api_root)
                             .order_by(taxii_collections.c.created, taxii_collections.c.id)))


def collection(conn: Connection, api_root: str, ident: str) -> Any | None:
    return conn.execute(select(taxii_collections).where(and_(
        taxii_collections.c.api_root == api_root,
        or_(taxii_collections.c.id == ident, taxii_collections.c.alias == ident)))).first()


# -- objects ----------------------------------------------------------------------------------------------
def object_version(obj: dict[str, Any], added: datetime) -> str:
    version = obj.get("modified") or obj.get("created")
    return str(version) if version else taxii_stamp(added)


def check_object(obj: Any) -> str | None:
    """Why an object may not be stored (None: it may). Structural STIX 2.1 checks, fast enough for bulk."""
    if not isinstance(obj, dict):
        return "not a JSON object"
    kind, ident = obj.get("type"), obj.get("id")
    if not isinstance(kind, str) or not isinstance(ident, str) or not _ID.match(ident):
        return "missing or malformed type / id (expected type--UUID)"
    if ident.split("--", 1)[0] != kind:
        return f"id {ident} does not start with its type {kind!r}"
    from healthswarm.share.stix_import import KNOWN_TYPES

    if kind not in KNOWN_TYPES and not kind.startswith("x-"):
        return f"unknown object type {kind!r}"
    if obj.get("spec_version", "2.1") not in {"2.1", "2.0"}:
        return f"unsupported spec_version {obj.get('spec_version')!r}"
    for key in ("created", "modified"):
        if key in obj and (not isinstance(obj[key], str) or not _STAMP.match(obj[key])):
            return f"{key} is not a STIX timestamp"
    if "created" in obj and "modified" in obj and obj["modified"] < obj["created"]:
        return "modified is earlier than created"
    if kind not in {"marking-definition"} and "modified" not in obj and "created" in obj and kind != "bundle":
        return "an object with created must have modified"
    return None


def _stored_versions(conn: Connection, collection_id: str, ids: list[str]) -> dict[str, list[str]]:
    """The versions already stored of each of `ids` that has any."""
    c = taxii_objects.c
    stored: dict[str, list[str]] = {}
    if conn.dialect.name == "postgresql":
        # one probe of the unique index per id (a correlated subquery cannot be planned otherwise): with
        # `object_id IN (...)` and statistics that lag a bulk load, the planner reads the whole collection
        # through the page index instead, once a batch, and a fill slows down as the table grows
        wanted = func.unnest(cast(ids, ARRAY(String))).table_valued("id").render_derived(name="wanted")
        versions = (select(func.array_agg(c.version)).where(c.collection_id == collection_id,
                                                            c.object_id == wanted.c.id).scalar_subquery())
        for ident, found in conn.execute(select(wanted.c.id, versions).select_from(wanted)):
            if found:
                stored[ident] = found
        return stored
    for start in range(0, len(ids), 500):
        for r in conn.execute(select(c.object_id, c.version).where(and_(
                c.collection_id == collection_id, c.object_id.in_(ids[start:start + 500])))):
            stored.setdefault(r.object_id, []).append(r.version)
    return stored


def add_objects(conn: Connection, collection_id: str, objects: Sequence[Any]) -> tuple[list[dict[str, Any]],
                                                                                        list[dict[str, Any]]]:
    """Store the acceptable objects in one transaction; (successes, failures) as TAXII status details."""
    successes: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    now = datetime.now(UTC)
    seen: set[tuple[str, str]] = set()
    for index, obj in enumerate(objects):
        reason = check_object(obj)
        if reason:
            ident = obj.get("id") if isinstance(obj, dict) and isinstance(obj.get("id"), str) else f"objects[{index}]"
            failures.append({"id": ident, "version": "", "message": reason})
            continue
        version = object_version(obj, now)
        key = (obj["id"], version)
        if key in seen:
            successes.append({"id": obj["id"], "version": version, "message": "duplicate in request"})
            continue
        seen.add(key)
        rows.append({"collection_id": collection_id, "object_id": obj["id"], "type": obj["type"], "version": version,
                     "spec_version": obj.get("spec_version", "2.1"), "date_added": now, "is_latest": False,
                     "is_first": False, "media_type": STIX_MEDIA, "document": obj})
    if rows:
        c = taxii_objects.c
        stored = _stored_versions(conn, collection_id, list({r["object_id"] for r in rows}))
        versions_of = {ident: list(versions) for ident, versions in stored.items()}
        fresh = []
        for row in rows:
            versions = versions_of.setdefault(row["object_id"], [])
            if row["version"] in versions:
                successes.append({"id": row["object_id"], "version": row["version"], "message": "already stored"})
                continue
            versions.append(row["version"])
            fresh.append(row)
            successes.append({"id": row["object_id"], "version": row["version"]})
        # latest / first flags over stored and new versions together; a stored version loses its flag only
        # when a new one takes it (one UPDATE each, not a reset and restore of every version)
        for row in fresh:
            versions = versions_of[row["object_id"]]
            row["is_latest"] = row["version"] == max(versions)
            row["is_first"] = row["version"] == min(versions)
        demote: dict[str, list[dict[str, str]]] = {"is_latest": [], "is_first": []}
        for ident in {r["object_id"] for r in fresh} & stored.keys():
            old, now_all = stored[ident], versions_of[ident]
            if max(now_all) != max(old):
                demote["is_latest"].append({"o": ident, "v": max(old)})
            if min(now_all) != min(old):
                demote["is_first"].append({"o": ident, "v": min(old)})
        for flag, params in demote.items():
            if params:
                conn.execute(update(taxii_objects).where(and_(
                    c.collection_id == collection_id, c.object_id == bindparam("o"), c.version == bindparam("v")))
                    .values(**{flag: False}), params)
        if fresh:
            conn.execute(taxii_objects.insert(), fresh)
    return successes, failures


@dataclass
class Filters:
    added_after: datetime | None = None
    ids: list[str] | None = None
    types: list[str] | None = None
    versions: list[str] | None = None  # "last" (default), "first", "all", or timestamps
    spec_versions: list[str] | None = None
    limit: int = 100
    next: Cursor | None = None


@dataclass(frozen=True)
class Cursor:
    """Where a page ended: objects come in (date added, pk) order, so the cursor is the last row's pair
    (the next page is a seek past it in each index range, not an offset)."""

    date_added: datetime
    pk: int


def encode_next(row: Any) -> str:
    text = f"{taxii_stamp(_utc(row.date_added))}|{row.pk}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_next(text: str) -> Cursor:
    try:
        stamp, _bar, pk = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode().partition("|")
        return Cursor(parse_taxii_stamp(stamp), int(pk))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"next {text!r} is not a cursor this server gave") from exc


def _naive_for(conn: Connection, moment: datetime) -> datetime:
    """SQLite keeps DATETIME as naive UTC text: compare like with like there; aware elsewhere."""
    return moment.astimezone(UTC).replace(tzinfo=None) if conn.dialect.name == "sqlite" else moment


# (is_latest, is_first) pairs that match[version]=last / first admit; "all" admits the four
_FLAG_PAIRS = {"last": ((True, False), (True, True)), "first": ((False, True), (True, True)),
               "all": ((False, False), (False, True), (True, False), (True, True))}


def query_objects(conn: Connection, collection_id: str, f: Filters, object_id: str | None = None) -> tuple[
        list[Any], bool]:
    """Rows of one page (in (date added, pk) order) and whether more follow.

    Keyset pagination over index ranges (see the indexes of `taxii_objects`): with match[id] (or one object)
    the unique (collection, object, version) index finds every candidate and they are ordered here; otherwise
    each range that can hold a match (one per type and (is_latest, is_first) pair, one per version timestamp)
    gives its first `limit + 1` keys past the cursor in index order, and the smallest `limit + 1` of their
    union make the page. No plan reads more than (ranges x (limit + 1)) index entries, whatever the size.
    """
    c = taxii_objects.c
    base = [c.collection_id == collection_id]
    if f.spec_versions:
        base.append(c.spec_version.in_(f.spec_versions))
    # one lower bound on (date_added, pk): the cursor or added_after, whichever is further on
    cursor: tuple[datetime, int] | None = None
    after: datetime | None = None
    if f.next is not None:
        cursor = (_naive_for(conn, f.next.date_added), f.next.pk)
    if f.added_after is not None:
        candidate = _naive_for(conn, f.added_after)
        if cursor is None or candidate >= cursor[0]:
            cursor, after = None, candidate
    versions = f.versions or ["last"]
    stamps = [v for v in versions if v not in _FLAG_PAIRS]
    pairs = sorted({pair for v in versions if v in _FLAG_PAIRS for pair in _FLAG_PAIRS[v]})
    want = f.limit + 1
    keys: dict[int, Any] = {}
    if object_id is not None or f.ids:
        # every version of the named objects is a short range of the unique index: take them all, order here
        conds = [*base, c.object_id == object_id] if object_id is not None else [*base]
        if f.ids:
            conds.append(c.object_id.in_(f.ids))
        if f.types:
            conds.append(c.type.in_(f.types))
        if "all" not in versions:
            alternatives = [and_(c.is_latest.is_(latest), c.is_first.is_(first)) for latest, first in pairs]
            if stamps:
                alternatives.append(c.version.in_(stamps))
            conds.append(or_(*alternatives))
        if after is not None:
            conds.append(c.date_added > after)
        if cursor is not None:
            conds.append(or_(c.date_added > cursor[0], and_(c.date_added == cursor[0], c.pk > cursor[1])))
        for row in conn.execute(select(c.pk, c.date_added).where(and_(*conds))):
            keys[row.pk] = row.date_added
    else:
        ranges = []
        for latest, first in pairs:
            flags = [c.is_latest.is_(latest), c.is_first.is_(first)]
            if f.types:
                ranges += [("ix_taxii_objects_type", [c.type == kind, *flags]) for kind in f.types]
            else:
                ranges.append(("ix_taxii_objects_page", flags))
        if "all" not in versions:
            extra = [c.type.in_(f.types)] if f.types else []
            ranges += [("ix_taxii_objects_version", [c.version == stamp, *extra]) for stamp in stamps]

        def seek(index: str, conds: list[Any]) -> Any:
            return (select(c.pk, c.date_added).where(and_(*base, *conds)).order_by(c.date_added, c.pk).limit(want)
                    .with_hint(taxii_objects, f"INDEXED BY {index}", "sqlite").subquery().select())

        seeks = []
        for index, conds in ranges:
            if cursor is not None:
                # the rest of the cursor's own date_added (a whole POST shares one), then what comes after:
                # two seeks (SQLite seeks a row-value bound on its first column only and would scan the rest)
                seeks.append(seek(index, [*conds, c.date_added == cursor[0], c.pk > cursor[1]]))
                seeks.append(seek(index, [*conds, c.date_added > cursor[0]]))
            else:
                seeks.append(seek(index, [*conds, c.date_added > after] if after is not None else conds))
        # one statement: the seeks' keys (deduplicated), the first limit + 1 of them, joined to their rows
        keys_found = (union(*seeks) if len(seeks) > 1 else seeks[0]).subquery("keys")
        found = (select(keys_found.c.pk, keys_found.c.date_added)
                 .order_by(keys_found.c.date_added, keys_found.c.pk).limit(want).subquery("found"))
        rows = list(conn.execute(
            select(c.pk, c.object_id, c.version, c.date_added, c.media_type, c.document)
            .select_from(found.join(taxii_objects, taxii_objects.c.pk == found.c.pk))
            .order_by(found.c.date_added, found.c.pk).limit(want)))
        return rows[:f.limit], len(rows) > f.limit
    page = sorted(keys.items(), key=lambda item: (item[1], item[0]))[:want]
    if not page:
        return [], False
    order = {pk: n for n, (pk, _added) in enumerate(page)}
    rows = sorted(conn.execute(select(c.pk, c.object_id, c.version, c.date_added, c.media_type, c.document)
                               .where(c.pk.in_(list(order)))), key=lambda r: order[r.pk])
    return rows[:f.limit], len(rows) > f.limit


def delete_object(conn: Connection, collection_id: str, object_id: str, f: Filters) -> int:
    rows, _more = query_objects(conn, collection_id, Filters(versions=f.versions or ["all"],
                                                             spec_versions=f.spec_versions, limit=1_000_000), object_id)
    if not rows:
        return 0
    conn.execute(delete(taxii_objects).where(taxii_objects.c.pk.in_([r.pk for r in rows])))
    remaining = list(conn.execute(select(taxii_objects.c.pk, taxii_objects.c.version).where(and_(
        taxii_objects.c.collection_id == collection_id, taxii_objects.c.object_id == object_id))))
    if remaining:
        newest = max(remaining, key=lambda r: r.version)
        oldest = min(remaining, key=lambda r: r.version)
        conn.execute(update(taxii_objects).where(taxii_objects.c.pk == newest.pk).values(is_latest=True))
        conn.execute(update(taxii_objects).where(taxii_objects.c.pk == oldest.pk).values(is_first=True))
    return len(rows)


def count_objects(conn: Connection, collection_id: str) -> int:
    return int(conn.execute(select(func.count()).select_from(taxii_objects)
                            .where(taxii_objects.c.collection_id == collection_id)).scalar_one())


# -- status ----------------------------------------------------------------------------------------
def save_status(conn: Connection, api_root: str, successes: list[dict[str, Any]],
                failures: list[dict[str, Any]]) -> dict[str, Any]:
    ident = str(uuid.uuid4())
    now = datetime.now(UTC)
    conn.execute(taxii_status.insert().values(
        id=ident, api_root=api_root, status="complete", request_timestamp=now,
        total_count=len(successes) + len(failures), success_count=len(successes), failure_count=len(failures),
        pending_count=0, details={"successes": successes, "failures": failures, "pendings": []}))
    return status_resource(conn, api_root, ident) or {}


def status_resource(conn: Connection, api_root: str, ident: str) -> dict[str, Any] | None:
    row = conn.execute(select(taxii_status).where(and_(taxii_status.c.id == ident,
                                                       taxii_status.c.api_root == api_root))).first()
    if row is None:
        return None
    out: dict[str, Any] = {
        "id": row.id, "status": row.status, "request_timestamp": taxii_stamp(_utc(row.request_timestamp)),
        "total_count": row.total_count, "success_count": row.success_count,
        "failure_count": row.failure_count, "pending_count": row.pending_count,
    }
    for key in ("successes", "failures", "pendings"):
        if row.details.get(key):
            out[key] = row.details[key]
    return out


def setup(engine: Engine) -> None:
    """Bring a database to the current schema (the TAXII tables come with the store's migrations)."""
    from healthswarm.store.db import migrate

    migrate(engine)
