"""Load advisories from files and folders, telling CSAF 2.0 from CVE JSON 5 by content.

A bad file never stops the others: each problem (not JSON, not UTF-8, not an advisory, a broken
part) is returned as a Problem with the file and, for a JSON syntax error, the line.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from healthswarm.errors import InputError, Location, Problem
from healthswarm.inventory.advisories.csaf import is_csaf, parse_csaf
from healthswarm.inventory.advisories.cve5 import is_cve5, parse_cve5
from healthswarm.model import Advisory

EXPECTED = "a CSAF 2.0 advisory or a CVE JSON 5 record"


def advisory_files(paths: Iterable[Path | str]) -> tuple[list[Path], list[Problem]]:
    """The files to read: given files as they are, folders searched recursively for *.json.

    Other files found in a folder are reported (not silently skipped); hidden files are ignored.
    """
    files: list[Path] = []
    problems: list[Problem] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                if any(part.startswith(".") for part in child.relative_to(path).parts):
                    continue
                if child.suffix.lower() == ".json":
                    files.append(child)
                else:
                    problems.append(Problem(Location(str(child)), "not a JSON file, skipped", f"*.json: {EXPECTED}"))
        elif path.is_file():
            files.append(path)
        else:
            problems.append(Problem(Location(str(path)), "no such file or folder", "a file or folder of advisories"))
    return files, problems


def read_json(path: Path) -> Any:
    """The parsed JSON of `path`; InputError with the line of the first syntax error."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(Problem(Location(str(path)), f"cannot read: {exc.strerror or exc}", EXPECTED)) from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(Problem(Location(str(path)), f"not UTF-8 text (byte {exc.start})",
                                 f"UTF-8 JSON: {EXPECTED}")) from exc
    if not text.strip():
        raise InputError(Problem(Location(str(path), 1), "the file is empty", EXPECTED))
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(Problem(Location(str(path), exc.lineno), f"not valid JSON: {exc.msg} at column {exc.colno}",
                                 EXPECTED)) from exc
    except RecursionError as exc:
        raise InputError(Problem(Location(str(path)), "JSON nested too deeply", EXPECTED)) from exc


def parse_document(doc: Any, source: str) -> tuple[Advisory, list[Problem]]:
    """One parsed JSON document as an Advisory; InputError when it is neither CSAF nor CVE 5."""
    if is_csaf(doc):
        return parse_csaf(doc, source)
    if is_cve5(doc):
        return parse_cve5(doc, source)
    what = type(doc).__name__ if not isinstance(doc, dict) else (
        f"a JSON object with keys {', '.join(sorted(map(str, doc))[:5]) or '(none)'}")
    raise InputError(Problem(Location(source), f"not an advisory: {what}",
                             f"{EXPECTED} (document.csaf_version or dataType CVE_RECORD)"))


def _documents(data: Any, source: str) -> Iterator[tuple[Any, str]]:
    # a JSON array of CVE records (as bulk exports give) is read item by item
    if isinstance(data, list):
        for i, item in enumerate(data):
            yield item, f"{source}[{i}]"
    else:
        yield data, source


def load_advisories(
    paths: Iterable[Path | str], on_file: Callable[[Path], None] | None = None,
) -> tuple[list[Advisory], list[Problem]]:
    """Every advisory the paths hold, and every problem met on the way (never raises on bad input).

    `on_file` is called once per file read (the CLI's progress bar).
    """
    files, problems = advisory_files(paths)
    advisories: dict[str, Advisory] = {}
    for path in files:
        try:
            data = read_json(path)
            for doc, source in _documents(data, str(path)):
                try:
                    advisory, found = parse_document(doc, source)
                except InputError as exc:
                    problems.extend(exc.problems)
                    continue
                problems.extend(found)
                if advisory.id in advisories:
                    problems.append(Problem(Location(source), f"advisory {advisory.id} also in "
                                            f"{advisories[advisory.id].source}; the first is kept",
                                            "one file per advisory"))
                    continue
                advisories[advisory.id] = advisory
        except InputError as exc:
            problems.extend(exc.problems)
        finally:
            if on_file is not None:
                on_file(path)
    # one list in file order, whether a problem was met while finding files or while reading them
    problems.sort(key=lambda p: p.location.file)
    return list(advisories.values()), problems
