"""Each channel end to end, with providers played by real local servers: a reminder goes out,
the patient's "C" (signed as the provider signs it) confirms and stops further reminders,
"STOP" opts out with one confirmation, and every message and status is stored."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes
from email.policy import default as default_policy
from typing import Any
from urllib.parse import parse_qs, urlencode

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from frontdesk.adapters.db.models import Appointment, Message, Practice
from frontdesk.bootstrap import Runtime
from frontdesk.domain.times import now_utc
from frontdesk.services import channel_accounts
from frontdesk.services.chores import senders_for
from frontdesk.services.dispatcher import Dispatcher, DispatchSettings
from integration.test_reminders_flow import Clock, put, states, three_days_out_in_daytime
from integration.test_smtp_channel import LoopbackController, Mailbox
from provider_fakes import Reply, recording_server

PUBLIC = "http://127.0.0.1:8000"  # FRONTDESK_PUBLIC_URL in these tests (the default)
SID = "AC" + "a" * 32
TOKEN = "twilio-auth-token-for-tests"
APP_SECRET = "meta-app-secret"


def _account(runtime: Runtime, channel: str, provider: str, values: dict[str, Any]) -> None:
    with runtime.transaction() as session:
        practice = session.scalars(select(Practice)).one()
        channel_accounts.set_account(
            session, runtime.cipher, practice, channel, provider, values, actor="test"
        )


def _remind(runtime: Runtime, **patient: Any) -> None:
    """An appointment 3 days out; its -72h reminder is dispatched with the real senders."""
    now = now_utc()
    start = three_days_out_in_daytime(now)
    clock = Clock(now - timedelta(hours=1))
    put(runtime, clock, start, announce=False, patient=patient)
    clock.now = start - timedelta(hours=72) + timedelta(minutes=1)
    dispatcher = Dispatcher(
        runtime,
        senders_for(runtime),
        worker_id="w",
        clock=clock,
        settings=DispatchSettings(rate_per_second=1000),
    )
    while dispatcher.dispatch_due().claimed:
        pass


def _thread(runtime: Runtime) -> list[tuple[str, str, str | None, str]]:
    with runtime.transaction() as session:
        return [
            (m.direction, m.channel, m.delivery_status, m.body)
            for m in session.scalars(select(Message).order_by(Message.id))
        ]


def _appointment(runtime: Runtime) -> tuple[str, str]:
    with runtime.transaction() as session:
        a = session.scalars(select(Appointment)).one()
        return a.status, a.confirmation


# --- SMS through Twilio --------------------------------------------------------------------------


@pytest.fixture
def twilio() -> Iterator[Any]:
    """Twilio's Messages API on loopback: each send gets the next SID."""
    replies = [
        Reply(201, json.dumps({"sid": f"SM{n:032d}", "status": "queued"}).encode())
        for n in range(1, 20)
    ]
    with recording_server(*replies) as server:
        yield server


def _twilio_post(
    client: TestClient, path: str, fields: dict[str, str], *, forge: bool = False
) -> Any:
    signature = RequestValidator(TOKEN).compute_signature(f"{PUBLIC}{path}", fields)
    return client.post(
        path,
        content=urlencode(fields),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": "forged" if forge else signature,
        },
    )


