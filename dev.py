#!/usr/bin/env python3
"""The project's single entry point: set up the environment, then run the demo or the tests.

    python3 dev.py demo     # create .venv, install healthswarm, run `healthswarm demo`
    python3 dev.py test     # create .venv, install healthswarm[test], run ruff and pytest
    python3 dev.py audit    # pip-audit .venv against PyPI's advisories (see docs/security.md for the policy)
    python3 dev.py sbom     # CycloneDX JSON of healthswarm and its runtime dependencies → dist/

Standard library only, so that it works on a machine that has nothing but Python 3.11+ and pip.
The install step is skipped when pyproject.toml has not changed since the last one.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
# the SBOM describes what a user installs, so it is taken from an environment holding healthswarm alone
SBOM_VENV = ROOT / "build" / "sbom-venv"  # build/ is git-ignored
# accepted advisories: one id a line, then why and until when (`PYSEC-2024-1  # no fix; unused code path`)
AUDIT_IGNORE = ROOT / ".ci" / "audit-ignore.txt"
# the tests need every optional part: the test tools and federated learning
TEST_EXTRAS = "test,federated"
# Flower pins versions that conflict with pySigma 2 and openmined.psi (see pyproject's `federated` extra);
# its code runs with ours, so it is installed without its pins, beside its runtime needs from that extra.
FLOWER = ("flwr==1.42.0", "grpcio-health-checking==1.81.1")


def _run(*cmd: str | Path) -> int:
    return subprocess.call([str(c) for c in cmd], cwd=ROOT)


def ensure_env(extra: str | None, where: Path = VENV) -> Path:
    """The python of the virtual environment `where`, with healthswarm (and `extra`) installed; returns it."""
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py may be run by an older python3
        sys.exit(f"healthswarm needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    python = where / BIN.name / "python"
    if not python.exists():
        print(f"creating virtual environment in {where}", flush=True)
        venv.EnvBuilder(with_pip=True).create(where)
    spec = f".[{extra}]" if extra else "."
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + spec.encode()).hexdigest()
    stamp = where / f".installed-{extra or 'base'}"
    if stamp.exists() and stamp.read_text() == digest:
        return python
    print(f"installing healthswarm{spec[1:]} into {where}", flush=True)
    if _run(python, "-m", "pip", "install", "-q", "--upgrade", "pip") != 0:
        sys.exit("pip could not upgrade itself; see the messages above")
    if _run(python, "-m", "pip", "install", "-q", "-e", spec) != 0:
        sys.exit("installing healthswarm failed; see the messages above")
    if extra and "federated" in extra.split(",") and _run(python, "-m", "pip", "install", "-q", "--no-deps",
                                                          *FLOWER) != 0:
        sys.exit("installing Flower failed; see the messages above")
    stamp.write_text(digest)
    return python


def _ignored() -> list[str]:
    if not AUDIT_IGNORE.exists():
        return []
    lines = (line.split("#", 1)[0].strip() for line in AUDIT_IGNORE.read_text(encoding="utf-8").splitlines())
    return [line.split()[0] for line in lines if line]


def audit() -> int:
    """pip-audit the test environment (a superset of what users install) against PyPI's advisories.

    Fails on a known vulnerability that a release fixes (upgrade, or list it in .ci/audit-ignore.txt with a
    reason); one without any fix is printed but does not fail, since no change here can act on it. When
    the advisory service cannot be reached the audit is reported as not done and passes, unless
    HEALTHSWARM_AUDIT_STRICT=1: an outage elsewhere must not block every merge, but must not look like a pass.
    """
    report = ROOT / "dist" / "pip-audit.json"
    report.parent.mkdir(exist_ok=True)
    report.unlink(missing_ok=True)
    ignores = [arg for vuln in _ignored() for arg in ("--ignore-vuln", vuln)]
    code = _run(BIN / "python", "-m", "pip_audit", "--skip-editable", "--progress-spinner", "off", "--format",
                "json", "--output", report, "--timeout", "30", *ignores)
    if not report.exists():
        print(f"pip-audit: NOT DONE (exit {code}; advisory service unreachable?); see the messages above", flush=True)
        return 1 if os.environ.get("HEALTHSWARM_AUDIT_STRICT") == "1" else 0
    found = [(dep["name"], dep["version"], vuln) for dep in json.loads(report.read_text())["dependencies"]
             for vuln in dep.get("vulns", [])]
    fixable = [f for f in found if f[2].get("fix_versions")]
    for name, version, vuln in found:
        fix = ", ".join(vuln.get("fix_versions", [])) or "no fixed release"
        print(f"pip-audit: {name} {version}: {vuln['id']} ({fix})", flush=True)
    print(f"pip-audit: {len(found)} known vulnerabilities, {len(fixable)} with a fix "
          f"({len(_ignored())} accepted in {AUDIT_IGNORE.relative_to(ROOT)}); report {report.relative_to(ROOT)}")
    return 1 if fixable else 0


def sbom() -> int:
    """CycloneDX 1.6 JSON of healthswarm (from pyproject.toml) and every package of a runtime-only environment."""
    ensure_env(TEST_EXTRAS)
    runtime = ensure_env(None, SBOM_VENV)
    version = next(line.split('"')[1] for line in (ROOT / "pyproject.toml").read_text().splitlines()
                   if line.startswith("version"))
    out = ROOT / "dist" / f"healthswarm-{version}.cdx.json"
    out.parent.mkdir(exist_ok=True)
    code = _run(BIN / "cyclonedx-py", "environment", "--pyproject", "pyproject.toml", "--mc-type", "application",
                "--output-reproducible", "--of", "JSON", "--sv", "1.6", "--validate", "-o", out, runtime)
    if code == 0:
        print(f"SBOM: {out.relative_to(ROOT)}", flush=True)
    return code


def _parallel(args: list[str]) -> list[str]:
    """pytest-xdist options unless the arguments choose: a worker a core (at most 4: the service-backed tests share
    one PostgreSQL, NATS and broker), whole files to a worker, so that a file's module fixtures (a demo workspace,
    a server) are built once. Most of the suite waits on processes, sockets and servers, so two workers on two cores
    take about half the time of one."""
    if any(a.startswith(("-n", "--numprocesses", "--dist")) or a == "no:xdist" for a in args):
        return []
    return ["-n", str(max(1, min(os.cpu_count() or 1, 4))), "--dist", "loadfile"]


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"demo", "test", "audit", "sbom"}:
        print(__doc__)
        return 2
    task, rest = argv[0], argv[1:]
    if task == "demo":
        ensure_env(None)
        return _run(BIN / "healthswarm", "demo", *rest)
    if task == "sbom":
        return sbom()
    if task == "audit":
        ensure_env(TEST_EXTRAS)
        return audit()
    ensure_env(TEST_EXTRAS)
    lint = _run(BIN / "ruff", "check", "src", "tests", "bench", "dev.py")
    tests = _run(BIN / "python", "-m", "pytest", *_parallel(rest), *rest)
    return tests or lint


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
