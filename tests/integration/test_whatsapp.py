"""WhatsApp Cloud API: request shapes against a loopback server playing Graph API, the 24-hour
window, error mapping, the handshake, X-Hub-Signature-256 vectors, and the pywa webhook
samples (messages, buttons, list replies, statuses, other fields ignored)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from conftest import shared_file
from frontdesk.adapters.channels.base import DeliveryStatus, OutboundMessage, WhatsAppTemplate
from frontdesk.adapters.channels.config import WhatsAppSettings
from frontdesk.adapters.channels.whatsapp import (
    WhatsAppChannel,
    parse_webhook,
    service_window_open,
    verify_signature,
    verify_subscription,
)
from frontdesk.domain.channels import Channel
from frontdesk.domain.errors import (
    ChannelMisconfigured,
    OutsideServiceWindow,
    PermanentError,
    RecipientOptedOut,
    TransientError,
)
from provider_fakes import Reply, recording_server

NOW = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
TOKEN = "EAAG-test-access-token"
SENT = {
    "messaging_product": "whatsapp",
    "contacts": [{"input": "+15555550100", "wa_id": "15555550100"}],
    "messages": [{"id": "wamid.HBgLMTU1NTU1NTAxMDAVAgARGBI", "message_status": "accepted"}],
}


def _settings(base_url: str, **overrides: Any) -> WhatsAppSettings:
    values: dict[str, Any] = {
        "phone_number_id": "106540352242922",
        "access_token": TOKEN,
        "app_secret": "app-secret",
        "verify_token": "verify-me",
        "base_url": base_url,
        "api_version": "v23.0",
        "timeout_seconds": 5,
    }
    values.update(overrides)
    return WhatsAppSettings(**values)


def _message(**overrides: Any) -> OutboundMessage:
    values: dict[str, Any] = {
        "practice_id": 1,
        "patient_id": 7,
        "channel": Channel.WHATSAPP,
        "to": "+15555550100",
        "body": "Thanks Ana, you're confirmed for Tue 24 Nov at 3:00 pm.",
        "idempotency_key": "receipt:42:confirm",
    }
    values.update(overrides)
    return OutboundMessage(**values)


def _graph_error(http_status: int, code: int) -> Reply:
    body = {
        "error": {
            "message": "(#131047) Re-engagement message",
            "type": "OAuthException",
            "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": "details"},
            "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam",
        }
    }
    return Reply(http_status, json.dumps(body).encode())


def test_a_template_message_has_the_documented_shape() -> None:
    template = WhatsAppTemplate(
        name="appointment_reminder",
        language="en_US",
        body_parameters=("Ana", "Tue 24 Nov", "3:00 pm"),
        button_payloads=("confirm:42", "reschedule:42"),
    )
    with recording_server(Reply(200, json.dumps(SENT).encode())) as graph:
        channel = WhatsAppChannel(_settings(graph.base_url), clock=lambda: NOW)
        result = channel.send(_message(whatsapp_template=template, body="(template)"))
        channel.close()
    assert result.provider_message_id == "wamid.HBgLMTU1NTU1NTAxMDAVAgARGBI"
    assert result.status == "queued"
    (request,) = graph.requests
    assert (request.method, request.path) == ("POST", "/v23.0/106540352242922/messages")
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.body) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "+15555550100",
        "type": "template",
        "template": {
            "name": "appointment_reminder",
            "language": {"code": "en_US"},
            "components": [
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": "Ana"},
                        {"type": "text", "text": "Tue 24 Nov"},
                        {"type": "text", "text": "3:00 pm"},
                    ],
                },
                {
                    "type": "button",
                    "sub_type": "quick_reply",
                    "index": "0",
                    "parameters": [{"type": "payload", "payload": "confirm:42"}],
                },
                {
                    "type": "button",
                    "sub_type": "quick_reply",
                    "index": "1",
                    "parameters": [{"type": "payload", "payload": "reschedule:42"}],
                },
            ],
        },
    }


def test_free_form_text_only_inside_the_window() -> None:
    with recording_server(Reply(200, json.dumps(SENT).encode())) as graph:
        channel = WhatsAppChannel(_settings(graph.base_url), clock=lambda: NOW)
        channel.send(_message(to="whatsapp:+15555550100", last_inbound_at=NOW - timedelta(hours=3)))
        with pytest.raises(OutsideServiceWindow):
            channel.send(_message(last_inbound_at=NOW - timedelta(hours=24, seconds=1)))
        with pytest.raises(OutsideServiceWindow):
            channel.send(_message(last_inbound_at=None))
        channel.close()
    (request,) = graph.requests  # the refused ones never reached Meta
    assert json.loads(request.body) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "+15555550100",
        "type": "text",
        "text": {"preview_url": False, "body": _message().body},
    }


def test_service_window_boundaries() -> None:
    assert not service_window_open(None, NOW)
    assert service_window_open(NOW - timedelta(hours=23, minutes=59), NOW)
    assert not service_window_open(NOW - timedelta(hours=24), NOW)
    assert service_window_open(NOW, NOW)
    assert service_window_open(NOW + timedelta(seconds=5), NOW)  # small clock skew


@pytest.mark.parametrize(
    ("reply", "kind", "code"),
    [
        (_graph_error(400, 131047), OutsideServiceWindow, "131047"),
        (_graph_error(400, 131050), RecipientOptedOut, "131050"),
        (_graph_error(400, 131026), PermanentError, "131026"),
        (_graph_error(400, 131056), TransientError, "131056"),
        (_graph_error(400, 130429), TransientError, "130429"),
        (_graph_error(401, 190), ChannelMisconfigured, "190"),
        (_graph_error(400, 132001), ChannelMisconfigured, "132001"),
        (_graph_error(500, 131000), TransientError, "131000"),
        (Reply(502, b"Bad Gateway", "text/plain"), TransientError, None),
    ],
)
def test_error_mapping(reply: Reply, kind: type[Exception], code: str | None) -> None:
    with recording_server(reply) as graph:
        channel = WhatsAppChannel(_settings(graph.base_url), clock=lambda: NOW)
        template = WhatsAppTemplate(name="appointment_reminder", language="en_US")
        with pytest.raises(kind) as caught:
            channel.send(_message(whatsapp_template=template))
        channel.close()
    assert getattr(caught.value, "provider_code", None) == code
    if kind is PermanentError:
        assert type(caught.value) is PermanentError
    assert isinstance(caught.value.__cause__, httpx.HTTPStatusError)


def test_a_connection_failure_is_transient() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    client = httpx.Client(transport=httpx.MockTransport(refuse))
    channel = WhatsAppChannel(_settings("https://graph.test"), client=client, clock=lambda: NOW)
    with pytest.raises(TransientError):
        channel.send(_message(last_inbound_at=NOW))


def test_template_names_per_purpose_and_language() -> None:
    settings = _settings(
        "https://graph.test",
        templates={
            "reminder_24h": {"en_US": "reminder_24h_en", "es": "reminder_24h_es"},
        },
    )
    assert settings.template_name("reminder_24h", "en_US") == "reminder_24h_en"
    assert settings.template_name("reminder_24h", "es_MX") == "reminder_24h_es"
    assert settings.template_name("reminder_24h", "fr") is None
    assert settings.template_name("missed_session", "en_US") is None


# --- webhooks ---------------------------------------------------------------------------------


def test_subscription_handshake() -> None:
    params = {
        "hub.mode": "subscribe",
        "hub.verify_token": "verify-me",
        "hub.challenge": "1158201444",
    }
    assert verify_subscription(params, "verify-me") == "1158201444"
    assert verify_subscription({**params, "hub.verify_token": "guess"}, "verify-me") is None
    assert verify_subscription({**params, "hub.mode": "unsubscribe"}, "verify-me") is None
    assert verify_subscription(params, "") is None


def test_signature_vectors() -> None:
    vectors = json.loads(
        shared_file(
            "webhooks", "whatsapp_cloud_api", "x_hub_signature_test_vectors.json"
        ).read_text()
    )
    for case in vectors["cases"]:
        body = case["raw_body"].encode()
        header = case["x_hub_signature_256"]
        assert verify_signature(body, header, case["app_secret"]) is case["valid"]
        assert not verify_signature(body + b" ", header, case["app_secret"])
        assert not verify_signature(body, header, "another-secret")
        assert not verify_signature(body, header.replace("sha256=", "sha1="), case["app_secret"])
        assert not verify_signature(body, None, case["app_secret"])
        parsed = parse_webhook(body, received_at=NOW)
        (message,) = parsed.messages
        assert message.text == "Hey there! I am using PyWa."
        assert message.from_address == "+972544401243"
        assert message.received_at == datetime.fromtimestamp(1730231903, tz=UTC)


def _sample(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        shared_file("webhooks", "whatsapp_cloud_api", f"{name}.json").read_text()
    )
    return data


def test_inbound_text_and_reply_context() -> None:
    samples = _sample("message")
    (text,) = parse_webhook(samples["text"], received_at=NOW).messages
    assert text.channel is Channel.WHATSAPP
    assert (text.text, text.provider_message_id) == ("Body Text", "wamid.xyzxyz")
    assert (text.from_address, text.to_address) == ("+972987654321", "+972123456789")
    assert text.extras["profile_name"] == "Test Name"
    assert text.extras["phone_number_id"] == "1122334455667"
    assert text.in_reply_to is None
    (reply,) = parse_webhook(samples["reply"], received_at=NOW).messages
    assert reply.in_reply_to == "wamid.xyzxyz=="
    # Every sample parses without error; media types come with their type and caption.
    for name, body in samples.items():
        parsed = parse_webhook(body, received_at=NOW)
        assert len(parsed.messages) + parsed.ignored >= 1, name
        for message in parsed.messages:
            assert message.extras["type"], name
    (image,) = parse_webhook(samples["image"], received_at=NOW).messages
    assert image.extras["type"] == "image"
    assert parse_webhook(samples["reaction"], received_at=NOW).messages == []


def test_buttons_and_list_replies() -> None:
    buttons = _sample("callback_button")
    (interactive,) = parse_webhook(buttons["button"], received_at=NOW).messages
    assert (interactive.button_payload, interactive.text) == ("callback_data", "title")
    assert interactive.extras["interactive_type"] == "button_reply"
    assert interactive.in_reply_to == "wamid.xyzxyz"
    (quick,) = parse_webhook(buttons["quick_reply"], received_at=NOW).messages
    assert (quick.button_payload, quick.text, quick.extras["type"]) == (
        "callback_data",
        "title",
        "button",
    )
    assert quick.provider_message_id == "wamid.xsidjw"
    (bare,) = parse_webhook(buttons["quick_reply_without_context"], received_at=NOW).messages
    assert bare.in_reply_to is None and bare.button_payload == "callback_data"
    selection = _sample("callback_selection")
    (choice,) = parse_webhook(selection["description"], received_at=NOW).messages
    assert (choice.button_payload, choice.extras["interactive_type"]) == (
        "callback_data",
        "list_reply",
    )


def test_statuses() -> None:
    samples = _sample("message_status")
    expected = {
        "sent": DeliveryStatus.SENT,
        "delivered": DeliveryStatus.DELIVERED,
        "read": DeliveryStatus.READ,
        "played": DeliveryStatus.READ,
        "failed": DeliveryStatus.FAILED,
    }
    for raw, status in expected.items():
        parsed = parse_webhook(samples[raw], received_at=NOW)
        assert parsed.messages == []
        (update,) = parsed.statuses
        assert (update.status, update.raw_status) == (status, raw)
        assert update.provider_message_id == "wamid.xyzxyz"
        assert update.occurred_at is not None and update.occurred_at.tzinfo is not None
    (failed,) = parse_webhook(samples["failed"], received_at=NOW).statuses
    assert failed.error_code == "130472"
    assert not failed.recipient_opted_out
    assert (
        parse_webhook(samples["group"], received_at=NOW).statuses[0].status is DeliveryStatus.READ
    )


def test_other_fields_are_ignored() -> None:
    for name in ("template_status_update", "user_marketing_preferences", "system"):
        for body in _sample(name).values():
            parsed = parse_webhook(body, received_at=NOW)
            assert parsed.messages == [] and parsed.statuses == []
            assert parsed.ignored >= 1
    with pytest.raises(ValueError):
        parse_webhook(b'{"object": "page", "entry": []}', received_at=NOW)
    with pytest.raises(ValueError):
        parse_webhook(b"not json", received_at=NOW)


def test_malformed_bodies_are_value_errors() -> None:
    for body in (
        {"object": "whatsapp_business_account", "entry": ["x"]},
        {
            "object": "whatsapp_business_account",
            "entry": [{"changes": [{"field": "messages", "value": ["x"]}]}],
        },
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "changes": [
                        {"field": "messages", "value": {"messages": [{"id": "w", "context": 3}]}}
                    ]
                }
            ],
        },
    ):
        with pytest.raises(ValueError):
            parse_webhook(body, received_at=NOW)
