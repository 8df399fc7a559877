#!/usr/bin/env python3
"""The project's single entry point: set up the environment, then run the demo or the tests.

    python3 dev.py demo     # create .venv, install healthswarm, run `healthswarm demo`
    python3 dev.py test     # create .venv, install healthswarm[test], run ruff and pytest

Standard library only, so that it works on a machine that has nothing but Python 3.11+ and pip.
The install step is skipped when pyproject.toml has not changed since the last one.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")


def _run(*cmd: str | Path) -> int:
    return subprocess.call([str(c) for c in cmd], cwd=ROOT)


def ensure_env(extra: str | None) -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py may be run by an older python3
        sys.exit(f"healthswarm needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if not (BIN / "python").exists():
        print(f"creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    spec = f".[{extra}]" if extra else "."
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + spec.encode()).hexdigest()
    stamp = VENV / f".installed-{extra or 'base'}"
    if stamp.exists() and stamp.read_text() == digest:
        return
    print(f"installing healthswarm{spec[1:]} into {VENV}", flush=True)
    if _run(BIN / "python", "-m", "pip", "install", "-q", "--upgrade", "pip") != 0:
        sys.exit("pip could not upgrade itself; see the messages above")
    if _run(BIN / "python", "-m", "pip", "install", "-q", "-e", spec) != 0:
        sys.exit("installing healthswarm failed; see the messages above")
    stamp.write_text(digest)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"demo", "test"}:
        print(__doc__)
        return 2
    task, rest = argv[0], argv[1:]
    if task == "demo":
        ensure_env(None)
        return _run(BIN / "healthswarm", "demo", *rest)
    ensure_env("test")
    lint = _run(BIN / "ruff", "check", "src", "tests", "bench", "dev.py")
    tests = _run(BIN / "python", "-m", "pytest", *rest)
    return tests or lint


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
