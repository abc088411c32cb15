"""Standard Webhooks signatures interoperate with the reference library, both ways."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from standardwebhooks import Webhook, WebhookVerificationError

from frontdesk.domain.webhook_signing import (
    SignatureError,
    new_secret,
    sign,
    signed_headers,
    verify,
)
from webhook_receiver import digest

BODY = json.dumps({"type": "appointment.confirmed", "data": {"appointment": {"id": 7}}}).encode()
# The specification's own example.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TS = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_specifications_example_signature() -> None:
    assert sign(SPEC_SECRET, SPEC_ID, SPEC_TS, SPEC_BODY) == SPEC_SIGNATURE
    assert digest(SPEC_SECRET, SPEC_ID, SPEC_TS, SPEC_BODY) == SPEC_SIGNATURE
    at = datetime.fromtimestamp(SPEC_TS, UTC)
    headers = {
        "webhook-id": SPEC_ID,
        "webhook-timestamp": str(SPEC_TS),
        "webhook-signature": SPEC_SIGNATURE,
    }
    assert verify(SPEC_SECRET, headers, SPEC_BODY, now=at).msg_id == SPEC_ID


def test_what_frontdesk_signs_verifies_with_the_reference_library() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    headers = signed_headers(secret, "msg_abc123", datetime.now(UTC), BODY)
    assert Webhook(secret).verify(BODY, headers) == json.loads(BODY)


def test_frontdesk_verifies_what_the_reference_library_signs() -> None:
    secret = new_secret()
    now = datetime.now(UTC)
    signature = Webhook(secret).sign("msg_xyz", now, BODY.decode())
    headers = {
        "Webhook-Id": "msg_xyz",  # any header case
        "Webhook-Timestamp": str(int(now.timestamp())),
        "Webhook-Signature": signature,
    }
    assert verify(secret, headers, BODY, now=now).msg_id == "msg_xyz"


def _headers(secret: str, at: datetime, msg_id: str = "msg_1") -> dict[str, str]:
    return signed_headers(secret, msg_id, at, BODY)


def test_a_wrong_secret_is_rejected_by_both() -> None:
    now = datetime.now(UTC)
    headers = _headers(new_secret(), now)
    other = new_secret()
    with pytest.raises(SignatureError, match="no valid signature"):
        verify(other, headers, BODY, now=now)
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(BODY, headers)


def test_a_tampered_body_is_rejected() -> None:
    secret = new_secret()
    now = datetime.now(UTC)
    headers = _headers(secret, now)
    with pytest.raises(SignatureError):
        verify(secret, headers, BODY.replace(b"7", b"8"), now=now)


def test_a_stale_or_future_timestamp_is_rejected_by_both() -> None:
    secret = new_secret()
    now = datetime.now(UTC)
    stale = _headers(secret, now - timedelta(minutes=5, seconds=2))
    with pytest.raises(SignatureError, match="too old"):
        verify(secret, stale, BODY, now=now)
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret).verify(BODY, stale)
    future = _headers(secret, now + timedelta(minutes=6))
    with pytest.raises(SignatureError, match="future"):
        verify(secret, future, BODY, now=now)
    # Inside the 5-minute tolerance both accept.
    fresh = _headers(secret, now - timedelta(minutes=4, seconds=50))
    assert verify(secret, fresh, BODY, now=now).msg_id == "msg_1"


def test_the_tolerance_follows_the_clock() -> None:
    secret = new_secret()
    signed_at = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    headers = _headers(secret, signed_at)
    with time_machine.travel(signed_at + timedelta(minutes=4), tick=False):
        Webhook(secret).verify(BODY, headers)
    with (
        time_machine.travel(signed_at + timedelta(minutes=6), tick=False),
        pytest.raises(WebhookVerificationError),
    ):
        Webhook(secret).verify(BODY, headers)
    with pytest.raises(SignatureError):
        verify(secret, headers, BODY, now=signed_at + timedelta(minutes=6))


def test_missing_or_malformed_headers_are_rejected() -> None:
    secret = new_secret()
    now = datetime.now(UTC)
    good = _headers(secret, now)
    for name in good:
        partial = {k: v for k, v in good.items() if k != name}
        with pytest.raises(SignatureError, match="missing"):
            verify(secret, partial, BODY, now=now)
    with pytest.raises(SignatureError, match="integer"):
        verify(secret, {**good, "webhook-timestamp": "12.5"}, BODY, now=now)
    with pytest.raises(SignatureError):
        verify(secret, {**good, "webhook-signature": "v1,not-base64!!"}, BODY, now=now)
    with pytest.raises(SignatureError):
        verify(
            secret,
            {**good, "webhook-signature": "v2," + good["webhook-signature"][3:]},
            BODY,
            now=now,
        )


def test_any_of_several_signatures_or_secrets_may_match() -> None:
    old, new = new_secret(), new_secret()
    now = datetime.now(UTC)
    headers = _headers(new, now)
    stale_sig = sign(old, "msg_1", int(now.timestamp()), BODY)
    rotated = {**headers, "webhook-signature": f"{stale_sig} {headers['webhook-signature']}"}
    assert verify(new, rotated, BODY, now=now).msg_id == "msg_1"
    assert verify([old, new], headers, BODY, now=now).msg_id == "msg_1"


def test_an_id_with_a_dot_cannot_be_signed() -> None:
    with pytest.raises(SignatureError):
        sign(new_secret(), "msg.1", 1, BODY)
