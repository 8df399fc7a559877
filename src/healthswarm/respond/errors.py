"""Errors of the response stage."""

from __future__ import annotations

from healthswarm.errors import HealthswarmError


class ConflictError(HealthswarmError):
    """Someone else changed the case since it was read: reload and apply the change again."""

    def __init__(self, case_id: str, expected: int, actual: int | None) -> None:
        self.case_id, self.expected, self.actual = case_id, expected, actual
        now = "someone else wrote it meanwhile" if actual is None else f"it is now at version {actual}"
        super().__init__(f"case {case_id}: changed concurrently (you edited version {expected}, {now}); "
                         "reload it and apply your change again")


class NotFoundError(HealthswarmError):
    """A case, task or playbook that was asked for does not exist."""