def test_sms_through_twilio(app_client: TestClient, runtime: Runtime, twilio: Any) -> None:
    _account(
        runtime,
        "sms",
        "twilio",
        {
            "account_sid": SID,
            "auth_token": TOKEN,
            "from_number": "+12025550100",
            "base_url": twilio.base_url,
        },
    )
    _remind(runtime)
    [sent] = twilio.requests
    assert sent.method == "POST" and sent.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    form = parse_qs(sent.body.decode())
    assert form["To"] == ["+12025550101"] and form["From"] == ["+12025550100"]
    assert form["StatusCallback"] == [f"{PUBLIC}/webhooks/twilio/default/status"]
    assert "reminder of your appointment" in form["Body"][0]
    assert sent.headers["authorization"].startswith("Basic ")
    first_sid = f"SM{1:032d}"
    assert _thread(runtime)[0][2] == "queued"

    # The status callback, signed as Twilio signs it.
    callback = {"MessageSid": first_sid, "MessageStatus": "delivered", "AccountSid": SID}
    assert _twilio_post(app_client, "/webhooks/twilio/default/status", callback).status_code == 200
    assert _thread(runtime)[0][2] == "delivered"
    assert states(runtime)[("a1", "-72h")] == "delivered"

    # The patient answers C; a forged copy is refused and changes nothing.
    inbound = {"MessageSid": "SMin1", "From": "+12025550101", "To": "+12025550100", "Body": "C"}
    forged = _twilio_post(app_client, "/webhooks/twilio/default/sms", inbound, forge=True)
    assert forged.status_code == 403
    assert _appointment(runtime) == ("booked", "unconfirmed")
    for _ in range(3):  # Twilio retries: processed once
        answer = _twilio_post(app_client, "/webhooks/twilio/default/sms", inbound)
        assert answer.status_code == 200
        assert answer.text.strip().startswith("<?xml") and "<Response" in answer.text
    assert _appointment(runtime) == ("booked", "confirmed")
    assert states(runtime)[("a1", "-24h")] == "cancelled"
    assert len(twilio.requests) == 2  # the receipt, once
    assert "confirmed for" in parse_qs(twilio.requests[1].body.decode())["Body"][0]

    # STOP: one confirmation, then silence on SMS.
    stop = {"MessageSid": "SMin2", "From": "+12025550101", "To": "+12025550100", "Body": "STOP"}
    _twilio_post(app_client, "/webhooks/twilio/default/sms", stop)
    again = {"MessageSid": "SMin3", "From": "+12025550101", "To": "+12025550100", "Body": "hi?"}
    _twilio_post(app_client, "/webhooks/twilio/default/sms", again)
    bodies = [parse_qs(r.body.decode())["Body"][0] for r in twilio.requests]
    assert len(bodies) == 3 and "no more messages" in bodies[2]
    thread = _thread(runtime)
    assert [(d, s) for d, _c, s, _b in thread] == [
        ("outbound", "delivered"),
        ("inbound", "received"),
        ("outbound", "queued"),
        ("inbound", "received"),
        ("outbound", "queued"),
        ("inbound", "received"),
        ("outbound", "failed"),  # the acknowledgement of "hi?": opted out, never sent
    ]


def test_twilio_opt_out_reported_by_the_carrier_revokes_consent(
    app_client: TestClient, runtime: Runtime, twilio: Any
) -> None:
    _account(
        runtime,
        "sms",
        "twilio",
        {
            "account_sid": SID,
            "auth_token": TOKEN,
            "from_number": "+12025550100",
            "base_url": twilio.base_url,
        },
    )
    _remind(runtime)
    callback = {
        "MessageSid": f"SM{1:032d}",
        "MessageStatus": "failed",
        "ErrorCode": "21610",
    }
    _twilio_post(app_client, "/webhooks/twilio/default/status", callback)
    assert states(runtime)[("a1", "-72h")] == "failed"
    with runtime.transaction() as session:
        appointment = session.scalars(select(Appointment)).one()
        consents = {c.channel: c.status for c in appointment.patient.consents}
    assert consents["sms"] == "revoked"


# --- WhatsApp Cloud API ---------------------------------------------------------------------


def _meta_post(client: TestClient, body: dict[str, Any], secret: str = APP_SECRET) -> Any:
    raw = json.dumps(body).encode()
    signature = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return client.post(
        "/webhooks/whatsapp/default",
        content=raw,
        headers={"Content-Type": "application/json", "X-Hub-Signature-256": signature},
    )


def _whatsapp_event(value: dict[str, Any]) -> dict[str, Any]:
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": value}]}],
    }


