"""A built wheel works outside the checkout: its package data (rules, playbooks, migrations, static files, the
demo's data) is inside it, and `python -m healthswarm demo` runs from it in a fresh virtual environment.

The wheel is built from a copy of the sources (`pip wheel --no-deps`, so nothing is written into the checkout) and
installed with `--no-deps` into a fresh environment; its dependencies come from the test environment through a
.pth file naming that environment's site-packages as a plain folder. A plain folder line does not run the .pth
files inside it, so the checkout's editable install (`__editable__…pth` → src/) stays out: `healthswarm` can only
be imported from the wheel, which the test checks.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = [  # one file of each kind of package data the code reads at run time
    "healthswarm/demo/ecosystem.yaml", "healthswarm/demo/logs/windows-sysmon.json", "healthswarm/demo/rules/",
    "healthswarm/demo/advisories/", "healthswarm/detect/sigma/snapshot/sigmahq.zip", "healthswarm/detect/sigma/pack/",
    "healthswarm/detect/sigma/rules/healthcare/", "healthswarm/respond/playbooks/library/",
    "healthswarm/store/migrations/env.py", "healthswarm/store/migrations/script.py.mako",
    "healthswarm/store/migrations/versions/", "healthswarm/web/static/index.html",
    "healthswarm/inventory/discover/fingerprints/", "healthswarm/inventory/advisories/vendor_aliases.toml",
]


def _build_wheel(out: Path) -> Path:
    source = out / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out / "dist"), str(source)],
                   check=True, timeout=600)
    return next((out / "dist").glob("healthswarm-*.whl"))


def _fresh_env(where: Path, wheel: Path) -> Path:
    venv.EnvBuilder(with_pip=False).create(where)
    python = where / ("Scripts" if os.name == "nt" else "bin") / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               capture_output=True, text=True, check=True).stdout.strip())
    ours = [sysconfig.get_path("purelib"), sysconfig.get_path("platlib")]
    (site / "zz_test_dependencies.pth").write_text("\n".join(dict.fromkeys(ours)) + "\n", encoding="utf-8")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q",
                    str(wheel)], check=True, timeout=600)
    return python


@pytest.mark.slow
def test_the_wheel_holds_its_data_and_runs_the_demo_outside_the_checkout(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    for item in DATA:
        assert any(n.startswith(item) for n in names), f"{item} is not in the wheel"
    tracked = subprocess.run(["git", "ls-files", "src/healthswarm"], cwd=ROOT, capture_output=True, text=True)
    if tracked.returncode == 0:  # every file of the package in git, code or data, is in the wheel
        missing = [p for p in tracked.stdout.split() if p.removeprefix("src/") not in names]
        assert not missing, missing

    python = _fresh_env(tmp_path / "env", wheel)
    elsewhere = tmp_path / "elsewhere"  # neither the checkout nor beside it
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEALTHSWARM_", "PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = f"{python.parent}{os.pathsep}/usr/bin:/bin"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(args), cwd=elsewhere, env=env, capture_output=True, text=True, timeout=900)

    where = run(str(python), "-c", "import healthswarm; print(healthswarm.__file__)")
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(tmp_path / "env"), where.stdout  # the wheel, not src/
    version = run("healthswarm", "--version")  # the console script, found on PATH
    assert version.returncode == 0 and version.stdout.startswith("healthswarm "), version.stderr

    demo = run(str(python), "-m", "healthswarm", "demo", "--format", "json")
    assert demo.returncode == 0, demo.stderr
    summary = json.loads(demo.stdout)
    assert summary["Load the reference ecosystem"]["assets"] >= 150
    assert summary["Match medical-device advisories"]["advisories"] >= 30
    assert len(summary["Ingest the scenario's logs"]["files"]) == 6
    detected = summary["Detect: Sigma, sensors, baselines, clinical analytics, patient privacy; correlate"]
    assert detected["alerts_by_rule"].get("Suspicious Encoded PowerShell Command Line")
    assert (elsewhere / ".healthswarm").is_dir()  # the workspace is where the user is

    table = run("healthswarm", "incidents", "list")
    assert table.returncode == 0 and "INC-" in table.stdout, table.stderr
    rules = run("healthswarm", "rules", "list")
    assert rules.returncode == 0 and "sigmahq" in rules.stdout, rules.stderr
