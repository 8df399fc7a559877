"""Every command's help, rendered: nothing eaten by markup, no empty brackets, no `<bool>` on a flag.

Rich markup in help texts silently dropped words (`serve` said "(HTTPS with )." for "[tls]"); the CLI renders
help as written (`cli.main.plain_help`), and this walks the whole command tree to keep it so: every word of a
command's help and of each option's help must appear in what `--help` prints.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import typer
from typer.testing import CliRunner

from healthswarm.cli.main import COMMANDS, app

EMPTY = re.compile(r"\(\s*\)|\[\s*\]|\{\s*\}|<bool>")
STYLES = "bold|dim|italic|underline|reverse|link|red|green|yellow|blue|cyan|magenta|white"
MARKUP = re.compile(rf"\[/?(?:{STYLES})\b[^\]]*\]")


def _commands(command: typer.core.TyperGroup | typer.core.TyperCommand, path: tuple[str, ...]) -> Iterator[
        tuple[tuple[str, ...], object]]:
    yield path, command
    sub = getattr(command, "commands", None)
    if path == () and sub is not None:
        sub = {name: command.get_command(None, name) for name in COMMANDS}  # the root imports lazily
    for name, child in (sub or {}).items():
        yield from _commands(child, (*path, name))


ALL = list(_commands(typer.main.get_command(app), ()))


def _words(text: str) -> list[str]:
    return text.replace("\b", " ").split()


def test_the_tree_is_walked() -> None:
    paths = {" ".join(p) for p, _ in ALL}
    assert {"serve", "share serve-taxii", "hunt", "incidents list", "risk paths"} <= paths
    assert len(paths) > 80


@pytest.mark.parametrize(("path", "command"), ALL, ids=[" ".join(p) or "healthswarm" for p, _ in ALL])
def test_help_renders_every_word(path: tuple[str, ...], command: object) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    shown = result.output
    flat = "".join(shown.split())  # Click wraps at spaces and after hyphens
    assert not EMPTY.search(shown), EMPTY.search(shown)
    assert not MARKUP.search(shown), MARKUP.search(shown)
    texts = [(command.help or "").split("\f")[0]]  # type: ignore[attr-defined]
    texts += [p.help for p in getattr(command, "params", []) if getattr(p, "help", None) and not p.hidden]
    for text in texts:
        for word in _words(text):
            assert word in flat, f"{' '.join(path)}: {word!r} of {text!r} is missing from its help"


def test_serve_and_taxii_help_keep_tls() -> None:
    serve = CliRunner().invoke(app, ["serve", "--help"]).output
    taxii = CliRunner().invoke(app, ["share", "serve-taxii", "--help"]).output
    assert "[tls]" in serve and "[tls]" in " ".join(taxii.split())
    assert "--psi / --no-psi" in taxii and "<bool>" not in taxii
