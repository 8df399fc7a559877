"""Printing data as a Rich table, JSON or NDJSON (`--format`), and errors as one line on stderr."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

console = Console()
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    ndjson = "ndjson"


def _dumps(value: Any, indent: bool = False) -> bytes:
    option = orjson.OPT_NON_STR_KEYS | (orjson.OPT_INDENT_2 if indent else 0)
    return orjson.dumps(value, option=option, default=str)


def emit(rows: Sequence[dict[str, Any]], fmt: OutputFormat, columns: Sequence[str], title: str = "") -> None:
    """Print rows: a table of `columns`, or every field as JSON / one JSON object per line."""
    if fmt is OutputFormat.json:
        sys.stdout.buffer.write(_dumps(list(rows), indent=True) + b"\n")
    elif fmt is OutputFormat.ndjson:
        for row in rows:
            sys.stdout.buffer.write(_dumps(row) + b"\n")
    else:
        table = Table(title=title or None)
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*(_cell(row.get(c)) for c in columns))
        console.print(table)
    sys.stdout.flush()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def error_lines(lines: Iterable[str]) -> None:
    for line in lines:
        err_console.print(f"error: {line}", markup=False)
