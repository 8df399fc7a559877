"""Playbooks by policy in the agent: a step listener (`Agent.step_listeners`) that hands the incidents each
detection step wrote to `respond.service.respond_by_policy` under the agent's `[respond]` policy.

Its first call also looks at every stored incident: one the policy covers whose playbooks did not start before
a kill -9 (the step's commit came, the responder's did not) starts now; the case's audit log keeps any from
starting twice. A failed call (the store busy, say) is retried with the next step, so an incident is never
dropped; a failure never stops detection.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from healthswarm.agent.config import RespondConfig
from healthswarm.agent.detect import StepResult
from healthswarm.errors import ConfigError, InputError
from healthswarm.respond.actions import ACTIONS
from healthswarm.respond.playbooks.library import Library
from healthswarm.respond.service import inventory_assets, respond_by_policy
from healthswarm.store import Store

log = logging.getLogger("healthswarm.agent.respond")


class PolicyResponder:
    def __init__(self, store: Store, policy: RespondConfig, workspace: Path, write_lock: threading.Lock,
                 library: Library | None = None) -> None:
        self.store, self.policy, self.workspace, self.write_lock = store, policy, workspace, write_lock
        self.library = library or Library.load()
        for name in policy.playbooks:
            if name != "auto":
                try:
                    self.library.find(name)
                except InputError:
                    raise ConfigError(f"respond.playbooks: no playbook {name!r} (expected \"auto\" or one of "
                                      f"{', '.join(sorted(self.library.stems))})") from None
        for kind in policy.auto_actions:
            if kind not in ACTIONS:
                raise ConfigError(f"respond.auto_actions: no action {kind!r} (expected one of "
                                  f"{', '.join(ACTIONS.names())})")
        with store.read() as conn:  # as the agent's detectors, the inventory it started with
            self.assets = inventory_assets(conn)
        self._looked_back = False
        self._retry: list[str] = []

    def __call__(self, result: StepResult) -> None:
        incidents = None if not self._looked_back else list(dict.fromkeys([*self._retry, *result.incidents]))
        if incidents == []:
            return
        try:
            with self.write_lock:  # the store has one writer at a time: the sources' and detection's commits
                responses = respond_by_policy(self.store, self.policy, incidents, library=self.library,
                                              workspace=self.workspace, assets=self.assets)
        except Exception as exc:  # the agent's detection goes on; these incidents are tried again next step
            self._retry = incidents or []  # None: the next call looks back over every incident again
            log.warning("playbooks by policy failed; retried with the next step: %s: %s", type(exc).__name__, exc)
            return
        self._looked_back, self._retry = True, []
        for response in responses:
            if response.runs or response.failed or response.opened:
                log.info("playbooks by policy", extra={
                    "incident": response.incident, "case": response.case, "reason": response.reason,
                    "opened": response.opened, "playbooks": [r.name for r in response.runs],
                    "executed": response.executed, "waiting": response.waiting, "failed": response.failed})
