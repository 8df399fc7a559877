"""TLS with a test CA: contexts, the node transport (two real nodes, mutual TLS), the API and TAXII over HTTPS."""

from __future__ import annotations

import asyncio
import os
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import create_engine

from conftest import uvicorn_in_thread
from healthswarm.config import TlsSettings
from healthswarm.errors import ConfigError
from healthswarm.security.testca import make_test_ca
from healthswarm.security.tls import client_context, server_context, uvicorn_options
from healthswarm.share.taxii import storage
from healthswarm.share.taxii.client import TaxiiClient, TaxiiClientError
from healthswarm.share.taxii.server import make_app
from healthswarm.swarm import outbox
from healthswarm.swarm.config import load_node_config
from healthswarm.swarm.consortium import free_ports, make_consortium
from healthswarm.swarm.guard import Drop
from healthswarm.swarm.runtime import NodeRuntime
from healthswarm.swarm.tcp import TcpTransport, TransportTls


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, TlsSettings]:
    """Our consortium CA with a server, a client and two node certificates; a stranger's CA and certificate."""
    ours, theirs = tmp_path_factory.mktemp("ours"), tmp_path_factory.mktemp("theirs")
    ca, issued = make_test_ca(ours, nodes=["a", "b"])
    stranger_ca, stranger = make_test_ca(theirs)

    def settings(name: str, ca_path: Path = ca, found: dict[str, Any] = issued) -> TlsSettings:
        return TlsSettings(cert=str(found[name].cert), key=str(found[name].key), ca=str(ca_path))

    return {"server": settings("server"), "client": settings("client"), "a": settings("node-a"),
            "b": settings("node-b"), "stranger": settings("server", stranger_ca, stranger),
            "ca_only": TlsSettings(ca=str(ca))}


async def _handshake(server: ssl.SSLContext, client: ssl.SSLContext) -> bytes:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.readexactly(5))
        await writer.drain()
        writer.close()

    listener = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=server)
    port = listener.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client, server_hostname="localhost")
        writer.write(b"hello")
        data = await asyncio.wait_for(reader.readexactly(5), 5)
        writer.close()
        return data
    finally:
        listener.close()
        await listener.wait_closed()


def test_handshake_succeeds_with_the_ca_and_fails_with_an_unknown_certificate(pki: dict[str, TlsSettings]) -> None:
    assert asyncio.run(_handshake(server_context(pki["server"]), client_context(pki["ca_only"]))) == b"hello"
    with pytest.raises(ssl.SSLCertVerificationError):
        asyncio.run(_handshake(server_context(pki["stranger"]), client_context(pki["ca_only"])))
    # mutual: a client without a certificate, or with one from another CA, does not get through
    mutual = server_context(pki["server"], require_client_cert=True)
    assert asyncio.run(_handshake(mutual, client_context(pki["client"]))) == b"hello"
    for client in (pki["ca_only"], replace(pki["stranger"], ca=pki["server"].ca)):
        with pytest.raises((ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)):
            asyncio.run(_handshake(mutual, client_context(client)))


def test_policy_tls12_minimum_and_13_when_asked(pki: dict[str, TlsSettings]) -> None:
    ctx = server_context(pki["server"])
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert all(c["protocol"] == "TLSv1.3" or "ECDHE" in c["name"] for c in ctx.get_ciphers())
    old_client = client_context(pki["ca_only"])
    old_client.maximum_version = ssl.TLSVersion.TLSv1_2
    assert asyncio.run(_handshake(ctx, old_client)) == b"hello"
    with pytest.raises((ssl.SSLError, ConnectionError)):  # refused by the server: the alert or a reset
        asyncio.run(_handshake(server_context(replace(pki["server"], min_version="1.3")), old_client))


