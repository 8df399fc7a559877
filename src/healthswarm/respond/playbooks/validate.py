"""Loading and validating CACAO 2.0 playbooks: top-level properties, identifiers, timestamps, each step's
properties (by its kind), and the workflow graph (start present, no dangling references, no cycles, every
step reachable). Every problem is reported with the file, the step and the field."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from healthswarm.errors import InputError, Location, Problem
from healthswarm.respond.playbooks.steps import STEPS

SPEC_VERSION = "cacao-2.0"
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[1-5][0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}"
IDENTIFIER = re.compile(rf"^([a-z][a-z0-9-]*)--{_UUID}$")
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
REQUIRED = ("type", "spec_version", "id", "name", "created_by", "created", "modified", "workflow_start", "workflow")
PLAYBOOK_TYPES = frozenset({"notification", "detection", "investigation", "prevention", "mitigation", "remediation",
                            "attack"})


@dataclass(frozen=True)
class Playbook:
    id: str
    name: str
    description: str
    start: str
    workflow: dict[str, dict[str, Any]]
    source: str
    document: dict[str, Any]

    @property
    def types(self) -> list[str]:
        return list(self.document.get("playbook_types", []))


def _problem(source: str, message: str, field: str | None = None, expected: str | None = None) -> Problem:
    return Problem(Location(source, field=field), message, expected)


def validate_document(doc: Any, source: str, known_playbooks: set[str] | None = None) -> list[Problem]:
    """Every problem of one playbook document (empty when it is valid)."""
    if not isinstance(doc, dict):
        return [_problem(source, "a playbook must be a JSON object")]
    problems = [_problem(source, "missing required property", f) for f in REQUIRED if f not in doc]
    if doc.get("type", "playbook") != "playbook":
        problems.append(_problem(source, f"type is {doc.get('type')!r}", "type", "'playbook'"))
    if "spec_version" in doc and doc["spec_version"] != SPEC_VERSION:
        problems.append(_problem(source, f"spec_version is {doc['spec_version']!r}", "spec_version", SPEC_VERSION))
    for field, prefix in (("id", "playbook"), ("created_by", "identity")):
        value = doc.get(field)
        if field in doc and not (isinstance(value, str) and (m := IDENTIFIER.match(value)) and m.group(1) == prefix):
            problems.append(_problem(source, f"{value!r} is not an identifier", field, f"{prefix}--UUID"))
    for field in ("created", "modified"):
        if field in doc and not (isinstance(doc[field], str) and TIMESTAMP.match(doc[field])):
            problems.append(_problem(source, f"{doc[field]!r} is not a timestamp", field,
                                     "RFC 3339 UTC, e.g. 2026-01-01T00:00:00.000Z"))
    if isinstance(doc.get("created"), str) and isinstance(doc.get("modified"), str) \
            and doc["modified"] < doc["created"]:
        problems.append(_problem(source, "modified is before created", "modified"))
    if "name" in doc and (not isinstance(doc["name"], str) or not doc["name"].strip()):
        problems.append(_problem(source, "must be a non-empty string", "name"))
    for t in doc.get("playbook_types", []) if isinstance(doc.get("playbook_types"), list) else []:
        if t not in PLAYBOOK_TYPES:
            problems.append(_problem(source, f"unknown playbook type {t!r}", "playbook_types",
                                     ", ".join(sorted(PLAYBOOK_TYPES))))
    workflow = doc.get("workflow")
    if "workflow" in doc and (not isinstance(workflow, dict) or not workflow):
        problems.append(_problem(source, "must be a non-empty object of steps", "workflow"))
        return problems
    if isinstance(workflow, dict):
        problems.extend(_check_steps(workflow, source, known_playbooks))
        problems.extend(_check_graph(doc, workflow, source))
    return problems


def _check_steps(workflow: dict[str, Any], source: str, known_playbooks: set[str] | None) -> list[Problem]:
    problems = []
    for step_id, step in workflow.items():
        where = f"workflow.{step_id}"
        m = IDENTIFIER.match(step_id)
        if not isinstance(step, dict):
            problems.append(_problem(source, "a step must be an object", where))
            continue
        kind = STEPS.get(step.get("type", ""))
        if kind is None:
            problems.append(_problem(source, f"unsupported step type {step.get('type')!r}", f"{where}.type",
                                     ", ".join(sorted(STEPS))))
            continue
        if m is None or m.group(1) != kind.name:
            problems.append(_problem(source, "step id does not match its type", where, f"{kind.name}--UUID"))
        problems += [_problem(source, "missing required property", f"{where}.{f}") for f in kind.required
                     if f not in step]
        problems += [_problem(source, f"not allowed on a {kind.name} step", f"{where}.{f}") for f in kind.forbidden
                     if f in step]
        problems += [_problem(source, msg, f"{where}.{f}") for f, msg in kind.check(step)]
        pid = step.get("playbook_id")
        if kind.name == "playbook-action" and known_playbooks is not None and pid not in known_playbooks:
            problems.append(_problem(source, f"refers to unknown playbook {pid!r}", f"{where}.playbook_id"))
    return problems


def _check_graph(doc: dict[str, Any], workflow: dict[str, Any], source: str) -> list[Problem]:
    problems = []
    start = doc.get("workflow_start")
    if "workflow_start" in doc:
        if start not in workflow:
            problems.append(_problem(source, f"refers to a step that is not in the workflow: {start!r}",
                                     "workflow_start"))
        elif workflow[start].get("type") != "start":
            problems.append(_problem(source, "does not refer to a start step", "workflow_start"))
    if not any(isinstance(s, dict) and s.get("type") == "end" for s in workflow.values()):
        problems.append(_problem(source, "no end step", "workflow"))
    graph: dict[str, list[str]] = {}
    for step_id, step in workflow.items():
        if not isinstance(step, dict) or step.get("type") not in STEPS:
            continue
        graph[step_id] = []
        for prop, target in STEPS[step["type"]].edges(step):
            if target not in workflow:
                problems.append(_problem(source, f"refers to a step that is not in the workflow: {target!r}",
                                         f"workflow.{step_id}.{prop}"))
            else:
                graph[step_id].append(target)
    cycle = _find_cycle(graph)
    if cycle:
        problems.append(_problem(source, "cycle in the workflow: " + " → ".join(cycle), "workflow",
                                 "an acyclic workflow (loops need while-condition, which is not supported)"))
    if start in graph:
        reached, todo = {start}, [start]
        while todo:
            for nxt in graph.get(todo.pop(), []):
                if nxt not in reached:
                    reached.add(nxt)
                    todo.append(nxt)
        for step_id in graph:
            if step_id not in reached:
                problems.append(_problem(source, "step cannot be reached from workflow_start", f"workflow.{step_id}"))
    return problems


def _find_cycle(graph: dict[str, list[str]]) -> list[str]:
    """One cycle as a list of step ids (first repeated at the end), or [] (iterative DFS, three colours)."""
    colour: dict[str, int] = {}
    for root in graph:
        if colour.get(root):
            continue
        path, stack = [root], [iter(graph.get(root, []))]
        colour[root] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                colour[path.pop()] = 2
                stack.pop()
            elif colour.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            elif not colour.get(nxt):
                colour[nxt] = 1
                path.append(nxt)
                stack.append(iter(graph.get(nxt, [])))
    return []


def parse_playbook(doc: Any, source: str, known_playbooks: set[str] | None = None) -> Playbook:
    problems = validate_document(doc, source, known_playbooks)
    if problems:
        raise InputError(problems)
    return Playbook(doc["id"], doc["name"], doc.get("description", ""), doc["workflow_start"], doc["workflow"],
                    source, doc)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(_problem(str(path), "no such file")) from None
    except json.JSONDecodeError as exc:
        raise InputError(Problem(Location(str(path), line=exc.lineno), f"not JSON: {exc.msg}")) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(_problem(str(path), f"cannot read: {exc}")) from None


def load_playbook(path: Path, known_playbooks: set[str] | None = None) -> Playbook:
    return parse_playbook(read_json(path), str(path), known_playbooks)
