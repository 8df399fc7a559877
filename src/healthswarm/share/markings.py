"""TLP 2.0 and PAP marking definitions, with the ids OASIS publishes in cti-stix-common-objects.

TLP 2.0 is not predefined by STIX 2.1: each level is a `marking-definition` with the TLP 2.0
property extension, and a bundle that references one carries the object. The ids and `created`
values are the published ones; never generate them.
"""

from __future__ import annotations

from typing import Any

TLP2_EXTENSION = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
PAP_EXTENSION = "extension-definition--f8d78575-edfd-406e-8e84-6162a8450f5b"

TLP2_IDS: dict[str, str] = {
    "clear": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    "green": "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    "amber": "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    "amber+strict": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    "red": "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
# TLP 1.0 as predefined by STIX 2.1 (read on import, never written)
TLP1_IDS: dict[str, str] = {
    "white": "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9",
    "green": "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
    "amber": "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
    "red": "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed",
}
PAP_IDS: dict[str, tuple[str, str]] = {
    # level -> (id, created) as published with the PAP extension definition
    "clear": ("marking-definition--ad15a0cd-55b6-4588-a14c-a66105329b92", "2022-10-01T00:00:00.000Z"),
    "green": ("marking-definition--c43594d1-4b11-4c59-93ab-1c9b14d53ce9", "2022-10-09T00:00:00.000Z"),
    "amber": ("marking-definition--60f8932b-e51e-4458-b265-a2e8be9a80ab", "2022-10-02T00:00:00.000Z"),
    "red": ("marking-definition--740d36e5-7714-4c30-961a-3ae632ceee0e", "2022-10-06T00:00:00.000Z"),
}
TLP_ORDER: tuple[str, ...] = ("clear", "green", "amber", "amber+strict", "red")
PAP_ORDER: tuple[str, ...] = ("clear", "green", "amber", "red")

_TLP_BY_ID = {v: k for k, v in TLP2_IDS.items()} | {
    TLP1_IDS["white"]: "clear", TLP1_IDS["green"]: "green", TLP1_IDS["amber"]: "amber", TLP1_IDS["red"]: "red",
}
_PAP_BY_ID = {v[0]: k for k, v in PAP_IDS.items()}


def tlp_marking(level: str) -> dict[str, Any]:
    """The TLP 2.0 marking-definition object of a level (clear, green, amber, amber+strict, red)."""
    level = normalise_tlp(level)
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": TLP2_IDS[level],
        "created": "2022-10-01T00:00:00.000Z",
        "name": f"TLP:{level.upper()}",
        "extensions": {TLP2_EXTENSION: {"extension_type": "property-extension", "tlp_2_0": level}},
    }


def pap_marking(level: str) -> dict[str, Any]:
    """The PAP marking-definition object of a level (clear, green, amber, red)."""
    level = level.strip().lower().removeprefix("pap:")
    if level not in PAP_IDS:
        raise ValueError(f"PAP level {level!r} is not one of {', '.join(PAP_ORDER)}")
    ident, created = PAP_IDS[level]
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": ident,
        "created": created,
        "name": f"PAP:{level.upper()}",
        "extensions": {PAP_EXTENSION: {"extension_type": "property-extension", "pap": level}},
    }


def normalise_tlp(level: str) -> str:
    text = level.strip().lower().removeprefix("tlp:")
    if text == "white":
        text = "clear"
    if text not in TLP2_IDS:
        raise ValueError(f"TLP level {level!r} is not one of {', '.join(TLP_ORDER)}")
    return text


def tlp_of(marking_refs: list[str] | tuple[str, ...] | None) -> str | None:
    """The most restrictive TLP level among marking ids (TLP 2.0 or 1.0), or None when unmarked."""
    found = [_TLP_BY_ID[m] for m in marking_refs or () if m in _TLP_BY_ID]
    return max(found, key=TLP_ORDER.index) if found else None


def pap_of(marking_refs: list[str] | tuple[str, ...] | None) -> str | None:
    found = [_PAP_BY_ID[m] for m in marking_refs or () if m in _PAP_BY_ID]
    return max(found, key=PAP_ORDER.index) if found else None
