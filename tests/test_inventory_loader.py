"""Validation of infrastructure descriptions: every problem reported, each with file, line and expectation."""

from __future__ import annotations

from pathlib import Path

import pytest

from healthswarm.errors import InputError
from healthswarm.inventory import load_inventory
from healthswarm.model import Level

DEMO = Path(__file__).resolve().parent.parent / "src" / "healthswarm" / "demo" / "ecosystem.yaml"

GOOD = """\
organisations:
  - {id: h1, name: Hospital One, kind: hospital, country: DE}
zones:
  - {id: h1-iomt, organisation: h1, name: Ward devices, exposure: iomt}
  - {id: h1-clin, organisation: h1, name: Clinical, exposure: clinical}
assets:
  - id: pump-1
    organisation: h1
    zone: h1-iomt
    kind: infusion-pump
    name: Pump 1
    vendor: BD
    product: Alaris PC Unit Model 8015
    version: 9.33.1
    addresses: [10.0.0.5]
    criticality: {safety: critical, availability: high}
  - id: ehr
    organisation: h1
    zone: h1-clin
    kind: ehr
    name: EHR
    addresses: [10.0.1.0/28, "2001:db8::10"]
    records: 250000
    attributes: {room: DC-1}
flows:
  - {from: pump-1, to: ehr, protocol: hl7v2, port: 2575}
dependencies:
  - {from: pump-1, to: ehr, kind: data}
"""


def write(tmp_path: Path, text: str, name: str = "inv.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(paths: list[Path]) -> list[str]:
    with pytest.raises(InputError) as info:
        load_inventory(paths)
    return [str(p) for p in info.value.problems]


def test_valid_description_loads_every_field(tmp_path: Path) -> None:
    inv = load_inventory([write(tmp_path, GOOD)])
    pump = inv.assets[0]
    assert pump.criticality.safety is Level.CRITICAL and pump.criticality.confidentiality is Level.NONE
    assert pump.addresses == ("10.0.0.5",) and pump.is_medical_device
    ehr = inv.assets[1]
    assert ehr.addresses == ("10.0.1.0/28", "2001:db8::10") and ehr.records == 250000
    assert ehr.attributes == {"room": "DC-1"}
    assert inv.flows[0].port == 2575 and inv.dependencies[0].kind == "data"


def test_demo_ecosystem_is_valid_and_large_enough() -> None:
    inv = load_inventory([DEMO])
    assert len(inv.assets) >= 150
    kinds = {o.kind for o in inv.organisations}
    assert {"hospital", "imaging-centre", "laboratory"} <= kinds
    assert sum(1 for a in inv.assets if a.is_medical_device) >= 50


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("kind: infusion-pump", "kind: toaster"), ":10: kind: unknown kind 'toaster' (expected one of"),
        (("zone: h1-iomt\n    kind", "zone: nowhere\n    kind"), ":9: zone: unknown zone 'nowhere'"),
        (("addresses: [10.0.0.5]", "addresses: [10.0.0.5/24]"), ":15: addresses: bad address or CIDR '10.0.0.5/24'"),
        (("addresses: [10.0.0.5]", "addresses: [10.0.0.300]"), ":15: addresses: bad address or CIDR '10.0.0.300'"),
        (("addresses: [10.0.0.5]", "addresses: [10.0.1.3]"), "overlaps 10.0.1.0/28"),
        (("records: 250000", "records: many"), ":23: records: 'many' is not a valid value"),
        (("records: 250000", "records: -3"), ":23: records: '-3' is not a valid value"),
        (("safety: critical", "safety: deadly"), ":16: criticality.safety: unknown level 'deadly'"),
        (("port: 2575", "port: 70000"), ":26: port: '70000' is not a valid value (expected a whole number from 1"),
        (("protocol: hl7v2", "protocol: carrier-pigeon"), ":26: protocol: unknown protocol 'carrier-pigeon'"),
        (("{from: pump-1, to: ehr, kind", "{from: pump-9, to: ehr, kind"), ":28: from: unknown asset 'pump-9'"),
        (("    name: EHR\n", "    nmae: EHR\n"), "unknown field 'nmae' in assets"),
        (("    name: EHR\n", ""), "missing required field 'name'"),
        (("kind: hospital", "kind: castle"), ":2: kind: unknown kind 'castle'"),
        (("exposure: iomt", "exposure: moon"), ":4: exposure: unknown exposure 'moon'"),
    ],
)
def test_each_problem_names_line_field_and_expectation(tmp_path: Path, change: tuple[str, str], expected: str) -> None:
    old, new = change
    assert old in GOOD
    problems = problems_of([write(tmp_path, GOOD.replace(old, new, 1))])
    assert any(expected in p for p in problems), problems


def test_all_problems_reported_at_once(tmp_path: Path) -> None:
    text = (GOOD.replace("kind: infusion-pump", "kind: toaster")
            .replace("exposure: clinical", "exposure: moon")
            .replace("{from: pump-1, to: ehr, kind", "{from: ghost, to: ehr, kind"))
    problems = problems_of([write(tmp_path, text)])
    assert len(problems) >= 3
    assert all(p.startswith(str(tmp_path / "inv.yaml") + ":") for p in problems)


def test_duplicate_ids_and_zone_of_other_organisation(tmp_path: Path) -> None:
    text = GOOD.replace(
        "zones:\n",
        "  - {id: h2, name: Two, kind: clinic}\nzones:\n"
        "  - {id: h2-z, organisation: h2, name: Z, exposure: internal}\n",
    ).replace("id: ehr\n    organisation: h1\n    zone: h1-clin", "id: pump-1\n    organisation: h1\n    zone: h2-z")
    problems = problems_of([write(tmp_path, text)])
    assert any("duplicate asset id 'pump-1' (first at" in p for p in problems), problems
    assert any("zone 'h2-z' belongs to organisation 'h2', not 'h1'" in p for p in problems), problems


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    problems = problems_of([write(tmp_path, "organisations:\n  - {id: a, name: [unclosed\n")])
    assert len(problems) == 1 and ":3: malformed YAML" in problems[0]


def test_wrong_types_and_missing_files(tmp_path: Path) -> None:
    problems = problems_of([write(tmp_path, "organisations: {id: a}\nassets: 7\nshoes: []\n"),
                            tmp_path / "missing.yaml"])
    text = "\n".join(problems)
    assert "organisations is a mapping (expected a list)" in text
    assert "assets is a scalar '7' (expected a list)" in text
    assert "unknown section 'shoes'" in text
    assert "missing.yaml: no such file" in text


def test_several_files_form_one_inventory(tmp_path: Path) -> None:
    org, rest = GOOD.split("zones:\n", 1)
    folder = tmp_path / "inv"
    folder.mkdir()
    write(folder, org, "a.yaml")
    write(folder, "zones:\n" + rest, "b.yml")
    inv = load_inventory([folder])
    assert len(inv.organisations) == 1 and len(inv.assets) == 2


def test_empty_folder_and_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    problems = problems_of([tmp_path / "empty", write(tmp_path, "")])
    assert any("no .yaml or .yml files" in p for p in problems)
    assert any("the file is empty" in p for p in problems)
