"""Workflow step kinds (a registry): what each requires, where it leads, and how it runs.

CACAO 2.0 step types supported: start, end, action, playbook-action, parallel, if-condition. The others
(while-condition, switch-condition) are rejected by validation with a clear message.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

from healthswarm.respond.actions import ACTIONS, SELECTORS
from healthswarm.respond.playbooks.conditions import condition_problems, evaluate

if TYPE_CHECKING:
    from healthswarm.respond.playbooks.executor import Runner

#: CACAO 2.0 command types we recognise; only `x-healthswarm` runs automatically, the rest become tasks.
COMMAND_TYPES = frozenset({"manual", "bash", "powershell", "http-api", "ssh", "openc2-http", "caldera-cmd",
                           "elastic", "jupyter", "kestrel", "sigma", "yara", "x-healthswarm"})


class StepKind(ABC):
    name: ClassVar[str]
    required: ClassVar[tuple[str, ...]] = ()
    forbidden: ClassVar[tuple[str, ...]] = ()

    def edges(self, step: dict[str, Any]) -> list[tuple[str, str]]:
        """(property, step id) pairs this step may continue to."""
        return [(p, step[p]) for p in ("on_completion", "on_success", "on_failure") if isinstance(step.get(p), str)]

    def check(self, step: dict[str, Any]) -> list[tuple[str, str]]:
        """(field, problem) pairs beyond required/forbidden properties."""
        return []

    @abstractmethod
    def run(self, runner: Runner, step_id: str, step: dict[str, Any]) -> str | None:
        """Do the step; return the next step id (None ends this path)."""


STEPS: dict[str, StepKind] = {}


def register(cls: type[StepKind]) -> type[StepKind]:
    STEPS[cls.name] = cls()
    return cls


def _next(step: dict[str, Any]) -> str | None:
    return step.get("on_completion") or step.get("on_success")


@register
class Start(StepKind):
    name = "start"
    forbidden = ("on_success", "on_failure")

    def run(self, runner: Runner, step_id: str, step: dict[str, Any]) -> str | None:
        runner.record(step_id, step, "started")
        return _next(step)


@register
class End(StepKind):
    name = "end"
    forbidden = ("on_completion", "on_success", "on_failure")

    def run(self, runner: Runner, step_id: str, step: dict[str, Any]) -> str | None:
        runner.record(step_id, step, "ended")
        return None


@register
class Action(StepKind):
    name = "action"
    required = ("commands",)

    def check(self, step: dict[str, Any]) -> list[tuple[str, str]]:
        commands = step.get("commands")
        if not isinstance(commands, list) or not commands:
            return [("commands", "must be a non-empty list of command objects")]
        problems = []
        for i, command in enumerate(commands):
            where = f"commands[{i}]"
            if not isinstance(command, dict):
                problems.append((where, "must be an object"))
                continue
            ctype = command.get("type")
            if ctype not in COMMAND_TYPES:
                problems.append((f"{where}.type", f"unknown command type {ctype!r} "
                                 f"(expected one of {', '.join(sorted(COMMAND_TYPES))})"))
                continue
            text = command.get("command")
            if ctype in ("manual", "x-healthswarm") and (not isinstance(text, str) or not text.strip()):
                problems.append((f"{where}.command", "missing or empty"))
                continue
            if ctype == "x-healthswarm":
                kind, _, selector = text.strip().partition(" ")
                if kind not in ACTIONS:
                    problems.append((f"{where}.command", f"unknown action {kind!r} (expected one of "
                                     f"{', '.join(sorted(ACTIONS))})"))
                if not selector.strip():
                    problems.append((f"{where}.command", f"no target after {kind!r} (a selector such as "
                                     f"{', '.join(sorted(SELECTORS))}, or a literal target)"))
        return problems

    def run(self, runner: Runner, step_id: str, step: dict[str, Any]) -> str | None:
        outcomes = []
        for i, command in enumerate(step["commands"]):
            if command["type"] == "x-healthswarm":
                kind, _, selector = command["command"].strip().partition(" ")
                outcomes.append(runner.action(step_id, i, kind, selector.strip()))
            else:
                outcomes.append(runner.task(step_id, step, command))
        runner.record(step_id, step, "; ".join(outcomes))
        return _next(step)


@register
class PlaybookAction(StepKind):
    name = "playbook-action"
    required = ("playbook_id",)

    def run(self, runner: Runner, step_id: str, step: dict[str, Any]) -> str | None:
        outcome = runner.sub_playbook(step_id, step["playbook_id"])
        runner.record(step_id, step, outcome)
        return _next(step)


@register
class Parallel(StepKind):
    name = "parallel"
    required = ("next_steps",)

    def edges(self, step: dict[str, Any]) -> list[tuple[str, str]]:
        branches = step.get("next_steps") if isinstance(step.get("next_steps"), list) else []
        return super().edges(step) + [("next_steps", s) for s in branches if isinstance(s, str)]

    def check(self, step: dict[str, Any]) -> list[tuple[str, str]]:
        branches = step.get("next_steps")
        if not isinstance(branches, list) or not branches or not all(isinstance(s, str) for s in branches):
            return [("next_steps", "must be a non-empty list of step ids")]
        return []

    def run(self, runner: Runner, step_id: str, step: dict[str, Any]) -> str | None:
        # Dry run and proposals are order-independent: branches are walked one after the other, each to its
        # end, and the step completes when all have (the join CACAO's on_completion describes).
        for branch in step["next_steps"]:
            runner.walk(branch)
        runner.record(step_id, step, f"{len(step['next_steps'])} branches done")
        return _next(step)


@register
class IfCondition(StepKind):
    name = "if-condition"
    required = ("condition", "on_true")

    def edges(self, step: dict[str, Any]) -> list[tuple[str, str]]:
        return super().edges(step) + [(p, step[p]) for p in ("on_true", "on_false") if isinstance(step.get(p), str)]

    def check(self, step: dict[str, Any]) -> list[tuple[str, str]]:
        condition = step.get("condition")
        if not isinstance(condition, str) or not condition.strip():
            return [("condition", "must be a non-empty string")]
        return [("condition", p) for p in condition_problems(condition)]

    def run(self, runner: Runner, step_id: str, step: dict[str, Any]) -> str | None:
        truth = evaluate(step["condition"], runner.ctx)
        runner.record(step_id, step, f"{step['condition']!r} is {str(truth).lower()}")
        branch = step.get("on_true") if truth else step.get("on_false")
        if branch:
            runner.walk(branch)
        return step.get("on_completion")
