"""Private matching: "which of my indicators has a peer also seen?" without revealing the rest.

Two ways, with different privacy:

* **PSI** (openmined-psi: ECDH-based private set intersection, the server's set sent as a Golomb-
  compressed set): the client learns the intersection — or, in cardinality mode, only its size — and
  nothing else about the server's set; the server learns only the size of the client's set. Each
  query costs the server elliptic-curve work per client item, and the server caps the client's set
  size, so the client cannot test arbitrary guesses cheaply. One HTTP round trip (`make_psi_router`).
* **Keyed Bloom filter**: the server publishes a Bloom filter of HMAC-SHA256(K, item) under a key K
  shared by the group. Cheap and offline, but anyone holding K can test any value they can guess
  against the filter, as often as they like (a dictionary attack on IPs, domains, hashes of known
  malware is easy), and false positives claim matches that are not there. Fit for a closed group
  that trusts each other with the whole set; PSI for everyone else.

Items are normalised as `<type>:<value>` of the Indicator (values are already normalised by type).

Both sides spread their elliptic-curve work over the machine's cores once a set is large
(`PARALLEL_FROM` items): the same key is loaded in every worker (`CreateFromKey`), each encrypts its
share of the items, and the parts are joined in order. The server's set then travels as the raw
encrypted elements (the parts of a Golomb-compressed set cannot be joined): about 33 bytes an item
instead of ~5, for an exact answer in half the time on two cores.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import os
import struct
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from healthswarm.model import Indicator

DEFAULT_FPR = 1e-9
MAX_CLIENT_ITEMS = 1_000_000
PARALLEL_FROM = 20_000   # below this, a process pool costs more than it saves


def items_of(indicators: Iterable[Indicator]) -> list[str]:
    return sorted({f"{i.type}:{i.value}" for i in indicators})


def _psi() -> Any:
    try:
        import private_set_intersection.python as psi
    except ImportError as exc:  # pragma: no cover - the dependency is declared
        raise RuntimeError("private matching needs openmined.psi: pip install openmined.psi") from exc
    return psi


# -- parallel parts ------------------------------------------------------------------------------------
def _workers(count: int) -> int:
    return min(os.cpu_count() or 1, 8) if count >= PARALLEL_FROM else 1


def _parts(items: Sequence[Any], workers: int) -> list[Sequence[Any]]:
    size = -(-len(items) // workers)
    return [items[i:i + size] for i in range(0, len(items), size)] or [items]


def _map(fn: Callable[..., bytes], jobs: list[tuple[Any, ...]]) -> list[bytes]:
    """`fn(*job)` for each job, in order: in worker processes when there are several, else here.

    Workers are spawned, not forked: the server answers from a threaded web server, where a fork could
    copy a lock some other thread holds."""
    if len(jobs) == 1:
        return [fn(*jobs[0])]
    with ProcessPoolExecutor(min(len(jobs), os.cpu_count() or 1), mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(fn, *job) for job in jobs]
        return [f.result() for f in futures]


def _client_request(key: bytes, reveal: bool, items: Sequence[str]) -> bytes:
    client = _psi().client.CreateFromKey(key, reveal)
    return bytes(client.CreateRequest(list(items)).SerializeToString())


def _client_intersection(key: bytes, reveal: bool, setup: bytes, response: bytes) -> bytes:
    psi = _psi()
    server_setup, server_response = psi.ServerSetup(), psi.Response()
    server_setup.ParseFromString(setup)
    server_response.ParseFromString(response)
    client = psi.client.CreateFromKey(key, reveal)
    found = client.GetIntersection(server_setup, server_response)
    return struct.pack(f">{len(found)}I", *found)


def _server_setup(key: bytes, reveal: bool, client_size: int, items: Sequence[str]) -> bytes:
    psi = _psi()
    server = psi.server.CreateFromKey(key, reveal)
    return bytes(server.CreateSetupMessage(DEFAULT_FPR, client_size, list(items), psi.DataStructure.RAW)
                 .SerializeToString())


def _server_process(key: bytes, reveal: bool, request: bytes) -> bytes:
    psi = _psi()
    parsed = psi.Request()
    parsed.ParseFromString(request)
    return bytes(psi.server.CreateFromKey(key, reveal).ProcessRequest(parsed).SerializeToString())


def _join(kind: Any, parts: list[bytes]) -> Any:
    """One protobuf message of `kind` holding every part's elements, in order."""
    whole = kind()
    for part in parts:
        message = kind()
        message.ParseFromString(part)
        whole.MergeFrom(message)
    return whole


