"""The API's abuse cases (issue 14): request bodies read only after the token and never past their cap,
rate limits that `X-Forwarded-For` cannot dodge, printable token names, and `/api/v1/docs` under the
dashboard's headers with Swagger UI from the package, a declared bearer scheme and 405 + Allow for TRACE."""

from __future__ import annotations

import base64
import hashlib
import re
import select
import socket
import time
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from conftest import service_unavailable, uvicorn_in_thread
from healthswarm.api import create_app
from healthswarm.api.auth import NAME_MAX, check_token_name, create_token, list_tokens
from healthswarm.api.docs import ASSETS
from healthswarm.cli.main import app as cli
from healthswarm.cli.output import program
from healthswarm.config import ApiSettings, RateLimits, Settings
from healthswarm.errors import ConfigError
from healthswarm.security.proxies import TrustedProxies
from healthswarm.store import Store
from healthswarm.web import HEADERS

MiB = 1 << 20


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    return ws


def _tokens(settings: Settings) -> dict[str, str]:
    store = Store.open(settings.db_url)
    with store.transaction() as conn:
        tokens = {role: create_token(conn, f"test-{role}", role) for role in ("viewer", "admin")}
    store.close()
    return tokens


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _served(application: FastAPI, **options: Any) -> Iterator[int]:
    port = _free_port()
    config = uvicorn.Config(application, **{"log_level": "warning", **options, "host": "127.0.0.1", "port": port})
    with uvicorn_in_thread(config):
        yield port


def _answer(sock: socket.socket, seconds: float = 5.0) -> tuple[int, dict[str, str], bytes, bool]:
    """Status, headers and body of the one response on `sock`, and whether the server then closed it."""
    sock.settimeout(seconds)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    while len(body) < int(headers.get("content-length", "0")):
        body += sock.recv(65536)
    sock.settimeout(2.0)
    try:
        closed = sock.recv(1) == b""
    except ConnectionResetError:
        closed = True
    except TimeoutError:
        closed = False
    return int(lines[0].split()[1]), headers, body, closed


def _request_head(path: str, token: str, extra: str) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\n{extra}\r\n").encode()


# --- request bodies -------------------------------------------------------------------------------------------


def test_a_body_is_read_only_after_its_token_and_never_past_the_cap(workspace: Path) -> None:
    settings = Settings(workspace=workspace)
    tokens = _tokens(settings)
    with _served(create_app(settings)) as port:
        # a wrong token with a body under the cap, of which not a byte is ever sent: a server that awaited
        # the body would never answer (or answer 408), so a 401 at all says it was judged on the token alone
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(_request_head("/api/v1/tokens", "hs_wrong", "Content-Length: 1000000\r\n"))
            status, headers, body, closed = _answer(sock)
        assert status == 401
        assert headers["content-type"] == "application/problem+json" and closed
        assert headers["www-authenticate"].startswith("Bearer")

        # 200 MB declared, with or without a good token: 413 before the body
        for token in ("hs_wrong", tokens["admin"]):
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(_request_head("/api/v1/tokens", token, f"Content-Length: {200 * 10**6}\r\n"))
                status, headers, body, closed = _answer(sock)
            assert status == 413 and closed
            assert headers["content-type"] == "application/problem+json"
            problem = orjson.loads(body)
            assert problem["status"] == 413 and "1048576 bytes" in problem["detail"]

        # chunked, no length: counted as it streams, refused within a chunk or so past 1 MiB
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(_request_head("/api/v1/tokens", tokens["admin"], "Transfer-Encoding: chunked\r\n"))
            sent, chunk = 0, b"x" * 65536
            while sent < 8 * MiB and not select.select([sock], [], [], 0)[0]:
                try:
                    sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                except (BrokenPipeError, ConnectionResetError):
                    break
                sent += len(chunk)
                time.sleep(0.002)
            status, headers, body, closed = _answer(sock)
        assert status == 413 and closed, (status, body)
        assert sent > MiB  # answered before the end of the body (the old code waited for it, then 400)
        assert orjson.loads(body)["title"] == "Request Entity Too Large"

        # a body within the cap, with a good token, is served as before
        made = httpx.post(f"http://127.0.0.1:{port}/api/v1/tokens", json={"name": "ward 3", "role": "viewer"},
                          headers={"Authorization": f"Bearer {tokens['admin']}"}, timeout=10)
        assert made.status_code == 201 and made.json()["name"] == "ward 3"


