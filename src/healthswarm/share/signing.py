"""Ed25519 signatures over RFC 8785 canonical JSON, a trust store of peers' keys, and verification.

Why a detached signature in the bundle rather than a JWS: a JWS (compact or JSON serialisation)
wraps the bundle in base64url, so what travels is no longer a STIX bundle — TAXII servers, the
validator and every STIX tool would see an opaque blob. Here the bundle stays a plain STIX 2.1 bundle
with one custom top-level property, `x_healthswarm_signature` (the validator only warns about it):

    {"alg": "Ed25519", "canon": "RFC8785", "key_id": "<sha256 of the public key, 32 hex>",
     "signer": "<identity id>", "nonce": "<128 random bits, hex>", "signed_at": "<UTC>",
     "expires": "<UTC>", "value": "<base64url signature>"}

The signature covers the RFC 8785 canonical JSON of the whole bundle including this property minus
`value`, so the nonce, signer and validity window cannot be altered either. Verification rejects,
with the reason: unsigned, malformed, unknown key, tampered (bad signature), not yet valid, expired,
validity window too long, and replayed (bundle id or nonce already accepted, remembered until expiry).
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from healthswarm.share.canonical import canonical
from healthswarm.share.ids import parse_stamp, stamp
from healthswarm.share.secrets import KEYS_DIR, write_private

SIGNATURE = "x_healthswarm_signature"
PRIVATE_KEY = "ed25519.key"
PUBLIC_KEY = "ed25519.pub"
TRUST_FILE = "trust.json"
SEEN_FILE = "seen-bundles.json"
DEFAULT_VALIDITY = timedelta(days=7)
MAX_VALIDITY = timedelta(days=90)
CLOCK_SKEW = timedelta(minutes=5)


class VerificationError(Exception):
    """The bundle is not accepted; `reason` is a short word, the message says why."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(f"{reason}: {message}")


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_id(public: Ed25519PublicKey | bytes) -> str:
    raw = public if isinstance(public, bytes) else public.public_bytes_raw()
    return hashlib.sha256(raw).hexdigest()[:32]


@dataclass(frozen=True)
class KeyPair:
    private: Ed25519PrivateKey

    @property
    def public_raw(self) -> bytes:
        return self.private.public_key().public_bytes_raw()

    @property
    def key_id(self) -> str:
        return key_id(self.public_raw)

    @property
    def public_text(self) -> str:
        return b64u(self.public_raw)


def load_or_create_keys(workspace: Path) -> KeyPair:
    """The organisation's Ed25519 key pair in `<workspace>/keys/`, created (private key mode 0600) on first use."""
    folder = workspace / KEYS_DIR
    private_path = folder / PRIVATE_KEY
    if not private_path.exists():
        key = Ed25519PrivateKey.generate()
        try:
            write_private(private_path, key.private_bytes_raw())
            (folder / PUBLIC_KEY).write_text(b64u(key.public_key().public_bytes_raw()) + "\n", encoding="utf-8")
        except FileExistsError:
            pass
    raw = private_path.read_bytes()
    if len(raw) != 32:
        raise ValueError(f"{private_path}: not an Ed25519 private key (expected 32 bytes)")
    mode = private_path.stat().st_mode & 0o777
    if mode & 0o077:
        raise ValueError(f"{private_path}: private key is readable by others (mode {mode:o}); chmod 600 it")
    return KeyPair(Ed25519PrivateKey.from_private_bytes(raw))


def signing_input(bundle: dict[str, Any]) -> bytes:
    header = dict(bundle.get(SIGNATURE) or {})
    header.pop("value", None)
    return canonical({**bundle, SIGNATURE: header})


def sign_document(document: dict[str, Any], keys: KeyPair, signer: str, validity: timedelta = DEFAULT_VALIDITY,
                  now: datetime | None = None) -> dict[str, Any]:
    """A copy of a JSON document (a bundle, one STIX object, a MISP event) with its signature property.

    Called only by the egress gate (`share/egress.py`): nothing is signed that the gate did not check."""
    if validity > MAX_VALIDITY:
        raise ValueError(f"validity {validity} exceeds the maximum {MAX_VALIDITY}")
    moment = now or datetime.now(UTC)
    header = {"alg": "Ed25519", "canon": "RFC8785", "key_id": keys.key_id, "signer": signer,
              "nonce": secrets.token_hex(16), "signed_at": stamp(moment), "expires": stamp(moment + validity)}
    signed = {k: v for k, v in document.items() if k != SIGNATURE}
    signed[SIGNATURE] = header
    header["value"] = b64u(keys.private.sign(signing_input(signed)))
    return signed


def item_id(content: dict[str, Any]) -> str:
    """The id of a swarm item: a hash of its signed content, so that a relay cannot alter it."""
    return hashlib.blake2b(canonical(content), digest_size=12).hexdigest()


def sign_item(kind: str, data: dict[str, Any], org: str, keys: KeyPair, now: float, ttl: float) -> dict[str, Any]:
    """A swarm item {"id", "kind", "org", "key_id", "created", "ttl", "data", "sig"} signed by `keys`.

    Called only by the egress gate, like `sign_document`."""
    content: dict[str, Any] = {"kind": kind, "org": org, "key_id": keys.key_id, "created": round(now * 1000),
                               "ttl": round(ttl), "data": data}
    content["id"] = item_id(content)
    content["sig"] = b64u(keys.private.sign(canonical(content)))
    return content


def strip_signature(bundle: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in bundle.items() if k != SIGNATURE}


