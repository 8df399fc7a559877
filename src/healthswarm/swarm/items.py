"""Intelligence items: signed by the organisation that reports them, relayed unchanged by everyone else.

An item is {"id", "kind", "org", "key_id", "created", "ttl", "data", "sig"}: `id` is a hash of the
signed content (so a relay cannot alter it), `sig` the origin's Ed25519 signature. What an item means
for the threat field is its kind's business: `KINDS` maps a kind to a validator that returns the
field keys it reinforces and with what strength — a new kind is one entry, not a branch.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature

from healthswarm.model.indicator import INDICATOR_TYPES
from healthswarm.share.canonical import canonical
from healthswarm.share.signing import item_id, unb64u
from healthswarm.swarm.envelope import KeyLookup
from healthswarm.swarm.guard import Drop


@dataclass(frozen=True)
class Mark:
    """One reinforcement of the threat field: a key (`indicator:ipv4:198.51.100.77`) and a strength 0..1."""

    key: str
    strength: float


def _text(data: dict[str, Any], name: str, limit: int = 512) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value or len(value) > limit:
        raise Drop("malformed", f"item field {name!r} must be a non-empty string of at most {limit} characters")
    return value


def _confidence(data: dict[str, Any]) -> float:
    value = data.get("confidence", 50)
    if not isinstance(value, int) or not 0 <= value <= 100:
        raise Drop("malformed", "item confidence must be an integer 0..100")
    return value / 100


def _techniques(data: dict[str, Any]) -> list[str]:
    values = data.get("techniques", [])
    if not isinstance(values, list) or len(values) > 32 or not all(isinstance(t, str) and t for t in values):
        raise Drop("malformed", "item techniques must be a list of at most 32 strings")
    return values


BENIGN = "benign:"   # prefix of the field keys of benign evidence

_DOMAIN = re.compile(r"(?=.{1,253}$)(?:(?!-)[a-z0-9_-]{1,63}(?<!-)\.)+[a-z0-9-]{2,63}", re.IGNORECASE)


def _ip(version: int) -> Callable[[str], bool]:
    def check(value: str) -> bool:
        try:
            return ipaddress.ip_network(value, strict=False).version == version  # an address or a CIDR block
        except ValueError:
            return False
    return check


def _url(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return bool(parts.scheme and parts.netloc) and not any(c.isspace() for c in value)


def _hex(length: int) -> Callable[[str], bool]:
    return lambda value: len(value) == length and all(c in "0123456789abcdefABCDEF" for c in value)


#: indicator type → (is the value one, what was expected); other types (filename, user-agent, mutex, registry-key)
#: are free text
_VALUES: dict[str, tuple[Callable[[str], bool], str]] = {
    "ipv4": (_ip(4), "an IPv4 address or CIDR block"),
    "ipv6": (_ip(6), "an IPv6 address or CIDR block"),
    "domain": (lambda v: bool(_DOMAIN.fullmatch(v)), "a domain name (labels of letters, digits, hyphens)"),
    "url": (_url, "a URL with a scheme and a host"),
    "email": (lambda v: bool(re.fullmatch(r"[^@\s]+@[^@\s]+", v)) and bool(_DOMAIN.fullmatch(v.partition("@")[2])),
              "an e-mail address (local@domain)"),
    "md5": (_hex(32), "32 hexadecimal digits"),
    "sha1": (_hex(40), "40 hexadecimal digits"),
    "sha256": (_hex(64), "64 hexadecimal digits"),
    "sha512": (_hex(128), "128 hexadecimal digits"),
    "ja3": (_hex(32), "32 hexadecimal digits (an MD5)"),
    "cve": (lambda v: bool(re.fullmatch(r"CVE-\d{4}-\d{4,}", v, re.IGNORECASE)), "CVE-YYYY-NNNN"),
    "attack-technique": (lambda v: bool(re.fullmatch(r"T\d{4}(?:\.\d{3})?", v, re.IGNORECASE)),
                         "an ATT&CK technique id (T1234 or T1234.001)"),
}


def _indicator_of(data: dict[str, Any]) -> tuple[str, str]:
    """The (type, value) of an indicator-like item, the value checked against its type."""
    kind, value = _text(data, "type", 32), _text(data, "value")
    if kind not in INDICATOR_TYPES:
        raise Drop("malformed", f"{kind!r}: expected one of {', '.join(sorted(INDICATOR_TYPES))}", field="type")
    valid, expected = _VALUES.get(kind, (bool, ""))
    if not valid(value):
        raise Drop("malformed", f"{value!r}: expected {expected} for type {kind}", field="value")
    return kind, value


def indicator_key(kind: str, value: str) -> str:
    return f"indicator:{kind}:{value}"


def _indicator(data: dict[str, Any]) -> list[Mark]:
    kind, value = _indicator_of(data)
    strength = _confidence(data)
    return [Mark(indicator_key(kind, value), strength)] + [Mark(f"technique:{t}", strength / 2)
                                                           for t in _techniques(data)]


def _sighting(data: dict[str, Any]) -> list[Mark]:
    kind, value = _indicator_of(data)
    return [Mark(indicator_key(kind, value), _confidence(data))]


def _benign(data: dict[str, Any]) -> list[Mark]:
    """Our own traffic shows this indicator benign: evidence against claims that it is malicious."""
    kind, value = _indicator_of(data)
    return [Mark(BENIGN + indicator_key(kind, value), 1.0)]


def _technique(data: dict[str, Any]) -> list[Mark]:
    return [Mark(f"technique:{_text(data, 'technique', 32)}", _confidence(data))]


def normalise(name: str) -> str:
    """Case, punctuation and spacing removed: organisations spell one vendor differently
    ("Becton, Dickinson and Company (BD)", "becton dickinson and company bd") and must reinforce one key."""
    return " ".join(re.sub(r"[^a-z0-9]+", " ", name.lower()).split())


def _risk(data: dict[str, Any]) -> list[Mark]:
    strength = _confidence(data)
    vendor = normalise(_text(data, "vendor", 128))
    if not vendor:
        raise Drop("malformed", "item vendor has no letters or digits")
    marks = [Mark(f"vendor:{vendor}", strength)]
    if data.get("model") is not None and (model := normalise(_text(data, "model", 128))):
        marks.append(Mark(f"model:{model}", strength))
    return marks


#: item kind → validator returning the marks it leaves on the threat field (raises Drop when malformed)
KINDS: dict[str, Callable[[dict[str, Any]], list[Mark]]] = {
    "indicator": _indicator,
    "sighting": _sighting,
    "technique": _technique,
    "risk": _risk,
    "benign": _benign,
}


@dataclass(frozen=True)
class Item:
    raw: dict[str, Any]
    marks: tuple[Mark, ...]
    size: int

    @classmethod
    def of(cls, raw: dict[str, Any]) -> Item:
        """The item of a signed raw item (its marks computed; the signature is not checked: `check_item`)."""
        return cls(raw, tuple(marks_of(raw["kind"], raw["data"])), len(canonical(raw)))

    @property
    def id(self) -> str:
        return str(self.raw["id"])

    @property
    def org(self) -> str:
        return str(self.raw["org"])

    @property
    def key_id(self) -> str:
        return str(self.raw["key_id"])

    @property
    def created(self) -> float:
        return float(self.raw["created"]) / 1000

    @property
    def expires(self) -> float:
        return self.created + float(self.raw["ttl"])

    @property
    def data(self) -> dict[str, Any]:
        return dict(self.raw["data"])


def marks_of(kind: str, data: dict[str, Any]) -> list[Mark]:
    """The field marks of an item's data (raises Drop when its kind is unknown or the data malformed)."""
    validate = KINDS.get(kind)
    if validate is None:
        raise Drop("unknown-kind", f"item kind {kind!r}")
    return validate(data)