def _split(message: Any, workers: int) -> list[tuple[bytes, int]]:
    """A request or response cut into `workers` messages of consecutive elements (each with its count)."""
    out = []
    for part in _parts(list(message.encrypted_elements), workers):
        piece = type(message)()
        piece.CopyFrom(message)
        del piece.encrypted_elements[:]
        piece.encrypted_elements.extend(part)
        out.append((bytes(piece.SerializeToString()), len(part)))
    return out


# -- PSI ----------------------------------------------------------------------------------------------
class PsiClient:
    """The asking side: builds the request, then reads the intersection (or its size) from the answer."""

    def __init__(self, items: list[str], reveal_intersection: bool = True) -> None:
        psi = _psi()
        self.items = list(items)
        self.reveal = reveal_intersection
        self._client = psi.client.CreateWithNewKey(reveal_intersection)
        self._key = bytes(self._client.GetPrivateKeyBytes())
        self._workers = _workers(len(self.items))

    def request(self) -> bytes:
        if self._workers == 1:
            return bytes(self._client.CreateRequest(self.items).SerializeToString())
        parts = _map(_client_request, [(self._key, self.reveal, part) for part in _parts(self.items, self._workers)])
        return bytes(_join(_psi().Request, parts).SerializeToString())

    def result(self, setup: bytes, response: bytes) -> list[str] | int:
        """The items both sides hold (reveal mode) or how many there are (cardinality mode)."""
        psi = _psi()
        server_setup, server_response = psi.ServerSetup(), psi.Response()
        server_setup.ParseFromString(setup)
        server_response.ParseFromString(response)
        if not self.reveal:
            return int(self._client.GetIntersectionSize(server_setup, server_response))
        if self._workers == 1:
            return sorted(self.items[i] for i in self._client.GetIntersection(server_setup, server_response))
        parts = _split(server_response, self._workers)
        found: list[int] = []
        offset = 0
        for (_part, count), packed in zip(parts, _map(_client_intersection, [(self._key, True, setup, part)
                                                                           for part, _count in parts]), strict=True):
            found += [offset + i for i in struct.unpack(f">{len(packed) // 4}I", packed)]
            offset += count
        return sorted(self.items[i] for i in found)


def psi_answer(server_items: list[str], request: bytes, client_size: int, allow_reveal: bool = True,
               fpr: float = DEFAULT_FPR, max_client_items: int = MAX_CLIENT_ITEMS) -> tuple[bytes, bytes]:
    """(setup, response) for one client request, with a fresh server key.

    The request says whether it wants the intersection or only its size; a server that allows only
    sizes (`allow_reveal=False`) refuses the former."""
    psi = _psi()
    if not 0 < client_size <= max_client_items:
        raise ValueError(f"client set size {client_size} is not within 1..{max_client_items}")
    parsed = psi.Request()
    try:
        parsed.ParseFromString(request)
    except Exception as exc:  # protobuf's DecodeError
        raise ValueError(f"not a PSI request: {exc}") from exc
    if len(parsed.encrypted_elements) != client_size:
        raise ValueError(f"the request holds {len(parsed.encrypted_elements)} items, not the {client_size} declared")
    if parsed.reveal_intersection and not allow_reveal:
        raise ValueError("this peer answers cardinality-only requests (the size of the intersection)")
    server = psi.server.CreateWithNewKey(parsed.reveal_intersection)
    workers = _workers(max(len(server_items), client_size))
    if workers == 1:
        setup = server.CreateSetupMessage(fpr, client_size, server_items, psi.DataStructure.GCS)
        response = server.ProcessRequest(parsed)
        return bytes(setup.SerializeToString()), bytes(response.SerializeToString())
    key, reveal = bytes(server.GetPrivateKeyBytes()), parsed.reveal_intersection
    jobs: list[tuple[Any, ...]] = [(key, reveal, client_size, part) for part in _parts(server_items, workers)]
    jobs += [(key, reveal, part) for part, _count in _split(parsed, workers)]
    done = _map(_server_job, jobs)
    setups, responses = done[:workers], done[workers:]
    return (bytes(_join(psi.ServerSetup, setups).SerializeToString()),
            bytes(_join(psi.Response, responses).SerializeToString()))


