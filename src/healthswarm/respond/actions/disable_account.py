from __future__ import annotations

from healthswarm.respond.actions.base import ActionContext, ActionKind, Proposal, account_name, register


@register
class DisableAccount(ActionKind):
    name = "disable-account"
    description = "disable an Active Directory account and end its sessions"

    def plan(self, target: str, ctx: ActionContext, where: str) -> Proposal:
        name = account_name(target, where)
        script = (f"Disable-ADAccount -Identity '{name}'\n"
                  f"Set-ADUser -Identity '{name}' -Description 'Disabled by {ctx.case.id} {ctx.now:%Y-%m-%d}'\n"
                  f"Get-ADUser -Identity '{name}' | Revoke-MgUserSignInSession -ErrorAction SilentlyContinue\n")
        return Proposal(self.name, name, f"disable account {name}", {"ps1": script})
