"""Twilio SMS: the REST request shape against Twilio's OpenAPI description (a loopback server
plays Twilio), error mapping, webhook signatures with the official SDK and its vectors, inbound
and status-callback parsing."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from twilio.request_validator import RequestValidator

from conftest import shared_file
from frontdesk.adapters.channels.base import DeliveryStatus, OutboundMessage
from frontdesk.adapters.channels.config import TwilioSettings
from frontdesk.adapters.channels.twilio_sms import (
    EMPTY_TWIML,
    TwilioSmsChannel,
    empty_twiml,
    parse_inbound,
    parse_status_callback,
    verify_twilio_signature,
)
from frontdesk.domain.channels import Channel
from frontdesk.domain.errors import (
    ChannelMisconfigured,
    PermanentError,
    RecipientOptedOut,
    TransientError,
)
from provider_fakes import RecordingServer, Reply, recording_server

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "twilio-auth-token-for-tests"
NOW = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
MESSAGES_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"


def _created(sid: str = "SM" + "a" * 32, status: str = "queued") -> Reply:
    body = {
        "account_sid": ACCOUNT_SID,
        "api_version": "2010-04-01",
        "body": "Hi Ana",
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": "+15005550006",
        "num_media": "0",
        "num_segments": "1",
        "sid": sid,
        "status": status,
        "to": "+15555550100",
        "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json",
    }
    return Reply(201, json.dumps(body).encode())


def _twilio_error(http_status: int, code: int) -> Reply:
    body = {
        "code": code,
        "message": "The 'To' number +15555550100 is not a valid phone number.",
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": http_status,
    }
    return Reply(http_status, json.dumps(body).encode())


def _settings(base_url: str, **overrides: Any) -> TwilioSettings:
    values: dict[str, Any] = {
        "account_sid": ACCOUNT_SID,
        "auth_token": AUTH_TOKEN,
        "from_number": "+15005550006",
        "base_url": base_url,
        "timeout_seconds": 5,
    }
    values.update(overrides)
    return TwilioSettings(**values)


def _message(**overrides: Any) -> OutboundMessage:
    values: dict[str, Any] = {
        "practice_id": 1,
        "patient_id": 7,
        "channel": Channel.SMS,
        "to": "+15555550100",
        "body": "Sunrise Therapy: appt Tue 24 Nov 3:00pm. Reply C to confirm, R to reschedule.",
        "idempotency_key": "reminder:42:24h",
        "status_callback_url": "https://frontdesk.example/webhooks/twilio/status",
    }
    values.update(overrides)
    return OutboundMessage(**values)


@pytest.fixture(scope="module")
def message_spec() -> dict[str, Any]:
    spec = json.loads(shared_file("webhooks", "twilio", "twilio_api_v2010.json").read_text())
    operation = spec["paths"]["/2010-04-01/Accounts/{AccountSid}/Messages.json"]["post"]
    schema = operation["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    return {
        "properties": set(schema["properties"]),
        "required": set(schema.get("required", [])),
        "responses": set(operation["responses"]),
        "security": spec["components"]["securitySchemes"],
        "statuses": set(spec["components"]["schemas"]["message_enum_status"]["enum"]),
    }


@pytest.fixture
def twilio() -> Iterator[RecordingServer]:
    with recording_server(_created()) as server:
        yield server


def test_send_posts_the_documented_form_with_basic_auth(
    twilio: RecordingServer, message_spec: dict[str, Any]
) -> None:
    channel = TwilioSmsChannel(_settings(twilio.base_url))
    result = channel.send(_message())
    channel.close()

    assert result.provider_message_id == "SM" + "a" * 32
    assert result.status == "queued"
    (request,) = twilio.requests
    assert request.method == "POST"
    assert request.path == MESSAGES_PATH
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    form = dict(parse_qsl(request.body.decode(), keep_blank_values=True))
    assert form == {
        "To": "+15555550100",
        "From": "+15005550006",
        "Body": _message().body,
        "StatusCallback": "https://frontdesk.example/webhooks/twilio/status",
    }
    # Every parameter is one Twilio documents, the required ones are there, and auth is HTTP
    # basic with the account SID and auth token (securityScheme accountSid_authToken).
    assert set(form) <= message_spec["properties"]
    assert message_spec["required"] <= set(form)
    assert message_spec["responses"] == {"201"}
    assert message_spec["security"]["accountSid_authToken"]["scheme"] == "basic"
    scheme, _, encoded = request.headers["authorization"].partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(encoded).decode() == f"{ACCOUNT_SID}:{AUTH_TOKEN}"


def test_messaging_service_and_api_key(twilio: RecordingServer) -> None:
    settings = _settings(
        twilio.base_url,
        from_number=None,
        messaging_service_sid="MG" + "1" * 32,
        api_key_sid="SK" + "2" * 32,
        api_key_secret="api-key-secret",
        status_callback_url="https://frontdesk.example/default-callback",
    )
    channel = TwilioSmsChannel(settings)
    channel.send(_message(status_callback_url=None))
    channel.close()
    form = dict(parse_qsl(twilio.requests[0].body.decode()))
    assert form["MessagingServiceSid"] == "MG" + "1" * 32
    assert "From" not in form
    assert form["StatusCallback"] == "https://frontdesk.example/default-callback"
    encoded = twilio.requests[0].headers["authorization"].split(" ", 1)[1]
    assert base64.b64decode(encoded).decode() == f"{'SK' + '2' * 32}:api-key-secret"


@pytest.mark.parametrize(
    ("reply", "kind", "code"),
    [
        (_twilio_error(400, 21610), RecipientOptedOut, "21610"),
        (_twilio_error(400, 21211), PermanentError, "21211"),
        (_twilio_error(400, 21614), PermanentError, "21614"),
        (_twilio_error(401, 20003), ChannelMisconfigured, "20003"),
        (_twilio_error(429, 20429), TransientError, "20429"),
        (_twilio_error(500, 20500), TransientError, "20500"),
        (Reply(503, b"<html>Service Unavailable</html>", "text/html"), TransientError, None),
    ],
)
def test_error_mapping(reply: Reply, kind: type[Exception], code: str | None) -> None:
    with recording_server(reply) as server:
        channel = TwilioSmsChannel(_settings(server.base_url))
        with pytest.raises(kind) as caught:
            channel.send(_message())
        channel.close()
    error = caught.value
    assert getattr(error, "provider_code", None) == code
    assert "5555550100" not in str(error)  # Twilio's message quotes the number: not kept
    if kind is PermanentError:
        assert type(error) is PermanentError  # not opted-out, not misconfigured
    assert isinstance(error.__cause__, httpx.HTTPStatusError)


def test_a_timeout_is_transient() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    client = httpx.Client(transport=httpx.MockTransport(slow))
    channel = TwilioSmsChannel(_settings("https://api.twilio.test"), client=client)
    with pytest.raises(TransientError) as caught:
        channel.send(_message())
    assert isinstance(caught.value.__cause__, httpx.TimeoutException)


# --- webhooks ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vectors() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        shared_file("webhooks", "twilio", "signature_test_vectors.json").read_text()
    )
    return data


def test_signature_vectors_from_the_official_sdk(vectors: dict[str, Any]) -> None:
    token = vectors["auth_token"]
    checked = 0
    for case in vectors["cases"]:
        if "body" in case:
            continue  # JSON-bodied webhooks (bodySHA256) are not used for messaging
        params: Any = case.get("params") or [tuple(p) for p in case["params_multi"]]
        assert verify_twilio_signature(case["url"], params, case["expected_signature"], token), (
            case["name"]
        )
        forged = case["expected_signature"][:-2] + "A="
        assert not verify_twilio_signature(case["url"], params, forged, token)
        assert not verify_twilio_signature(
            case["url"], params, case["expected_signature"], "other-token"
        )
        checked += 1
    assert checked == 6


def _inbound_form() -> dict[str, str]:
    return {
        "ToCountry": "US",
        "ToState": "CA",
        "SmsMessageSid": "SM" + "b" * 32,
        "NumMedia": "0",
        "ToCity": "",
        "FromZip": "94105",
        "SmsSid": "SM" + "b" * 32,
        "FromState": "CA",
        "SmsStatus": "received",
        "FromCity": "SAN FRANCISCO",
        "Body": " C ",
        "FromCountry": "US",
        "To": "+15005550006",
        "MessagingServiceSid": "MG" + "1" * 32,
        "ToZip": "",
        "NumSegments": "1",
        "MessageSid": "SM" + "b" * 32,
        "AccountSid": ACCOUNT_SID,
        "From": "+15555550100",
        "ApiVersion": "2010-04-01",
    }


def test_an_inbound_sms_signed_by_the_sdk_verifies_and_parses() -> None:
    url = "https://frontdesk.example/webhooks/twilio/sms?practice=sunrise"
    form = _inbound_form()
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, form)
    assert verify_twilio_signature(url, form, signature, AUTH_TOKEN)

    altered = {**form, "Body": "STOP"}
    assert not verify_twilio_signature(url, altered, signature, AUTH_TOKEN)
    extra = {**form, "Injected": "1"}
    assert not verify_twilio_signature(url, extra, signature, AUTH_TOKEN)
    assert not verify_twilio_signature(url.replace("https", "http"), form, signature, AUTH_TOKEN)
    assert not verify_twilio_signature(url, form, None, AUTH_TOKEN)
    assert not verify_twilio_signature(url, form, "", AUTH_TOKEN)

    message = parse_inbound(form, received_at=NOW)
    assert message.channel is Channel.SMS
    assert message.provider_message_id == "SM" + "b" * 32
    assert (message.from_address, message.to_address) == ("+15555550100", "+15005550006")
    assert message.text == "C"
    assert message.raw_text == " C "
    assert message.received_at == NOW
    assert message.extras["NumMedia"] == "0"


def test_shared_key_signatures_with_hmac_sha256() -> None:
    url = "https://frontdesk.example/webhooks/twilio/sms"
    form = _inbound_form()
    secret = "shared-key-secret"
    settings = "key=webhooks_sharedkey_0123,algorithm=HMAC_SHA256"
    signature = RequestValidator(secret).compute_signature(url, form, "HMAC_SHA256")
    assert verify_twilio_signature(url, form, signature, secret, signature_settings=settings)
    assert not verify_twilio_signature(url, form, signature, secret)  # read as HMAC-SHA1
    unknown = "key=webhooks_sharedkey_0123,algorithm=HMAC_MD5"
    assert not verify_twilio_signature(url, form, signature, secret, signature_settings=unknown)


def test_inbound_with_opt_out_type_and_media() -> None:
    form = {
        **_inbound_form(),
        "Body": "STOP",
        "OptOutType": "STOP",
        "NumMedia": "1",
        "MediaUrl0": "https://api.twilio.com/media/ME1",
        "MediaContentType0": "image/jpeg",
    }
    message = parse_inbound(form, received_at=NOW)
    assert message.extras["OptOutType"] == "STOP"
    assert message.extras["MediaUrl0"] == "https://api.twilio.com/media/ME1"
    with pytest.raises(ValueError):
        parse_inbound({"Body": "hi"}, received_at=NOW)


def test_status_callbacks(message_spec: dict[str, Any]) -> None:
    base = {
        "MessageSid": "SM" + "a" * 32,
        "AccountSid": ACCOUNT_SID,
        "From": "+15005550006",
        "To": "+15555550100",
        "ApiVersion": "2010-04-01",
    }
    delivered = parse_status_callback({**base, "MessageStatus": "delivered", "SmsStatus": "x"})
    assert delivered.status is DeliveryStatus.DELIVERED
    assert delivered.error_code is None

    failed = parse_status_callback({**base, "MessageStatus": "failed", "ErrorCode": "21610"})
    assert (failed.status, failed.error_code, failed.recipient_opted_out) == (
        DeliveryStatus.FAILED,
        "21610",
        True,
    )
    undelivered = parse_status_callback(
        {**base, "MessageStatus": "undelivered", "ErrorCode": "30003"}
    )
    assert undelivered.status is DeliveryStatus.UNDELIVERED
    assert not undelivered.recipient_opted_out

    # Every status in Twilio's spec parses; the outbound ones map to our set.
    for raw in message_spec["statuses"]:
        update = parse_status_callback({**base, "MessageStatus": raw})
        assert update.raw_status == raw
        if raw in {"receiving", "received"}:
            assert update.status is None
        else:
            assert update.status is not None


def test_empty_twiml() -> None:
    assert empty_twiml() == EMPTY_TWIML
    assert EMPTY_TWIML.endswith("<Response></Response>")
