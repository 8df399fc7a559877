"""`healthswarm vulns import|match|list`."""

from __future__ import annotations

import typer

app = typer.Typer(help="Medical-device advisories (CSAF 2.0, CVE JSON 5) and the findings they raise.",
                  no_args_is_help=True)
