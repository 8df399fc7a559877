"""The last gate before a bundle leaves: search it for every sensitive value the organisation knows.

Each value is searched as written and in the forms it could hide in: any letter case, URL-encoded
(`%2F`/`%2f`, `+` for space), UTF-16LE (as the NUL-interleaved text a decoded blob yields), and
base64 of the UTF-8 and UTF-16LE bytes at each of the three alignments a value can have inside a
longer base64 string (the stable core of each alignment is searched, so a value embedded anywhere in an
encoded blob is found). Every distinct string of the bundle (keys, values, numbers as text) is
re-serialised compactly as JSON (so `\\u0068ost`-style escapes cannot hide a value) and all of them are
searched in one pass per automaton (pyahocorasick); only a hit is traced back to the object id and JSON
path of the string that holds it.

Short values (< 6 characters) must stand alone (no letter or digit on either side) so that a user
called "ana" does not match "analysis".

Values nobody listed are found by shape: internal addresses (RFC 1918 and the other private ranges, the
inventory's networks; unless the policy keeps Crypto-PAn-anonymised addresses, which look internal by
design), host names under an internal suffix (`.local`, the inventory's domains), MRNs, accession
numbers, patient ids, HL7 PID segments and user names in home-folder paths. And what hides behind a
layer of encoding is decoded and searched again (two layers deep): URL escapes, `\\uXXXX` and `\\xXX`
escapes, HTML character references, base64 and base64url runs at each of the four character offsets,
and hex runs — so a value or a shape that was never listed is still found when it is encoded.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache, lru_cache
from itertools import chain
from typing import Any
from urllib.parse import quote, quote_plus, unquote_plus

import ahocorasick
import orjson

from healthswarm.share.sanitise import PATTERNS, PSEUDONYM, REDACTED, STRUCTURAL, SuffixProbe, triggered
from healthswarm.share.sensitive import Sensitive

SHORT = 6
_TOKEN = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


@cache
def _stix_types() -> frozenset[str]:
    import stix2.v21

    return frozenset({*stix2.v21.OBJ_MAP, *stix2.v21.OBJ_MAP_OBSERVABLE})


def _in_stix_type(lowered: str, start: int, end: int) -> bool:
    """Is lowered[start:end + 1] inside the name of a STIX object type, as a `type` or an id's prefix
    (observed-data--…)? Those names are the format's, never data: a user called "rved-d" is not in "observed-data"
    (hypothesis found that the gate refused every bundle with an observation for such a user). Only hits are looked
    at, so the cost is nil when nothing is found."""
    first = start
    while first > 0 and lowered[first - 1] in _TOKEN:
        first -= 1
    last = first
    while last < len(lowered) and lowered[last] in _TOKEN and not lowered.startswith("--", last):
        last += 1
    name = lowered[first:last]
    return end < last and name in _stix_types()
MIN_BASE64_CORE = 6
DECODE_DEPTH = 2
# shapes whose match is sensitive in itself (see `_shape_hit`), and the kind a hit is reported as
_SHAPES = {"pid": "patient", "mrn": "patient", "accession": "patient", "patientid": "patient", "winpath": "user",
           "unixpath": "user", "ipv4": "address", "ipv6": "address"}
_NOT_A_USER = frozenset({"public", "default", "all users", "shared"})
# encoded runs worth decoding: long enough to hold a value, and (base64) of mixed case as encoded text is
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")
# maximal runs (decoded from either nibble, so an odd run's last byte counts too), three times faster to find
# than (?:[0-9A-Fa-f]{2}){6,}, whose even cut of an odd run lost a value ending it at the odd offset
_HEX_RUN = re.compile(r"[0-9A-Fa-f]{12,}")
# the sanitiser's keyed tokens: hex that decodes to nothing, taken out before shapes and decoding look
_PSEUDONYMS = re.compile(r"\b(?:user|host|patient|email|ip|asset|address)-[0-9a-f]{16}\b")
_ESCAPE = re.compile(r"\\+(?:u([0-9A-Fa-f]{4})|x([0-9A-Fa-f]{2}))")


@dataclass(frozen=True)
class Hit:
    object_id: str
    path: str
    kind: str
    encoding: str
    # never the value itself: the report of a leak must not leak; a short fingerprint identifies it
    fingerprint: str

    def __str__(self) -> str:
        return f"{self.object_id or '(bundle)'} {self.path}: {self.kind} value {self.fingerprint} ({self.encoding})"

    def as_dict(self) -> dict[str, str]:
        return {"object_id": self.object_id, "path": self.path, "kind": self.kind, "encoding": self.encoding,
                "fingerprint": self.fingerprint}


def _fingerprint(value: str) -> str:
    import hashlib

    return hashlib.blake2b(value.encode(), digest_size=4).hexdigest()


def _json_inner(text: str) -> str:
    """How a string appears inside our compact JSON serialisation (escapes included)."""
    return orjson.dumps(text).decode()[1:-1]


def _base64_cores(data: bytes) -> Iterator[tuple[str, str]]:
    """(alignment, core) for the three byte offsets at which `data` may start inside a base64 stream."""
    for offset in range(3):
        encoded = base64.b64encode(b"\x00" * offset + data).decode()
        # drop the characters mixed with the preceding bytes and the possibly incomplete last quantum
        start = (offset * 4 + 2) // 3 if offset else 0
        usable = ((offset + len(data)) // 3) * 4
        core = encoded[start:usable]
        if len(core) >= MIN_BASE64_CORE:
            yield f"base64@{offset}", core
            yield f"base64url@{offset}", core.replace("+", "-").replace("/", "_")


def _unescape(match: re.Match[str]) -> str:
    return chr(int(match.group(1) or match.group(2), 16))


_UNPRINTABLE = re.compile(r"[^\x20-\x7e\u00a0-\uffff]")


def _texty(text: str) -> bool:
    """Decoded text worth searching: mostly printable. What a wrong offset or a hash decodes to is not."""
    return len(text) >= 4 and len(_UNPRINTABLE.findall(text)) * 10 <= len(text)


def _decoded_text(data: bytes) -> Iterator[str]:
    """Text a decoded blob may hold: UTF-8, and UTF-16LE when every other byte is NUL."""
    text = data.decode("utf-8", "ignore")
    if _texty(text):
        yield text
    if len(data) >= 4 and data[1::2].count(0) * 2 >= len(data) // 2:
        wide = data[:len(data) - len(data) % 2].decode("utf-16-le", "ignore")
        if _texty(wide):
            yield wide


@lru_cache(maxsize=65536)
def _base64_decodings(run: str) -> tuple[str, ...]:
    """The run decoded from each of the four character offsets (a value may start anywhere in a blob)."""
    if run.islower() or run.isupper() or run.isdigit():
        return ()  # ids, hex digests and words, not base64 of text
    altchars = b"-_" if ("-" in run or "_" in run) else None
    body = run.rstrip("=")
    out: list[str] = []
    for offset in range(4):
        chunk = body[offset:]
        chunk = chunk[: len(chunk) - len(chunk) % 4]
        if len(chunk) < 8:
            continue
        try:
            data = base64.b64decode(chunk, altchars=altchars, validate=altchars is None)
        except (binascii.Error, ValueError):
            continue
        out.extend(_decoded_text(data))
    return tuple(out)


@lru_cache(maxsize=65536)
def _hex_decodings(run: str) -> tuple[str, ...]:
    out: list[str] = []
    for offset in (0, 1):
        chunk = run[offset:]
        chunk = chunk[: len(chunk) - len(chunk) % 2]
        out.extend(_decoded_text(bytes.fromhex(chunk)))
    return tuple(out)


def _layers(text: str) -> Iterator[tuple[str, str]]:
    """(encoding, text) of what one layer of encoding in `text` decodes to (when that is text at all)."""
    if "%" in text or "+" in text:
        decoded = unquote_plus(text)
        if decoded != text:
            yield "url-decoded", decoded
    if "\\" in text:
        decoded = _ESCAPE.sub(_unescape, text)
        if decoded != text:
            yield "escaped", decoded
    if "&" in text and ";" in text:
        decoded = html.unescape(text)
        if decoded != text:
            yield "html", decoded
    for run in set(_BASE64_RUN.findall(text)):
        for decoded in _base64_decodings(run):
            yield "base64", decoded
    for run in set(_HEX_RUN.findall(text)):
        for decoded in _hex_decodings(run):
            yield "hex", decoded


class LeakChecker:
    """Finds every sensitive value and shape in a document about to leave (see the module docstring).

    `internal_addresses`: True when the policy lets internal-looking addresses out (Crypto-PAn for the
    trusted group); the organisation's own listed addresses are still hunted."""

    def __init__(self, known: Sensitive, internal_addresses: bool = False) -> None:
        self.known = known
        self.internal_addresses = internal_addresses
        self._folded = ahocorasick.Automaton()  # searched in the lower-cased text
        self._exact = ahocorasick.Automaton()  # base64 is case-sensitive
        self._words: dict[str, tuple[str, str]] = {}
        count_f = count_e = 0
        for kind, value in known.values():
            forms = {value, value.lower(), value.upper()}
            for form in forms:
                for encoding, needle in self._plain_forms(form):
                    key = needle.lower()
                    if key not in self._words:
                        self._folded.add_word(key, (kind, value, encoding, len(key)))
                        self._words[key] = (kind, value)
                        count_f += 1
                for encoding, core in self._encoded_forms(form):
                    if self._exact.exists(core):
                        continue
                    self._exact.add_word(core, (kind, value, encoding, len(core)))
                    count_e += 1
        self._has_folded, self._has_exact = count_f > 0, count_e > 0
        if self._has_folded:
            self._folded.make_automaton()
        if self._has_exact:
            self._exact.make_automaton()
        suffixes = sorted({x.lower() for x in known.suffixes}, key=len, reverse=True)
        self._shapes = {name: re.compile(rx) for name, rx in PATTERNS if name in _SHAPES}
        self._suffix_probe = SuffixProbe(suffixes) if suffixes else None
        if suffixes:
            self._shapes["fqdn"] = re.compile(
                r"(?i)(?<![\w.-])[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9-]+)*\.(?:"
                + "|".join(re.escape(x) for x in suffixes) + r")(?![\w-])")

    @staticmethod
    def _plain_forms(value: str) -> Iterable[tuple[str, str]]:
        yield "plain", _json_inner(value)
        for encoding, encoded in (("url", quote(value, safe="")), ("url", quote_plus(value, safe="")),
                                  ("url-path", quote(value))):
            if encoded != value:
                yield encoding, encoded
        yield "utf-16le", _json_inner(value.encode("utf-16-le").decode("latin-1"))

    @staticmethod
    def _encoded_forms(value: str) -> Iterable[tuple[str, str]]:
        for label, data in (("utf-8", value.encode()), ("utf-16le", value.encode("utf-16-le"))):
            for alignment, core in _base64_cores(data):
                yield f"{alignment}/{label}", core

    # -- searching -------------------------------------------------------------------------------
    def _shape_hit(self, name: str, match: re.Match[str]) -> tuple[str, str] | None:
        """(kind, value) when a shape's match is sensitive: an internal address, an internal host name,
        a patient identifier or a user's home folder that is not already a pseudonym or redacted."""
        text = match.group(0)
        if name == "fqdn":
            return "host", text
        if name in {"ipv4", "ipv6"}:
            if self.internal_addresses and text not in self.known.addresses:
                return None
            return ("address", text) if self.known.is_internal_address(text) else None
        if name == "pid":
            return None if REDACTED in text else ("patient", text)
        group = {"winpath": "winuser", "unixpath": "unixuser"}.get(name, name)
        value = match.group(group)
        if value is None or PSEUDONYM.match(value) or value.startswith("[") or value.lower() in _NOT_A_USER:
            return None
        return _SHAPES[name], value

    def _value_hits(self, text: str, layer: str = "") -> Iterator[tuple[str, str, str]]:
        """(kind, value, encoding) of every known value in `text` (a JSON text or one string)."""
        if self._has_folded:
            lowered = text.lower()
            same = len(lowered) == len(text)
            for end, (kind, value, encoding, length) in self._folded.iter(lowered):
                if len(value) < SHORT and encoding == "plain" and same:
                    start = end - length + 1
                    before = text[start - 1] if start > 0 else " "
                    after = text[end + 1] if end + 1 < len(text) else " "
                    if before.isalnum() or after.isalnum():
                        continue
                if encoding == "plain" and same and _in_stix_type(lowered, end - length + 1, end):
                    continue
                yield kind, value, layer + encoding
        if self._has_exact:
            for _end, (kind, value, encoding, _length) in self._exact.iter(text):
                yield kind, value, layer + encoding

    def _shape_hits(self, text: str, depth: int = 0, layer: str = "") -> Iterator[tuple[str, str, str]]:
        """Sensitive shapes in `text` (as written, not JSON-escaped), and values and shapes in what it decodes to."""
        for name in triggered(text, text.lower(), self._suffix_probe):
            if name in self._shapes:
                judged: set[str] = set()  # an address is judged by its text alone: each distinct one once
                for match in self._shapes[name].finditer(text):
                    if name in {"ipv4", "ipv6"}:
                        if match.group(0) in judged:
                            continue
                        judged.add(match.group(0))
                    found = self._shape_hit(name, match)
                    if found is not None:
                        yield found[0], found[1], layer + "shape"
        if depth < DECODE_DEPTH:
            for encoding, decoded in _layers(text):
                inner = f"{layer}{encoding}/"
                yield from self._value_hits(decoded, inner)
                yield from self._shape_hits(decoded, depth + 1, inner)

    def _text_hits(self, text: str) -> Iterator[tuple[str, str, str]]:
        yield from self._value_hits(text)
        yield from self._shape_hits(text)

    def check(self, bundle: Any) -> list[Hit]:
        """Every place a sensitive value occurs; empty when the bundle is clean.

        First a search of everything at once: known values in every distinct string of the document (its keys,
        strings and numbers as text, each as it is written in JSON), shapes and encodings in its distinct free
        text (identifiers, references, times and hashes hold none, and are most of a bundle). Only when that
        finds anything is each string searched on its own, to say where."""
        # each distinct string once: keys, markings, references and names repeat across thousands of objects
        every: list[str] = []
        free: list[str] = []
        _gather(bundle, every, free)
        # orjson writes each string as it stands in the document's JSON, between quotes (never inside a value)
        if not any(True for _ in self._value_hits(orjson.dumps(list(dict.fromkeys(every))).decode())) and not any(
                True for _ in self._shape_hits(_PSEUDONYMS.sub(" ", "\n".join(dict.fromkeys(free))))):
            return []
        hits: dict[tuple[str, str, str, str], Hit] = {}
        for object_id, path, string in _strings(bundle):
            for kind, value, encoding in chain(self._value_hits(_json_inner(string)), self._shape_hits(string)):
                key = (object_id, path, kind, value)
                if key not in hits:
                    hits[key] = Hit(object_id, path, kind, encoding, _fingerprint(value))
        return list(hits.values())

    def check_text(self, text: str) -> list[Hit]:
        """Check a file's text: JSON is parsed and walked; anything else is searched as it is."""
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            found = {(k, v): e for k, v, e in self._text_hits(text)}
            return [Hit("", "(text)", k, e, _fingerprint(v)) for (k, v), e in found.items()]
        return self.check(parsed)


