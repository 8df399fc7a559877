from __future__ import annotations

from healthswarm.errors import InputError, Location, Problem
from healthswarm.respond.actions.base import ActionContext, ActionKind, Proposal, guard, register
from healthswarm.respond.actions.firewall_block import firewall_artefacts


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
        artefacts, problems = firewall_artefacts(list(asset.addresses), f"healthswarm {ctx.case.id} {asset.id}")
        proposal = Proposal(self.name, asset.id, f"isolate {asset.kind} {asset.id} ({', '.join(asset.addresses)})",
                            artefacts, problems=problems, status="invalid" if problems else "proposed")
        return proposal if problems else guard(proposal, asset, self, ctx)
