from __future__ import annotations

import json

from healthswarm.respond.actions.base import ActionContext, ActionKind, Proposal, guard, register

QUARANTINE_VLAN = 999


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
        return guard(proposal, asset, self, ctx)