# -- trust store ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Peer:
    key_id: str
    name: str
    public_key: str  # base64url raw Ed25519
    group: str = "sector"
    added: str = ""


class TrustStore:
    """Peers' public keys in `<workspace>/trust.json` ({"peers": {key_id: {...}}})."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def in_workspace(cls, workspace: Path) -> TrustStore:
        return cls(workspace / TRUST_FILE)

    def _read(self) -> dict[str, Any]:
        if not self.path.exists():
            return {"peers": {}}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{self.path}: not valid JSON: {exc}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("peers"), dict):
            raise ValueError(f'{self.path}: expected {{"peers": {{key_id: {{...}}}}}}')
        return data

    def peers(self) -> list[Peer]:
        return [Peer(**{**entry, "key_id": kid}) for kid, entry in sorted(self._read()["peers"].items())]

    def get(self, kid: str) -> Peer | None:
        entry = self._read()["peers"].get(kid)
        return Peer(**{**entry, "key_id": kid}) if entry else None

    def trust(self, name: str, public_key: str, group: str = "sector") -> Peer:
        try:
            raw = unb64u(public_key.strip())
            Ed25519PublicKey.from_public_bytes(raw)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"public key {public_key!r}: not a base64url Ed25519 public key (32 bytes)") from exc
        peer = Peer(key_id(raw), name, b64u(raw), group, stamp(datetime.now(UTC)))
        data = self._read()
        data["peers"][peer.key_id] = {"name": peer.name, "public_key": peer.public_key, "group": peer.group,
                                      "added": peer.added}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)
        return peer


# -- replay protection ----------------------------------------------------------------------------
class SeenStore:
    """Bundle ids and nonces already accepted, kept until their signature expires (then expiry rejects them)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def in_workspace(cls, workspace: Path) -> SeenStore:
        return cls(workspace / KEYS_DIR / SEEN_FILE)

    @contextmanager
    def _locked(self) -> Iterator[dict[str, str]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            seen: dict[str, str] = {}
            if self.path.exists():
                try:
                    seen = json.loads(self.path.read_text(encoding="utf-8"))
                except json.JSONDecodeError:
                    seen = {}
            yield seen
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(seen), encoding="utf-8")
            os.replace(tmp, self.path)

    def remember(self, keys: list[str], expires: datetime, now: datetime) -> str | None:
        """Record the keys; return the one already seen (a replay) instead, recording nothing."""
        with self._locked() as seen:
            for stale in [k for k, until in seen.items() if parse_stamp(until) < now - CLOCK_SKEW]:
                del seen[stale]
            for key in keys:
                if key in seen:
                    return key
            for key in keys:
                seen[key] = stamp(expires)
        return None


def verify_bundle(bundle: Any, trust: TrustStore, seen: SeenStore | None = None,
                  now: datetime | None = None) -> Peer:
    """The peer that signed the bundle; raises VerificationError with the reason otherwise.

    With `seen`, an accepted bundle is remembered so the same one is refused next time (replay).
    """
    if not isinstance(bundle, dict) or bundle.get("type") != "bundle":
        raise VerificationError("malformed", "not a STIX bundle (a JSON object with type 'bundle')")
    return verify_document(bundle, trust, seen, now)


def verify_document(bundle: Any, trust: TrustStore, seen: SeenStore | None = None,
                    now: datetime | None = None) -> Peer:
    """The peer that signed a JSON document (`sign_document`); raises VerificationError with the reason."""
    moment = now or datetime.now(UTC)
    if not isinstance(bundle, dict):
        raise VerificationError("malformed", "not a JSON object")
    header = bundle.get(SIGNATURE)
    if header is None:
        raise VerificationError("unsigned", f"the document carries no {SIGNATURE}")
    required = ("alg", "key_id", "nonce", "signed_at", "expires", "value")
    if not isinstance(header, dict) or any(not isinstance(header.get(k), str) for k in required):
        raise VerificationError("malformed", f"{SIGNATURE} must hold string fields {', '.join(required)}")
    if header["alg"] != "Ed25519" or header.get("canon", "RFC8785") != "RFC8785":
        raise VerificationError("malformed", f"unsupported algorithm {header['alg']!r} / canonicalisation")
    peer = trust.get(header["key_id"])
    if peer is None:
        raise VerificationError("untrusted", f"key {header['key_id']} is not in the trust store")
    try:
        signature = unb64u(header["value"])
        signed_at, expires = parse_stamp(header["signed_at"]), parse_stamp(header["expires"])
    except ValueError as exc:
        raise VerificationError("malformed", f"{SIGNATURE}: {exc}") from exc
    public = Ed25519PublicKey.from_public_bytes(unb64u(peer.public_key))
    try:
        public.verify(signature, signing_input(bundle))
    except (InvalidSignature, ValueError) as exc:
        raise VerificationError("tampered", "the signature does not match the content") from exc
    if signed_at > moment + CLOCK_SKEW:
        raise VerificationError("not-yet-valid", f"signed in the future ({header['signed_at']})")
    if expires - signed_at > MAX_VALIDITY:
        raise VerificationError("malformed", f"validity window longer than {MAX_VALIDITY.days} days")
    if expires < moment:
        raise VerificationError("expired", f"the signature expired at {header['expires']}")
    if seen is not None:
        replay = seen.remember([f"bundle:{peer.key_id}:{bundle.get('id')}", f"nonce:{header['nonce']}"],
                               expires, moment)
        if replay is not None:
            raise VerificationError("replayed", f"already accepted ({replay.split(':', 1)[0]} seen before)")
    return peer
