"""An iCalendar feed fetched with a conditional GET: ``If-None-Match`` (ETag) and
``If-Modified-Since`` (Last-Modified); 304 means nothing changed and nothing is parsed."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from frontdesk.adapters.schedulers.errors import PermanentSyncError, TransientSyncError

MAX_FEED_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class Feed:
    changed: bool
    body: bytes = b""
    etag: str | None = None
    last_modified: str | None = None


def fetch(
    url: str,
    *,
    etag: str | None,
    last_modified: str | None,
    client: httpx.Client | None = None,
    timeout: float = 20.0,
) -> Feed:
    headers = {"Accept": "text/calendar, */*;q=0.5"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    http = client or httpx.Client(timeout=timeout, follow_redirects=True)
    try:
        response = http.get(url, headers=headers, timeout=timeout)
    except httpx.TransportError as exc:
        raise TransientSyncError(f"iCalendar feed: {type(exc).__name__}") from exc
    finally:
        if client is None:
            http.close()
    if response.status_code == 304:
        return Feed(changed=False, etag=etag, last_modified=last_modified)
    if response.status_code == 429 or response.status_code >= 500:
        raise TransientSyncError(f"iCalendar feed answered {response.status_code}")
    if response.status_code != 200:
        raise PermanentSyncError(f"iCalendar feed answered {response.status_code}")
    if len(response.content) > MAX_FEED_BYTES:
        raise PermanentSyncError("iCalendar feed is larger than 20 MB")
    return Feed(
        changed=True,
        body=response.content,
        etag=response.headers.get("ETag"),
        last_modified=response.headers.get("Last-Modified"),
    )
