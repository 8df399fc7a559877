"""Input formats: one module per format, each exposing `FORMAT`, an object following `base.Format`.

`FORMATS` is their plug-in registry (`plugins.Registry`): the built-ins below are imported on first use,
so a command that reads Suricata does not pay for pydicom; a new format is one file whose class is
decorated with `@register_format`, or named in the `healthswarm.formats` entry-point group of another
package (docs/plugins.md).
"""

from __future__ import annotations

from healthswarm.ingest.formats.base import SNIFF_BYTES, Format
from healthswarm.plugins import Registry, instance

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

FORMATS: Registry[Format] = Registry("format", "healthswarm.formats",
                                     {name: f"{module}:FORMAT" for name, module in FORMAT_MODULES.items()},
                                     make=instance, expect=Format)
register_format = FORMATS.register


def get_format(name: str) -> Format:
    """The format `name`; an unknown name raises UnknownPluginError (a KeyError listing the formats)."""
    return FORMATS.get(name)


def format_names() -> list[str]:
    return FORMATS.names()


def all_formats() -> list[Format]:
    return FORMATS.all()


def detect_format(head: bytes, filename: str = "") -> Format | None:
    """The format most confident that `head` is its own, or None when none is at least half sure."""
    best, best_score = None, 0.5
    for fmt in all_formats():
        score = fmt.sniff(head[:SNIFF_BYTES], filename)
        if score > best_score:
            best, best_score = fmt, score
            if score >= 1.0:  # certain (a magic number): no later format can be surer; 1,000 small files sniffed
                break  # by every format cost a hunt a tenth of its time
    return best


__all__ = ["FORMATS", "FORMAT_MODULES", "SNIFF_BYTES", "Format", "all_formats", "detect_format", "format_names",
           "get_format", "register_format"]
