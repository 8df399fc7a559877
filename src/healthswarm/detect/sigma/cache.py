"""The compiled-rule cache: `<workspace>/cache/sigma/<key>.pickle`, keyed by rule content + engine version.

A hit needs no pySigma import and no YAML parsing: the files are read and hashed, the pickle loaded.
Writes are atomic (temporary file, then rename), so concurrent hunts never read half a cache file;
an unreadable or stale cache file is simply recompiled.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from healthswarm.detect.attack import BUNDLES, default_attack_dir
from healthswarm.detect.sigma.loader import compile_files, content_key, is_rule_zip, read_files, zip_fingerprint
from healthswarm.detect.sigma.ruleset import RuleSet

CACHE_SUBDIR = Path("cache") / "sigma"


def _attack_stamp(attack_dir: Path | None) -> str:
    directory = attack_dir or default_attack_dir()
    parts = []
    for name in BUNDLES:
        try:
            st = (directory / name).stat()
            parts.append(f"{name}:{st.st_size}:{st.st_mtime_ns}")
        except OSError:
            parts.append(f"{name}:-")
    return "|".join(parts)


def load_rules(paths: Iterable[Path], cache_dir: Path | None = None,
               placeholders: Mapping[str, Sequence[str]] | None = None, pipeline: Any = None,
               attack_dir: Path | None = None) -> RuleSet:
    """All rules under `paths`, compiled; from `cache_dir` when the same content was compiled before.

    A processing `pipeline` (pySigma) disables the cache: pipelines are code, not content we can key."""
    paths = [Path(p) for p in paths]
    # rule zips (the SigmaHQ snapshot) are keyed by their central directory and read only to compile
    zips = [p for p in paths if is_rule_zip(p)]
    stamps = [zip_fingerprint(p) for p in zips]
    if not all(stamps):
        zips, stamps = [], []
    files, problems = read_files([p for p in paths if p not in zips])
    zipped = "".join(f"|zip:{p}:{stamp}" for p, stamp in zip(zips, stamps, strict=True))
    key = content_key(files, placeholders, _attack_stamp(attack_dir) + zipped)
    cache_file = cache_dir / f"{key}.pickle" if cache_dir is not None and pipeline is None else None
    if cache_file is not None and cache_file.is_file():
        try:
            with cache_file.open("rb") as fh:
                ruleset = pickle.load(fh)
            if isinstance(ruleset, RuleSet) and ruleset.key == key:
                ruleset.cached = True
                ruleset.problems = problems + ruleset.problems
                return ruleset
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError):
            pass
    if zips:
        zip_files, zip_problems = read_files(zips)
        files, problems = files + zip_files, problems + zip_problems
    ruleset = compile_files(files, placeholders, pipeline, attack_dir)
    ruleset.files = len(files)
    ruleset.key = key
    from healthswarm.detect.sigma.engine import link

    link(ruleset)
    if cache_file is not None:
        _write(cache_file, ruleset)
    ruleset.problems = problems + ruleset.problems
    return ruleset


def _write(path: Path, ruleset: Any) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".sigma-", suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            pickle.dump(ruleset, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except OSError:
        pass  # a cache we cannot write only costs time on the next run


def _groups_file(cache_dir: Path, ruleset: RuleSet) -> Path:
    return cache_dir / f"{ruleset.key}.groups.pickle"


def load_groups(cache_dir: Path | None, ruleset: RuleSet) -> dict[Any, Any]:
    """Field indexes (Aho-Corasick automata per route) an earlier run built for this rule set; {} if none."""
    if cache_dir is None or not ruleset.key:
        return {}
    try:
        with _groups_file(cache_dir, ruleset).open("rb") as fh:
            groups = pickle.load(fh)
        return groups if isinstance(groups, dict) else {}
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError):
        return {}


def save_groups(cache_dir: Path | None, ruleset: RuleSet, groups: dict[Any, Any]) -> None:
    """Keep the field indexes for the next run (building them costs more than unpickling them)."""
    if cache_dir is None or not ruleset.key or not groups:
        return
    _write(_groups_file(cache_dir, ruleset), groups)
