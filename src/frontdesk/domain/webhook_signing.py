"""Standard Webhooks signatures (https://www.standardwebhooks.com), as pure functions.

A message is signed by HMAC-SHA256 over ``"{webhook-id}.{webhook-timestamp}.{body}"`` with the
endpoint's secret, and sent with three headers:

- ``webhook-id``: the event's id, the same on every retry (receivers dedupe on it);
- ``webhook-timestamp``: the attempt's time, integer Unix seconds;
- ``webhook-signature``: ``v1,<base64 signature>``, several separated by spaces (rotation).

Secrets are shown as ``whsec_<base64 of 24-64 random bytes>``. Verification checks the
timestamp against a tolerance (5 minutes by default) before the signature, compares in constant
time, and accepts when any ``v1`` signature matches. Replay of a fresh message within the
tolerance is stopped by the receiver remembering ids (see ``services/webhooks_inbound.py``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
DEFAULT_TOLERANCE = timedelta(minutes=5)
HEADER_ID = "webhook-id"
HEADER_TIMESTAMP = "webhook-timestamp"
HEADER_SIGNATURE = "webhook-signature"


class SignatureError(ValueError):
    """The message is not authentic, or not fresh. The text never quotes the message."""


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_…`` secret (the prefix is optional, padding too)."""
    raw = secret.removeprefix(SECRET_PREFIX).strip()
    try:
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError("the secret is not base64") from exc
    if not key:
        raise SignatureError("the secret is empty")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes | str) -> str:
    """The ``webhook-signature`` value (``v1,<base64>``) for one message."""
    if "." in msg_id or not msg_id:
        raise SignatureError("a webhook id must be non-empty and contain no '.'")
    data = body.encode() if isinstance(body, str) else body
    content = f"{msg_id}.{timestamp}.".encode() + data
    digest = hmac.new(secret_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(secret: str, msg_id: str, at: datetime, body: bytes | str) -> dict[str, str]:
    """The three headers for a message sent at ``at``."""
    timestamp = int(at.timestamp())
    return {
        HEADER_ID: msg_id,
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_SIGNATURE: sign(secret, msg_id, timestamp, body),
    }


@dataclass(frozen=True)
class Verified:
    msg_id: str
    timestamp: datetime


def verify(
    secrets_to_try: list[str] | str,
    headers: dict[str, str],
    body: bytes,
    *,
    now: datetime,
    tolerance: timedelta = DEFAULT_TOLERANCE,
) -> Verified:
    """Check a received message; returns its id and time, or raises ``SignatureError``.

    ``headers`` may use any case. Several secrets may be given (the current one and one being
    rotated out): any of them signing the message is enough.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    msg_id = lowered.get(HEADER_ID, "").strip()
    stamp = lowered.get(HEADER_TIMESTAMP, "").strip()
    signatures = lowered.get(HEADER_SIGNATURE, "").strip()
    if not (msg_id and stamp and signatures):
        raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature")
    if not stamp.isdigit() or len(stamp) > 12:
        raise SignatureError("webhook-timestamp is not integer Unix seconds")
    if "." in msg_id or len(msg_id) > 200:
        raise SignatureError("webhook-id is not a valid id")
    at = datetime.fromtimestamp(int(stamp), UTC)
    if at < now - tolerance:
        raise SignatureError("webhook-timestamp is too old")
    if at > now + tolerance:
        raise SignatureError("webhook-timestamp is too far in the future")
    candidates = []
    for item in signatures.split(" "):
        version, _, value = item.partition(",")
        if version != "v1" or not value:
            continue
        try:
            candidates.append(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            continue
    keys = [secrets_to_try] if isinstance(secrets_to_try, str) else secrets_to_try
    for secret in keys:
        expected = base64.b64decode(sign(secret, msg_id, int(stamp), body).split(",", 1)[1])
        # Compare against every candidate so the time taken does not depend on which matched.
        matched = False
        for candidate in candidates:
            matched |= hmac.compare_digest(expected, candidate)
        if matched:
            return Verified(msg_id=msg_id, timestamp=at)
    raise SignatureError("no valid signature")
