"""Response actions: each kind plans a proposal (dry run, the default) and can execute it.

Action kinds are a registry (`ACTIONS`, `@register`): a playbook command `x-healthswarm` names one kind and a
target selector, e.g. `isolate-host case.assets`. Disruptive kinds pass the patient-safety guardrail.
"""

from __future__ import annotations

import ipaddress
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import Connection

from healthswarm.errors import HealthswarmError, InputError, Location, Problem
from healthswarm.model import Asset
from healthswarm.model.words import severity_word
from healthswarm.respond.cases import Case
from healthswarm.respond.firewall import check_iptables, check_nft, iptables_block, nft_block
from healthswarm.respond.guardrail import Approval, assess
from healthswarm.respond.notify import NotifyConfig, send_email, send_webhook
from healthswarm.respond.watchlist import add_to_watchlist

QUARANTINE_VLAN = 999
_ACCOUNT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


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


ACTIONS: dict[str, ActionKind] = {}


def register(cls: type[ActionKind]) -> type[ActionKind]:
    ACTIONS[cls.name] = cls()
    return cls


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:80]


def _guard(proposal: Proposal, asset: Asset, kind: ActionKind, ctx: ActionContext) -> Proposal:
    proposal.approval = assess(asset, kind.disruptive, ctx.care_in_progress)
    if proposal.approval and asset.id not in ctx.approved:
        proposal.status = "awaiting-approval"
    return proposal


def _firewall_artefacts(addresses: list[str], comment: str) -> tuple[dict[str, str], list[str]]:
    nft, ipt = nft_block(addresses, comment), iptables_block(addresses, comment)
    problems = [f"nft: {p}" for p in check_nft(nft)] + [f"iptables: {p}" for p in check_iptables(ipt)]
    return {"nft": nft, "iptables.sh": ipt}, problems


@register
class IsolateHost(ActionKind):
    name = "isolate-host"
    disruptive = True
    description = "drop all traffic from and to an asset's addresses (nftables and iptables)"

    def plan(self, target: str, ctx: ActionContext, where: str) -> Proposal:
        asset = ctx.asset(target, where)
        if not asset.addresses:
            raise InputError(Problem(Location(where, field="target"), f"asset {asset.id} has no addresses",
                                     "an asset with addresses in the inventory"))
        artefacts, problems = _firewall_artefacts(list(asset.addresses), f"healthswarm {ctx.case.id} {asset.id}")
        proposal = Proposal(self.name, asset.id, f"isolate {asset.kind} {asset.id} ({', '.join(asset.addresses)})",
                            artefacts, problems=problems, status="invalid" if problems else "proposed")
        return proposal if problems else _guard(proposal, asset, self, ctx)


@register
class BlockAddress(ActionKind):
    name = "block-address"
    disruptive = True
    description = "drop traffic from and to one address (an indicator, or an asset's address)"

    def plan(self, target: str, ctx: ActionContext, where: str) -> Proposal:
        try:
            ipaddress.ip_network(target, strict=False)
        except ValueError:
            raise InputError(Problem(Location(where, field="target"), f"{target!r} is not an IP address")) from None
        artefacts, problems = _firewall_artefacts([target], f"healthswarm {ctx.case.id} {target}")
        proposal = Proposal(self.name, target, f"block {target} at the perimeter and internal firewalls",
                            artefacts, problems=problems, status="invalid" if problems else "proposed")
        asset = ctx.asset_of_address(target)
        return _guard(proposal, asset, self, ctx) if asset is not None and not problems else proposal


@register
class QuarantinePort(ActionKind):
    name = "quarantine-port"
    disruptive = True
    description = "request the network team to move an asset's switch port to the quarantine VLAN"

    def plan(self, target: str, ctx: ActionContext, where: str) -> Proposal:
        asset = ctx.asset(target, where)
        request = {"case": ctx.case.id, "asset": asset.id, "name": asset.name, "addresses": list(asset.addresses),
                   "switch": asset.attributes.get("switch", "unknown"), "port": asset.attributes.get("port", "unknown"),
                   "vlan": QUARANTINE_VLAN, "requested": ctx.now.isoformat()}
        proposal = Proposal(self.name, asset.id, f"move {asset.id} to quarantine VLAN {QUARANTINE_VLAN}",
                            {"json": json.dumps(request, indent=2) + "\n"})
        return _guard(proposal, asset, self, ctx)


def _account(target: str, where: str) -> str:
    name = target.split("\\")[-1].split("@")[0]
    if not _ACCOUNT.match(name):
        raise InputError(Problem(Location(where, field="target"), f"{target!r} is not an account name",
                                 "letters, digits, '.', '_', '-'"))
    return name


@register
class DisableAccount(ActionKind):
    name = "disable-account"
    description = "disable an Active Directory account and end its sessions"

    def plan(self, target: str, ctx: ActionContext, where: str) -> Proposal:
        name = _account(target, where)
        script = (f"Disable-ADAccount -Identity '{name}'\n"
                  f"Set-ADUser -Identity '{name}' -Description 'Disabled by {ctx.case.id} {ctx.now:%Y-%m-%d}'\n"
                  f"Get-ADUser -Identity '{name}' | Revoke-MgUserSignInSession -ErrorAction SilentlyContinue\n")
        return Proposal(self.name, name, f"disable account {name}", {"ps1": script})


@register
class ResetPassword(ActionKind):
    name = "reset-password"
    description = "reset an Active Directory password and require a change at next logon"

    def plan(self, target: str, ctx: ActionContext, where: str) -> Proposal:
        name = _account(target, where)
        script = (f"Set-ADAccountPassword -Identity '{name}' -Reset "
                  "-NewPassword (Read-Host -AsSecureString 'New password')\n"
                  f"Set-ADUser -Identity '{name}' -ChangePasswordAtLogon $true\n")
        return Proposal(self.name, name, f"reset the password of {name}", {"ps1": script})


