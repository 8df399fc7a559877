"""The organisation's secrets in the workspace (`<workspace>/keys/`): created on first use, mode 0600.

`pseudonym.key` (32 random bytes) keys the HMAC-SHA256 pseudonyms, the deterministic STIX ids and,
through a derived key, Crypto-PAn. It never leaves the workspace: nothing exported contains it, and
pseudonyms cannot be reversed or recomputed by a peer that guesses the internal value.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from pathlib import Path

KEYS_DIR = "keys"
PSEUDONYM_KEY = "pseudonym.key"


def write_private(path: Path, data: bytes) -> None:
    """Create `path` with mode 0600 from the start (never readable by others, not even briefly)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def load_or_create_secret(workspace: Path, name: str = PSEUDONYM_KEY, size: int = 32) -> bytes:
    path = workspace / KEYS_DIR / name
    if not path.exists():
        with contextlib.suppress(FileExistsError):  # created concurrently: use that one
            write_private(path, secrets.token_bytes(size))
    data = path.read_bytes()
    if len(data) != size:
        raise ValueError(f"{path}: expected {size} bytes of key material, found {len(data)}")
    return data


class Pseudonymiser:
    """Keyed pseudonyms: the same value always maps to the same token, which reveals nothing without the key."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the pseudonym key must be at least 16 bytes")
        self.secret = secret
        self._cache: dict[tuple[str, str], str] = {}

    def derive(self, purpose: str, size: int = 32) -> bytes:
        """A sub-key for one purpose (ids, Crypto-PAn), independent of the pseudonyms."""
        out = b""
        counter = 0
        while len(out) < size:
            out += hmac.new(self.secret, f"derive\x00{purpose}\x00{counter}".encode(), hashlib.sha256).digest()
            counter += 1
        return out[:size]

    def token(self, kind: str, value: str) -> str:
        """`<kind>-<16 hex>`; case-insensitive for names (host, user), exact otherwise."""
        key = (kind, value)
        cached = self._cache.get(key)
        if cached is None:
            basis = value.lower() if kind in {"host", "user", "email", "name", "org"} else value
            digest = hmac.new(self.secret, f"{kind}\x00{basis}".encode(), hashlib.sha256).hexdigest()[:16]
            cached = self._cache[key] = f"{kind}-{digest}"
        return cached

    def organisation(self, org_id: str) -> str:
        return "healthswarm-" + self.token("org", org_id)
