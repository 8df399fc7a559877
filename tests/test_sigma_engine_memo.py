"""The engine remembers, per field value, which indexed atoms it hit and what a regex, glob or cased test decided
for it (the same images and command lines recur). Those memos are bounded: when they hold SEEN_MAX_ENTRIES values
they are emptied in place, and the answers never change — each event's matches are what the straightforward
evaluation (`reference.py`) gives, before and after the memos were emptied, seen once and seen again."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from healthswarm.detect.sigma import SigmaEngine, event_view, load_rules
from healthswarm.detect.sigma import engine as engine_module
from healthswarm.detect.sigma.reference import reference_matches, reference_rules
from healthswarm.model import Event

RULES = textwrap.dedent(r"""
    title: encoded powershell
    id: 00000000-0000-0000-0000-0000000000e1
    logsource: {product: windows, category: process_creation}
    detection:
        sel:
            Image|endswith: '\powershell.exe'
            CommandLine|re: '(?i)\s-e(nc)?\s+[a-z0-9+/=]{8,}'
        condition: sel
    level: high
    ---
    title: whoami all, a glob
    id: 00000000-0000-0000-0000-0000000000e2
    logsource: {product: windows, category: process_creation}
    detection:
        sel:
            CommandLine: '*whoami*/all*'
        condition: sel
    level: medium
    ---
    title: Invoke- in its own case
    id: 00000000-0000-0000-0000-0000000000e3
    logsource: {product: windows, category: process_creation}
    detection:
        sel:
            CommandLine|cased|contains: 'Invoke-'
        filter:
            ParentImage|endswith: '\explorer.exe'
        condition: sel and not filter
    level: medium
    ---
    title: hex words, a regex without a literal (tested on every event of its source)
    id: 00000000-0000-0000-0000-0000000000e4
    logsource: {product: windows, category: process_creation}
    detection:
        sel:
            CommandLine|re: '\s[a-f0-9]{8}\s[a-f0-9]{4}\s'
        condition: sel
    level: low
    ---
    title: mimikatz keyword
    id: 00000000-0000-0000-0000-0000000000e5
    logsource: {product: windows}
    detection:
        keywords:
            - 'sekurlsa::'
        condition: keywords
    level: high
    """)

COMMANDS = [
    "powershell.exe -enc SQBFAFgAKABOAGUAdwA=",
    "powershell.exe -NoProfile Invoke-WebRequest http://x",
    "cmd.exe /c whoami /all",
    "cmd.exe /c whoami",
    "tool.exe 0a1b2c3d 9f8e run",
    "mimikatz.exe sekurlsa::logonpasswords",
    "notepad.exe c:\\notes.txt",
]
IMAGES = ["C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe", "C:\\Windows\\System32\\cmd.exe",
          "C:\\Tools\\tool.exe"]
PARENTS = ["C:\\Windows\\explorer.exe", "C:\\Windows\\System32\\services.exe"]


def process_events(count: int) -> list[Event]:
    """Sysmon process creations: a few command lines again and again, and many seen once (a counter in them)."""
    start = datetime(2026, 12, 7, tzinfo=UTC)
    events = []
    for i in range(count):
        command = COMMANDS[i % len(COMMANDS)] + (f" --run {i}" if i % 3 == 0 else "")
        original: dict[str, Any] = {
            "Provider_Name": "Microsoft-Windows-Sysmon", "EventID": 1,
            "Channel": "Microsoft-Windows-Sysmon/Operational", "Computer": f"ws-{i % 5}", "EventRecordID": i + 1,
            "TimeCreated_SystemTime": f"2026-12-07T00:00:{i % 60:02d}Z",
            "Image": IMAGES[i % len(IMAGES)], "CommandLine": command, "ParentImage": PARENTS[i % len(PARENTS)],
            "ProcessId": 1000 + i, "User": "CORP\\alice",
        }
        events.append(Event(timestamp=start + timedelta(seconds=i), fields={"observer.type": "evtx"},
                            original=original, source="memo-test", record=i + 1))
    return events


def remembered(engine: SigmaEngine) -> int:
    """Values held by all the engine's memos (the keywords' memo, shared by many fields, counted once)."""
    memos = {id(memo): memo for slots in engine._slots.values() for _, memo in slots.values() if memo is not None}
    return sum(map(len, memos.values())) + sum(map(len, engine._verdicts.values()))


@pytest.mark.parametrize("bound", [engine_module.SEEN_MAX_ENTRIES, 40])
def test_memos_are_bounded_and_never_change_an_answer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      bound: int) -> None:
    monkeypatch.setattr(engine_module, "SEEN_MAX_ENTRIES", bound)
    (tmp_path / "rules.yml").write_text(RULES, encoding="utf-8")
    ruleset = load_rules([tmp_path / "rules.yml"])
    assert len(ruleset.rules) == 5 and not ruleset.problems
    engine = SigmaEngine(ruleset)
    reference = reference_rules(engine)
    events = process_events(400)
    expected = [reference_matches(reference, *event_view(event)) for event in events]
    assert {i for found in expected for i in found} == set(range(5))  # every rule fires somewhere
    most = 0
    for _ in range(2):  # the second pass is answered from what the first remembered (or, bounded, forgot)
        for event, wanted in zip(events, expected, strict=True):
            assert engine.match_view(*event_view(event)) == wanted, f"record {event.record}"
            most = max(most, remembered(engine))
            assert remembered(engine) <= bound
    assert engine._verdicts  # the regex, glob and cased tests went through the remembered verdicts
    if bound < engine_module.SEEN_MAX_ENTRIES:
        assert most == bound  # filled up, then emptied: the bound was reached, not merely respected
