"""API tokens and roles: tokens are random, shown once, stored as their SHA-256; every state change is audited."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import unicodedata
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from healthswarm.store import tokens
from healthswarm.store.audit import record_change

ROLES = ("viewer", "analyst", "admin", "peer")
# what each role may do on /api/v1; peers speak TAXII and read nothing else
PERMISSIONS: dict[str, frozenset[str]] = {
    "viewer": frozenset({"read"}),
    "analyst": frozenset({"read", "change"}),
    "admin": frozenset({"read", "change", "admin"}),
    "peer": frozenset(),
}
TOKEN_PREFIX = "hs_"
NAME_MAX = 64
NAME_PUNCTUATION = frozenset(" ._-@")
NAME_RULE = f"at most {NAME_MAX} letters, digits, spaces and . _ - @"
UNNAMED = {"Cc": "a control character", "Cs": "a surrogate", "Co": "private use", "Cn": "unassigned"}
# letters by category that render as nothing (Hangul fillers): a name must be seen to be read
INVISIBLE_LETTERS = frozenset("\u115f\u1160\u3164\uffa0")


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: str

    def may(self, permission: str) -> bool:
        return permission in PERMISSIONS.get(self.role, frozenset())


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_token_name(name: str) -> str:
    """`name` in NFC if it is a fit token name — it reaches `token list`, the dashboard and the audit log — else
    a ValueError saying why (naming a refused character by code point, never printing it).

    Letters of any script (with their combining marks), decimal digits, single inner spaces and . _ - @;
    no control, format (bidirectional overrides, zero-width), separator or symbol characters."""
    name = unicodedata.normalize("NFC", name)
    if not name.strip():
        raise ValueError("a token needs a name")
    if len(name) > NAME_MAX:
        raise ValueError(f"{len(name)} characters; expected {NAME_RULE}")
    if name != name.strip(" "):
        raise ValueError("starts or ends with a space")
    for position, char in enumerate(name, 1):
        category = unicodedata.category(char)
        fits = (char in NAME_PUNCTUATION or (category[0] == "L" and char not in INVISIBLE_LETTERS)
                or category == "Nd" or (category in ("Mn", "Mc") and position > 1))
        if not fits:
            label = unicodedata.name(char, "") or UNNAMED.get(category, category)
            raise ValueError(f"character {position} (U+{ord(char):04X} {label}) is not allowed; expected {NAME_RULE}")
    if "  " in name:
        raise ValueError("two spaces in a row")
    return name


def create_token(conn: Connection, name: str, role: str, actor: Principal | None = None) -> str:
    """A new token for `name` (see `check_token_name`) with `role`; returns the token (the only time it is visible)."""
    if role not in ROLES:
        raise ValueError(f"role {role!r} is not one of {', '.join(ROLES)}")
    name = check_token_name(name)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    tokens.save_token(conn, hash_token(token), name, role)
    who = actor or Principal("cli", "admin")
    record_change(conn, who.name, who.role, "token.create", "token", name, None, {"role": role})
    return token


def revoke_token(conn: Connection, token_id: int, actor: Principal) -> dict[str, Any] | None:
    row = tokens.load_token(conn, token_id)
    if row is None:
        return None
    tokens.revoke_token(conn, token_id)
    record_change(conn, actor.name, actor.role, "token.revoke", "token", row.name, {"revoked": row.revoked},
                  {"revoked": True})
    return {"id": row.id, "name": row.name, "role": row.role, "revoked": True}


def list_tokens(conn: Connection) -> list[dict[str, Any]]:
    return [{"id": t.id, "name": t.name, "role": t.role, "created": t.created.isoformat(), "revoked": t.revoked}
            for t in tokens.load_tokens(conn)]


def principal(conn: Connection, token: str) -> Principal | None:
    """Who presents `token`, or None for an unknown or revoked one (compared by digest, in constant time)."""
    if not token or len(token) > 256:
        return None
    digest = hash_token(token)
    row = tokens.find_token(conn, digest)
    if row is None or row.revoked or not hmac.compare_digest(row.token_hash, digest):
        return None
    return Principal(row.name, row.role)
