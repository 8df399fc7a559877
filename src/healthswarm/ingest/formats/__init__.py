"""Input formats: one module per format, each exposing `FORMAT`, an object following `base.Format`.

Modules are imported on first use, so a command that reads Suricata does not pay for pydicom.
"""

from __future__ import annotations

import importlib
from functools import cache

from healthswarm.ingest.formats.base import SNIFF_BYTES, Format

FORMAT_MODULES: dict[str, str] = {
    "suricata": "healthswarm.ingest.formats.suricata",
    "zeek": "healthswarm.ingest.formats.zeek",
    "evtx": "healthswarm.ingest.formats.evtx",
    "windows-json": "healthswarm.ingest.formats.windows_json",
    "syslog": "healthswarm.ingest.formats.syslog",
    "auditd": "healthswarm.ingest.formats.auditd",
    "fhir": "healthswarm.ingest.formats.fhir",
    "hl7": "healthswarm.ingest.formats.hl7v2",
    "dicom": "healthswarm.ingest.formats.dicom",
    "iomt-json": "healthswarm.ingest.formats.iomt",
    "ton-iot": "healthswarm.ingest.formats.ton_iot",
    "cicflowmeter": "healthswarm.ingest.formats.cicflowmeter",
    "nsl-kdd": "healthswarm.ingest.formats.nsl_kdd",
}


@cache
def get_format(name: str) -> Format:
    try:
        module = FORMAT_MODULES[name]
    except KeyError:
        raise KeyError(f"unknown format {name!r} (expected one of {', '.join(sorted(FORMAT_MODULES))})") from None
    return importlib.import_module(module).FORMAT


def all_formats() -> list[Format]:
    return [get_format(name) for name in FORMAT_MODULES]


def detect_format(head: bytes, filename: str = "") -> Format | None:
    """The format most confident that `head` is its own, or None when none is at least half sure."""
    best, best_score = None, 0.5
    for fmt in all_formats():
        score = fmt.sniff(head[:SNIFF_BYTES], filename)
        if score > best_score:
            best, best_score = fmt, score
    return best


__all__ = ["FORMAT_MODULES", "SNIFF_BYTES", "Format", "all_formats", "detect_format", "get_format"]
