"""Printing data as a Rich table, JSON or NDJSON (`--format`), and errors as one line on stderr.

On a terminal, tables fit its width. Piped or redirected (`| less -S`, `> report.txt`, `| grep`), output is as
wide as its content needs instead of Rich's 80 columns, so tables keep one row a line and an id is never cut;
`COLUMNS` set in the environment still chooses a width. A table cell is folded, never cut with an ellipsis.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console, ConsoleDimensions
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from healthswarm.errors import InputError, Location, Problem

# the width of output that is not a terminal: wider than any table healthswarm prints
PIPE_WIDTH = 10_000
# rules and banners stay this wide when the output is not a terminal
PIPE_RULE_WIDTH = 80


class WideWhenPiped(Console):
    """Rich's console, as wide as its content when it does not write to a terminal (unless COLUMNS says)."""

    @property
    def size(self) -> ConsoleDimensions:
        size = super().size
        if self._width is None and not self.is_terminal:
            return ConsoleDimensions(PIPE_WIDTH, size.height)
        return size

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)  # type: ignore[attr-defined]


console = WideWhenPiped()
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def rule(title: str) -> None:
    """A section rule: the terminal's width, or a plain 80 columns (longer when the title needs it) in a pipe."""
    width = None if console.is_terminal else min(console.width, max(PIPE_RULE_WIDTH, len(title) + 8))
    console.print(Rule(title), width=width)


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    ndjson = "ndjson"


def _dumps(value: Any, indent: bool = False) -> bytes:
    option = orjson.OPT_NON_STR_KEYS | (orjson.OPT_INDENT_2 if indent else 0)
    return orjson.dumps(value, option=option, default=str)


def emit(rows: Sequence[dict[str, Any]], fmt: OutputFormat, columns: Sequence[str], title: str = "",
         empty: str = "") -> None:
    """Print rows: a table of `columns`, or every field as JSON / one JSON object per line.

    `empty` is what the table form prints instead of an empty table: what is missing and which command adds it.
    """
    if fmt is OutputFormat.json:
        sys.stdout.buffer.write(_dumps(list(rows), indent=True) + b"\n")
    elif fmt is OutputFormat.ndjson:
        for row in rows:
            sys.stdout.buffer.write(_dumps(row) + b"\n")
    elif not rows and empty:
        console.print(empty, markup=False, highlight=False)
    else:
        table = Table(title=title or None)
        for column in columns:
            table.add_column(heading(column), overflow="fold")  # fold a long id over lines, never cut it
        for row in rows:
            table.add_row(*(Text(_cell(row.get(c))) for c in columns))  # data, never markup: "[ICU]" stays
        console.print(table)
    sys.stdout.flush()


def heading(column: str) -> str:
    """A column heading in words: `asset_id` → `asset id`, `cvss_score` → `cvss score`."""
    return column.replace("_", " ")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


@contextmanager
def writing(path: Path) -> Iterator[Path]:
    """Around writing a file the user named (its folder is made first): a path that cannot be written (a folder, a
    file where a folder should be, no permission) is one error line naming it, not a traceback."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield path
    except OSError as exc:
        raise InputError(Problem(Location(str(path)), f"cannot write: {exc.strerror or exc}",
                                 "a file path whose folder exists or can be made")) from None


def error_lines(lines: Iterable[str]) -> None:
    for line in lines:
        err_console.print(f"error: {line}", markup=False)


def program() -> str:
    """How the user's shell runs this healthswarm, as hints print it: `healthswarm` when that name on PATH is this
    installation; else the full path of its script (a virtual environment that is not activated, as after
    `python3 dev.py demo`); else `python -m healthswarm` with this interpreter."""
    script = Path(sys.executable).with_name("healthswarm.exe" if os.name == "nt" else "healthswarm")
    called = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if called is not None and called.name in ("healthswarm", "healthswarm.exe") and called.is_file():
        script = called
    found = shutil.which("healthswarm")
    if script.is_file():
        if found and os.path.samefile(found, script):
            return "healthswarm"
        return shlex.quote(str(script.absolute()))
    return f"{shlex.quote(sys.executable)} -m healthswarm"


def activate_hint() -> str:
    """How to make the bare `healthswarm` work, when it does not ('' when it does)."""
    if program() == "healthswarm":
        return ""
    if sys.prefix != sys.base_prefix:
        activate = Path(sys.prefix) / ("Scripts/activate" if os.name == "nt" else "bin/activate")
        return f"to type `healthswarm` alone: source {shlex.quote(str(activate))}"
    return ""
