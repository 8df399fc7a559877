"""Adding a format, a detector and a playbook action is one new file each in another package: a package
made on disk (modules plus the dist-info pip writes) on PYTHONPATH, and the real CLI in a subprocess on
a fresh workspace ingests that format, raises that detector's alert and validates a playbook that uses
that action. A broken plug-in is one clear line at the CLI, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from plugin_package import write_distribution

VITALS_FORMAT = '''\
"""Bedside-monitor vitals, one reading a line: `VITALS|2026-12-06T10:00:00Z|icu-mon-01|72`."""

from datetime import datetime

from healthswarm.model import Event, Reject


class VitalsFormat:
    name = "vitals"
    description = "bedside monitor vitals (VITALS|time|monitor|heart rate)"

    def sniff(self, head, filename=""):
        return 0.9 if head.startswith(b"VITALS|") else 0.0

    def parse(self, stream, source, start=0):
        position = 0
        for record, line in enumerate(stream, 1):
            position += len(line)
            if position <= start or not line.strip():
                continue
            try:
                tag, time, monitor, rate = line.decode().strip().split("|")
                fields = {"event.kind": "metric", "observer.type": self.name, "host.name": monitor,
                          "vitals.heart_rate": int(rate)}
                yield Event(datetime.fromisoformat(time), fields, line.decode().strip(), source, record, position)
            except ValueError as exc:
                yield Reject(source, position, f"line {record}: {exc}", line, self.name, record)
'''

BRADYCARDIA_DETECTOR = '''\
"""An alert when a monitor reports a heart rate under 40 a minute."""

from healthswarm.model import Alert, EventRef


class Bradycardia:
    name = "bradycardia"

    def detect(self, event):
        rate = event.fields.get("vitals.heart_rate")
        if not isinstance(rate, int) or rate >= 40:
            return []
        return [Alert(detector=self.name, rule_id="bradycardia:under-40", level="high", timestamp=event.timestamp,
                      title=f"heart rate {rate}/min on {event.fields['host.name']}",
                      events=(EventRef(event.source, event.record, event.key, event.timestamp),))]

    def flush(self):
        return []


def bradycardia(spec, assets):
    return [Bradycardia()]
'''

PAGE_ACTION = '''\
"""Page the on-call clinician engineer about a case."""

from healthswarm.respond.actions import ActionContext, ActionKind, Proposal


class PageOnCall(ActionKind):
    name = "page-on-call"
    description = "page the on-call clinical engineer with the case summary"

    def plan(self, target: str, ctx: ActionContext, where: str) -> Proposal:
        return Proposal(self.name, target, f"page {target} about {ctx.case.id}", {"txt": ctx.case.title + "\\n"})
'''

ODD_DETECTOR = '''\
def odd(spec, assets):
    return ["bradycardia"]
'''

ENTRY_POINTS = {"healthswarm.formats": {"vitals": "vitals_format:VitalsFormat"},
                "healthswarm.detectors": {"bradycardia": "bradycardia:bradycardia"},
                "healthswarm.actions": {"page-on-call": "page_on_call:PageOnCall"}}
READINGS = ("VITALS|2026-12-06T10:00:00Z|icu-mon-01|72\n"
            "VITALS|2026-12-06T10:01:00Z|icu-mon-01|38\n"
            "VITALS|2026-12-06T10:02:00Z|icu-mon-02|abc\n")
LIBRARY = Path(__file__).parents[1] / "src" / "healthswarm" / "respond" / "playbooks" / "library"


def healthswarm(plugins: Path | None, workspace: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m healthswarm -w WORKSPACE ARGS…` with `plugins` on PYTHONPATH, as a user would run it."""
    env = {k: v for k, v in os.environ.items() if k != "HEALTHSWARM_HOME"}
    if plugins is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(plugins), env.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, "-m", "healthswarm", "-w", str(workspace), *args], capture_output=True,
                          text=True, env=env, timeout=300)


