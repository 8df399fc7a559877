"""`healthswarm hunt` reads its inputs through the ingest container layer, as `ingest` does: an EVTX file
hunted plain, gzip-compressed, inside a zip and inside a folder of a tar.xz gives the same detections; a file in
no known format and a compressed file that breaks off are each one warning line, never a traceback."""

from __future__ import annotations

import gzip
import io
import json
import lzma
import tarfile
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import shared
from healthswarm.cli.main import app
from sigma_support import evtx_parser_available

CASE = "proc_creation_win_bitsadmin_download"


@pytest.fixture
def sample() -> Path:
    if not evtx_parser_available():
        pytest.skip("the EVTX parser (healthswarm.ingest.formats.evtx) is not there")
    folder = shared("sigma", "regression_data", "rules", "windows", "process_creation", CASE)
    return next(folder.glob("*.evtx"))


def detections(tmp_path: Path, *inputs: Path) -> tuple[list[tuple[str, int]], str]:
    rule = shared("sigma", "rules", "windows", "process_creation", f"{CASE}.yml")
    result = CliRunner().invoke(app, ["--workspace", str(tmp_path / "ws"), "hunt", "--rules", str(rule),
                                      "--format", "ndjson", *map(str, inputs)])
    assert result.exit_code == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    return sorted((r["rule_id"], r["record"]) for r in rows), result.stderr


def test_hunt_finds_the_same_in_every_container(tmp_path: Path, sample: Path) -> None:
    plain, _ = detections(tmp_path, sample)
    assert plain, "the regression sample fires its own rule"
    data = sample.read_bytes()
    packed = tmp_path / "packed"
    packed.mkdir()
    (packed / "sample.evtx.gz").write_bytes(gzip.compress(data))
    with zipfile.ZipFile(packed / "sample.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("logs/sample.evtx", data)
    tarred = io.BytesIO()
    with tarfile.open(fileobj=tarred, mode="w") as archive:
        info = tarfile.TarInfo("sample.evtx")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    (packed / "sample.tar.xz").write_bytes(lzma.compress(tarred.getvalue()))
    for each in sorted(packed.iterdir()):
        assert detections(tmp_path, each)[0] == plain, each.name
    found, _ = detections(tmp_path, packed)  # the folder: every container in it
    assert found == sorted(plain * 3)


def test_unknown_and_broken_files_are_one_warning_each(tmp_path: Path, sample: Path) -> None:
    plain, _ = detections(tmp_path, sample)
    unknown = tmp_path / "notes.bin"
    unknown.write_bytes(bytes(range(256)) * 8)
    broken = tmp_path / "cut.evtx.gz"
    broken.write_bytes(gzip.compress(sample.read_bytes())[:300])
    found, err = detections(tmp_path, sample, unknown, broken)
    assert found == plain  # the good file still counts in full
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert f"warning: {unknown}: format not recognised (skipped)" in warnings
    assert any(line.startswith(f"warning: {broken}: cannot read:") for line in warnings), err
    assert "Traceback" not in err
