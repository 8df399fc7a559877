"""Errors that carry where the problem is, so the CLI can print one clear line per problem.

Modelled on pySigma's exceptions with a location: a user mistake is never a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Location:
    """Where a problem sits: a file, optionally a line (1-based) and a field path."""

    file: str
    line: int | None = None
    field: str | None = None

    def __str__(self) -> str:
        text = self.file
        if self.line is not None:
            text += f":{self.line}"
        if self.field:
            text += f": {self.field}"
        return text


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem in the user's input: what is wrong and what was expected instead."""

    location: Location
    message: str
    expected: str | None = None

    def __str__(self) -> str:
        text = f"{self.location}: {self.message}"
        if self.expected:
            text += f" (expected {self.expected})"
        return text


class HealthswarmError(Exception):
    """Base of every error healthswarm raises on purpose."""


class InputError(HealthswarmError):
    """The user's input is wrong; carries every problem found, not only the first."""

    def __init__(self, problems: list[Problem] | Problem) -> None:
        self.problems = [problems] if isinstance(problems, Problem) else list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class ConfigError(HealthswarmError):
    """The configuration (file, environment or command line) is wrong."""
