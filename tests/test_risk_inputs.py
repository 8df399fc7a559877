"""Input files of the risk engine: EPSS, KEV, zone policy, findings JSON — good and bad."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from healthswarm.errors import InputError
from healthswarm.risk.inputs import load_findings_file
from healthswarm.risk.likelihood import load_epss, load_kev, load_likelihood
from healthswarm.risk.reach import load_policy
from healthswarm.risk.vector import VectorError, parse_vector


def test_epss_csv_and_json(tmp_path: Path) -> None:
    csv = tmp_path / "epss.csv"
    csv.write_text("#model_version:v2023.03.01,score_date:2024-01-01\ncve,epss,percentile\n"
                   "CVE-2020-6961,0.0123,0.5\ncve-2018-11218,0.97,0.99\n")
    assert load_epss(csv) == {"CVE-2020-6961": 0.0123, "CVE-2018-11218": 0.97}
    js = tmp_path / "epss.json"
    js.write_text(json.dumps({"data": [{"cve": "CVE-2020-6961", "epss": "0.5", "percentile": "0.9"}]}))
    assert load_epss(js) == {"CVE-2020-6961": 0.5}
    bad = tmp_path / "bad.csv"
    bad.write_text("cve,epss\nCVE-1,1.7\n")
    with pytest.raises(InputError) as exc:
        load_epss(bad)
    assert "row 1" in str(exc.value) and "between 0 and 1" in str(exc.value)


def test_kev_json_csv_and_empty(tmp_path: Path) -> None:
    js = tmp_path / "kev.json"
    js.write_text(json.dumps({"vulnerabilities": [{"cveID": "CVE-2020-1938"}, {"cveID": "CVE-2017-17485"}]}))
    assert load_kev(js) == {"CVE-2020-1938", "CVE-2017-17485"}
    csv = tmp_path / "kev.csv"
    csv.write_text("cveID,vendorProject\nCVE-2020-1938,Apache\n")
    assert load_kev(csv) == {"CVE-2020-1938"}
    empty = tmp_path / "empty.json"
    empty.write_text("{}")
    with pytest.raises(InputError):
        load_kev(empty)
    with pytest.raises(InputError):
        load_likelihood(tmp_path / "missing.csv", None)


def test_zone_policy_file(tmp_path: Path) -> None:
    good = tmp_path / "policy.yaml"
    good.write_text("default: deny\nallow: [[internal, clinical]]\ndeny: [[a-zone, b-zone]]\n")
    policy = load_policy(good)
    assert not policy.use_default and ("internal", "clinical") in policy.allow
    bad = tmp_path / "bad.yaml"
    bad.write_text("default: sometimes\nallow: [[only-one]]\n")
    with pytest.raises(InputError) as exc:
        load_policy(bad)
    assert len(exc.value.problems) == 2


def test_findings_file(tmp_path: Path) -> None:
    good = tmp_path / "findings.json"
    good.write_text(json.dumps([{"asset_id": "a", "advisory_id": "ICSMA-1", "cve": "CVE-1", "status": "affected",
                                 "cvss_vector": "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "cvss_score": 9.8}]))
    [f] = load_findings_file(good)
    assert f.asset_id == "a" and f.cvss_score == 9.8
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"asset_id": "a", "status": "maybe"}, "x"]))
    with pytest.raises(InputError) as exc:
        load_findings_file(bad)
    assert len(exc.value.problems) == 2
    broken = tmp_path / "broken.json"
    broken.write_text("[{")
    with pytest.raises(InputError):
        load_findings_file(broken)


def test_unreadable_vectors_raise_vector_error() -> None:
    for vector in ("", "CVSS:3.1/AV:N", "nonsense"):
        with pytest.raises(VectorError):
            parse_vector(vector)