@register
class DnsSinkhole(ActionKind):
    name = "dns-sinkhole"
    description = "answer NXDOMAIN for a domain (RPZ zone entries)"

    def plan(self, target: str, ctx: ActionContext, where: str) -> Proposal:
        domain = target.strip().lower().rstrip(".")
        if not _DOMAIN.match(domain):
            raise InputError(Problem(Location(where, field="target"), f"{target!r} is not a domain name"))
        rpz = f"; {ctx.case.id}\n{domain} CNAME .\n*.{domain} CNAME .\n"
        return Proposal(self.name, domain, f"sinkhole {domain} (RPZ NXDOMAIN)", {"rpz": rpz})


@register
class WatchlistAdd(ActionKind):
    name = "watchlist-add"
    description = "add an observable (type:value) to the detection watchlist"

    def plan(self, target: str, ctx: ActionContext, where: str) -> Proposal:
        type_, _, value = target.partition(":")
        if not value:
            raise InputError(Problem(Location(where, field="target"), f"{target!r} is not TYPE:VALUE"))
        return Proposal(self.name, target, f"watch for {type_} {value}")

    def execute(self, proposal: Proposal, ctx: ActionContext) -> str:
        if ctx.conn is None:
            raise HealthswarmError("watchlist-add: no store connection")
        type_, _, value = proposal.target.partition(":")
        added = add_to_watchlist(ctx.conn, type_, value, ctx.case.id, proposal.step, ctx.now)
        return "added to the watchlist" if added else "already on the watchlist"


def _message(ctx: ActionContext, audience: str) -> tuple[str, str]:
    case = ctx.case
    subject = f"[healthswarm] {case.id} ({case.phase}): {case.title}"
    body = (f"To: {audience}\nCase {case.id}, severity {severity_word(case.severity)}, phase {case.phase}.\n"
            f"Assets: {', '.join(case.assets) or 'none recorded'}\nAware since: {case.aware_at.isoformat()}\n")
    return subject, body


@register
class NotifyWebhook(ActionKind):
    name = "notify-webhook"
    description = "post the case summary to the configured webhook"

    def plan(self, target: str, ctx: ActionContext, where: str) -> Proposal:
        subject, body = _message(ctx, target)
        return Proposal(self.name, target, f"notify {target} by webhook",
                        {"json": json.dumps({"subject": subject, "text": body}, indent=2)})

    def execute(self, proposal: Proposal, ctx: ActionContext) -> str:
        return send_webhook(ctx.notify, json.loads(proposal.artefacts["json"]))


@register
class NotifyEmail(ActionKind):
    name = "notify-email"
    description = "e-mail the case summary through the configured SMTP relay"

    def plan(self, target: str, ctx: ActionContext, where: str) -> Proposal:
        subject, body = _message(ctx, target)
        return Proposal(self.name, target, f"notify {target} by e-mail", {"eml.txt": f"Subject: {subject}\n\n{body}"})

    def execute(self, proposal: Proposal, ctx: ActionContext) -> str:
        subject, _, body = proposal.artefacts["eml.txt"].partition("\n\n")
        return send_email(ctx.notify, subject.removeprefix("Subject: "), body)


# ---- target selectors: what `case.assets` and friends expand to ---------------------------------------

def _internal_name(domain: str, ctx: ActionContext) -> bool:
    """A name of one of our own assets (never sinkholed): its id or a hostname, with or without the suffix."""
    first = domain.split(".")[0]
    return any(domain in a.hostnames or first == a.id or first in a.hostnames for a in ctx.assets.values())


SELECTORS: dict[str, Callable[[ActionContext], list[str]]] = {
    "case.assets": lambda ctx: list(ctx.case.assets),
    "case.medical-devices": lambda ctx: [a for a in ctx.case.assets if a in ctx.assets
                                         and ctx.assets[a].is_medical_device],
    "case.addresses": lambda ctx: [o.value for o in ctx.case.observables if o.type in ("ipv4", "ipv6")
                                   and ctx.asset_of_address(o.value) is None],
    "case.domains": lambda ctx: [o.value for o in ctx.case.observables if o.type == "domain"
                                 and not _internal_name(o.value, ctx)],
    "case.accounts": lambda ctx: list(ctx.case.accounts),
    "case.observables": lambda ctx: [f"{o.type}:{o.value}" for o in ctx.case.observables],
}


def resolve_targets(selector: str, ctx: ActionContext) -> list[str]:
    """A selector (`case.assets`) expands from the case; anything else is one literal target."""
    if selector in SELECTORS:
        return SELECTORS[selector](ctx)
    return [selector]


def plan_action(kind: str, selector: str, ctx: ActionContext, where: str) -> list[Proposal]:
    if kind not in ACTIONS:
        raise InputError(Problem(Location(where, field="command"), f"unknown action {kind!r}",
                                 ", ".join(sorted(ACTIONS))))
    proposals = []
    for target in resolve_targets(selector, ctx):
        proposal = ACTIONS[kind].plan(target, ctx, where)
        proposal.step = where
        proposals.append(proposal)
    return proposals


def execute_proposal(proposal: Proposal, ctx: ActionContext) -> Proposal:
    """Run one planned proposal unless it is invalid or waits for approval; failures are recorded, not raised."""
    if proposal.status in ("invalid", "awaiting-approval"):
        return proposal
    try:
        proposal.result = ACTIONS[proposal.kind].execute(proposal, ctx)
        proposal.status = "executed"
    except HealthswarmError as exc:
        proposal.result, proposal.status = str(exc), "failed"
    return proposal
