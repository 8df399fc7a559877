"""What every response action shares: the context it plans in, the proposal it makes, the `ActionKind`
it is, and the `ACTIONS` registry (`plugins.Registry`, entry-point group `healthswarm.actions`).

Each kind plans a proposal (dry run, the default) and can execute it. A playbook command `x-healthswarm`
names one kind and a target selector, e.g. `isolate-host case.assets`. Disruptive kinds pass the
patient-safety guardrail (`guard`). A new kind is one file: a subclass decorated with `@register`.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import Connection

from healthswarm.errors import HealthswarmError, InputError, Location, Problem
from healthswarm.model import Asset
from healthswarm.model.words import severity_word
from healthswarm.plugins import Registry, instance
from healthswarm.respond.cases import Case
from healthswarm.respond.guardrail import Approval, assess
from healthswarm.respond.notify import NotifyConfig

_ACCOUNT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass
class ActionContext:
    case: Case
    assets: dict[str, Asset]
    now: datetime
    care_in_progress: bool = True
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    outdir: Path | None = None  # where executed artefacts (rules, scripts, requests) are written
    conn: Connection | None = None  # for the watchlist
    approved: frozenset[str] = frozenset()  # asset ids a human approved disruptive actions on

    def asset(self, asset_id: str, where: str) -> Asset:
        if asset_id not in self.assets:
            raise InputError(Problem(Location(where, field="target"), f"unknown asset {asset_id!r}",
                                     "an asset id of the inventory"))
        return self.assets[asset_id]

    def asset_of_address(self, address: str) -> Asset | None:
        for asset in self.assets.values():
            if address in asset.addresses:
                return asset
        return None


@dataclass
class Proposal:
    kind: str
    target: str
    summary: str
    artefacts: dict[str, str] = field(default_factory=dict)
    approval: Approval | None = None
    status: str = "proposed"  # proposed | awaiting-approval | executed | invalid | failed
    step: str = ""
    result: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def needs_approval(self) -> bool:
        return self.approval is not None

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "target": self.target, "summary": self.summary, "status": self.status,
                "step": self.step, "approval": self.approval.as_dict() if self.approval else None,
                "artefacts": dict(self.artefacts), "result": self.result, "problems": list(self.problems)}


class ActionKind(ABC):
    name: ClassVar[str]
    disruptive: ClassVar[bool] = False
    description: ClassVar[str] = ""

    @abstractmethod
    def plan(self, target: str, ctx: ActionContext, where: str) -> Proposal: ...

    def execute(self, proposal: Proposal, ctx: ActionContext) -> str:
        """Default: write the artefacts to the case's folder (what an operator or an orchestrator applies)."""
        if ctx.outdir is None:
            raise HealthswarmError(f"{self.name}: no output folder to write artefacts to")
        ctx.outdir.mkdir(parents=True, exist_ok=True)
        written = []
        for name, text in proposal.artefacts.items():
            path = ctx.outdir / f"{self.name}-{_slug(proposal.target)}.{name}"
            path.write_text(text, encoding="utf-8")
            written.append(str(path))
        return "wrote " + ", ".join(written)


ACTIONS: Registry[ActionKind] = Registry("action", "healthswarm.actions", {
    name: f"healthswarm.respond.actions.{name.replace('-', '_')}:{cls}" for name, cls in (
        ("isolate-host", "IsolateHost"), ("block-address", "BlockAddress"), ("quarantine-port", "QuarantinePort"),
        ("disable-account", "DisableAccount"), ("reset-password", "ResetPassword"), ("dns-sinkhole", "DnsSinkhole"),
        ("watchlist-add", "WatchlistAdd"), ("notify-webhook", "NotifyWebhook"), ("notify-email", "NotifyEmail"))},
    make=instance, expect=ActionKind)
register = ACTIONS.register


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:80]


def guard(proposal: Proposal, asset: Asset, kind: ActionKind, ctx: ActionContext) -> Proposal:
    """The patient-safety guardrail on a proposal against `asset`: it waits for approval unless given."""
    proposal.approval = assess(asset, kind.disruptive, ctx.care_in_progress)
    if proposal.approval and asset.id not in ctx.approved:
        proposal.status = "awaiting-approval"
    return proposal


def account_name(target: str, where: str) -> str:
    """The bare account of `DOMAIN\\name` or `name@realm`; anything else an account cannot be is refused."""
    name = target.split("\\")[-1].split("@")[0]
    if not _ACCOUNT.match(name):
        raise InputError(Problem(Location(where, field="target"), f"{target!r} is not an account name",
                                 "letters, digits, '.', '_', '-'"))
    return name


def case_message(ctx: ActionContext, audience: str) -> tuple[str, str]:
    """(subject, body) of the case summary sent to `audience`."""
    case = ctx.case
    subject = f"[healthswarm] {case.id} ({case.phase}): {case.title}"
    body = (f"To: {audience}\nCase {case.id}, severity {severity_word(case.severity)}, phase {case.phase}.\n"
            f"Assets: {', '.join(case.assets) or 'none recorded'}\nAware since: {case.aware_at.isoformat()}\n")
    return subject, body
