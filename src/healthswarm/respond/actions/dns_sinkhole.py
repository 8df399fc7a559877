from __future__ import annotations

import re

from healthswarm.errors import InputError, Location, Problem
from healthswarm.respond.actions.base import ActionContext, ActionKind, Proposal, register

_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


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
