"""The last gate before a bundle leaves: search it for every sensitive value the organisation knows.

Each value is searched as written and in the forms it could hide in: any letter case, URL-encoded
(`%2F`/`%2f`, `+` for space), UTF-16LE (as the NUL-interleaved text a decoded blob yields), and
base64 of the UTF-8 and UTF-16LE bytes at each of the three alignments a value can have inside a
longer base64 string (the stable core of each alignment is searched, so a value embedded anywhere in an
encoded blob is found). The bundle is re-serialised compactly (so `\\u0068ost`-style escapes cannot hide
a value) and searched in one pass per automaton (pyahocorasick); only a hit is traced back to the
object id and JSON path of the string that holds it.

Short values (< 6 characters) must stand alone (no letter or digit on either side) so that a user
called "ana" does not match "analysis".
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus

import ahocorasick
import orjson

from healthswarm.share.sensitive import Sensitive

SHORT = 6
MIN_BASE64_CORE = 6


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


class LeakChecker:
    def __init__(self, known: Sensitive) -> None:
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
    def _text_hits(self, text: str) -> Iterator[tuple[str, str, str]]:
        """(kind, value, encoding) of every sensitive value in `text` (a JSON text or one string)."""
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
                yield kind, value, encoding
        if self._has_exact:
            for _end, (kind, value, encoding, _length) in self._exact.iter(text):
                yield kind, value, encoding

    def check(self, bundle: Any) -> list[Hit]:
        """Every place a sensitive value occurs; empty when the bundle is clean."""
        text = orjson.dumps(bundle).decode()
        if not any(True for _ in self._text_hits(text)):
            return []
        hits: dict[tuple[str, str, str, str], Hit] = {}
        for object_id, path, string in _strings(bundle):
            for kind, value, encoding in self._text_hits(_json_inner(string)):
                key = (object_id, path, kind, value)
                if key not in hits:
                    hits[key] = Hit(object_id, path, kind, encoding, _fingerprint(value))
        return list(hits.values())

    def check_text(self, text: str) -> list[Hit]:
        """Check a file's text: JSON is parsed and walked; anything else is searched as it is."""
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            return [Hit("", "(text)", k, e, _fingerprint(v)) for k, v, e in self._text_hits(text)]
        return self.check(parsed)


def _strings(value: Any, path: str = "$", object_id: str = "") -> Iterator[tuple[str, str, str]]:
    """(object id, JSON path, string) of every string in the document, keys included."""
    if isinstance(value, dict):
        if isinstance(value.get("id"), str) and "type" in value:
            object_id = value["id"]
        for key, item in value.items():
            child = f"{path}.{key}" if key.replace("_", "").replace("-", "").isalnum() else f"{path}[{key!r}]"
            yield object_id, f"{child} (key)", str(key)
            yield from _strings(item, child, object_id)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]", object_id)
    elif isinstance(value, str):
        yield object_id, path, value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield object_id, path, str(value)
