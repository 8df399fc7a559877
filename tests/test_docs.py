"""Docs that run: every command block in docs/*.md runs, in order, against a fresh copy of the demo workspace.

How a page declares its commands (the convention every docs page follows):
- A ```console block: each line that starts with `$ ` is a command; a line ending in `\\` (or an unfinished
  shell construct such as `for …; do`) continues on the next line. Every other line is sample output: it is
  not compared, so figures may move without breaking the page.
- A ```sh block: every line that is neither empty nor a `#` comment is a command (same continuation rules).
- Any other block never runs: ```text for a synopsis of options, ```toml / ```yaml / ```json / ```python for
  files and code. A block with no tag that holds a `healthswarm` command line fails
  `test_command_blocks_are_tagged`: say whether it runs (console, sh) or only shows (text).
- Markers, as a trailing comment on a command: `# docs-test: skip (REASON)` leaves it out (it is reported
  as a skip with its reason, never silently); `# docs-test: exit N` is the exit code the command must
  return (default 0; e.g. a leak check that finds something, a validation that refuses a file);
  `# docs-test: expect "PHRASE"` is a phrase its output must hold (the one claim of the sample output
  that must stay true; the rest of the sample is not compared).
- Placeholders the test fills in from the workspace the command names (`-w DIR`, else ./.healthswarm):
  <INCIDENT> the first incident of `healthswarm incidents list` (most severe, most recent), <PHISHING-INCIDENT>
  the incident on sta-ws-03, <DICOM-INCIDENT> the DICOM C-MOVE incident, <INSIDER-INCIDENT> the FHIR mass read;
  <CASE> the case id and <PUBLIC-KEY> the ed25519 public key that a command on the page printed last
  (`case open`, `share keys show`).

Each page runs in a folder of its own: `src`, `tests` and `bench` of the checkout are linked into it,
`../shared` is the shared data beside the checkout, and `./.healthswarm` (the default workspace) is a copy
of the demo workspace built once per session. `healthswarm [-w DIR] demo` is not run again: it copies that
workspace to DIR. When ../shared/data is absent, a page stops with a skip (saying so) at its first command
that reads it, since what follows may depend on it.
Plain `healthswarm …` commands run in this process (typer's CliRunner, after the shell expanded their
words, so quoting, variables and globs mean what they mean to a reader's shell); anything else (pipes,
redirections, other programs) runs under bash with the test's virtualenv first on PATH.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest
from sqlalchemy.exc import OperationalError
from typer.testing import CliRunner

from api_support import demo_workspace  # noqa: F401
from conftest import ROOT, SHARED_DATA
from healthswarm.cli.main import app
from healthswarm.errors import HealthswarmError, InputError

DOCS = ROOT / "docs"
PAGES = sorted(p.name for p in DOCS.glob("*.md"))
RUN_TAGS = {"console", "sh", "shell", "bash"}
MARKER = re.compile(r"#\s*docs-test:\s*(?P<what>skip|exit|expect)\b\s*(?P<arg>.*)$")
DEMO = re.compile(r"^healthswarm(?:\s+(?:-w|--workspace)\s+(?P<ws>\S+))?\s+demo\s*(?:#.*)?$")
WORKSPACE = re.compile(r"(?:-w|--workspace)\s+(\S+)")
HEAD = re.compile(r"\s*\|\s*head(?:\s+-n)?\s+-?\d+\s*$")
ASSIGN = re.compile(r"^(?:export\s+)?(?P<name>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>\S*)$")
# placeholders filled from what an earlier command on the page printed (the latest one wins)
CAPTURES = {"<CASE>": re.compile(r"\bCASE-[0-9a-f]{6,}\b"),
            "<PUBLIC-KEY>": re.compile(r"\bed25519:[A-Za-z0-9+/_=-]{20,}")}


@dataclass
class Command:
    page: str
    line: int
    text: str  # the shell text, markers removed
    skip: str | None = None
    exit_code: int = 0
    expect: str | None = None  # a phrase the output must hold

    @property
    def where(self) -> str:
        return f"docs/{self.page}:{self.line}"


@dataclass
class Block:
    line: int
    tag: str
    lines: list[tuple[int, str]] = field(default_factory=list)


def blocks(page: str, docs: Path = DOCS) -> Iterator[Block]:
    block: Block | None = None
    for number, text in enumerate((docs / page).read_text(encoding="utf-8").splitlines(), 1):
        if text.lstrip().startswith("```"):
            if block is None:
                block = Block(number, text.strip()[3:].strip().split(" ")[0].lower())
            else:
                yield block
                block = None
        elif block is not None:
            block.lines.append((number, text))


def incomplete(text: str) -> bool:
    """True when bash would wait for more (an open `for … do`, quote or here-document)."""
    if text.rstrip().endswith("\\"):
        return True
    if not re.search(r"\b(do|then|in)\b|[({'\"]|<<", text):
        return False
    check = subprocess.run(["bash", "-n", "-c", text], capture_output=True, text=True)
    return "unexpected end of file" in check.stderr or "here-document" in check.stderr


def commands(page: str, docs: Path = DOCS) -> list[Command]:
    found = []
    for block in blocks(page, docs):
        if block.tag not in RUN_TAGS:
            continue
        console = block.tag == "console"
        pending: list[tuple[int, str]] | None = None
        for number, text in block.lines:
            if pending is not None:
                pending.append((number, text))
            else:
                body = text.strip()
                if console:
                    if not text.startswith("$ "):
                        continue
                    body = text[2:]
                elif not body or body.startswith("#"):
                    continue
                pending = [(number, body)]
            joined = "\n".join(t for _, t in pending)
            if incomplete(joined):
                continue
            found.append(parse_command(page, pending[0][0], joined))
            pending = None
        assert pending is None, f"docs/{page}:{pending[0][0]}: a command that never ends"
    return found


def parse_command(page: str, line: int, text: str) -> Command:
    command = Command(page, line, text)
    last = text.splitlines()[-1]
    marker = MARKER.search(last)
    if marker:
        if marker["what"] == "skip":
            command.skip = marker["arg"].strip().strip("()") or "marked skip"
        elif marker["what"] == "exit":
            command.exit_code = int(marker["arg"].split()[0])
        else:
            command.expect = marker["arg"].strip().strip('"')
        lines = text.splitlines()
        lines[-1] = last[: marker.start()].rstrip()
        command.text = "\n".join(lines)
    return command


def all_commands() -> dict[str, list[Command]]:
    return {page: commands(page) for page in PAGES}


COMMANDS = all_commands()
RUNNABLE = [page for page, found in COMMANDS.items() if any(c.skip is None for c in found)]
SKIPPED = [c for found in COMMANDS.values() for c in found if c.skip is not None]


# --- running a page -------------------------------------------------------------------------------------------

@dataclass
class Outcome:
    code: int
    output: str


class Page:
    """One page's folder, shell variables and what its commands printed."""

    def __init__(self, folder: Path, demo: Path) -> None:
        self.folder = folder
        self.demo = demo
        self.vars: dict[str, str] = {}
        self.captured: dict[str, str] = {}
        self.env = {k: v for k, v in os.environ.items() if k != "HEALTHSWARM_HOME"}
        self.env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{self.env.get('PATH', '')}"
        self.env["COLUMNS"] = "200"
        self.env["USER"] = self.env.get("USER") or "docs-reader"  # a reader's shell has one; CI's may not

    def copy_demo(self, workspace: str) -> Outcome:
        target = self.folder / workspace
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(self.demo, target)
        return Outcome(0, f"(the session's demo workspace, copied to {workspace})")

    def incidents(self, workspace: str) -> list[dict]:
        outcome = self.invoke(["-w", workspace, "incidents", "list", "--format", "json"])
        assert outcome.code == 0, outcome.output
        return orjson.loads(outcome.output)

    def fill(self, command: Command) -> str:
        text = command.text
        for placeholder in CAPTURES:
            if placeholder in text:
                assert placeholder in self.captured, f"{command.where}: {placeholder} before a command printed one"
                text = text.replace(placeholder, self.captured[placeholder])
        if re.search(r"<[A-Z-]*INCIDENT>", text):
            named = WORKSPACE.search(text)
            found = self.incidents(named[1] if named else ".healthswarm")
            assert found, f"{command.where}: no incidents in the workspace for {text!r}"
            picks = {
                "<INCIDENT>": found[0],
                "<PHISHING-INCIDENT>": next((i for i in found if "sta-ws-03" in i["assets"]), None),
                "<DICOM-INCIDENT>": next((i for i in found if "DICOM" in i["title"]), None),
                "<INSIDER-INCIDENT>": next((i for i in found if "Patient Record" in i["title"]), None),
            }
            for placeholder, incident in picks.items():
                if placeholder in text:
                    assert incident, f"{command.where}: the workspace has no incident for {placeholder}"
                    text = text.replace(placeholder, incident["id"])
        return text

    def words(self, text: str) -> list[str]:
        """The command's words after the shell's expansions (quotes, variables, globs, ~)."""
        done = subprocess.run(["bash", "-c", f'printf "%s\\0" {text}'], capture_output=True, text=True,
                              cwd=self.folder, env={**self.env, **self.vars}, timeout=60)
        assert done.returncode == 0, f"cannot expand {text!r}: {done.stderr}"
        return done.stdout.split("\0")[:-1]

    def invoke(self, args: list[str]) -> Outcome:
        cwd = Path.cwd()
        os.chdir(self.folder)
        try:
            result = CliRunner().invoke(app, args, env={"HEALTHSWARM_HOME": None, "COLUMNS": "200", **self.vars},
                                        catch_exceptions=True)
        finally:
            os.chdir(cwd)
        output = result.output
        exc = result.exception
        if exc is None or isinstance(exc, SystemExit):
            return Outcome(result.exit_code, output)
        if isinstance(exc, InputError):  # what healthswarm.cli.main.run does for the console script
            return Outcome(2, output + "\n".join(f"error: {p}" for p in exc.problems))
        if isinstance(exc, HealthswarmError | OperationalError):
            return Outcome(2, output + f"error: {exc}")
        trace = "".join(traceback.format_exception(exc))
        return Outcome(1, f"{output}\n{trace}")

    def shell(self, text: str) -> Outcome:
        done = subprocess.run(["bash", "-c", text], capture_output=True, text=True, cwd=self.folder,
                              env={**self.env, **self.vars}, timeout=900)
        return Outcome(done.returncode, done.stdout + done.stderr)

    def run(self, command: Command) -> Outcome:
        text = self.fill(command)
        demo = DEMO.match(text)
        if demo:
            return self.copy_demo(demo["ws"] or ".healthswarm")
        assignment = ASSIGN.match(text)
        if assignment:
            self.vars[assignment["name"]] = " ".join(self.words(assignment["value"]))
            return Outcome(0, "")
        plain = HEAD.sub("", text)
        tokens = list(shlex.shlex(plain, posix=True, punctuation_chars=True))
        if tokens and tokens[0] == "healthswarm" and not any(set(t) <= set("|&;<>()") for t in tokens):
            outcome = self.invoke(self.words(plain)[1:])
        else:
            outcome = self.shell(text)
        for placeholder, pattern in CAPTURES.items():
            found = pattern.search(outcome.output)
            if found:
                self.captured[placeholder] = found[0]
        return outcome