def _server_job(*job: Any) -> bytes:
    """A setup part (key, reveal, client size, items) or a response part (key, reveal, request part)."""
    return _server_setup(*job) if len(job) == 4 else _server_process(*job)


def make_psi_router(items: Callable[[], list[str]], authorise: Callable[[str], bool], allow_reveal: bool = True,
                    max_client_items: int = MAX_CLIENT_ITEMS) -> APIRouter:
    """POST /psi/intersect {"client_size", "request" (base64)} -> {"setup", "response"} (base64)."""
    router = APIRouter()

    @router.post("/psi/intersect")
    async def intersect(request: Request) -> JSONResponse:
        token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not token or not authorise(token):
            return JSONResponse({"error": "unauthorised"}, status_code=401)
        try:
            body = await request.json()
            answer = psi_answer(items(), base64.b64decode(body["request"]), int(body["client_size"]),
                                allow_reveal, max_client_items=max_client_items)
        except (ValueError, KeyError, TypeError) as exc:
            return JSONResponse({"error": f"bad request: {exc}"}, status_code=400)
        return JSONResponse({"setup": base64.b64encode(answer[0]).decode(),
                             "response": base64.b64encode(answer[1]).decode()})

    return router


def psi_query(url: str, token: str, items: list[str], reveal_intersection: bool = True,
              client: Any = None) -> tuple[list[str] | int, int]:
    """Ask a peer's /psi/intersect; (intersection or its size, bytes exchanged)."""
    import httpx

    session = PsiClient(items, reveal_intersection)
    request = session.request()
    http = client or httpx.Client(timeout=300)
    try:
        response = http.post(url.rstrip("/") + "/psi/intersect", headers={"Authorization": f"Bearer {token}"},
                             json={"client_size": len(items), "request": base64.b64encode(request).decode()})
    except httpx.HTTPError as exc:
        raise ValueError(f"{url}: {exc}") from exc
    if response.status_code != 200:
        raise ValueError(f"{url}: HTTP {response.status_code}: {response.text[:200]}")
    body = response.json()
    setup, answer = base64.b64decode(body["setup"]), base64.b64decode(body["response"])
    return session.result(setup, answer), len(request) + len(setup) + len(answer)


# -- keyed Bloom filter -----------------------------------------------------------------------------
_HEADER = struct.Struct(">QB")


def bloom_filter(items: Iterable[str], key: bytes, fpr: float = 1e-6) -> bytes:
    """A Bloom filter of HMAC-SHA256(key, item): header (bits, hashes) and the bit array."""
    values = list(items)
    n = max(1, len(values))
    bits = max(8, math.ceil(-n * math.log(fpr) / math.log(2) ** 2))
    hashes = max(1, min(30, round(bits / n * math.log(2))))
    array = bytearray((bits + 7) // 8)
    for item in values:
        for position in _positions(item, key, bits, hashes):
            array[position >> 3] |= 1 << (position & 7)
    return _HEADER.pack(bits, hashes) + bytes(array)


def _positions(item: str, key: bytes, bits: int, hashes: int) -> Iterable[int]:
    digest = hmac.new(key, item.encode(), hashlib.sha256).digest()
    h1, h2 = int.from_bytes(digest[:8], "big"), int.from_bytes(digest[8:16], "big") | 1
    return ((h1 + i * h2) % bits for i in range(hashes))


def bloom_matches(filter_bytes: bytes, key: bytes, items: Iterable[str]) -> list[str]:
    """Our items the filter claims (some may be false positives, at the filter's rate)."""
    if len(filter_bytes) < _HEADER.size:
        raise ValueError("not a Bloom filter (too short)")
    bits, hashes = _HEADER.unpack_from(filter_bytes)
    array = filter_bytes[_HEADER.size:]
    if len(array) * 8 < bits or hashes < 1:
        raise ValueError("not a Bloom filter (header and size disagree)")
    return sorted(i for i in items
                  if all(array[p >> 3] >> (p & 7) & 1 for p in _positions(i, key, bits, hashes)))