def test_the_body_cap_is_configurable_and_taxii_keeps_its_own(workspace: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(workspace=workspace, api=ApiSettings(max_body_bytes=100))
    tokens = _tokens(settings)
    client = TestClient(create_app(settings))
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    assert client.post("/api/v1/tokens", json={"name": "n", "role": "viewer"}, headers=admin).status_code == 201
    big = client.post("/api/v1/tokens", json={"name": "n" * 200, "role": "viewer"}, headers=admin)
    assert big.status_code == 413 and "100 bytes" in big.json()["detail"]
    # TAXII's cap is its own (10 MiB): a 2 MiB body reaches its authentication (401), an 11 MiB one does not
    objects = "/taxii2/api1/collections/c1/objects/"
    taxii = {"Content-Type": "application/taxii+json;version=2.1", "Accept": "application/taxii+json;version=2.1"}
    assert client.post(objects, content=b"x" * (2 * MiB), headers=taxii).status_code == 401
    refused = client.post(objects, content=b"x" * (11 * MiB), headers=taxii)
    assert refused.status_code == 413 and refused.json()["http_status"] == "413"

    (tmp_path / "config.toml").write_text('[api]\nmax_body_bytes = 2048\ntrusted_proxies = ["10.0.0.0/8"]\n')
    assert Settings.load(tmp_path).api == ApiSettings(max_body_bytes=2048, trusted_proxies=("10.0.0.0/8",))
    monkeypatch.setenv("HEALTHSWARM_API_TRUSTED_PROXIES", "192.0.2.1, 2001:db8::/32")
    assert Settings.load(tmp_path).api.trusted_proxies == ("192.0.2.1", "2001:db8::/32")
    monkeypatch.setenv("HEALTHSWARM_API_TRUSTED_PROXIES", "proxy.example")
    with pytest.raises(ConfigError, match=r"api\.trusted_proxies: 'proxy\.example' is not an IP address"):
        Settings.load(tmp_path)
    monkeypatch.delenv("HEALTHSWARM_API_TRUSTED_PROXIES")
    monkeypatch.setenv("HEALTHSWARM_API_MAX_BODY_BYTES", "0")
    with pytest.raises(ConfigError, match="HEALTHSWARM_API_MAX_BODY_BYTES: expected int > 0"):
        Settings.load(tmp_path)


# --- rate limits and X-Forwarded-For --------------------------------------------------------------------------


def _serve_options(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, dict[str, Any]]:
    """What `healthswarm serve` hands uvicorn (the app and its options), without starting it."""
    captured: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda application, **options: captured.update(app=application, **options))
    result = CliRunner().invoke(cli, ["-w", str(workspace), "serve", "--port", "8999"])
    assert result.exit_code == 0, result.output
    application = captured.pop("app")
    for name in ("host", "port", "log_level"):
        captured.pop(name)
    return application, captured


