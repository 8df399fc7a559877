"""`healthswarm share export|import|leak-check|keys|taxii|serve-taxii|pull`."""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import orjson
import typer

from healthswarm.cli.context import app_context, command_line
from healthswarm.cli.output import OutputFormat, console, emit, error_lines, writing
from healthswarm.errors import InputError
from healthswarm.model.words import counted
from healthswarm.share import service
from healthswarm.share.egress import PATHS, REFUSAL_WORDS, REMOVED_WORDS, Refused
from healthswarm.share.indicators import load_indicators, save_indicators
from healthswarm.share.leakcheck import LeakChecker
from healthswarm.share.pipeline import import_signed
from healthswarm.share.sanitise import Policy, policy_for
from healthswarm.share.secrets import Pseudonymiser, load_or_create_secret
from healthswarm.share.signing import TrustStore, VerificationError, load_or_create_keys
from healthswarm.share.stix_import import import_bundle, read_json

app = typer.Typer(help="Share intelligence with peers: STIX 2.1, sanitising, leak check, signatures, TAXII 2.1.",
                  no_args_is_help=True)
keys_app = typer.Typer(help="This organisation's Ed25519 key pair and the peers it trusts.", no_args_is_help=True)
taxii_app = typer.Typer(help="The TAXII 2.1 server's collections and tokens.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(taxii_app, name="taxii")


class Group(StrEnum):
    public = "public"
    sector = "sector"
    trusted = "trusted"


class Coarsen(StrEnum):
    hour = "hour"
    day = "day"


class Addresses(StrEnum):
    drop = "drop"
    pseudonym = "pseudonym"
    cryptopan = "cryptopan"


@app.command("export")
def export(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", "-o", help="Bundle file to write")],
    tlp: Annotated[str, typer.Option(help="TLP 2.0 level: clear, green, amber, amber+strict, red")] = "amber",
    group: Annotated[Group, typer.Option(help="Peer group the bundle is for")] = Group.sector,
    pap: Annotated[str | None, typer.Option(help="PAP level: clear, green, amber, red")] = None,
    coarsen: Annotated[Coarsen | None, typer.Option(help="Floor timestamps to the hour or day")] = None,
    addresses: Annotated[Addresses | None, typer.Option(help="Internal addresses: drop, pseudonym, cryptopan")] = None,
    alerts: Annotated[list[Path] | None, typer.Option("--alerts", help="Alerts (JSON array or NDJSON)")] = None,
    stored_alerts: Annotated[bool, typer.Option(help="Include the stored alerts and incidents")] = True,
    since: Annotated[str | None, typer.Option(help="Only stored alerts and incidents from this UTC date/time")] = None,
    findings: Annotated[bool, typer.Option(help="Include the stored findings")] = True,
    indicators: Annotated[bool, typer.Option(help="Include our stored indicators")] = True,
    validity_days: Annotated[int, typer.Option(help="Days the signature stays valid")] = 7,
    misp_feed: Annotated[Path | None, typer.Option(help="Also add the bundle to this MISP feed folder")] = None,
) -> None:
    """Stored findings, alerts, incidents and our indicators → the egress gate (policy, sanitise, leak check,
    sign) → FILE.

    Exit 1 when the gate refuses (a leak check hit: nothing is written); 2 on bad input."""
    from datetime import UTC, datetime

    from healthswarm.share.alerts_io import read_alerts

    actx = app_context(ctx)
    policy = _policy(tlp, group, coarsen, addresses)
    try:
        start = datetime.fromisoformat(since).replace(tzinfo=UTC) if since else None
    except ValueError:
        raise _bad(f"--since {since!r}: expected an ISO date or date-time (UTC)") from None
    store, workspace = actx.store, actx.settings.workspace
    organisation = service.organisation_of(store, actx.settings.organisation)
    selection = service.select_export(store, organisation, since=start, alerts=stored_alerts, findings=findings,
                                      indicators=indicators)
    selection.alerts += [a for path in alerts or [] for a in read_alerts(path)]
    try:
        released, skipped = service.export_stix(store, workspace, organisation, policy, selection, pap=pap,
                                                validity=timedelta(days=validity_days))
        if misp_feed is not None:
            service.export_misp(store, workspace, organisation, policy, selection, misp_feed, pap=pap)
            console.print(f"added an event to the MISP feed {misp_feed}")
    except Refused as exc:
        _refused(exc)
    with writing(out):
        out.write_bytes(orjson.dumps(released.payload, option=orjson.OPT_INDENT_2) + b"\n")
    console.print(f"wrote {out}: {released.objects} objects, TLP:{policy.tlp.upper()} for the {policy.group} group, "
                  f"signed by key {released.key_id}", highlight=False)
    console.print(f"sanitised: {_removed(released.removed)}", highlight=False)
    for note in skipped[:20]:
        console.print(f"[yellow]skipped[/yellow] {note}", markup=True)


def _policy(tlp: str, group: Group, coarsen: Coarsen | None = None, addresses: Addresses | None = None) -> Policy:
    try:
        return policy_for(tlp, group.value, coarsen.value if coarsen else None, addresses.value if addresses else None)
    except ValueError as exc:
        raise _bad(str(exc)) from None


def _removed(removed: dict[str, int]) -> str:
    """What the sanitiser did, in words: "3 user names replaced, 2 internal addresses dropped"."""
    if not removed:
        return "nothing to remove"
    return ", ".join(f"{REMOVED_WORDS.get(rule, rule)} ×{count}" for rule, count in sorted(removed.items()))


def _refused(exc: Refused) -> NoReturn:
    error_lines([f"egress refused ({exc.path} to {exc.peer}): "
                 + ", ".join(f"{REFUSAL_WORDS.get(k, k)} ×{v}" for k, v in sorted(exc.reasons.items()))
                 + "; nothing was written"] + [str(h) for h in exc.hits[:50]])
    raise typer.Exit(1)


def _bad(message: str) -> Exception:
    from healthswarm.errors import Location, Problem

    return InputError(Problem(Location("command line"), message))


@app.command("import")
def import_(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A signed STIX 2.1 bundle from a peer")],
    store_indicators: Annotated[bool, typer.Option("--store/--no-store", help="Store the indicators")] = True,
    fmt: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.table,
) -> None:
    """Verify the signature (trust store, replay, expiry), validate, then store the indicators."""
    actx = app_context(ctx)
    bundle = read_json(file)
    try:
        outcome = import_signed(bundle, actx.settings.workspace, str(file))
    except VerificationError as exc:
        error_lines([f"{file}: rejected: {exc}"])
        raise typer.Exit(2) from None
    inserted = updated = 0
    if store_indicators:
        with actx.store.transaction() as conn:
            inserted, updated = save_indicators(conn, outcome.result.indicators)
    rows = [{"type": k, "count": v} for k, v in sorted(outcome.result.counts().items())]
    emit(rows, fmt, ["type", "count"], title=f"{file} from {outcome.peer.name} ({outcome.peer.key_id})")
    if fmt is OutputFormat.table:
        console.print(f"{len(outcome.result.indicators)} indicators: {inserted} new, {updated} updated; "
                      f"{len(outcome.result.warnings)} validator warnings")


@app.command("validate")
def validate(file: Annotated[Path, typer.Argument(help="A STIX 2.1 bundle")]) -> None:
    """Validate a bundle with stix2-validator; exit 1 with every reason when it is invalid."""
    try:
        result = import_bundle(read_json(file), str(file))
    except InputError as exc:
        error_lines(str(p) for p in exc.problems)
        raise typer.Exit(1) from None
    console.print(f"[green]valid[/green]: {sum(result.counts().values())} objects, "
                  f"{len(result.warnings)} warnings")


@app.command("leak-check")
def leak_check(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A bundle (or any JSON/text file) about to leave")],
    fmt: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.table,
) -> None:
    """Search FILE for every sensitive value we know, also encoded. Exit 1 on a hit, 0 clean, 2 bad input."""
    actx = app_context(ctx)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        error_lines([f"{file}: cannot read: {exc.strerror or exc}"])
        raise typer.Exit(2) from None
    except UnicodeDecodeError as exc:
        error_lines([f"{file}: not UTF-8 text (byte {exc.start}) (expected a bundle or a JSON/text file)"])
        raise typer.Exit(2) from None
    known = service.sensitive_values(actx.store, actx.settings.organisation)
    hits = LeakChecker(known).check_text(text)
    if hits:
        emit([h.as_dict() for h in hits], fmt, ["object_id", "path", "kind", "encoding", "fingerprint"],
             title=f"{file}: {counted(len(hits), 'sensitive value')}")
        raise typer.Exit(1)
    if fmt is OutputFormat.table:
        console.print(f"[green]clean[/green]: {file} holds none of {sum(1 for _ in known.values())} sensitive values")
    else:
        emit([], fmt, [])


class EgressPath(StrEnum):
    stix = "stix"
    misp = "misp"
    taxii = "taxii"
    gossip = "gossip"
    report = "report"


@app.command("preview")
def preview(
    ctx: typer.Context,
    path: Annotated[list[EgressPath] | None,
                    typer.Option("--path", help="Egress path (repeatable; default all)")] = None,
    tlp: Annotated[str, typer.Option(help="TLP 2.0 level of the bundle paths")] = "amber",
    group: Annotated[Group, typer.Option(help="Peer group of the bundle paths")] = Group.sector,
    fmt: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.table,
) -> None:
    """What would leave now on each egress path after the gate, what it removes and what it refuses, and why.

    Nothing is signed, sent or recorded."""
    from healthswarm.swarm.service import preview_gossip

    actx = app_context(ctx)
    store, workspace = actx.store, actx.settings.workspace
    organisation = service.organisation_of(store, actx.settings.organisation)
    chosen = [p.value for p in path] if path else list(PATHS)
    bundles = [p for p in chosen if p != "gossip"]
    results = service.preview(store, workspace, organisation, _policy(tlp, group), bundles)
    if "gossip" in chosen:
        results.append(preview_gossip(store, workspace, organisation))
    results.sort(key=lambda r: chosen.index(r.path))
    if fmt is not OutputFormat.table:
        emit([r.as_dict() for r in results], fmt, ["path", "peer", "candidates", "released", "removed", "refused"])
        return
    rows = [{"path": r.path, "to": r.peer, "candidates": r.candidates, "would leave": r.released,
             "removed": _removed(dict(r.removed)),
             "refused": ", ".join(f"{REFUSAL_WORDS.get(k, k)} ×{v}" for k, v in sorted(r.refused.items())) or "-"}
            for r in results]
    emit(rows, fmt, ["path", "to", "candidates", "would leave", "removed", "refused"],
         title=f"What would leave {organisation or 'this organisation'} now (TLP:{tlp.upper()}, {group.value} group)")


@app.command("report")
def report(
    ctx: typer.Context,
    incident: Annotated[str, typer.Argument(help="The incident id (see `incidents list`)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Bundle file to write")],
    tlp: Annotated[str, typer.Option(help="TLP 2.0 level")] = "amber",
    group: Annotated[Group, typer.Option(help="Peer group the report is for")] = Group.sector,
) -> None:
    """One incident for peers (its report, techniques and public indicators) through the egress gate → FILE."""
    actx = app_context(ctx)
    store = actx.store
    organisation = service.organisation_of(store, actx.settings.organisation)
    try:
        released = service.report_for_peers(store, actx.settings.workspace, organisation, _policy(tlp, group), incident)
    except KeyError:
        raise _bad(f"no incident {incident!r} (see `{command_line(ctx, 'incidents list')}`)") from None
    except Refused as exc:
        _refused(exc)
    with writing(out):
        out.write_bytes(orjson.dumps(released.payload, option=orjson.OPT_INDENT_2) + b"\n")
    console.print(f"wrote {out}: {released.objects} objects about {incident}, signed by key {released.key_id}; "
                  f"sanitised: {_removed(released.removed)}", highlight=False)


@app.command("publish")
def publish(
    ctx: typer.Context,
    collection: Annotated[str, typer.Option(help="Our TAXII collection id (see `share taxii add-collection`)")],
    tlp: Annotated[str, typer.Option(help="TLP 2.0 level")] = "amber",
    group: Annotated[Group, typer.Option(help="Peer group the collection serves")] = Group.sector,
) -> None:
    """Our stored intelligence through the egress gate into our TAXII collection, every object signed."""
    actx = app_context(ctx)
    store = actx.store
    organisation = service.organisation_of(store, actx.settings.organisation)
    try:
        released, stored = service.publish_taxii(store, actx.settings.workspace, organisation, _policy(tlp, group),
                                                 service.select_export(store, organisation), collection)
    except Refused as exc:
        _refused(exc)
    console.print(f"published {stored} of {released.objects} signed objects to collection {collection}; "
                  f"sanitised: {_removed(released.removed)}", highlight=False)


# The prefix keeps a base64url key that starts with "-" from being read as a command-line option.
KEY_PREFIX = "ed25519:"


@keys_app.command("show")
def keys_show(ctx: typer.Context) -> None:
    """This organisation's public key, key id and pseudonym (what peers add with `keys trust`)."""
    actx = app_context(ctx)
    workspace = actx.settings.workspace
    pair = load_or_create_keys(workspace)
    pseudo = Pseudonymiser(load_or_create_secret(workspace))
    print(f"key id:     {pair.key_id}")
    print(f"public key: {KEY_PREFIX}{pair.public_text}")
    print(f"pseudonym:  {pseudo.organisation(actx.settings.organisation or 'local')}")
    peers = TrustStore.in_workspace(workspace).peers()
    print(f"trusted peers: {len(peers)}")
    for peer in peers:
        print(f"  {peer.key_id}  {peer.name}  ({peer.group})")


@keys_app.command("trust")
def keys_trust(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A name for the peer")],
    public_key: Annotated[str, typer.Argument(help="The public key as `keys show` prints it (ed25519:…)")],
    group: Annotated[Group, typer.Option(help="The peer group it belongs to")] = Group.sector,
) -> None:
    """Add (or replace) a peer's public key in the trust store."""
    try:
        store = TrustStore.in_workspace(app_context(ctx).settings.workspace)
        peer = store.trust(name, public_key.removeprefix(KEY_PREFIX), group.value)
    except ValueError as exc:
        raise _bad(str(exc)) from None
    console.print(f"trusted {peer.name}: key id {peer.key_id} ({peer.group})")


@taxii_app.command("add-collection")
def taxii_add_collection(
    ctx: typer.Context,
    title: Annotated[str, typer.Argument()],
    description: Annotated[str, typer.Option()] = "",
    alias: Annotated[str | None, typer.Option()] = None,
    api_root: Annotated[str, typer.Option()] = "api1",
) -> None:
    """Create a collection; prints its id."""
    from healthswarm.share.taxii import storage

    store = app_context(ctx).store
    storage.setup(store.engine)
    with store.transaction() as conn:
        ident = storage.create_collection(conn, api_root, title, description, alias=alias)
    print(ident)


@taxii_app.command("add-token")
def taxii_add_token(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Who the token is for")],
    role: Annotated[str, typer.Option(help="admin or peer")] = "peer",
    read: Annotated[list[str] | None, typer.Option("--read", help="Collection id the peer may read")] = None,
    write: Annotated[list[str] | None, typer.Option("--write", help="Collection id the peer may write")] = None,
) -> None:
    """Create a bearer token (printed once; only its hash is kept) with read/write rights per collection."""
    from healthswarm.api.auth import check_token_name
    from healthswarm.share.taxii import storage

    try:  # the same rule as API tokens: the name reaches logs and listings
        name = check_token_name(name.strip(" "))
    except ValueError as exc:
        error_lines([f"NAME: {exc}"])
        raise typer.Exit(2) from None
    store = app_context(ctx).store
    storage.setup(store.engine)
    read, write = read or [], write or []
    with store.transaction() as conn:
        token = storage.create_token(conn, name, role)
        for collection_id in sorted(set(read) | set(write)):
            storage.grant(conn, token, collection_id, collection_id in read, collection_id in write)
    print(token)


def _loopback(host: str) -> str:
    try:
        if ipaddress.ip_address(host).is_loopback:
            return host
    except ValueError:
        if host == "localhost":
            return host
    raise _bad(f"--host {host}: only loopback addresses (127.0.0.1, ::1) are served without TLS; configure [tls]")


@app.command("serve-taxii")
def serve_taxii(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Loopback address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 9500,
    api_root: Annotated[str, typer.Option()] = "api1",
    psi: Annotated[bool, typer.Option(help="Also answer private matching (/psi/intersect) on our indicators")] = False,
    psi_reveal: Annotated[bool, typer.Option(help="Let peers learn the intersection, not only its size")] = True,
) -> None:
    """Run the TAXII 2.1 server alone (uvicorn): over HTTPS on any address with [tls], else on loopback only."""
    import uvicorn

    from healthswarm.security.proxies import TrustedProxies
    from healthswarm.security.tls import uvicorn_options
    from healthswarm.share.taxii.server import make_app

    actx = app_context(ctx)
    tls = uvicorn_options(actx.settings.tls)
    if not tls:
        _loopback(host)
    application = make_app(actx.store.engine, api_root, psi=psi, psi_reveal=psi_reveal,
                           limits=actx.settings.rate_limit, trust=TrustStore.in_workspace(actx.settings.workspace))
    # forwarded headers only from [api] trusted_proxies: by default uvicorn believes any loopback client
    proxies = TrustedProxies(actx.settings.api.trusted_proxies).uvicorn_options()
    uvicorn.run(application, host=host, port=port, log_level="warning", **tls, **proxies)


@app.command("pull")
def pull(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="TAXII server base URL (discovery at <url>/taxii2/)")],
    collection: Annotated[str, typer.Option(help="Collection id")],
    api_root: Annotated[str | None, typer.Option(help="API root URL (default: the server's default)")] = None,
    token: Annotated[str | None, typer.Option(envvar="HEALTHSWARM_TAXII_TOKEN", help="Bearer token")] = None,
    user: Annotated[str | None, typer.Option(help="HTTP Basic user")] = None,
    password: Annotated[str | None, typer.Option(envvar="HEALTHSWARM_TAXII_PASSWORD")] = None,
    added_after: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Pull a collection from a TAXII 2.1 server, validate it and store its indicators."""
    from healthswarm.security.tls import client_context
    from healthswarm.share.taxii.client import TaxiiClient, TaxiiClientError

    actx = app_context(ctx)
    # with [tls] the server must chain to our CA (and sees our certificate); else the system's CAs
    verify = client_context(actx.settings.tls) if actx.settings.tls.enabled or actx.settings.tls.ca else True
    try:
        with TaxiiClient(url, token=token, user=user, password=password, verify=verify) as client:
            root = api_root or client.discover().get("default") or client.api_roots()[0]
            objects = list(client.objects(root, collection, added_after=added_after))
    except (TaxiiClientError, IndexError) as exc:
        error_lines([f"{url}: {exc}"])
        raise typer.Exit(2) from None
    pulled = service.verify_pulled(objects, actx.settings.workspace, f"{url} {collection}")
    with actx.store.transaction() as conn:
        inserted, updated = save_indicators(conn, pulled.indicators)
    refused = ", ".join(f"{reason} ×{count}" for reason, count in sorted(pulled.refused.items()))
    console.print(f"pulled {len(objects)} objects: {len(objects) - pulled.refused.total()} signed by trusted peers"
                  + (f", refused {refused}" if refused else "") + f"; {len(pulled.indicators)} indicators: "
                  f"{inserted} new, {updated} updated", highlight=False)


@app.command("indicators")
def indicators_list(
    ctx: typer.Context,
    source: Annotated[str | None, typer.Option(help="Only those of this peer identity (\"\" for ours)")] = None,
    fmt: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.table,
) -> None:
    """List the stored indicators (ours and those imported from peers)."""
    store = app_context(ctx).store
    with store.read() as conn:
        items = load_indicators(conn, source=source)
    rows = [i.as_dict() for i in items]
    empty = (f"no indicators {'from ' + repr(source) + ' ' if source is not None else ''}stored: "
             f"`{command_line(ctx, 'share import FILE')}`, `{command_line(ctx, 'share pull …')}`, "
             f"`{command_line(ctx, 'share import-misp FOLDER')}` or `{command_line(ctx, 'share add-indicator …')}` "
             "add them")
    emit(rows, fmt, ["type", "value", "confidence", "tlp", "source", "last_seen"], title=f"{len(rows)} indicators",
         empty=empty)


@app.command("peers")
def peers(
    ctx: typer.Context,
    fmt: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.table,
) -> None:
    """The trusted peers with their reputation (beta: confirmed vs refuted intelligence)."""
    from healthswarm.share.reputation import ReputationStore

    workspace = app_context(ctx).settings.workspace
    reputations = ReputationStore.in_workspace(workspace)
    rows = []
    for peer in TrustStore.in_workspace(workspace).peers():
        rep = reputations.get(peer.key_id)
        rows.append({"key_id": peer.key_id, "name": peer.name, "group": peer.group,
                     "confirmed": round(rep.confirmed, 2), "refuted": round(rep.refuted, 2),
                     "reputation": round(rep.score, 3)})
    emit(rows, fmt, ["key_id", "name", "group", "confirmed", "refuted", "reputation"], title="peers",
         empty=f"no trusted peers: `{command_line(ctx, 'share keys trust NAME PUBLIC_KEY')}` adds one (a peer's "
               f"`healthswarm share keys show` prints what to give)")


@app.command("feedback")
def feedback(
    ctx: typer.Context,
    key_id: Annotated[str, typer.Argument(help="The peer's key id (see `share peers`)")],
    confirmed: Annotated[int, typer.Option(help="Reports of this peer we confirmed")] = 0,
    refuted: Annotated[int, typer.Option(help="Reports of this peer we refuted")] = 0,
) -> None:
    """Record confirmed or refuted intelligence from a peer; its reputation weights what it sends next."""
    from healthswarm.share.reputation import ReputationStore

    workspace = app_context(ctx).settings.workspace
    if TrustStore.in_workspace(workspace).get(key_id) is None:
        raise _bad(f"{key_id}: not a trusted peer's key id (see `healthswarm share peers`)")
    try:
        rep = ReputationStore.in_workspace(workspace).record(key_id, confirmed, refuted)
    except ValueError as exc:
        raise _bad(str(exc)) from None
    console.print(f"{key_id}: reputation {rep.score:.3f} ({rep.confirmed:.2f} confirmed, {rep.refuted:.2f} refuted)")


@app.command("import-misp")
def import_misp(
    ctx: typer.Context,
    folder: Annotated[Path, typer.Argument(help="A MISP feed folder (manifest.json + event files)")],
) -> None:
    """Read a MISP feed and store its indicators (TLP/PAP tags and ATT&CK galaxy tags kept)."""
    from healthswarm.share.misp import read_feed

    indicators = read_feed(folder)
    store = app_context(ctx).store
    with store.transaction() as conn:
        inserted, updated = save_indicators(conn, indicators)
    console.print(f"{folder}: {len(indicators)} indicators: {inserted} new, {updated} updated")


@app.command("match")
def match(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="The peer's server (serving /psi/intersect)")],
    token: Annotated[str, typer.Option(envvar="HEALTHSWARM_TAXII_TOKEN", help="Bearer token at the peer")],
    size_only: Annotated[bool, typer.Option(help="Learn only how many indicators we share")] = False,
    fmt: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.table,
) -> None:
    """Which of our indicators has the peer also seen? Private set intersection: the rest stays private."""
    from healthswarm.share.psi import items_of, psi_query

    store = app_context(ctx).store
    with store.read() as conn:
        items = items_of(load_indicators(conn, own_only=True))
    if not items:
        raise _bad("we hold no indicators of our own to match")
    try:
        found, exchanged = psi_query(url, token, items, reveal_intersection=not size_only)
    except (ValueError, OSError) as exc:
        error_lines([f"{url}: {exc}"])
        raise typer.Exit(2) from None
    if isinstance(found, int):
        console.print(f"{found} of our {len(items)} indicators are also the peer's ({exchanged:,} bytes exchanged)")
        return
    rows = [{"type": i.split(":", 1)[0], "value": i.split(":", 1)[1]} for i in found]
    emit(rows, fmt, ["type", "value"], title=f"{len(rows)} of our {len(items)} indicators are also the peer's")


@app.command("add-indicator")
def add_indicator(
    ctx: typer.Context,
    kind: Annotated[str, typer.Argument(help="ipv4, ipv6, domain, url, email, md5, sha1, sha256, filename, cve, …")],
    value: Annotated[str, typer.Argument()],
    confidence: Annotated[int, typer.Option(help="0-100")] = 50,
    tlp: Annotated[str, typer.Option()] = "amber",
    technique: Annotated[list[str] | None, typer.Option(help="ATT&CK technique id it indicates")] = None,
    description: Annotated[str, typer.Option()] = "",
) -> None:
    """Record an indicator of our own (what `share export` shares and `share match` matches)."""
    from datetime import UTC, datetime

    from healthswarm.model import Indicator
    from healthswarm.share.markings import normalise_tlp

    now = datetime.now(UTC)
    try:
        indicator = Indicator(value, kind, now, now, confidence=confidence, tlp=normalise_tlp(tlp),
                              techniques=tuple(technique or ()), description=description)
    except ValueError as exc:
        raise _bad(str(exc)) from None
    store = app_context(ctx).store
    with store.transaction() as conn:
        inserted, _updated = save_indicators(conn, [indicator])
    console.print(f"{'added' if inserted else 'updated'} {indicator.type} {indicator.value}")
