"""The watchlist detector: an event's observables (addresses, domains, URLs, hashes, e-mail addresses) against
the indicators that peers warned about and that responders asked detection to watch.

The detector holds no I/O of its own: whoever runs it (the agent) gathers the indicators — a peer's signed
indicators imported into the store, the swarm's received warnings, a case's watchlist — and hands them over
with `replace()`; the lookups are set and dict probes, so an event costs one pass over its fields whatever
the size of the list. Observables are read from the ECS fields named in `FIELD_KINDS` (and fields whose names
end like them: `*.ip`, `*.domain`, `*.hash.sha256` …) and, for free text (`message`), from the addresses,
URLs and hashes written in it, which is how a syslog line naming an address is matched.

A domain indicator also matches its sub-domains (`evil.example` matches `cdn.evil.example`); URLs match
exactly (scheme and host in lower case); hashes by value whatever the algorithm name says.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from healthswarm.detect.attack import AttackCatalog, catalog
from healthswarm.detect.entities import event_assets, event_entities
from healthswarm.model import Alert, Event, EventRef

#: indicator type → the kind of observable it is compared with
TYPE_KINDS: dict[str, str] = {
    "ipv4": "ip", "ipv6": "ip", "domain": "domain", "url": "url", "email": "email",
    "md5": "hash", "sha1": "hash", "sha256": "hash", "sha512": "hash",
}
#: ECS fields → the kind of observable they hold (names ending like `.ip` are recognised too, see `_kind`)
FIELD_KINDS: dict[str, str] = {
    "source.ip": "ip", "destination.ip": "ip", "client.ip": "ip", "server.ip": "ip", "host.ip": "ip",
    "related.ip": "ip", "observer.ip": "ip",
    "dns.question.name": "domain", "tls.client.server_name": "domain", "url.domain": "domain",
    "destination.domain": "domain", "source.domain": "domain", "server.domain": "domain", "related.hosts": "domain",
    "url.original": "url", "url.full": "url",
    "related.hash": "hash",
    "user.email": "email", "email.from.address": "email", "email.to.address": "email",
    "message": "text", "event.original": "text",
}
_SUFFIX_KINDS = ((".ip", "ip"), (".domain", "domain"), (".md5", "hash"), (".sha1", "hash"), (".sha256", "hash"),
                 (".sha512", "hash"), (".hash", "hash"), (".email", "email"))
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_URL = re.compile(r"\bhttps?://[^\s\"'<>]+", re.IGNORECASE)
_HEX = re.compile(r"\b(?:[0-9a-fA-F]{32}|[0-9a-fA-F]{40}|[0-9a-fA-F]{64}|[0-9a-fA-F]{128})\b")
_DOMAIN = re.compile(r"\b(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,24}\b", re.IGNORECASE)
_HASH_PAIR = re.compile(r"([A-Za-z0-9]+)=([0-9a-fA-F]{32,128})")


@dataclass(frozen=True, slots=True)
class Watch:
    """One value to watch for, and why: `origin` says who asked (`peer:<identity>`, `swarm:<organisation>`,
    `case:<id>`), `confidence` 0-100 how far to trust it."""

    type: str
    value: str
    origin: str
    confidence: int = 50
    techniques: tuple[str, ...] = ()
    description: str = ""

    @property
    def kind(self) -> str:
        return TYPE_KINDS.get(self.type, "")


def normalise(kind: str, value: str) -> str:
    value = value.strip()
    if kind in ("domain", "hash", "email"):
        return value.lower().rstrip(".")
    if kind == "url":
        scheme, sep, rest = value.partition("://")
        if sep:
            host, slash, path = rest.partition("/")
            return f"{scheme.lower()}://{host.lower()}{slash}{path}"
    return value


def _level(confidence: int) -> str:
    return "high" if confidence >= 80 else "medium" if confidence >= 40 else "low"


class WatchlistDetector:
    """`detect(event)` → one alert per watched value the event shows (the strongest warning about it)."""

    name = "watchlist"

    def __init__(self, watches: Iterable[Watch] = (), attack: AttackCatalog | None = None) -> None:
        self.attack = attack or catalog()
        self._kinds: dict[str, str | None] = {}
        self.index: dict[tuple[str, str], Watch] = {}
        self.hits = 0
        self.replace(watches)

    def replace(self, watches: Iterable[Watch]) -> None:
        """Watch exactly these (what a refresh of the sources gathered); the strongest of equal values wins."""
        index: dict[tuple[str, str], Watch] = {}
        for watch in watches:
            if not watch.kind:
                continue
            key = (watch.kind, normalise(watch.kind, watch.value))
            known = index.get(key)
            if known is None or watch.confidence > known.confidence:
                index[key] = replace(watch, value=key[1])  # alerts name the value as compared
        self.index = index
        self._domains = {v for k, v in index if k == "domain"}
        self._text_kinds = {k for k, _ in index}

    def __len__(self) -> int:
        return len(self.index)

    def _kind(self, name: str) -> str | None:
        kind = self._kinds.get(name, "?")
        if kind == "?":
            kind = FIELD_KINDS.get(name)
            if kind is None:
                lowered = name.lower()
                kind = next((k for suffix, k in _SUFFIX_KINDS if lowered.endswith(suffix)), None)
                if kind is None and "hash" in lowered:
                    kind = "hash"
            self._kinds[name] = kind
        return kind

    def observables(self, event: Event) -> list[tuple[str, str, str]]:
        """(kind, normalised value, field) of every observable in the event's fields."""
        out: list[tuple[str, str, str]] = []
        for name, value in event.fields.items():
            kind = self._kind(name)
            if kind is None:
                continue
            for item in value if isinstance(value, list | tuple) else (value,):
                if not isinstance(item, str) or not item:
                    continue
                if kind == "text":
                    out.extend((k, normalise(k, v), name) for k, v in self._in_text(item))
                elif kind == "hash":
                    pairs = _HASH_PAIR.findall(item)
                    values = [v for _, v in pairs] if pairs else [item]
                    out.extend(("hash", v.lower(), name) for v in values)
                else:
                    out.append((kind, normalise(kind, item), name))
        return out

    def _in_text(self, text: str) -> Iterable[tuple[str, str]]:
        kinds = self._text_kinds
        if "ip" in kinds:
            yield from (("ip", v) for v in _IPV4.findall(text))
        if "url" in kinds:
            yield from (("url", v.rstrip(".,;)")) for v in _URL.findall(text))
        if "hash" in kinds:
            yield from (("hash", v) for v in _HEX.findall(text))
        if "domain" in kinds:
            yield from (("domain", v) for v in _DOMAIN.findall(text))

    def _lookup(self, kind: str, value: str) -> Watch | None:
        found = self.index.get((kind, value))
        if found is None and kind == "domain" and self._domains:
            parts = value.split(".")
            for i in range(1, len(parts) - 1):  # the parent domains, never the bare top-level domain
                found = self.index.get(("domain", ".".join(parts[i:])))
                if found is not None:
                    break
        return found

    def detect(self, event: Event) -> list[Alert]:
        if not self.index:
            return []
        matched: dict[tuple[str, str], tuple[Watch, str, str]] = {}
        for kind, value, name in self.observables(event):
            watch = self._lookup(kind, value)
            if watch is not None:
                matched.setdefault((watch.type, watch.value), (watch, value, name))
        return [self.alert(event, watch, value, name) for watch, value, name in matched.values()]

    def alert(self, event: Event, watch: Watch, seen: str, field_name: str) -> Alert:
        self.hits += 1
        techniques = tuple(self.attack.technique(t) for t in watch.techniques)
        names = {s for t in techniques for s in self.attack.technique_tactics.get(t.id, ())}
        entities = event_entities([event])
        kind = "ip" if watch.kind == "ip" else watch.kind
        entities.setdefault(kind, [])
        if seen not in entities[kind]:
            entities[kind].append(seen)
        details: dict[str, Any] = {
            "entities": entities, "field": field_name, "matched": seen,
            "indicator": {"type": watch.type, "value": watch.value, "origin": watch.origin,
                          "confidence": watch.confidence, "description": watch.description},
        }
        return Alert(
            detector=self.name,
            rule_id=f"watchlist:{watch.type}:{watch.value}",
            title=f"Watchlisted {watch.type} {watch.value} seen ({watch.origin})",
            level=_level(watch.confidence),
            timestamp=event.timestamp,
            events=(EventRef(event.source, event.record, event.key, event.timestamp),),
            techniques=techniques,
            tactics=tuple(self.attack.tactic(s) for s in sorted(names)),
            assets=event_assets([event]),
            tags=("watchlist", *(f"attack.{t.id.lower()}" for t in techniques)),
            description=watch.description or f"{watch.value} is on the watchlist ({watch.origin})",
            details=details,
        )

    def flush(self) -> list[Alert]:
        return []
