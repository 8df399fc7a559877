"""A small column table: what batch learning and evaluation pass around instead of a DataFrame.

Columns are numpy arrays of one length: float64 for numeric features, object (str) for categorical
ones. `origin` says where each row came from (`file:line`) so a bad value is reported where it sits.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(slots=True)
class Table:
    columns: dict[str, np.ndarray]
    origin: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        lengths = {len(v) for v in self.columns.values()}
        if len(lengths) > 1:
            raise ValueError(f"columns of different lengths: {sorted(lengths)}")
        if self.origin and lengths and len(self.origin) != lengths.pop():
            raise ValueError("origin must name one place per row")

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    @property
    def names(self) -> list[str]:
        return list(self.columns)

    def where(self, i: int) -> str:
        """`file:line` of row i, or `row i` (1-based) when the table was built in memory."""
        return self.origin[i] if self.origin else f"row {i + 1}"

    def take(self, index: np.ndarray | Sequence[int]) -> Table:
        idx = np.asarray(index, dtype=np.int64)
        origin = [self.origin[i] for i in idx] if self.origin else []
        return Table({k: v[idx] for k, v in self.columns.items()}, origin)

    def row(self, i: int) -> dict[str, Any]:
        return {k: (v[i].item() if isinstance(v[i], np.generic) else v[i]) for k, v in self.columns.items()}

    def rows(self) -> Iterator[dict[str, Any]]:
        for i in range(len(self)):
            yield self.row(i)

    @classmethod
    def from_records(cls, records: Sequence[Mapping[str, Any]], names: Sequence[str] | None = None) -> Table:
        """Build from dicts; a column is numeric when every value is a number (bool excluded)."""
        if not records:
            return cls({name: np.empty(0) for name in names or ()})
        keys = list(names) if names is not None else list(records[0])
        columns: dict[str, np.ndarray] = {}
        for key in keys:
            values = [r.get(key) for r in records]
            numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
            columns[key] = np.asarray(values, dtype=np.float64) if numeric else np.asarray(values, dtype=object)
        return cls(columns)
