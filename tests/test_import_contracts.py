"""The arrows of the architecture hold: the import-linter contracts in pyproject.toml ([tool.importlinter]) —
stage layers, `model` importing nothing of ours, the faces never touching the store's tables or (CLI, web)
building SQL — are all kept, and a contract the code breaks is reported as broken."""

from __future__ import annotations

from pathlib import Path

import pytest
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[1]


def test_every_import_contract_is_kept(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(ROOT)
    code = lint_imports(no_cache=True, no_logo=True)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "0 broken" in out and "model imports nothing of ours KEPT" in out


def test_a_broken_contract_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    # the command line does call the detect stage's service: forbidding it must be reported, with the import
    config = tmp_path / "contracts.toml"
    config.write_text('[tool.importlinter]\nroot_package = "healthswarm"\n\n'
                      '[[tool.importlinter.contracts]]\nname = "cli without the detect service"\ntype = "forbidden"\n'
                      'source_modules = ["healthswarm.cli"]\nforbidden_modules = ["healthswarm.detect.service"]\n')
    monkeypatch.chdir(ROOT)
    assert lint_imports(config_filename=str(config), no_cache=True, no_logo=True) == 1
    out = capsys.readouterr().out
    assert "BROKEN" in out and "healthswarm.cli.incidents -> healthswarm.detect.service" in out
