"""Signed messages between nodes: canonical JSON with an Ed25519 signature of the sending organisation.

Frame = canonical JSON {"v": 1, "kind", "from": {name, key_id, addr, inc}, "nonce", "sent", "body", "sig"}.
`open_message` checks, in order and each with its counted reason: size, JSON shape, trusted key,
signature, clock skew. Replays and floods are the guard's business (`guard.py`), after authentication.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from healthswarm.share.canonical import canonical
from healthswarm.share.signing import b64u, unb64u
from healthswarm.swarm.guard import Drop

#: key id → public key, or None when the key is not in the trust store
KeyLookup = Callable[[str], Ed25519PublicKey | None]


@dataclass(frozen=True)
class Sender:
    name: str
    key_id: str
    addr: str
    inc: int


@dataclass(frozen=True)
class Message:
    kind: str
    sender: Sender
    nonce: str
    sent: float
    body: dict[str, Any]


def seal(kind: str, body: dict[str, Any], sender: Sender, private: Ed25519PrivateKey, now: float) -> bytes:
    frame: dict[str, Any] = {"v": 1, "kind": kind, "nonce": secrets.token_hex(12), "sent": round(now * 1000),
                             "from": {"name": sender.name, "key_id": sender.key_id, "addr": sender.addr,
                                      "inc": sender.inc}, "body": body}
    frame["sig"] = b64u(private.sign(canonical(frame)))
    return orjson.dumps(frame)


def open_message(raw: bytes, keys: KeyLookup, now: float, max_size: int, skew: float) -> Message:
    if len(raw) > max_size:
        raise Drop("oversize", f"{len(raw)} bytes > {max_size}")
    try:
        frame = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Drop("malformed", f"not JSON: {exc}") from exc
    if not isinstance(frame, dict) or frame.get("v") != 1:
        raise Drop("malformed", "not a version-1 frame")
    origin, body, sig = frame.get("from"), frame.get("body"), frame.pop("sig", None)
    if (not isinstance(origin, dict) or not isinstance(body, dict) or not isinstance(sig, str)
            or not isinstance(frame.get("kind"), str) or not isinstance(frame.get("nonce"), str)
            or not isinstance(frame.get("sent"), int)
            or not all(isinstance(origin.get(k), str) for k in ("name", "key_id", "addr"))
            or not isinstance(origin.get("inc"), int)):
        raise Drop("malformed", "missing or mistyped frame fields")
    public = keys(origin["key_id"])
    if public is None:
        raise Drop("untrusted", f"key {origin['key_id']} is not in the trust store")
    try:
        public.verify(unb64u(sig), canonical(frame))
    except (InvalidSignature, ValueError) as exc:
        raise Drop("bad-signature", f"from {origin['name']}") from exc
    sent = frame["sent"] / 1000
    if abs(sent - now) > skew:
        raise Drop("skew", f"sent {sent - now:+.0f} s from our clock (> {skew:g} s)")
    sender = Sender(origin["name"], origin["key_id"], origin["addr"], origin["inc"])
    return Message(frame["kind"], sender, frame["nonce"], sent, body)
