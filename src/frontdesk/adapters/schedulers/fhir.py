"""A small FHIR R4 REST client (httpx): search with paging, read with ETag, conditional update
and conditional create. Timeouts, refused connections, 429 and 5xx are retried here with
exponential backoff; what is still failing becomes a ``TransientSyncError`` for the caller's
own (durable) retry. Other 4xx are ``PermanentSyncError``; 412 is ``PreconditionFailed``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from frontdesk.adapters.schedulers.errors import (
    PermanentSyncError,
    PreconditionFailed,
    TransientSyncError,
)

FHIR_JSON = "application/fhir+json"
PAGE_SIZE = 100


@dataclass(frozen=True)
class Versioned:
    """A resource as the server holds it, with the ETag to make a conditional update with."""

    resource: dict[str, Any]
    etag: str | None


class FhirClient:
    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        client: httpx.Client | None = None,
        timeout: float = 10.0,
        attempts: int = 4,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        max_pages: int = 1000,
    ) -> None:
        self.base = base_url.rstrip("/")
        self._origin = _origin(self.base)
        self.token = token
        self.client = client or httpx.Client(timeout=timeout)
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.sleep = sleep
        self.max_pages = max_pages

    # --- reading --------------------------------------------------------------------------

    def search_appointments(
        self, *, start: datetime, end: datetime, since: str | None
    ) -> Iterator[dict[str, Any]]:
        """The searchset Bundles (page by page) of the Appointments in [start, end), changed
        at or after ``since`` (a FHIR instant), with their Patients included."""
        params: list[tuple[str, str | int | float | bool | None]] = [
            ("date", f"ge{_instant(start)}"),
            ("date", f"lt{_instant(end)}"),
            ("_include", "Appointment:patient"),
            ("_count", str(PAGE_SIZE)),
        ]
        if since:
            params.append(("_lastUpdated", f"ge{since}"))
        url: str | None = f"{self.base}/Appointment"
        query: httpx.QueryParams | None = httpx.QueryParams(params)
        pages = 0
        while url is not None:
            pages += 1
            if pages > self.max_pages:
                raise PermanentSyncError(f"more than {self.max_pages} pages: stopped")
            bundle = self._json(self._send("GET", url, params=query), "Bundle")
            yield bundle
            url, query = self._next(bundle), None

    def read(self, resource_type: str, resource_id: str) -> Versioned:
        response = self._send("GET", f"{self.base}/{resource_type}/{resource_id}")
        resource = self._json(response, resource_type)
        return Versioned(resource, _etag(response, resource))

    # --- writing --------------------------------------------------------------------------

    def update(self, resource: dict[str, Any], etag: str | None) -> Versioned:
        """PUT ``resource`` only if the server still holds version ``etag`` (If-Match)."""
        headers = {"Content-Type": FHIR_JSON}
        if etag:
            headers["If-Match"] = etag
        url = f"{self.base}/{resource['resourceType']}/{resource['id']}"
        response = self._send("PUT", url, json=resource, headers=headers)
        if not response.content:
            return Versioned(resource, response.headers.get("ETag"))
        written = self._json(response, resource["resourceType"])
        return Versioned(written, _etag(response, written))

    def create_once(self, resource: dict[str, Any], identifier: str) -> int:
        """POST ``resource`` unless one with ``identifier`` (system|value) exists (a retried
        create after a lost answer does not duplicate it). Returns the status code."""
        headers = {"Content-Type": FHIR_JSON, "If-None-Exist": f"identifier={identifier}"}
        response = self._send(
            "POST", f"{self.base}/{resource['resourceType']}", json=resource, headers=headers
        )
        return response.status_code

    # --- plumbing -------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        url: str,
        *,
        params: httpx.QueryParams | None = None,
        json: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        sent = {"Accept": FHIR_JSON, **(headers or {})}
        if self.token:
            sent["Authorization"] = f"Bearer {self.token}"
        what = f"{method} {_kind_of(url, self.base)}"
        problem = ""
        for attempt in range(self.attempts):
            if attempt:
                self.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                response = self.client.request(
                    method,
                    url,
                    params=params,
                    json=json,
                    headers=sent,
                    timeout=self.timeout,
                )
            except httpx.TransportError as exc:  # timeouts, refused, reset
                problem = f"{what}: {type(exc).__name__}"
                continue
            if response.status_code == 429 or response.status_code >= 500:
                problem = f"{what}: the server answered {response.status_code}"
                continue
            if response.status_code == 412:
                raise PreconditionFailed(f"{what}: 412, the resource changed on the server")
            if response.status_code >= 400:
                raise PermanentSyncError(f"{what}: the server answered {response.status_code}")
            return response
        raise TransientSyncError(f"{problem} (after {self.attempts} attempts)")

    def _json(self, response: httpx.Response, expected: str) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError as exc:
            raise PermanentSyncError(f"the answer to a {expected} request is not JSON") from exc
        if not isinstance(data, dict) or data.get("resourceType") != expected:
            raise PermanentSyncError(f"expected a {expected}, got something else")
        return data

    def _next(self, bundle: dict[str, Any]) -> str | None:
        for link in bundle.get("link") or []:
            if isinstance(link, dict) and link.get("relation") == "next" and link.get("url"):
                url: str = str(link["url"])
                # Our token goes only where the base URL points.
                if _origin(url) != self._origin:
                    raise PermanentSyncError("the next page is on another server: not followed")
                return url
        return None


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _instant(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("FHIR search times must be aware")
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _etag(response: httpx.Response, resource: dict[str, Any]) -> str | None:
    header: str | None = response.headers.get("ETag")
    if header:
        return header
    version = (resource.get("meta") or {}).get("versionId")
    return f'W/"{version}"' if version else None


def _kind_of(url: str, base: str) -> str:
    """The resource type a URL is about, for messages (never its query or ids)."""
    path = url[len(base) :] if url.startswith(base) else urlsplit(url).path
    first = path.strip("/").split("/", 1)[0].split("?", 1)[0]
    return first or "request"
