"""`healthswarm serve` (the API, the dashboard and TAXII with uvicorn) and `healthswarm token create|list|revoke`."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from healthswarm.cli.context import app_context, command_line
from healthswarm.cli.output import OutputFormat, console, emit, err_console, error_lines


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on (loopback by default)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port")] = 8000,
) -> None:
    """Run the REST API (/api/v1), the dashboard (/) and TAXII 2.1 (/taxii2/) with uvicorn (HTTPS with [tls])."""
    import uvicorn

    from healthswarm.api import create_app
    from healthswarm.api.heap import freeze_startup_heap
    from healthswarm.security.proxies import TrustedProxies
    from healthswarm.security.tls import uvicorn_options

    app = app_context(ctx)
    tls = uvicorn_options(app.settings.tls)
    api = create_app(app.settings, engine=app.store.engine)
    base = f"{'https' if tls else 'http'}://{host}:{port}"
    err_console.print(f"dashboard: {base}/#token=<token>   API docs: {base}/api/v1/docs\n"
                      f"a token: {command_line(ctx, 'token create --role viewer --name NAME')}")
    # forwarded headers only from [api] trusted_proxies (uvicorn would otherwise believe any loopback client)
    proxies = TrustedProxies(app.settings.api.trusted_proxies).uvicorn_options()
    freeze_startup_heap()
    uvicorn.run(api, host=host, port=port, log_level="info", **tls, **proxies)


class Role(StrEnum):
    viewer = "viewer"
    analyst = "analyst"
    admin = "admin"
    peer = "peer"


token_app = typer.Typer(help="API tokens (stored as SHA-256; shown once).", no_args_is_help=True)


@token_app.command("create")
def create(
    ctx: typer.Context,
    role: Annotated[Role, typer.Option(help="viewer reads; analyst changes incidents; admin manages tokens")],
    name: Annotated[str, typer.Option(help="Who or what uses the token (shown in the audit log)")],
) -> None:
    """Create a token and print it once."""
    from healthswarm.api.auth import check_token_name, create_token

    try:
        name = check_token_name(name.strip(" "))
    except ValueError as exc:
        error_lines([f"--name: {exc}"])
        raise typer.Exit(2) from None
    with app_context(ctx).store.transaction() as conn:
        token = create_token(conn, name, str(role))
    err_console.print(f"token for {name} ({role}); it is not stored and will not be shown again:")
    console.print(token, markup=False, highlight=False)


@token_app.command("list")
def list_(ctx: typer.Context,
          fmt: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.table) -> None:
    """Tokens (never their secrets)."""
    from healthswarm.api.auth import list_tokens

    with app_context(ctx).store.read() as conn:
        rows = list_tokens(conn)
    emit(rows, fmt, ["id", "name", "role", "created", "revoked"], title="API tokens",
         empty=f"no API tokens: `{command_line(ctx, 'token create --role analyst --name NAME')}` makes one")


@token_app.command("revoke")
def revoke(ctx: typer.Context, token_id: Annotated[int, typer.Argument(help="The id `token list` shows")]) -> None:
    """Revoke a token (audited)."""
    from healthswarm.api.auth import Principal, revoke_token

    with app_context(ctx).store.transaction() as conn:
        done = revoke_token(conn, token_id, Principal("cli", "admin"))
    if done is None:
        error_lines([f"token {token_id}: no such token"])
        raise typer.Exit(2)
    console.print(f"revoked token {token_id} ({done['name']})")
