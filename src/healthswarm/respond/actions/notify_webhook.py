from __future__ import annotations

import json

from healthswarm.respond.actions.base import ActionContext, ActionKind, Proposal, case_message, register
from healthswarm.respond.notify import send_webhook


@register
class NotifyWebhook(ActionKind):
    name = "notify-webhook"
    description = "post the case summary to the configured webhook"

    def plan(self, target: str, ctx: ActionContext, where: str) -> Proposal:
        subject, body = case_message(ctx, target)
        return Proposal(self.name, target, f"notify {target} by webhook",
                        {"json": json.dumps({"subject": subject, "text": body}, indent=2)})

    def execute(self, proposal: Proposal, ctx: ActionContext) -> str:
        return send_webhook(ctx.notify, json.loads(proposal.artefacts["json"]))
