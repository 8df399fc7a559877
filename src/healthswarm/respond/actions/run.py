"""Planning and executing actions by name: target selectors (`case.assets` and friends) expand from the
case, the kind is found in the `ACTIONS` registry."""

from __future__ import annotations

from collections.abc import Callable

from healthswarm.errors import HealthswarmError, Location
from healthswarm.respond.actions.base import ACTIONS, ActionContext, Proposal
from healthswarm.respond.ours import external_observables


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
    "case.external-observables": external_observables,  # not ours: what may be watched without an analyst
}


def resolve_targets(selector: str, ctx: ActionContext) -> list[str]:
    """A selector (`case.assets`) expands from the case; anything else is one literal target."""
    if selector in SELECTORS:
        return SELECTORS[selector](ctx)
    return [selector]


def plan_action(kind: str, selector: str, ctx: ActionContext, where: str) -> list[Proposal]:
    action = ACTIONS.get(kind, Location(where, field="command"))
    proposals = []
    for target in resolve_targets(selector, ctx):
        proposal = action.plan(target, ctx, where)
        proposal.step = where
        proposals.append(proposal)
    return proposals


def execute_proposal(proposal: Proposal, ctx: ActionContext) -> Proposal:
    """Run one planned proposal unless it is invalid or waits for approval; failures are recorded, not raised."""
    if proposal.status in ("invalid", "awaiting-approval"):
        return proposal
    try:
        proposal.result = ACTIONS.get(proposal.kind).execute(proposal, ctx)
        proposal.status = "executed"
    except HealthswarmError as exc:
        proposal.result, proposal.status = str(exc), "failed"
    return proposal