def _gather(value: Any, every: list[str], free: list[str] | None) -> None:
    """Into `every`, each string `_strings` yields (keys, strings, numbers as text); into `free`, when given,
    every key and every string or number not under a structural STIX property (ids, references, times, hashes).

    One recursive walk, with a property's string value (the common leaf) handled in place: it runs over every
    object."""
    if isinstance(value, dict):
        for key, item in value.items():
            name = key if isinstance(key, str) else str(key)
            every.append(name)
            below = None
            if free is not None:
                free.append(name)
                if name not in STRUCTURAL and not name.endswith(("_ref", "_refs")):
                    below = free
            if isinstance(item, str):
                every.append(item)
                if below is not None:
                    below.append(item)
            else:
                _gather(item, every, below)
    elif isinstance(value, list | tuple):  # orjson writes a tuple as a list
        for item in value:
            _gather(item, every, free)
    elif isinstance(value, str):
        every.append(value)
        if free is not None:
            free.append(value)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        text = str(value)
        every.append(text)
        if free is not None:
            free.append(text)


def _strings(value: Any, path: str = "$", object_id: str = "") -> Iterator[tuple[str, str, str]]:
    """(object id, JSON path, string) of every string in the document, keys included."""
    if isinstance(value, dict):
        if isinstance(value.get("id"), str) and "type" in value:
            object_id = value["id"]
        for key, item in value.items():
            child = f"{path}.{key}" if key.replace("_", "").replace("-", "").isalnum() else f"{path}[{key!r}]"
            yield object_id, f"{child} (key)", str(key)
            yield from _strings(item, child, object_id)
    elif isinstance(value, list | tuple):  # orjson writes a tuple as a list
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]", object_id)
    elif isinstance(value, str):
        yield object_id, path, value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield object_id, path, str(value)
