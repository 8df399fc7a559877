from __future__ import annotations

from healthswarm.respond.actions.base import ActionContext, ActionKind, Proposal, case_message, register
from healthswarm.respond.notify import send_email


@register
class NotifyEmail(ActionKind):
    name = "notify-email"
    description = "e-mail the case summary through the configured SMTP relay"

    def plan(self, target: str, ctx: ActionContext, where: str) -> Proposal:
        subject, body = case_message(ctx, target)
        return Proposal(self.name, target, f"notify {target} by e-mail", {"eml.txt": f"Subject: {subject}\n\n{body}"})

    def execute(self, proposal: Proposal, ctx: ActionContext) -> str:
        subject, _, body = proposal.artefacts["eml.txt"].partition("\n\n")
        return send_email(ctx.notify, subject.removeprefix("Subject: "), body)
