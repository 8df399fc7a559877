from __future__ import annotations

from healthswarm.errors import HealthswarmError, InputError, Location, Problem
from healthswarm.respond.actions.base import ActionContext, ActionKind, Proposal, register
from healthswarm.respond.watchlist import add_to_watchlist


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