def test_a_plugin_package_adds_a_format_a_detector_and_an_action(tmp_path: Path) -> None:
    plugins = write_distribution(tmp_path / "plugins", "healthswarm-vitals",
                                 {"vitals_format": VITALS_FORMAT, "bradycardia": BRADYCARDIA_DETECTOR,
                                  "page_on_call": PAGE_ACTION}, ENTRY_POINTS)
    readings = tmp_path / "icu.log"
    readings.write_text(READINGS, encoding="utf-8")
    workspace = tmp_path / "ws"

    ingested = healthswarm(plugins, workspace, "ingest", "--stats", str(readings))
    assert ingested.returncode == 0, ingested.stderr
    # the file was sniffed as vitals: two readings stored, the third quarantined with the parser's reason
    assert "2 events read: 2 stored" in ingested.stderr
    assert "invalid literal for int() with base 10: 'abc'" in ingested.stderr

    detected = healthswarm(plugins, workspace, "detect", "--format", "json", "--pack", "none", "--no-baseline",
                           "--no-clinical")
    assert detected.returncode == 0, detected.stderr
    result = json.loads(detected.stdout)[0]
    assert result["events"] == 2 and result["by_detector"] == {"bradycardia": 1}
    # `--disable` leaves a plug-in factory out; an unknown name is one line naming it
    quiet = healthswarm(plugins, workspace, "detect", "--format", "json", "--pack", "none", "--no-baseline",
                        "--no-clinical", "--disable", "bradycardia")
    assert quiet.returncode == 0, quiet.stderr
    assert json.loads(quiet.stdout)[0]["by_detector"] == {}
    unknown = healthswarm(plugins, workspace, "detect", "--disable", "bradycardya")
    assert unknown.returncode == 2 and "Traceback" not in unknown.stderr
    assert "bradycardya" in unknown.stderr and "bradycardia" in unknown.stderr

    playbook = tmp_path / "paging.json"
    playbook.write_text((LIBRARY / "notify-stakeholders.json").read_text(encoding="utf-8")
                        .replace("notify-webhook soc-channel", "page-on-call biomed-on-call"), encoding="utf-8")
    assert healthswarm(plugins, workspace, "playbook", "validate", str(playbook)).returncode == 0
    # the same playbook without the plug-in names an action nobody provides
    refused = healthswarm(None, workspace, "playbook", "validate", str(playbook))
    assert refused.returncode == 1 and "unknown action 'page-on-call'" in refused.stderr


def test_a_broken_plugin_is_one_line_naming_its_entry_point(tmp_path: Path) -> None:
    plugins = write_distribution(tmp_path / "plugins", "healthswarm-broken", {"vitals_format": "import vitalsdb\n"},
                                 {"healthswarm.formats": {"vitals": "vitals_format:VitalsFormat"}})
    readings = tmp_path / "icu.log"
    readings.write_text(READINGS, encoding="utf-8")
    broken = healthswarm(plugins, tmp_path / "ws", "ingest", str(readings))
    assert broken.returncode == 2
    assert broken.stderr.strip() == (
        "error: entry point 'vitals = vitals_format:VitalsFormat' (group healthswarm.formats, package "
        "healthswarm-broken 1.0) cannot be loaded: ModuleNotFoundError: No module named 'vitalsdb'")


def test_a_detector_plugin_that_makes_no_detector_is_one_line(tmp_path: Path) -> None:
    plugins = write_distribution(tmp_path / "plugins", "healthswarm-odd", {"odd_detector": ODD_DETECTOR},
                                 {"healthswarm.detectors": {"odd": "odd_detector:odd"}})
    odd = healthswarm(plugins, tmp_path / "ws", "detect", "--pack", "none")
    assert odd.returncode == 2
    assert odd.stderr.strip() == "error: detector 'odd' made a str, not a Detector (name, detect(event), flush())"
