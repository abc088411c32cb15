"""How each provider's stored webhook payload is read back into patient messages and delivery
updates. The same parser serves the first processing and every retry, so a payload kept for
replay is always read the same way."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from urllib.parse import parse_qsl

from frontdesk.adapters.channels import base as provider
from frontdesk.adapters.channels.email_inbound import parse_email, parse_mailgun, parse_sendgrid
from frontdesk.adapters.channels.twilio_sms import parse_inbound, parse_status_callback
from frontdesk.adapters.channels.whatsapp import parse_webhook
from frontdesk.domain.channels import Channel
from frontdesk.domain.times import now_utc
from frontdesk.services.inbound_messages import Parsed, register
from frontdesk.services.replies import Inbound


def inbound_of(message: provider.InboundMessage) -> Inbound:
    return Inbound(
        channel=message.channel,
        from_address=message.from_address,
        text=message.text,
        provider_message_id=message.provider_message_id,
        received_at=message.received_at,
        to_address=message.to_address or None,
        in_reply_to=message.in_reply_to,
        button=message.button_payload,
    )


def _envelope(payload: str) -> tuple[datetime, str]:
    """Our stored envelope: when it arrived, and the body exactly as received."""
    data = json.loads(payload)
    return datetime.fromisoformat(data["received_at"]), data["body"]


def envelope(body: str, received_at: datetime | None = None) -> str:
    return json.dumps({"received_at": (received_at or now_utc()).isoformat(), "body": body})


def _twilio(payload: str) -> Parsed:
    received_at, body = _envelope(payload)
    form = dict(parse_qsl(body, keep_blank_values=True))
    if "Body" in form or form.get("SmsStatus") == "received":
        return Parsed(messages=[inbound_of(parse_inbound(form, received_at=received_at))])
    return Parsed(statuses=[parse_status_callback(form)])


def _whatsapp(payload: str) -> Parsed:
    received_at, body = _envelope(payload)
    hook = parse_webhook(body, received_at=received_at)
    return Parsed(
        messages=[inbound_of(m) for m in hook.messages],
        statuses=list(hook.statuses),
    )


def _sendgrid(payload: str) -> Parsed:
    received_at, body = _envelope(payload)
    form: dict[str, str | bytes] = json.loads(body)
    return Parsed(messages=[inbound_of(parse_sendgrid(form, received_at=received_at))])


def _mailgun(payload: str) -> Parsed:
    received_at, body = _envelope(payload)
    return Parsed(messages=[inbound_of(parse_mailgun(json.loads(body), received_at=received_at))])


def _imap(payload: str) -> Parsed:
    received_at, body = _envelope(payload)
    raw = base64.b64decode(body)
    return Parsed(messages=[inbound_of(parse_email(raw, received_at=received_at))])


register("twilio", Channel.SMS, _twilio)
register("whatsapp", Channel.WHATSAPP, _whatsapp)
register("sendgrid", Channel.EMAIL, _sendgrid)
register("mailgun", Channel.EMAIL, _mailgun)
register("imap", Channel.EMAIL, _imap)
