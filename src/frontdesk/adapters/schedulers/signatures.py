"""Webhook signatures of Calendly and Cal.com, verified over the raw body, in constant time.

- Calendly: ``Calendly-Webhook-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(key, "t.body")>``;
  a timestamp further than ``tolerance`` from now is refused (a replayed capture).
- Cal.com: ``X-Cal-Signature-256: <hex HMAC-SHA256(secret, body)>``. Cal.com signs no
  timestamp, so replays are stopped by the inbound store's dedupe key, not here.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta

from frontdesk.domain.errors import Unauthorized

CALENDLY_HEADER = "Calendly-Webhook-Signature"
CALCOM_HEADER = "X-Cal-Signature-256"
DEFAULT_TOLERANCE = timedelta(minutes=3)


def _hex_hmac(key: str, message: bytes) -> str:
    return hmac.new(key.encode("utf-8"), message, hashlib.sha256).hexdigest()


def calendly_signature(key: str, body: bytes, timestamp: int) -> str:
    """The header value Calendly would send (for tests and for documentation)."""
    return f"t={timestamp},v1={_hex_hmac(key, str(timestamp).encode() + b'.' + body)}"


def verify_calendly(
    header: str | None,
    body: bytes,
    key: str,
    *,
    now: datetime,
    tolerance: timedelta = DEFAULT_TOLERANCE,
) -> None:
    """Raise ``Unauthorized`` unless ``header`` signs ``body`` with ``key`` recently enough."""
    if not header:
        raise Unauthorized(f"missing {CALENDLY_HEADER} header")
    timestamp: str | None = None
    signatures: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t":
            timestamp = value
        elif name == "v1":
            signatures.append(value)
    if timestamp is None or not timestamp.isdigit() or not signatures:
        raise Unauthorized(f"malformed {CALENDLY_HEADER} header (expected t=…,v1=…)")
    signed_at = int(timestamp)
    if abs(now.timestamp() - signed_at) > tolerance.total_seconds():
        raise Unauthorized(f"{CALENDLY_HEADER} timestamp is too old or in the future")
    expected = _hex_hmac(key, timestamp.encode() + b"." + body)
    if not any(hmac.compare_digest(expected, s.strip().lower()) for s in signatures):
        raise Unauthorized(f"{CALENDLY_HEADER} does not match the body")


def calcom_signature(secret: str, body: bytes) -> str:
    return _hex_hmac(secret, body)


def verify_calcom(header: str | None, body: bytes, secret: str) -> None:
    if not header:
        raise Unauthorized(f"missing {CALCOM_HEADER} header")
    if not hmac.compare_digest(_hex_hmac(secret, body), header.strip().lower()):
        raise Unauthorized(f"{CALCOM_HEADER} does not match the body")