def test_bad_paths_are_one_clear_error(pki: dict[str, TlsSettings], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"/nowhere/cert\.pem: cannot read the TLS certificate"):
        server_context(replace(pki["server"], cert="/nowhere/cert.pem"))
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(ConfigError, match=r"junk\.pem: the TLS CA is not a PEM file"):
        client_context(replace(pki["server"], ca=str(tmp_path / "junk.pem")))
    with pytest.raises(ConfigError, match="do not load together"):
        server_context(replace(pki["server"], key=pki["client"].key))
    with pytest.raises(ConfigError, match=r"tls\.key: missing"):
        server_context(TlsSettings(cert=pki["server"].cert))
    env = {**os.environ, "HEALTHSWARM_TLS_CERT": "/nowhere/cert.pem", "HEALTHSWARM_TLS_KEY": "/nowhere/key.pem"}
    done = subprocess.run([sys.executable, "-m", "healthswarm", "-w", str(tmp_path / "ws"), "serve"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["error: /nowhere/cert.pem: cannot read the TLS certificate: "
                                                       "No such file or directory"]


async def _transport_exchange(receiver_tls: TransportTls | None, sender_tls: TransportTls | None,
                              plaintext: bool = False) -> tuple[list[bytes], list[Drop]]:
    frames: list[bytes] = []
    drops: list[Drop] = []
    port = free_ports(1)[0]
    receiver = TcpTransport("127.0.0.1", port, frames.append, drops.append, 1 << 16, tls=receiver_tls)
    await receiver.start()
    try:
        if plaintext:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"\x00\x00\x00\x05hello")
            await writer.drain()
            assert await asyncio.wait_for(reader.read(), 5) == b""  # the server hangs up on a non-TLS client
            writer.close()
        else:
            TcpTransport("127.0.0.1", 0, frames.append, drops.append, 1 << 16, tls=sender_tls).send(
                f"127.0.0.1:{port}", b"signed frame")
        for _ in range(50):
            await asyncio.sleep(0.05)
            if frames:
                break
    finally:
        await receiver.stop()
    return frames, drops


def test_node_transport_mutual_tls(pki: dict[str, TlsSettings]) -> None:
    a, b = TransportTls.from_settings(pki["a"]), TransportTls.from_settings(pki["b"])
    assert a is not None and b is not None
    assert asyncio.run(_transport_exchange(b, a))[0] == [b"signed frame"]
    assert asyncio.run(_transport_exchange(b, None, plaintext=True))[0] == []
    # a node whose certificate another CA signed: it does not trust us, nor we it
    stranger = TransportTls.from_settings(pki["stranger"])
    assert asyncio.run(_transport_exchange(b, stranger))[0] == []
    assert TransportTls.from_settings(TlsSettings()) is None


def test_two_real_nodes_gossip_over_mutual_tls(pki: dict[str, TlsSettings], tmp_path: Path) -> None:
    names = ["a", "b"]
    configs = make_consortium(tmp_path, names, free_ports(2), seeds=1,
                              params={"period": 0.2, "probe_timeout": 0.1, "suspicion_timeout": 1.5})
    for name, path in zip(names, configs, strict=True):
        # each node reads [tls] from its workspace's settings, as a deployment configures it
        tls = pki[name]
        (load_node_config(path).workspace / "config.toml").write_text(
            f'[tls]\ncert = "{tls.cert}"\nkey = "{tls.key}"\nca = "{tls.ca}"\nmutual = true\n')
    runtimes = [NodeRuntime(load_node_config(c)) for c in configs]
    assert all(rt.transport.tls is not None for rt in runtimes)
    outbox.post(runtimes[0].config.folder, "indicator",
                {"type": "ipv4", "value": "198.51.100.9", "confidence": 80, "techniques": []})

    async def main() -> dict[str, Any]:
        stop = asyncio.Event()
        tasks = [asyncio.create_task(rt.run(stop)) for rt in runtimes]
        deadline = time.monotonic() + 20
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            status = runtimes[1].status(time.time())
            if any(row["key"] == "indicator:ipv4:198.51.100.9" for row in status["threat_field"]):
                break
        stop.set()
        await asyncio.gather(*tasks)
        return status

    status = asyncio.run(main())
    assert [m["name"] for m in status["members"] if m["state"] == "alive"] == ["a"]
    assert any(row["key"] == "indicator:ipv4:198.51.100.9" for row in status["threat_field"])
    assert all(rt.transport.send_failures == 0 for rt in runtimes)


@contextmanager
def serving(app: Any, tls: TlsSettings) -> Iterator[str]:
    """`app` on a free loopback port with uvicorn (HTTPS when `tls` has a cert), in a thread; yields its base URL."""
    port = free_ports(1)[0]
    with uvicorn_in_thread(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, log_level="info",
                                          **uvicorn_options(tls))):
        yield f"{'https' if tls.enabled else 'http'}://localhost:{port}"


def test_api_over_https_verified_with_the_ca(pki: dict[str, TlsSettings], tmp_path: Path) -> None:
    from healthswarm.api import create_app
    from healthswarm.config import Settings

    app = create_app(Settings(workspace=tmp_path / "ws"))
    with serving(app, pki["server"]) as base:
        answer = httpx.get(f"{base}/api/v1/health", verify=client_context(pki["ca_only"]))
        assert answer.status_code == 200 and answer.json() == {"status": "ok"}
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"{base}/api/v1/health")  # the system's CAs do not know our test CA
        with pytest.raises(httpx.HTTPError):
            httpx.get(base.replace("https", "http") + "/api/v1/health")


def test_taxii_client_and_server_over_https(pki: dict[str, TlsSettings], tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'taxii.db'}")
    app = make_app(engine)
    with engine.begin() as conn:
        token = storage.create_token(conn, "peer-admin", "admin")
    with serving(app, pki["server"]) as base:
        with TaxiiClient(base, token=token, verify=client_context(pki["client"])) as client:
            assert client.discover()["api_roots"] == [f"{base}/api1/"]
        with TaxiiClient(base, token=token) as client, pytest.raises(TaxiiClientError, match="CERTIFICATE_VERIFY"):
            client.discover()
    engine.dispose()


def test_cli_make_test_ca_then_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from healthswarm.cli.main import COMMANDS, app

    monkeypatch.setitem(COMMANDS, "tls", ("healthswarm.cli.tls", "app"))
    made = CliRunner().invoke(app, ["tls", "make-test-ca", str(tmp_path / "pki"), "--node", "st-aurelia"])
    assert made.exit_code == 0, made.output
    assert sorted(p.name for p in (tmp_path / "pki").iterdir()) == [
        "ca.pem", "client.key", "client.pem", "node-st-aurelia.key", "node-st-aurelia.pem", "server.key", "server.pem"]
    assert (tmp_path / "pki" / "server.key").stat().st_mode & 0o077 == 0
    for name in ("CERT", "KEY", "CA"):
        suffix = {"CERT": "server.pem", "KEY": "server.key", "CA": "ca.pem"}[name]
        monkeypatch.setenv(f"HEALTHSWARM_TLS_{name}", str(tmp_path / "pki" / suffix))
    checked = CliRunner().invoke(app, ["-w", str(tmp_path / "ws"), "tls", "check"])
    assert checked.exit_code == 0 and "node traffic mutual" in " ".join(checked.output.split()), checked.output
