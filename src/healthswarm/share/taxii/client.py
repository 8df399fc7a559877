"""A TAXII 2.1 client (httpx): discovery, collections, and pulling a collection's objects page by page.

Paging follows whichever the server offers: `next` (TAXII 2.1) or, when a server omits it but says
`more`, `added_after` set from the `X-TAXII-Date-Added-Last` header.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx

TAXII_MEDIA = "application/taxii+json;version=2.1"


if TYPE_CHECKING:
    from healthswarm.share.egress import Released

class TaxiiClientError(Exception):
    pass


class TaxiiClient:
    def __init__(self, base_url: str, token: str | None = None, user: str | None = None,
                 password: str | None = None, timeout: float = 30.0, verify: bool | ssl.SSLContext = True) -> None:
        """`verify`: True checks the server against the system's CAs; an SSLContext (`security.tls.client_context`)
        checks it against the consortium CA and presents our client certificate."""
        auth: httpx.Auth | None = None
        headers = {"Accept": TAXII_MEDIA}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        elif user is not None:
            auth = httpx.BasicAuth(user, password or "")
        self.base_url = base_url.rstrip("/") + "/"
        self.http = httpx.Client(headers=headers, auth=auth, timeout=timeout, verify=verify)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> TaxiiClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _get(self, url: str, params: dict[str, str] | None = None) -> httpx.Response:
        try:
            response = self.http.get(url, params=params)
        except httpx.HTTPError as exc:
            raise TaxiiClientError(f"{url}: {exc}") from exc
        if response.status_code != 200:
            detail = response.text[:300]
            raise TaxiiClientError(f"{url}: HTTP {response.status_code}: {detail}")
        return response

    def discover(self, path: str = "taxii2/") -> dict[str, Any]:
        result: dict[str, Any] = self._get(self.base_url + path).json()
        return result

    def api_roots(self, path: str = "taxii2/") -> list[str]:
        return [str(httpx.URL(self.base_url).join(r)) for r in self.discover(path).get("api_roots", [])]

    def collections(self, api_root: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._get(api_root.rstrip("/") + "/collections/").json().get("collections", [])
        return result

    def objects(self, api_root: str, collection_id: str, added_after: str | None = None, limit: int = 100,
                match: dict[str, str] | None = None) -> Iterator[dict[str, Any]]:
        """Every object of the collection, page after page."""
        url = f"{api_root.rstrip('/')}/collections/{collection_id}/objects/"
        params: dict[str, str] = {"limit": str(limit)}
        if added_after:
            params["added_after"] = added_after
        for key, value in (match or {}).items():
            params[f"match[{key}]"] = value
        seen_pages = 0
        while True:
            response = self._get(url, params)
            body = response.json()
            yield from body.get("objects", [])
            seen_pages += 1
            if not body.get("more"):
                return
            if body.get("next"):
                params["next"] = str(body["next"])
            elif response.headers.get("X-TAXII-Date-Added-Last"):
                params["added_after"] = response.headers["X-TAXII-Date-Added-Last"]
            else:
                raise TaxiiClientError(f"{url}: server says more but gives neither next nor a date header")
            if seen_pages > 1_000_000:
                raise TaxiiClientError(f"{url}: too many pages")

    def push(self, api_root: str, collection_id: str, released: Released) -> dict[str, Any]:
        """POST what the egress gate released for TAXII (every object signed) to a peer's collection."""
        url = f"{api_root.rstrip('/')}/collections/{collection_id}/objects/"
        objects = released.require("taxii").payload
        try:
            response = self.http.post(url, json={"objects": objects}, headers={"Content-Type": TAXII_MEDIA})
        except httpx.HTTPError as exc:
            raise TaxiiClientError(f"{url}: {exc}") from exc
        if response.status_code not in (200, 202):
            raise TaxiiClientError(f"{url}: HTTP {response.status_code}: {response.text[:300]}")
        result: dict[str, Any] = response.json()
        return result