def test_whatsapp_through_the_cloud_api(app_client: TestClient, runtime: Runtime) -> None:
    replies = [
        Reply(200, json.dumps({"messages": [{"id": f"wamid.out{n}"}]}).encode())
        for n in range(1, 5)
    ]
    with recording_server(*replies) as meta:
        _account(
            runtime,
            "whatsapp",
            "whatsapp_cloud",
            {
                "phone_number_id": "1234567890",
                "access_token": "meta-token",
                "app_secret": APP_SECRET,
                "verify_token": "verify-me",
                "base_url": meta.base_url,
            },
        )
        handshake = app_client.get(
            "/webhooks/whatsapp/default",
            params={
                "hub.mode": "subscribe",
                "hub.verify_token": "verify-me",
                "hub.challenge": "42",
            },
        )
        assert handshake.status_code == 200 and handshake.text == "42"
        wrong = app_client.get(
            "/webhooks/whatsapp/default",
            params={"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "42"},
        )
        assert wrong.status_code == 403

        _remind(runtime, preferred_channel="whatsapp", consent={"whatsapp": True})
        [sent] = meta.requests
        assert sent.path == "/v23.0/1234567890/messages"
        body = json.loads(sent.body)
        # Business-initiated: an approved template with the first name and the time.
        assert body["type"] == "template" and body["to"] == "+12025550101"
        assert body["template"]["name"] == "appointment_reminder"
        assert sent.headers["authorization"] == "Bearer meta-token"

        # The patient taps the "C" quick-reply button.
        button = _whatsapp_event(
            {
                "messaging_product": "whatsapp",
                "metadata": {"phone_number_id": "1234567890"},
                "messages": [
                    {
                        "from": "12025550101",
                        "id": "wamid.in1",
                        "timestamp": str(int(time.time())),
                        "type": "button",
                        "button": {"payload": "C", "text": "Confirm"},
                    }
                ],
            }
        )
        assert _meta_post(app_client, button, secret="wrong").status_code == 403
        for _ in range(2):
            assert _meta_post(app_client, button).status_code == 200
        assert _appointment(runtime) == ("booked", "confirmed")
        receipt = json.loads(meta.requests[1].body)
        # Inside the 24-hour window the receipt is plain text.
        assert receipt["type"] == "text" and "confirmed" in receipt["text"]["body"]
        assert len(meta.requests) == 2

        status = _whatsapp_event(
            {
                "messaging_product": "whatsapp",
                "metadata": {"phone_number_id": "1234567890"},
                "statuses": [
                    {
                        "id": "wamid.out2",
                        "status": "read",
                        "timestamp": str(int(time.time())),
                        "recipient_id": "12025550101",
                    }
                ],
            }
        )
        _meta_post(app_client, status)
        assert _thread(runtime)[-1][2] == "read"


# --- Email: SMTP out, Mailgun in ------------------------------------------------------------


def test_email_over_smtp_with_a_reply_through_mailgun(
    app_client: TestClient, runtime: Runtime
) -> None:
    mailbox = Mailbox()
    controller = LoopbackController(mailbox, hostname="127.0.0.1", port=0)
    controller.start()
    try:
        _account(
            runtime,
            "email",
            "smtp",
            {
                "host": "127.0.0.1",
                "port": controller.port,
                "security": "none",
                "from_address": "Harbor Light <frontdesk@harborlight.example>",
            },
        )
        _account(runtime, "email_inbound", "mailgun", {"signing_key": "mg-key"})
        _remind(runtime, preferred_channel="email")
        _sender, rcpt, data = mailbox.received[0]
        assert rcpt == ["avery@example.com"]
        email = message_from_bytes(data, policy=default_policy)
        assert email.get_content_type() == "multipart/alternative"
        assert "Confirm:" in email.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert "<a href=" in email.get_body(("html",)).get_content()  # type: ignore[union-attr]
        reminder_id = email["Message-ID"]

        timestamp, token = str(int(time.time())), "tok-1"
        signature = hmac.new(b"mg-key", (timestamp + token).encode(), hashlib.sha256).hexdigest()
        reply = {
            "sender": "avery@example.com",
            "from": "Avery <avery@example.com>",
            "recipient": "frontdesk@harborlight.example",
            "subject": "Re: " + str(email["Subject"]),
            "body-plain": "C\n\nOn Mon, someone wrote:\n> reminder of your appointment\n> Reply C",
            "Message-Id": "<reply-1@mail.example>",
            "In-Reply-To": reminder_id,
            "timestamp": timestamp,
            "token": token,
            "signature": signature,
        }
        forged = dict(reply, signature="0" * 64)
        assert app_client.post("/webhooks/email/default/mailgun", data=forged).status_code == 403
        assert app_client.post("/webhooks/email/default/mailgun", data=reply).status_code == 200
        assert _appointment(runtime) == ("booked", "confirmed")
        receipt = message_from_bytes(mailbox.received[1][2], policy=default_policy)
        assert receipt["In-Reply-To"] == "<reply-1@mail.example>"
        inbound = [t for t in _thread(runtime) if t[0] == "inbound"]
        assert [t[3] for t in inbound] == ["C"]  # the quoted original was stripped
    finally:
        controller.stop()


def test_webhooks_for_unconfigured_channels_are_404(app_client: TestClient) -> None:
    assert app_client.post("/webhooks/twilio/default/sms", data={"Body": "C"}).status_code == 404
    assert app_client.post("/webhooks/twilio/nowhere/sms", data={"Body": "C"}).status_code == 404
    assert app_client.post("/webhooks/email/default/mailgun", data={}).status_code == 404


def test_channel_accounts_keep_secrets_sealed_and_masked(runtime: Runtime) -> None:
    _account(
        runtime,
        "sms",
        "twilio",
        {"account_sid": SID, "auth_token": TOKEN, "from_number": "+12025550100"},
    )
    with runtime.transaction() as session:
        practice = session.scalars(select(Practice)).one()
        [shown] = channel_accounts.list_accounts(session, practice, runtime.cipher)
        from frontdesk.adapters.db.channel_models import ChannelAccount

        row = session.scalars(select(ChannelAccount)).one()
        assert TOKEN not in json.dumps(row.settings) and TOKEN not in (row.secrets_sealed or "")
        # An edit without the secret keeps it.
        channel_accounts.set_account(
            session,
            runtime.cipher,
            practice,
            "sms",
            "twilio",
            {"account_sid": SID, "from_number": "+12025550199"},
            actor="test",
        )
    assert shown["secrets"] == {"auth_token": "…ests"}
    with (
        pytest.raises(channel_accounts.ValidationFailed) as caught,
        runtime.transaction() as session,
    ):
        practice = session.scalars(select(Practice)).one()
        channel_accounts.set_account(
            session, runtime.cipher, practice, "sms", "twilio", {"account_sid": "x"}, actor="t"
        )
    assert "account_sid" in {e.loc for e in caught.value.errors}


def test_whatsapp_text_outside_the_window_falls_back_to_another_channel(
    runtime: Runtime,
) -> None:
    from frontdesk.domain.channels import Channel
    from frontdesk.services import inbox
    from frontdesk.services.chores import message_sender

    with recording_server(Reply(200, b'{"messages": [{"id": "wamid.x"}]}')) as meta:
        _account(
            runtime,
            "whatsapp",
            "whatsapp_cloud",
            {
                "phone_number_id": "1234567890",
                "access_token": "meta-token",
                "app_secret": APP_SECRET,
                "verify_token": "verify-me",
                "base_url": meta.base_url,
            },
        )
        now = now_utc()
        put(
            runtime,
            Clock(now - timedelta(hours=1)),
            now + timedelta(days=5),
            announce=False,
            patient={"preferred_channel": "whatsapp", "consent": {"whatsapp": True}},
        )
        with runtime.transaction() as session:
            practice = session.scalars(select(Practice)).one()
            patient_id = session.scalars(select(Appointment.patient_id)).one()
            from frontdesk.adapters.db.models import Patient
            from frontdesk.services.replies import thread_for

            patient = session.get(Patient, patient_id)
            conversation = thread_for(
                session, runtime.cipher, practice, patient, Channel.WHATSAPP, None
            )
            session.flush()
            message = inbox.reply(
                session,
                practice,
                conversation.id,
                text="Your paperwork is ready.",
                channel=Channel.WHATSAPP,
                who="staff",
                cipher=runtime.cipher,
                now=now,
            )
            session.flush()
            message_id = message.id
        message_sender(runtime).send_now([message_id])
        assert meta.requests == []  # refused locally: the patient has not written in 24 h
    thread = _thread(runtime)
    assert [(c, s) for _d, c, s, _b in thread] == [("whatsapp", "failed"), ("sms", "delivered")]
    with runtime.transaction() as session:
        refused = session.get(Message, message_id)
        assert refused is not None and "sent by sms instead" in (refused.error or "")


def test_outside_the_window_staff_can_send_an_approved_whatsapp_template(
    runtime: Runtime,
) -> None:
    from frontdesk.adapters.db.models import Patient
    from frontdesk.domain.channels import Channel
    from frontdesk.services import inbox
    from frontdesk.services.chores import message_sender
    from frontdesk.services.replies import thread_for

    with recording_server(Reply(200, b'{"messages": [{"id": "wamid.t"}]}')) as meta:
        _account(
            runtime,
            "whatsapp",
            "whatsapp_cloud",
            {
                "phone_number_id": "1234567890",
                "access_token": "meta-token",
                "app_secret": APP_SECRET,
                "verify_token": "verify-me",
                "base_url": meta.base_url,
            },
        )
        now = now_utc()
        put(
            runtime,
            Clock(now - timedelta(hours=1)),
            now + timedelta(days=5),
            announce=False,
            patient={"preferred_channel": "whatsapp", "consent": {"whatsapp": True}},
        )
        with runtime.transaction() as session:
            practice = session.scalars(select(Practice)).one()
            patient = session.scalars(select(Patient)).one()
            conversation = thread_for(
                session, runtime.cipher, practice, patient, Channel.WHATSAPP, None
            )
            session.flush()
            message = inbox.reply(
                session,
                practice,
                conversation.id,
                text="",
                channel=Channel.WHATSAPP,
                who="staff",
                cipher=runtime.cipher,
                now=now,
                template="booking_confirmation",
            )
            session.flush()
            message_id = message.id
        message_sender(runtime).send_now([message_id])
        [sent] = meta.requests
    body = json.loads(sent.body)
    assert body["type"] == "template" and body["template"]["name"] == "appointment_booked"
    params = body["template"]["components"][0]["parameters"]
    assert params[0]["text"] == "Avery"
    assert _thread(runtime)[-1][2] == "queued"  # accepted by Meta; statuses follow
