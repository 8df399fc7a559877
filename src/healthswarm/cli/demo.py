"""`healthswarm demo`: the end-to-end job on embedded defaults."""

from __future__ import annotations

import typer


def demo(ctx: typer.Context) -> None:
    """Load the reference ecosystem, import the advisories and print the exposure summary."""
