from __future__ import annotations

import ipaddress

from healthswarm.errors import InputError, Location, Problem
from healthswarm.respond.actions.base import ActionContext, ActionKind, Proposal, guard, register
from healthswarm.respond.actions.firewall_block import firewall_artefacts


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
        artefacts, problems = firewall_artefacts([target], f"healthswarm {ctx.case.id} {target}")
        proposal = Proposal(self.name, target, f"block {target} at the perimeter and internal firewalls",
                            artefacts, problems=problems, status="invalid" if problems else "proposed")
        asset = ctx.asset_of_address(target)
        return guard(proposal, asset, self, ctx) if asset is not None and not problems else proposal