def page_folder(base: Path) -> Path:
    """`base/main`, looking like a checkout: src, tests and bench linked, ../shared beside it."""
    folder = base / "main"
    folder.mkdir(parents=True)
    for name in ("src", "tests", "bench", "README.md"):
        (folder / name).symlink_to(ROOT / name)
    (base / "shared").symlink_to(SHARED_DATA.parent)
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("page", RUNNABLE)
def test_page_runs(page: str, demo_workspace: Path, tmp_path: Path) -> None:  # noqa: F811
    runner = Page(page_folder(tmp_path), demo_workspace)
    runner.copy_demo(".healthswarm")
    ran = 0
    for command in COMMANDS[page]:
        if command.skip is not None:
            continue
        if "../shared/data" in command.text and not SHARED_DATA.exists():
            pytest.skip(f"{command.where} and what follows on the page: shared data not available: {SHARED_DATA} "
                        f"(tests read ../shared/data beside the checkout); {ran} command(s) ran before")
        outcome = runner.run(command)
        print(f"--- {command.where} (exit {outcome.code})\n$ {command.text}\n{outcome.output}")  # shown on failure
        assert outcome.code == command.exit_code, (
            f"{command.where}: `{command.text}` exited {outcome.code}, the page expects {command.exit_code}\n"
            + "\n".join(outcome.output.splitlines()[-60:]))
        assert command.expect is None or command.expect in outcome.output, (
            f"{command.where}: `{command.text}` printed no {command.expect!r}\n{outcome.output[-4000:]}")
        ran += 1
    skipped = [c for c in COMMANDS[page] if c.skip is not None]
    print(f"docs/{page}: {ran} command(s) ran, {len(skipped)} skipped"
          + "".join(f"\n  {c.where}: {c.skip}" for c in skipped))


