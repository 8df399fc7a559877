from __future__ import annotations

from healthswarm.respond.actions.base import ActionContext, ActionKind, Proposal, account_name, register


@register
class ResetPassword(ActionKind):
    name = "reset-password"
    description = "reset an Active Directory password and require a change at next logon"

    def plan(self, target: str, ctx: ActionContext, where: str) -> Proposal:
        name = account_name(target, where)
        script = (f"Set-ADAccountPassword -Identity '{name}' -Reset "
                  "-NewPassword (Read-Host -AsSecureString 'New password')\n"
                  f"Set-ADUser -Identity '{name}' -ChangePasswordAtLogon $true\n")
        return Proposal(self.name, name, f"reset the password of {name}", {"ps1": script})
