"""TAXII 2.1: our server (rights, paging, filters, versions, manifest, delete, media types), driven by
the OASIS taxii2-client over real HTTP, and our client pulling from the OASIS medallion server."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import create_engine

from conftest import shared

with warnings.catch_warnings():  # starlette's TestClient warns about httpx at import; httpx is what we have
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from healthswarm.share.signing import SIGNATURE, KeyPair, TrustStore, sign_document
from healthswarm.share.taxii import storage
from healthswarm.share.taxii.client import TaxiiClient
from healthswarm.share.taxii.server import make_app

TAXII = "application/taxii+json;version=2.1"


def indicator(i: int, modified: str = "2026-01-01T00:00:00.000Z") -> dict:
    return {"type": "indicator", "spec_version": "2.1", "id": f"indicator--{uuid.UUID(int=i, version=4)}",
            "created": "2026-01-01T00:00:00.000Z", "modified": modified,
            "pattern": f"[ipv4-addr:value = '203.0.113.{i % 250}']", "pattern_type": "stix",
            "valid_from": "2026-01-01T00:00:00Z"}


WRITER = KeyPair(Ed25519PrivateKey.generate())


def signed(objects: list, keys: KeyPair = WRITER) -> list:
    """What a peer's egress gate sends: every object signed (tests sign directly; src/ only through the gate)."""
    return [sign_document(o, keys, "identity--writer") for o in objects]


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[dict]:
    engine = create_engine(f"sqlite:///{tmp_path / 'taxii.db'}")
    trust = TrustStore(tmp_path / "trust.json")
    trust.trust("writer", WRITER.public_text)
    app = make_app(engine, trust=trust)
    with engine.begin() as conn:
        shared_col = storage.create_collection(conn, "api1", "Shared indicators", "sector feed")
        secret_col = storage.create_collection(conn, "api1", "Secret")
        admin = storage.create_token(conn, "admin", "admin")
        reader = storage.create_token(conn, "hospital-b", "peer")
        storage.grant(conn, reader, shared_col, read=True, write=False)
    yield {"engine": engine, "app": app, "shared": shared_col, "secret": secret_col, "admin": admin, "reader": reader}
    engine.dispose()


def client(server: dict, token: str) -> TestClient:
    return TestClient(server["app"], headers={"Authorization": f"Bearer {token}", "Accept": TAXII})


def post(c: TestClient, collection: str, objects: list, sign: bool = True) -> httpx.Response:
    return c.post(f"/api1/collections/{collection}/objects/",
                  content=json.dumps({"objects": signed(objects) if sign else objects}),
                  headers={"Content-Type": TAXII})


def test_discovery_roots_collections_and_rights(server: dict) -> None:
    admin, reader = client(server, server["admin"]), client(server, server["reader"])
    assert admin.get("/taxii2/").json()["api_roots"][0].endswith("/api1/")
    assert admin.get("/api1/").json()["versions"] == [TAXII]
    assert admin.get("/api1/").headers["content-type"] == TAXII
    assert len(admin.get("/api1/collections/").json()["collections"]) == 2
    visible = reader.get("/api1/collections/").json()["collections"]
    assert [(c["id"], c["can_read"], c["can_write"]) for c in visible] == [(server["shared"], True, False)]
    assert reader.get(f"/api1/collections/{server['secret']}/").status_code == 404
    response = post(reader, server["shared"], [indicator(1)])
    assert response.status_code == 403 and response.json()["http_status"] == "403"
    assert TestClient(server["app"]).get("/api1/").status_code == 401
    assert client(server, "wrong").get("/api1/").status_code == 401
    assert admin.get("/api1/", headers={"Accept": "text/html"}).status_code == 406
    bad = admin.post(f"/api1/collections/{server['shared']}/objects/", content="{}",
                     headers={"Content-Type": "application/json"})
    assert bad.status_code == 415


