"""Response actions, one kind a file, found by name in the `ACTIONS` registry (entry-point group
`healthswarm.actions`); see base.py for what a kind is and docs/plugins.md for adding one."""

from __future__ import annotations

from healthswarm.respond.actions.base import ACTIONS, ActionContext, ActionKind, Proposal, register
from healthswarm.respond.actions.run import SELECTORS, execute_proposal, plan_action, resolve_targets

__all__ = ["ACTIONS", "SELECTORS", "ActionContext", "ActionKind", "Proposal", "execute_proposal", "plan_action",
           "register", "resolve_targets"]
