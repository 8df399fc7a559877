"""Indicator values to STIX patterns and observables, and simple STIX patterns back to values."""

from __future__ import annotations

import re
from typing import Any

HASH_NAMES = {"md5": "MD5", "sha1": "SHA-1", "sha256": "SHA-256", "sha512": "SHA-512"}
_HASH_TYPES = {v: k for k, v in HASH_NAMES.items()} | {"SHA1": "sha1", "SHA256": "sha256", "SHA512": "sha512"}

# indicator type -> STIX object path compared in the pattern
PATTERN_PATHS = {
    "ipv4": "ipv4-addr:value",
    "ipv6": "ipv6-addr:value",
    "domain": "domain-name:value",
    "url": "url:value",
    "email": "email-addr:value",
    "filename": "file:name",
    "mutex": "mutex:name",
    "registry-key": "windows-registry-key:key",
    "user-agent": "network-traffic:extensions.'http-request-ext'.request_header.'User-Agent'",
}
_PATH_TYPES = {v: k for k, v in PATTERN_PATHS.items()}

# one comparison: [path = 'value'] (the common indicator form); values may hold escaped quotes
_SIMPLE = re.compile(r"^\[\s*([a-z0-9-]+:[^=\s]+)\s*=\s*'((?:[^'\\]|\\.)*)'\s*\]$")
_HASH_PATH = re.compile(r"^file:hashes\.(?:'([^']+)'|([A-Za-z0-9-]+))$")


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


def pattern_for(kind: str, value: str) -> str | None:
    """The STIX pattern of an indicator, or None for types STIX patterns do not express (cve, technique)."""
    if kind in HASH_NAMES:
        return f"[file:hashes.'{HASH_NAMES[kind]}' = '{escape(value)}']"
    path = PATTERN_PATHS.get(kind)
    return f"[{path} = '{escape(value)}']" if path else None


def parse_simple(pattern: str) -> tuple[str, str] | None:
    """(indicator type, value) of a one-comparison pattern, or None when the pattern is more complex."""
    match = _SIMPLE.match(pattern.strip())
    if not match:
        return None
    path, value = match.group(1), unescape(match.group(2))
    hashed = _HASH_PATH.match(path)
    if hashed:
        kind = _HASH_TYPES.get((hashed.group(1) or hashed.group(2)).upper())
        return (kind, value) if kind else None
    kind = _PATH_TYPES.get(path)
    return (kind, value) if kind else None


def observable_for(kind: str, value: str) -> tuple[str, dict[str, Any]] | None:
    """(SCO type, properties) of an indicator value, for observed-data; None where there is no SCO."""
    if kind == "ipv4":
        return "ipv4-addr", {"value": value}
    if kind == "ipv6":
        return "ipv6-addr", {"value": value}
    if kind == "domain":
        return "domain-name", {"value": value}
    if kind == "url":
        return "url", {"value": value}
    if kind == "email":
        return "email-addr", {"value": value}
    if kind in HASH_NAMES:
        return "file", {"hashes": {HASH_NAMES[kind]: value}}
    return None


def without_query(url: str) -> str:
    """The URL without its query string and fragment: where patients' and users' identifiers travel."""
    return url.split("#", 1)[0].split("?", 1)[0]