def test_post_status_paging_filters_versions_delete(server: dict) -> None:
    admin = client(server, server["admin"])
    col = server["shared"]
    objects = [indicator(i) for i in range(250)] + [{"type": "nonsense"}, dict(indicator(999), id="bad-id")]
    status = post(admin, col, objects)
    assert status.status_code == 202
    body = status.json()
    assert (body["status"], body["success_count"], body["failure_count"]) == ("complete", 250, 2)
    assert admin.get(f"/api1/status/{body['id']}/").json()["total_count"] == 252
    # a second version of one object
    assert post(admin, col, [indicator(5, "2026-02-01T00:00:00.000Z")]).json()["success_count"] == 1
    seen, url, params = [], f"/api1/collections/{col}/objects/", {"limit": "100"}
    while True:
        page = admin.get(url, params=params)
        data = page.json()
        seen += data.get("objects", [])
        assert page.headers["X-TAXII-Date-Added-First"] <= page.headers["X-TAXII-Date-Added-Last"]
        if not data["more"]:
            break
        params["next"] = data["next"]
    assert len(seen) == 250 and len({o["id"] for o in seen}) == 250
    assert next(o for o in seen if o["id"] == indicator(5)["id"])["modified"] == "2026-02-01T00:00:00.000Z"
    one = indicator(5)["id"]
    assert len(admin.get(url, params={"match[version]": "all", "match[id]": one}).json()["objects"]) == 2
    assert admin.get(url, params={"match[version]": "first", "match[id]": one}).json()["objects"][0]["modified"] \
        == "2026-01-01T00:00:00.000Z"
    assert admin.get(url, params={"match[type]": "malware"}).json() == {"more": False}
    assert len(admin.get(url, params={"match[spec_version]": "2.1", "limit": "7"}).json()["objects"]) == 7
    last = admin.get(url, params={"limit": "1000"}).headers["X-TAXII-Date-Added-Last"]
    assert admin.get(url, params={"added_after": last}).json() == {"more": False}
    assert admin.get(url, params={"added_after": "yesterday"}).status_code == 400
    versions = admin.get(f"{url}{one}/versions/").json()["versions"]
    assert versions == ["2026-01-01T00:00:00.000Z", "2026-02-01T00:00:00.000Z"]
    manifest = admin.get(f"/api1/collections/{col}/manifest/", params={"limit": "3"}).json()
    assert manifest["more"] and len(manifest["objects"]) == 3 and manifest["objects"][0]["media_type"]
    assert admin.delete(f"{url}{one}/", params={"match[version]": "2026-02-01T00:00:00.000Z"}).status_code == 200
    assert admin.get(f"{url}{one}/").json()["objects"][0]["modified"] == "2026-01-01T00:00:00.000Z"
    assert admin.delete(f"{url}{one}/").status_code == 200
    assert admin.get(f"{url}{one}/").status_code == 404


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(port: int, proc: subprocess.Popen | None = None) -> None:
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"server exited: {proc.stderr.read() if proc.stderr else ''}") from None
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def test_taxii2_client_drives_our_server(server: dict) -> None:
    from taxii2client.v21 import Server

    port = _free_port()
    uv = uvicorn.Server(uvicorn.Config(server["app"], host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    try:
        _wait(port)
        taxii = Server(f"http://127.0.0.1:{port}/taxii2/", user="admin", password=server["admin"])
        root = taxii.api_roots[0]
        assert root.versions == [TAXII]
        collection = next(c for c in root.collections if c.id == server["shared"])
        status = collection.add_objects({"objects": signed([indicator(i) for i in range(30)])})
        assert status.success_count == 30
        from taxii2client.v21 import as_pages

        pages = list(as_pages(collection.get_objects, per_request=10))
        assert sum(len(p.get("objects", [])) for p in pages) == 30 and len(pages) == 3
        assert collection.get_object(indicator(3)["id"])["objects"][0]["id"] == indicator(3)["id"]
        assert len(collection.get_manifest()["objects"]) == 30
        peer = Server(f"http://127.0.0.1:{port}/taxii2/", user="b", password=server["reader"])
        peer_collection = peer.api_roots[0].collections[0]
        assert peer_collection.can_read and not peer_collection.can_write
    finally:
        uv.should_exit = True
        thread.join(timeout=10)


def test_our_client_pulls_from_medallion(tmp_path: Path) -> None:
    data = shared("stix", "taxii-default-data.json")
    executable = shutil.which("medallion", path=str(Path(sys.executable).parent))
    if executable is None:
        pytest.skip("medallion is not installed")
    copy = tmp_path / "data.json"
    copy.write_text(data.read_text(encoding="utf-8"), encoding="utf-8")
    config = tmp_path / "medallion.json"
    config.write_text(json.dumps({
        "backend": {"module_class": "MemoryBackend", "module": "medallion.backends.memory_backend",
                    "filename": str(copy)},
        "users": {"admin": "Password0"}, "taxii": {"max_page_size": 3}}), encoding="utf-8")
    port = _free_port()
    proc = subprocess.Popen([executable, "--host", "127.0.0.1", "--port", str(port), str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait(port, proc)
        with TaxiiClient(f"http://127.0.0.1:{port}/", user="admin", password="Password0") as taxii:
            assert taxii.discover()["title"]
            root = f"http://127.0.0.1:{port}/trustgroup1/"
            collections = {c["id"]: c for c in taxii.collections(root)}
            assert "91a7b528-80eb-42ed-a74d-c6fbd5a26116" in collections
            objects = list(taxii.objects(root, "91a7b528-80eb-42ed-a74d-c6fbd5a26116", limit=3))
        expected = json.loads(data.read_text())["trustgroup1"]["collections"]
        stored = next(c for c in expected if c["id"] == "91a7b528-80eb-42ed-a74d-c6fbd5a26116")["objects"]
        assert {o["id"] for o in objects} == {o["id"] for o in stored}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _forgeries() -> dict[str, list]:
    """Every way we could think of to pass an object off as a trusted writer's."""
    good = signed([indicator(2)])[0]
    header = good[SIGNATURE]
    other = signed([indicator(3)])[0]
    stranger = KeyPair(Ed25519PrivateKey.generate())
    return {
        "unsigned": [indicator(1)],
        "untrusted key": signed([indicator(1)], stranger),
        "tampered pattern": [{**good, "pattern": "[ipv4-addr:value = '198.51.100.66']"}],
        "tampered id": [{**good, "id": indicator(77)["id"]}],
        "added property": [{**good, "labels": ["benign"]}],
        "signature moved to another object": [{**other, SIGNATURE: header}],
        "key id swapped to a trusted key": [{**signed([indicator(4)], stranger)[0], SIGNATURE: {
            **signed([indicator(4)], stranger)[0][SIGNATURE], "key_id": WRITER.key_id}}],
        "signer renamed": [{**good, SIGNATURE: {**header, "signer": "identity--someone-else"}}],
        "expiry extended": [{**good, SIGNATURE: {**header, "expires": "2099-01-01T00:00:00.000Z"}}],
        "algorithm none": [{**good, SIGNATURE: {**header, "alg": "none", "value": ""}}],
        "signature not a string": [{**good, SIGNATURE: {**header, "value": 7}}],
        "signature truncated": [{**good, SIGNATURE: {**header, "value": header["value"][:40]}}],
        "signed in the future": [sign_document(indicator(5), WRITER, "identity--writer",
                                               now=datetime.now(UTC) + timedelta(days=1))],
        "expired": [sign_document(indicator(6), WRITER, "identity--writer",
                                  now=datetime.now(UTC) - timedelta(days=30))],
        "one good, one forged": [good, {**other, "pattern": "[domain-name:value = 'evil.example']"}],
    }


FORGERIES = _forgeries()


@pytest.mark.parametrize("kind", sorted(FORGERIES))
def test_no_forged_taxii_write_is_accepted(server: dict, kind: str) -> None:
    """A write token is not attribution: every forgery is refused whole (403) with the reason."""
    admin = client(server, server["admin"])
    col = server["shared"]
    response = post(admin, col, FORGERIES[kind], sign=False)
    assert response.status_code == 403, response.text
    assert "nothing was stored" in response.json()["description"]
    assert admin.get(f"/api1/collections/{col}/objects/").json().get("objects", []) == []


def test_unsigned_writes_are_refused_with_counts_and_signed_ones_accepted(server: dict) -> None:
    admin = client(server, server["admin"])
    col = server["shared"]
    unsigned = post(admin, col, [indicator(i) for i in range(250)], sign=False)
    assert unsigned.status_code == 403 and "250 unsigned (first: object 0)" in unsigned.json()["description"]
    assert post(admin, col, [indicator(4)]).status_code == 202


def test_a_chunked_body_over_the_cap_is_refused(server: dict) -> None:
    from healthswarm.share.taxii.server import MAX_CONTENT_LENGTH

    admin = client(server, server["admin"])
    sent = 0

    def body() -> Iterator[bytes]:
        nonlocal sent
        yield b'{"objects": ["'
        while sent < MAX_CONTENT_LENGTH * 3:
            sent += 1 << 20
            yield b"x" * (1 << 20)

    response = admin.post(f"/api1/collections/{server['shared']}/objects/", content=body(),
                          headers={"Content-Type": TAXII})
    assert response.status_code == 413


def test_read_only_server_without_a_trust_store(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'taxii.db'}")
    app = make_app(engine)
    with engine.begin() as conn:
        col = storage.create_collection(conn, "api1", "Shared")
        admin = storage.create_token(conn, "admin", "admin")
    response = post(TestClient(app, headers={"Authorization": f"Bearer {admin}", "Accept": TAXII}), col,
                    [indicator(1)])
    assert response.status_code == 403 and "trusts no writer" in response.json()["description"]
    engine.dispose()