def check_item(raw: Any, keys: KeyLookup, now: float, skew: float, max_ttl: float) -> Item:
    """The verified item, or Drop: malformed, unknown-kind, untrusted, bad-signature, skew, expired."""
    if not isinstance(raw, dict) or not isinstance(raw.get("data"), dict):
        raise Drop("malformed", "an item must be an object with a data object")
    content = {k: v for k, v in raw.items() if k != "sig"}
    if (not all(isinstance(raw.get(k), str) for k in ("id", "kind", "org", "key_id", "sig"))
            or not all(isinstance(raw.get(k), int) for k in ("created", "ttl"))):
        raise Drop("malformed", "item fields id, kind, org, key_id, sig (strings), created, ttl (integers)")
    validate = KINDS.get(raw["kind"])
    if validate is None:
        raise Drop("unknown-kind", f"item kind {raw['kind']!r}")
    public = keys(raw["key_id"])
    if public is None:
        raise Drop("untrusted", f"item signed by key {raw['key_id']} not in the trust store")
    unsigned = {k: v for k, v in content.items() if k != "id"}
    if item_id(unsigned) != raw["id"]:
        raise Drop("bad-signature", f"item {raw['id']}: id does not match its content")
    try:
        public.verify(unb64u(raw["sig"]), canonical(content))
    except (InvalidSignature, ValueError) as exc:
        raise Drop("bad-signature", f"item {raw['id']}") from exc
    created, ttl = raw["created"] / 1000, raw["ttl"]
    if created > now + skew:
        raise Drop("skew", f"item {raw['id']} created in the future")
    if ttl <= 0 or ttl > max_ttl:
        raise Drop("malformed", f"item ttl {ttl} outside 1..{max_ttl:g} s")
    if created + ttl < now:
        raise Drop("expired", f"item {raw['id']}")
    return Item(raw, tuple(validate(raw["data"])), len(canonical(raw)))
