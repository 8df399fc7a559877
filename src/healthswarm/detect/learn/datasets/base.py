"""Labelled data sets in the layouts of the shipped corpora, read into one shape, and their registry.

A layout knows its columns, which of them are identifiers (never features), which are labels, and
how to recognise its files from the first line. Bad input is an InputError naming file, line and
column: missing or extra columns, non-numbers, NaN/inf where the layout does not define them, no rows.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from healthswarm.detect.learn.card import DataFile
from healthswarm.detect.learn.table import Table
from healthswarm.errors import InputError, Location, Problem
from healthswarm.model.words import counted

MAX_PROBLEMS = 20


@dataclass(slots=True)
class LabelledData:
    """Feature table, one label per row, and the side facts splits need (never features)."""

    layout: str
    table: Table
    labels: np.ndarray
    benign: str
    hosts: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=object))
    #: the destination of each flow, "host:port" (CICFlowMeter), for the per-source windows (`windows.py`)
    peers: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=object))
    times: np.ndarray = field(default_factory=lambda: np.empty(0))
    details: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=object))
    files: list[DataFile] = field(default_factory=list)
    repaired: dict[str, int] = field(default_factory=dict)
    #: what splits stratify on (and keep time ranges apart within): the label, unless the layout says
    #: otherwise (TON_IoT: device and label, so every device is split on its own)
    strata: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=object))

    def __post_init__(self) -> None:
        if len(self.strata) != len(self.labels):
            self.strata = self.labels

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: np.ndarray) -> LabelledData:
        def pick(a: np.ndarray) -> np.ndarray:
            return a[index] if len(a) else a

        return LabelledData(self.layout, self.table.take(index), self.labels[index], self.benign,
                            pick(self.hosts), pick(self.peers), pick(self.times), pick(self.details), self.files,
                            self.repaired, self.strata[index])


class Layout(Protocol):
    name: str

    def sniff(self, first_line: str) -> bool: ...

    def read(self, path: Path) -> LabelledData: ...


def _layouts() -> list[Layout]:
    from healthswarm.detect.learn.datasets import cicflowmeter, nslkdd, toniot

    return [cicflowmeter.LAYOUT, nslkdd.LAYOUT, toniot.LAYOUT]


def layout_names() -> list[str]:
    return [layout.name for layout in _layouts()]


def first_line(path: Path) -> str:
    try:
        with path.open(encoding="utf-8-sig", errors="replace") as stream:
            return stream.readline().rstrip("\r\n")
    except FileNotFoundError:
        raise InputError(Problem(Location(str(path)), "no such file")) from None
    except IsADirectoryError:
        raise InputError(Problem(Location(str(path)), "is a folder", "a data file")) from None


def sniff(path: Path) -> Layout:
    line = first_line(path)
    for layout in _layouts():
        if layout.sniff(line):
            return layout
    raise InputError(Problem(Location(str(path), 1), "not a known labelled-data layout",
                             "one of " + ", ".join(layout_names())))


def read_labelled(paths: Sequence[Path], layout: str | None = None) -> LabelledData:
    """Read and concatenate files of one layout (sniffed, or required to be `layout`)."""
    if not paths:
        raise InputError(Problem(Location("--data"), "no data files given", "one or more labelled files"))
    parts: list[LabelledData] = []
    for path in paths:
        found = sniff(path)
        if layout is not None and found.name != layout:
            raise InputError(Problem(Location(str(path), 1), f"is {found.name} data", f"{layout} data"))
        if parts and found.name != parts[0].layout:
            raise InputError(Problem(Location(str(path), 1), f"is {found.name} data",
                                     f"{parts[0].layout} like the other files"))
        parts.append(found.read(path))
    return concat(parts)


def concat(parts: Sequence[LabelledData]) -> LabelledData:
    first = parts[0]
    names: list[str] = []
    for p in parts:
        names += [n for n in p.table.names if n not in names]
    columns: dict[str, np.ndarray] = {}
    for name in names:
        chunks = []
        for p in parts:
            col = p.table.columns.get(name)
            if col is None:
                kind = next(q.table.columns[name].dtype for q in parts if name in q.table.columns)
                col = np.full(len(p), np.nan) if kind.kind != "O" else np.full(len(p), None, dtype=object)
            chunks.append(col)
        columns[name] = np.concatenate(chunks)
    origin = [o for p in parts for o in p.table.origin]

    def cat(attr: str, dtype: type) -> np.ndarray:
        arrays = [getattr(p, attr) for p in parts]
        return np.concatenate(arrays) if all(len(a) for a in arrays) else np.empty(0, dtype=dtype)

    repaired: dict[str, int] = {}
    for p in parts:
        for k, v in p.repaired.items():
            repaired[k] = repaired.get(k, 0) + v
    return LabelledData(first.layout, Table(columns, origin), np.concatenate([p.labels for p in parts]),
                        first.benign, cat("hosts", object), cat("peers", object), cat("times", float),
                        cat("details", object), [f for p in parts for f in p.files], repaired,
                        np.concatenate([p.strata for p in parts]))


def read_rows(path: Path, expected: Sequence[str] | None, delimiter: str = ",") -> list[list[str]]:
    """All data rows of a CSV file; with `expected`, the header must be exactly those columns."""
    with path.open(encoding="utf-8-sig", newline="", errors="replace") as stream:
        rows = list(csv.reader(stream, delimiter=delimiter))
    if expected is not None:
        header = [h.strip() for h in rows[0]] if rows else []
        missing = [c for c in expected if c not in header]
        extra = [c for c in header if c not in expected]
        problems = []
        if missing:
            problems.append(Problem(Location(str(path), 1),
                                    f"{counted(len(missing), 'missing column')}: " + ", ".join(map(repr, missing)),
                                    f"the {len(expected)} columns of this layout"))
        if extra:
            problems.append(Problem(Location(str(path), 1),
                                    f"{counted(len(extra), 'unexpected column')}: " + ", ".join(map(repr, extra)),
                                    f"only the {len(expected)} columns of this layout"))
        if problems:
            raise InputError(problems)
        rows = rows[1:]
    width = len(expected) if expected is not None else (len(rows[0]) if rows else 0)
    bad = [Problem(Location(str(path), i + 1 + (expected is not None)), f"{len(r)} fields", f"{width}")
           for i, r in enumerate(rows) if len(r) != width and r]
    if bad:
        raise InputError(bad[:MAX_PROBLEMS])
    rows = [r for r in rows if r]
    if not rows:
        raise InputError(Problem(Location(str(path)), "no data rows", "at least one labelled row"))
    return rows


def numeric_columns(path: Path, rows: list[list[str]], index: dict[str, int], names: Iterable[str],
                    line_offset: int, repair: frozenset[str] = frozenset(),
                    repaired: dict[str, int] | None = None) -> dict[str, np.ndarray]:
    """Parse columns as float64. Non-finite values in `repair` columns become -1 (counted); anywhere else,
    and any non-number, is an error naming the file, line and column."""
    out: dict[str, np.ndarray] = {}
    problems: list[Problem] = []
    for name in names:
        raw = [r[index[name]].strip() for r in rows]
        try:
            col = np.asarray(raw, dtype=np.float64)
        except ValueError:
            col = np.empty(len(raw))
            for i, text in enumerate(raw):
                try:
                    col[i] = float(text)
                except ValueError:
                    col[i] = math.nan
                    if len(problems) < MAX_PROBLEMS:
                        problems.append(Problem(Location(str(path), i + line_offset, name),
                                                f"{text!r} is not a number", "a number"))
            out[name] = col
            continue
        bad = ~np.isfinite(col)
        if bad.any():
            if name in repair:
                col[bad] = -1.0
                if repaired is not None:
                    repaired[name] = repaired.get(name, 0) + int(bad.sum())
            else:
                for i in np.flatnonzero(bad)[: MAX_PROBLEMS - len(problems)]:
                    problems.append(Problem(Location(str(path), int(i) + line_offset, name),
                                            f"{raw[i]!r} is not finite", "a finite number"))
        out[name] = col
    if problems:
        raise InputError(problems)
    return out
