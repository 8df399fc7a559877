"""Running a playbook against a case: a dry run (the default) plans every action and lists the tasks for
people; with `execute=True` actions that need no (or have) approval are carried out."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from healthswarm.errors import HealthswarmError
from healthswarm.model.words import counted
from healthswarm.respond.actions import ActionContext, Proposal, execute_proposal, plan_action
from healthswarm.respond.playbooks.library import Library
from healthswarm.respond.playbooks.steps import STEPS
from healthswarm.respond.playbooks.validate import Playbook

MAX_DEPTH = 5  # nested playbook-action calls
MAX_STEPS = 10_000  # a guard; validation already rejects cycles


@dataclass
class StepRecord:
    playbook: str
    step: str
    type: str
    name: str
    outcome: str
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {"playbook": self.playbook, "step": self.step, "type": self.type, "name": self.name,
                "outcome": self.outcome, "seconds": round(self.seconds, 6)}


@dataclass
class PlannedTask:
    title: str
    step: str
    playbook: str

    def as_dict(self) -> dict[str, str]:
        return {"title": self.title, "step": self.step, "playbook": self.playbook}


@dataclass
class RunResult:
    playbook: str
    name: str
    case: str
    dry_run: bool
    steps: list[StepRecord] = field(default_factory=list)
    proposals: list[Proposal] = field(default_factory=list)
    tasks: list[PlannedTask] = field(default_factory=list)

    @property
    def approvals(self) -> list[Proposal]:
        return [p for p in self.proposals if p.approval is not None]

    def as_dict(self) -> dict[str, Any]:
        return {"playbook": self.playbook, "name": self.name, "case": self.case, "dry_run": self.dry_run,
                "steps": [s.as_dict() for s in self.steps], "proposals": [p.as_dict() for p in self.proposals],
                "tasks": [t.as_dict() for t in self.tasks],
                "approvals_required": [p.approval.as_dict() | {"kind": p.kind} for p in self.approvals
                                       if p.approval is not None]}


class Runner:
    def __init__(self, playbook: Playbook, ctx: ActionContext, library: Library | None = None,
                 execute: bool = False, result: RunResult | None = None, depth: int = 0) -> None:
        self.playbook, self.ctx, self.library, self.execute, self.depth = playbook, ctx, library, execute, depth
        self.result = result or RunResult(playbook.id, playbook.name, ctx.case.id, not execute)
        self._budget = MAX_STEPS
        self._step_started = 0.0

    def run(self) -> RunResult:
        self.walk(self.playbook.start)
        return self.result

    def walk(self, step_id: str | None) -> None:
        while step_id is not None:
            self._budget -= 1
            if self._budget < 0:
                raise HealthswarmError(f"playbook {self.playbook.name}: more than {MAX_STEPS} steps (a loop?)")
            step = self.playbook.workflow[step_id]
            self._step_started = time.perf_counter()
            step_id = STEPS[step["type"]].run(self, step_id, step)

    # ---- what step kinds call back ----------------------------------------------------------------------

    def record(self, step_id: str, step: dict[str, Any], outcome: str) -> None:
        self.result.steps.append(StepRecord(self.playbook.name, step_id, step["type"], step.get("name", ""),
                                            outcome, time.perf_counter() - self._step_started))

    def action(self, step_id: str, index: int, kind: str, selector: str) -> str:
        where = f"{self.playbook.source}: workflow.{step_id}.commands[{index}]"
        proposals = plan_action(kind, selector, self.ctx, where)
        for proposal in proposals:
            proposal.step = step_id
            if self.execute:
                execute_proposal(proposal, self.ctx)
        self.result.proposals.extend(proposals)
        waiting = sum(p.status == "awaiting-approval" for p in proposals)
        text = f"{kind}: {counted(len(proposals), 'target')}"
        return text + (f", {waiting} awaiting approval" if waiting else "")

    def task(self, step_id: str, step: dict[str, Any], command: dict[str, Any]) -> str:
        title = command.get("description") or command.get("command") or step.get("name") or step_id
        if command["type"] != "manual":
            title = f"[{command['type']}, run by a person] {title}"
        self.result.tasks.append(PlannedTask(str(title), step_id, self.playbook.name))
        return "task for a person"

    def sub_playbook(self, step_id: str, playbook_id: str) -> str:
        if self.library is None or playbook_id not in self.library.playbooks:
            raise HealthswarmError(f"{self.playbook.source}: workflow.{step_id}: playbook {playbook_id!r} is not "
                                   "in the library")
        if self.depth + 1 > MAX_DEPTH:
            raise HealthswarmError(f"{self.playbook.source}: workflow.{step_id}: playbooks nested more than "
                                   f"{MAX_DEPTH} deep (do they call each other?)")
        sub = self.library.playbooks[playbook_id]
        Runner(sub, self.ctx, self.library, self.execute, self.result, self.depth + 1).run()
        return f"ran playbook {sub.name}"


def run_playbook(playbook: Playbook, ctx: ActionContext, library: Library | None = None,
                 execute: bool = False) -> RunResult:
    return Runner(playbook, ctx, library, execute).run()