@pytest.mark.parametrize("command", SKIPPED, ids=[c.where for c in SKIPPED])
def test_skipped_command(command: Command) -> None:
    """Every command a page leaves out shows in the skip summary, with its reason."""
    pytest.skip(f"{command.where}: {command.skip}: {command.text.splitlines()[0][:80]}")


def test_command_blocks_are_tagged() -> None:
    """A block that shows a `healthswarm` command says whether it runs (console, sh) or is a synopsis (text)."""
    untagged = [f"docs/{page}:{block.line}" for page in PAGES for block in blocks(page)
                if not block.tag and any(re.match(r"\s*(\$ )?healthswarm\b", t) for _, t in block.lines)]
    assert not untagged, f"tag these blocks console/sh (they run) or text (they only show): {untagged}"


def test_convention_is_understood(tmp_path: Path) -> None:
    """The parser on a small page: continuations, output lines, markers, here-documents."""
    (tmp_path / "probe.md").write_text("```console\n$ healthswarm a \\\n    --b c\noutput line\n"
                    "$ healthswarm share leak-check f  # docs-test: exit 1\n"
                    "$ healthswarm serve  # docs-test: skip (starts a server)\n"
                    "$ healthswarm case verify C  # again  # docs-test: expect \"intact: 2\"\n```\n"
                    "```sh\n# a comment\ncat > x <<'EOF'\nbody\nEOF\nhealthswarm tls check\n```\n"
                    "```text\nhealthswarm never run\n```\n")
    found = commands("probe.md", tmp_path)
    assert [(c.line, c.text, c.skip, c.exit_code) for c in found] == [
        (2, "healthswarm a \\\n    --b c", None, 0),
        (5, "healthswarm share leak-check f", None, 1),
        (6, "healthswarm serve", "starts a server", 0),
        (7, "healthswarm case verify C  # again", None, 0),
        (11, "cat > x <<'EOF'\nbody\nEOF", None, 0),
        (14, "healthswarm tls check", None, 0),
    ]
    assert found[3].expect == "intact: 2"