def test_serve_hints_a_token_command_for_the_same_workspace(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(uvicorn, "run", lambda application, **options: None)
    result = CliRunner().invoke(cli, ["-w", str(workspace), "serve"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    assert f"a token: {program()} -w {workspace} token create --role viewer --name NAME" in result.stderr


def _guesses(port: int, forwarded: list[str]) -> list[int]:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        return [client.get("/api/v1/whoami", headers={"Authorization": "Bearer hs_guess",
                                                     "X-Forwarded-For": address}).status_code
                for address in forwarded]


def test_forwarded_for_from_an_untrusted_client_does_not_refill_its_budget(workspace: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    application, options = _serve_options(workspace, monkeypatch)
    assert options["proxy_headers"] is False  # no [api] trusted_proxies: uvicorn believes no forwarding header
    with _served(application, **options) as port:
        codes = _guesses(port, [f"203.0.113.{i}" for i in range(1, 15)])
    assert codes == [401] * RateLimits().auth_failures + [429] * (14 - RateLimits().auth_failures)


def test_the_standalone_taxii_server_believes_no_forwarding_header_by_default(
        workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    captured: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda application, **options: captured.update(options))
    result = CliRunner().invoke(cli, ["-w", str(workspace), "share", "serve-taxii", "--port", "8998"])
    assert result.exit_code == 0, result.output
    assert captured["proxy_headers"] is False and captured["forwarded_allow_ips"] == ""


def test_forwarded_for_counts_from_a_trusted_proxy(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (workspace / "config.toml").write_text('[api]\ntrusted_proxies = ["127.0.0.0/8"]\n'
                                           "[rate_limit]\nauth_failures = 3\n")
    application, options = _serve_options(workspace, monkeypatch)
    assert options == {"proxy_headers": True, "forwarded_allow_ips": "127.0.0.0/8"}
    with _served(application, **options) as port:
        # behind the proxy, each client has its own budget; one client is still limited
        assert _guesses(port, [f"198.51.100.{i}" for i in range(1, 9)]) == [401] * 8
        assert _guesses(port, ["198.51.100.20"] * 4) == [401, 401, 401, 429]
        # a client cannot prepend an address of its choice: the proxy's own entry (rightmost) counts
        assert _guesses(port, [f"192.0.2.{i}, 198.51.100.20" for i in range(1, 4)]) == [429] * 3


def test_the_client_address_is_the_first_untrusted_hop_from_the_right() -> None:
    proxies = TrustedProxies(["10.0.0.0/8", "192.0.2.1"])

    def client(peer: str, *forwarded: str) -> str:
        headers = [(b"x-forwarded-for", value.encode()) for value in forwarded]
        return proxies.client({"client": (peer, 1234), "headers": headers})

    assert client("203.0.113.9", "198.51.100.1") == "203.0.113.9"  # not a proxy: its header is ignored
    assert client("10.1.2.3") == "10.1.2.3"
    assert client("10.1.2.3", "198.51.100.1") == "198.51.100.1"
    assert client("10.1.2.3", "6.6.6.6, 198.51.100.1, 192.0.2.1") == "198.51.100.1"
    assert client("10.1.2.3", "6.6.6.6", "198.51.100.1, 10.9.9.9") == "198.51.100.1"  # repeated headers, in order
    assert client("::ffff:10.1.2.3", "198.51.100.1") == "198.51.100.1"  # IPv4-mapped peer
    assert client("10.1.2.3", "10.0.0.7, 192.0.2.1") == "10.0.0.7"  # every hop trusted: the first
    assert TrustedProxies().uvicorn_options() == {"proxy_headers": False, "forwarded_allow_ips": ""}
    assert proxies.uvicorn_options() == {"proxy_headers": True, "forwarded_allow_ips": "10.0.0.0/8,192.0.2.1"}


# --- token names ----------------------------------------------------------------------------------------------

BAD_NAMES = {
    "ansi escape": "ops\x1b[2J\x1b[31mroot",
    "newline": "ops\nFAKE audit line",
    "tab": "ops\tbot",
    "right-to-left override": "invoice\u202egpj.exe",
    "zero-width space": "ad\u200bmin",
    "byte order mark": "\ufeffadmin",
    "no-break space": "ward\u00a03",
    "line separator": "ward\u20283",
    "Hangul filler": "\u3164",
    "emoji": "nurse 😷",
    "symbol": "a<script>",
    "leading space": " admin",
    "two spaces": "ward  3",
    "too long": "x" * (NAME_MAX + 1),
    "only spaces": "   ",
    "combining mark first": "\u0301admin",
}
GOOD_NAMES = ["ward-terminal", "svc.bot_1@icu", "Zoë Müller", "山田 太郎", "Ελένη", "Ōsaka PACS", "x" * NAME_MAX,
              "e\u0301cole"]


@pytest.mark.parametrize("name", BAD_NAMES.values(), ids=BAD_NAMES.keys())
def test_token_names_must_be_printable_and_bounded(name: str) -> None:
    with pytest.raises(ValueError) as caught:
        check_token_name(name)
    reason = str(caught.value)
    assert reason.isprintable() and len(reason) < 200  # the reason never echoes what it refuses


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_ordinary_names_of_any_script_are_accepted(name: str) -> None:
    assert check_token_name(name) == unicodedata.normalize("NFC", name)


def test_cli_and_api_refuse_odd_token_names_with_the_reason(workspace: Path) -> None:
    settings = Settings(workspace=workspace)
    tokens = _tokens(settings)
    runner = CliRunner()
    for name in (BAD_NAMES["ansi escape"], BAD_NAMES["right-to-left override"], BAD_NAMES["too long"]):
        result = runner.invoke(cli, ["-w", str(workspace), "token", "create", "--role", "viewer", "--name", name])
        assert result.exit_code == 2, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: --name: ") and lines[0].isprintable(), lines
        assert result.stdout == ""
    ok = runner.invoke(cli, ["-w", str(workspace), "token", "create", "--role", "viewer", "--name", "Zoë Müller"])
    assert ok.exit_code == 0 and ok.stdout.strip().startswith("hs_")

    # TAXII peer tokens follow the same rule
    peer = runner.invoke(cli, ["-w", str(workspace), "share", "taxii", "add-token", BAD_NAMES["newline"]])
    assert peer.exit_code == 2 and peer.stderr.startswith("error: NAME: character 4 (U+000A a control character)")
    assert runner.invoke(cli, ["-w", str(workspace), "share", "taxii", "add-token", "Hôpital B"]).exit_code == 0

    client = TestClient(create_app(settings))
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    refused = client.post("/api/v1/tokens", json={"name": "invoice\u202egpj.exe", "role": "viewer"}, headers=admin)
    assert refused.status_code == 400 and refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["detail"].startswith("name: character 8 (U+202E RIGHT-TO-LEFT OVERRIDE) is not allowed")
    long = client.post("/api/v1/tokens", json={"name": "x" * 65, "role": "viewer"}, headers=admin)
    assert long.status_code == 400 and "at most 64" in long.json()["detail"]
    store = Store.open(settings.db_url)
    with store.read() as conn:
        assert [t["name"] for t in list_tokens(conn)] == ["test-viewer", "test-admin", "Zoë Müller"]
    store.close()


# --- /api/v1/docs ---------------------------------------------------------------------------------------------


def test_docs_have_the_dashboards_headers_and_load_nothing_from_elsewhere(workspace: Path) -> None:
    client = TestClient(create_app(Settings(workspace=workspace)))
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    for name, value in HEADERS.items():
        assert page.headers[name] == value
    assert "<script>" not in page.text and "cdn" not in page.text.lower()  # no inline script, no CDN
    loaded = re.findall(r'(?:src|href)="([^"]+)" integrity="(sha384-[^"]+)"', page.text)
    assert {url for url, _ in loaded} == {f"/api/v1/docs/{name}" for name in ASSETS}
    for url, integrity in loaded:
        asset = client.get(url)
        assert asset.status_code == 200 and asset.headers["content-security-policy"] == HEADERS[
            "Content-Security-Policy"]
        assert integrity == "sha384-" + base64.b64encode(hashlib.sha384(asset.content).digest()).decode()
    assert b"SwaggerUIBundle" in client.get("/api/v1/docs/swagger-ui-bundle.js").content
    assert client.get("/api/v1/docs/redoc.standalone.js").status_code == 404  # only what the page loads


def test_openapi_declares_the_bearer_scheme_and_routes_require_it(workspace: Path) -> None:
    document = TestClient(create_app(Settings(workspace=workspace))).get("/api/v1/openapi.json").json()
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "description": "`healthswarm token create --role viewer --name NAME`"}
    operations = {(method.upper(), path): op for path, item in document["paths"].items()
                  for method, op in item.items()}
    assert len(operations) >= 20
    for (method, path), op in operations.items():
        expected = None if path == "/api/v1/health" else [{"bearer": []}]
        assert op.get("security") == expected, (method, path)


def test_trace_and_other_unsupported_methods_answer_405_with_allow(workspace: Path) -> None:
    client = TestClient(create_app(Settings(workspace=workspace)))
    cases = {"/api/v1/docs": "GET", "/api/v1/incidents": "GET", "/api/v1/tokens": "GET, POST", "/": "GET",
             "/static/app.js": "GET, HEAD", "/api/v1/docs/init.js": "GET"}
    for method in ("TRACE", "TRACK", "CONNECT", "OPTIONS", "PROPFIND"):
        for path, allow in cases.items():
            answer = client.request(method, path)
            assert answer.status_code == 405, (method, path)
            assert answer.headers["allow"] == allow, (method, path)
            assert answer.headers["content-type"] == "application/problem+json"
            assert "traced" not in answer.text
    taxii = client.request("TRACE", "/taxii2/")
    assert taxii.status_code == 405 and taxii.headers["allow"] == "GET" and taxii.json()["http_status"] == "405"


def test_swagger_ui_runs_under_the_docs_policy_in_chromium(workspace: Path) -> None:
    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        service_unavailable("Chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        service_unavailable("the playwright Python package is not installed")
    settings = Settings(workspace=workspace)
    tokens = _tokens(settings)
    with _served(create_app(settings)) as port, sync_playwright() as p:
        base = f"http://127.0.0.1:{port}"
        browser = p.chromium.launch(executable_path=str(chromium), headless=True,
                                    args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"])
        page = browser.new_page()
        problems: list[str] = []
        requested: list[str] = []
        page.on("console", lambda m: problems.append(f"{m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("request", lambda r: requested.append(r.url))
        page.goto(f"{base}/api/v1/docs")
        page.wait_for_selector(".opblock", timeout=20_000)
        page.locator(".btn.authorize").click()
        page.fill(".modal-ux input", tokens["viewer"])
        page.locator(".modal-ux .btn.modal-btn.auth.authorize").click()
        page.locator(".modal-ux .btn-done").click()
        page.locator("#operations-default-whoami_api_v1_whoami_get .opblock-summary").click()
        page.locator(".try-out__btn").first.click()
        with page.expect_response(f"{base}/api/v1/whoami") as answered:
            page.locator(".btn.execute").first.click()
        assert answered.value.status == 200 and answered.value.json() == {"name": "test-viewer", "role": "viewer"}
        browser.close()
    assert problems == []  # no Content-Security-Policy violation, no script error
    assert all(url.startswith(base) or url.startswith("data:") for url in requested), requested
