"""Hashed tokens, rate limits, redacted logs, [tls]/[rate_limit] settings and the CycloneDX SBOM."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select

from healthswarm.api import create_app
from healthswarm.api.auth import create_token, principal
from healthswarm.config import RateLimits, Settings, TlsSettings
from healthswarm.errors import ConfigError
from healthswarm.security.ratelimit import Buckets
from healthswarm.security.redact import redact
from healthswarm.share.taxii import storage
from healthswarm.share.taxii.server import make_app
from healthswarm.store import Store
from healthswarm.store.api_tables import api_tokens
from test_tls import serving

ROOT = Path(__file__).resolve().parents[1]


def test_api_and_taxii_tokens_are_stored_only_as_sha256(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'hs.db'}")
    with store.transaction() as conn:
        token = create_token(conn, "ward-terminal", "viewer")
        rows = conn.execute(select(api_tokens)).all()
    assert token.startswith("hs_") and len(token) > 40  # 32 random bytes: a plain SHA-256 is enough, no salt needed
    assert [r.token_hash for r in rows] == [hashlib.sha256(token.encode()).hexdigest()]
    assert all(token not in str(value) for r in rows for value in r)
    with store.read() as conn:
        assert principal(conn, token) is not None
        assert principal(conn, token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    store.close()
    engine = create_engine(f"sqlite:///{tmp_path / 'taxii.db'}")
    storage.setup(engine)
    with engine.begin() as conn:
        peer = storage.create_token(conn, "hospital-b", "peer")
    engine.dispose()
    for db in (tmp_path / "hs.db", tmp_path / "taxii.db"):
        assert token.encode() not in db.read_bytes() and peer.encode() not in db.read_bytes()


def test_token_bucket_refills_evenly() -> None:
    now = [0.0]
    buckets = Buckets(3, 30.0, clock=lambda: now[0])
    assert [buckets.take("10.0.0.1") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("10.0.0.1") == pytest.approx(10.0)  # one token every 10 s
    assert buckets.take("10.0.0.2") == 0.0  # per address
    now[0] = 10.0
    assert buckets.wait("10.0.0.1") == 0.0 and buckets.take("10.0.0.1") == 0.0


def _api(tmp_path: Path, limits: RateLimits) -> tuple[TestClient, str]:
    settings = Settings(workspace=tmp_path / "ws", rate_limit=limits)
    app = create_app(settings)
    with Store.open(settings.db_url).transaction() as conn:
        token = create_token(conn, "analyst", "analyst")
    return TestClient(app), token


def test_authentication_failures_are_limited_per_address(tmp_path: Path) -> None:
    client, token = _api(tmp_path, RateLimits(auth_failures=3, auth_window=60.0))
    bad = {"Authorization": "Bearer hs_guessed"}
    assert [client.get("/api/v1/whoami", headers=bad).status_code for _ in range(3)] == [401, 401, 401]
    refused = client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 429  # even a good token waits: the address is guessing
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["retry-after"] == "20"
    assert refused.json()["title"] == "Too Many Requests"
    taxii = client.get("/taxii2/", headers=bad)
    assert taxii.status_code == 429 and taxii.json()["http_status"] == "429"  # a TAXII error body on TAXII paths


def test_public_requests_are_limited_and_authenticated_ones_are_not(tmp_path: Path) -> None:
    client, token = _api(tmp_path, RateLimits(public_requests=5, public_window=60.0))
    assert [client.get("/api/v1/health").status_code for _ in range(6)] == [200] * 5 + [429]
    assert client.get("/api/v1/openapi.json").status_code == 429  # no credentials: the same budget
    auth = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/health", headers=auth).status_code == 429  # a public path whoever asks
    assert all(client.get("/api/v1/whoami", headers=auth).status_code == 200 for _ in range(20))
    off, _ = _api(tmp_path / "off", RateLimits(enabled=False, public_requests=1))
    assert all(off.get("/api/v1/health").status_code == 200 for _ in range(5))


def test_standalone_taxii_server_limits_guessing(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'taxii.db'}")
    client = TestClient(make_app(engine, limits=RateLimits(auth_failures=2)))
    codes = [client.get("/api1/collections/", headers={"Authorization": "Bearer nope"}).status_code
             for _ in range(3)]
    assert codes == [401, 401, 429]
    engine.dispose()


def test_settings_sections_from_file_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config.toml").write_text('[tls]\ncert = "/etc/hs/cert.pem"\nkey = "/etc/hs/key.pem"\nmutual = false\n'
                                          "[rate_limit]\nauth_failures = 5\npublic_window = 30\n")
    monkeypatch.setenv("HEALTHSWARM_TLS_CA", "/etc/hs/ca.pem")
    monkeypatch.setenv("HEALTHSWARM_RATE_LIMIT_AUTH_FAILURES", "7")
    settings = Settings.load(tmp_path)
    assert settings.tls == TlsSettings(cert="/etc/hs/cert.pem", key="/etc/hs/key.pem", ca="/etc/hs/ca.pem",
                                       mutual=False)
    assert settings.rate_limit == RateLimits(auth_failures=7, public_window=30.0)
    monkeypatch.setenv("HEALTHSWARM_TLS_MUTUAL", "maybe")
    with pytest.raises(ConfigError, match="HEALTHSWARM_TLS_MUTUAL: expected bool, got 'maybe'"):
        Settings.load(tmp_path)
    monkeypatch.delenv("HEALTHSWARM_TLS_MUTUAL")
    (tmp_path / "config.toml").write_text("[tls]\ncertificate = 'x'\n")
    with pytest.raises(ConfigError, match=r"tls\.certificate: unknown key"):
        Settings.load(tmp_path)
    monkeypatch.delenv("HEALTHSWARM_RATE_LIMIT_AUTH_FAILURES")
    (tmp_path / "config.toml").write_text("[rate_limit]\nauth_failures = 0\n")
    with pytest.raises(ConfigError, match=r"rate_limit\.auth_failures: expected int > 0, got 0"):
        Settings.load(tmp_path)


@pytest.mark.parametrize(("text", "secret"), [
    ("GET /api/v1/stream?access_token=hs_abcdefghijklmnop HTTP/1.1", "hs_abcdefghijklmnop"),
    ("Authorization: Basic YWRtaW46aHVudGVyMg==", "YWRtaW46aHVudGVyMg=="),
    ("cannot connect to postgresql+psycopg://healthswarm:s3cr3t@db:5432/hs", "s3cr3t"),
    ("mqtt://sensor:pump-pass@broker:1883", "pump-pass"),
    ('{"password": "hunter2"}', "hunter2"),
    ("-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49\n-----END PRIVATE KEY-----", "MIGHAgEAMBMGByqGSM49"),
])
def test_redact_patterns(text: str, secret: str) -> None:
    assert secret not in redact(text) and "[REDACTED]" in redact(text)


def test_no_secret_reaches_the_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import uvicorn.logging

    settings = Settings(workspace=tmp_path / "ws")
    app = create_app(settings)
    with Store.open(settings.db_url).transaction() as conn:
        token = create_token(conn, "dashboard", "viewer")
    # uvicorn's own access formatter unpacks the record's arguments: redaction must keep them a tuple
    access = io.StringIO()
    handler = logging.StreamHandler(access)
    handler.setFormatter(uvicorn.logging.AccessFormatter('%(client_addr)s "%(request_line)s" %(status_code)s',
                                                         use_colors=False))
    logging.getLogger("uvicorn.access").addHandler(handler)
    db_url = "postgresql://healthswarm:db-S3cret@db.internal:5432/healthswarm"
    try:
        with caplog.at_level(logging.DEBUG), serving(app, TlsSettings()) as base:
            answer = httpx.get(f"{base}/api/v1/whoami?access_token={token}",
                               headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 200
            logging.getLogger("healthswarm.store").error("cannot open the database %s", db_url)
            try:
                raise ConnectionError(f"connect to {db_url} failed")
            except ConnectionError:
                logging.getLogger("healthswarm.bus").exception("with %s", f"Authorization: Bearer {token}")
    finally:
        logging.getLogger("uvicorn.access").removeHandler(handler)
    captured = caplog.text + access.getvalue()
    assert "GET /api/v1/whoami?access_token=[REDACTED] HTTP/1.1" in access.getvalue()
    assert "healthswarm:[REDACTED]@db.internal" in captured
    assert token not in captured and token[3:] not in captured and "db-S3cret" not in captured


@pytest.mark.slow  # the strict schema (with the SPDX licence list) takes ~15 s to check
def test_sbom_is_valid_cyclonedx_naming_healthswarm(tmp_path: Path) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    out = tmp_path / "bom.json"
    subprocess.run([sys.executable, "-m", "cyclonedx_py", "environment", "--pyproject", str(ROOT / "pyproject.toml"),
                    "--sv", "1.6", "--no-validate", "-o", str(out), sys.executable], check=True, timeout=300)
    text = out.read_text()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    bom = json.loads(text)
    assert bom["metadata"]["component"]["name"] == "healthswarm"
    assert {"fastapi", "cryptography", "uvicorn"} <= {c["name"] for c in bom["components"]}
