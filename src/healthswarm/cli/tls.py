"""`healthswarm tls make-test-ca|check`: a throw-away CA for trying TLS out, and a check of the [tls] settings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from healthswarm.cli.context import app_context
from healthswarm.cli.output import console, err_console

app = typer.Typer(help="TLS for the API, TAXII and node traffic.", no_args_is_help=True)


@app.command("make-test-ca")
def make_test_ca(
    folder: Annotated[Path, typer.Argument(help="Folder to write ca.pem, server.pem/.key, client.pem/.key into")],
    host: Annotated[list[str] | None, typer.Option(help="Name or address the server certificates are valid for "
                                                        "(repeatable; default localhost, 127.0.0.1, ::1)")] = None,
    node: Annotated[list[str] | None, typer.Option(help="Also a node-NAME certificate for this node (repeatable)")]
    = None,
) -> None:
    """Write a test CA and certificates signed by it (NOT for production: the CA key is not kept)."""
    from healthswarm.security.testca import DEFAULT_HOSTS
    from healthswarm.security.testca import make_test_ca as make

    ca, issued = make(folder, tuple(host or DEFAULT_HOSTS), tuple(node or ()))
    console.print(f"wrote {ca}", highlight=False)
    for item in issued.values():
        console.print(f"wrote {item.cert} and {item.key}", highlight=False)
    server = issued["server"]
    err_console.print("to use them, add to <workspace>/config.toml:\n"
                      f'[tls]\ncert = "{server.cert.resolve()}"\nkey = "{server.key.resolve()}"\n'
                      f'ca = "{ca.resolve()}"', highlight=False, markup=False)


@app.command("check")
def check(ctx: typer.Context) -> None:
    """Load the [tls] certificate, key and CA as the servers and clients would; exit 2 naming a bad file."""
    from healthswarm.security.tls import client_context, server_context

    tls = app_context(ctx).settings.tls
    if not tls.enabled:
        console.print("TLS is off: [tls] names no cert and key (plain HTTP and TCP on loopback only)")
        return
    server_context(tls, require_client_cert=tls.mutual and bool(tls.ca))
    client_context(tls)
    console.print(f"TLS ≥ {tls.min_version}: certificate {tls.cert}, CA {tls.ca or '(system trust store)'}; "
                  f"node traffic {'mutual' if tls.mutual else 'server-authenticated'}", highlight=False)
