"""Turning records into the model's feature matrix, with the checks that keep a score honest.

The spec is learned from the training table: numeric columns as they are, categorical columns as
codes of the values seen in training. On scoring, a missing column, a NaN/inf or a category never
seen in training is an InputError naming where it sits (`file:line`), the column and what was
expected: a silent wrong score is worse than no score. Unseen categories may instead be scored as
"other" (code -1, below every known code) when the caller asks for it (`unseen="other"`, used for the
held-out part of a training run and by `model evaluate --unseen-categories other`); they are counted
in `unseen_counts` so a report can say how many rows that touched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from healthswarm.detect.learn.table import Table
from healthswarm.errors import InputError, Location, Problem
from healthswarm.model.words import counted

MAX_PROBLEMS = 20


def _location(where: str, column: str) -> Location:
    file, _, line = where.rpartition(":")
    if file and line.isdigit():
        return Location(file, int(line), column)
    return Location(where, field=column)


@dataclass(slots=True)
class FeatureSpec:
    numeric: list[str]
    categorical: dict[str, list[str]] = field(default_factory=dict)
    unseen_counts: dict[str, int] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    @classmethod
    def learn(cls, table: Table, numeric: Sequence[str], categorical: Sequence[str]) -> FeatureSpec:
        _require(table, [*numeric, *categorical])
        vocab = {c: sorted({str(v) for v in table.columns[c]}) for c in categorical}
        return cls(list(numeric), vocab)

    def encode(self, table: Table, unseen: str = "error") -> np.ndarray:
        _require(table, self.names)
        self.unseen_counts = {}
        out = np.empty((len(table), len(self.names)), dtype=np.float64)
        problems: list[Problem] = []
        for j, name in enumerate(self.numeric):
            col = np.asarray(table.columns[name], dtype=np.float64)
            for i in np.flatnonzero(~np.isfinite(col))[:MAX_PROBLEMS]:
                problems.append(Problem(_location(table.where(int(i)), name), f"{col[i]} is not finite",
                                        "a finite number (see the layout's NaN/inf handling)"))
            out[:, j] = col
        for k, (name, vocab) in enumerate(self.categorical.items()):
            codes = {v: n for n, v in enumerate(vocab)}
            col = table.columns[name]
            for i, value in enumerate(col):
                code = codes.get(str(value))
                if code is None:
                    self.unseen_counts[name] = self.unseen_counts.get(name, 0) + 1
                    if unseen == "error" and len(problems) < MAX_PROBLEMS:
                        problems.append(Problem(_location(table.where(i), name), f"unseen category {value!r}",
                                                "one seen in training: " + ", ".join(vocab[:20])
                                                + (", …" if len(vocab) > 20 else "")))
                    code = -1
                out[i, len(self.numeric) + k] = code
        if problems:
            raise InputError(problems)
        return out

    def encode_one(self, x: Mapping[str, Any], unseen: str = "error") -> np.ndarray:
        """One record as a 1×n matrix: the same checks as `encode`, without building a table."""
        missing = [n for n in self.names if n not in x]
        if missing:
            shown = ", ".join(missing[:10]) + (", …" if len(missing) > 10 else "")
            raise InputError(Problem(Location("<record>"), f"{counted(len(missing), 'missing feature')}: {shown}",
                                     f"the model's {len(self.names)} features"))
        out = np.empty((1, len(self.names)), dtype=np.float64)
        try:
            out[0, : len(self.numeric)] = [float(x[n]) for n in self.numeric]
        except (TypeError, ValueError):
            bad = next(n for n in self.numeric if not _is_number(x[n]))
            raise InputError(Problem(Location("<record>", field=bad), f"{x[bad]!r} is not a number",
                                     "a number")) from None
        if not np.isfinite(out[0, : len(self.numeric)]).all():
            bad = next(n for n in self.numeric if not np.isfinite(float(x[n])))
            raise InputError(Problem(Location("<record>", field=bad), f"{x[bad]} is not finite",
                                     "a finite number (see the layout's NaN/inf handling)"))
        self.unseen_counts = {}
        for k, (name, vocab) in enumerate(self.categorical.items()):
            value = str(x[name])
            try:
                code = vocab.index(value)
            except ValueError:
                if unseen == "error":
                    raise InputError(Problem(Location("<record>", field=name), f"unseen category {value!r}",
                                             "one seen in training: " + ", ".join(vocab[:20]))) from None
                self.unseen_counts[name] = 1
                code = -1
            out[0, len(self.numeric) + k] = code
        return out


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _require(table: Table, names: Sequence[str]) -> None:
    missing = [n for n in names if n not in table.columns]
    if missing:
        where = table.origin[0].rpartition(":")[0] if table.origin else "<table>"
        shown = ", ".join(map(repr, missing[:10])) + (", …" if len(missing) > 10 else "")
        raise InputError(Problem(Location(where), f"{counted(len(missing), 'missing column')}: {shown}",
                                 "the columns the model was trained on"))
