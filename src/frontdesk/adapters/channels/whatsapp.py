"""WhatsApp through Meta's WhatsApp Cloud API (httpx): template messages for business-initiated
reminders, free-form text only inside the 24-hour customer-service window, the webhook handshake,
``X-Hub-Signature-256``, and inbound messages, button replies and statuses from webhooks."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from frontdesk.adapters.channels.base import (
    DeliveryStatus,
    InboundMessage,
    OutboundMessage,
    SendResult,
    StatusUpdate,
    WhatsAppTemplate,
    delivery_error,
)
from frontdesk.adapters.channels.config import WhatsAppSettings
from frontdesk.domain.channels import Channel
from frontdesk.domain.errors import (
    ChannelMisconfigured,
    DeliveryError,
    OutsideServiceWindow,
    PermanentError,
    RecipientOptedOut,
    TransientError,
)

SIGNATURE_HEADER = "X-Hub-Signature-256"
SERVICE_WINDOW = timedelta(hours=24)

#: Re-engagement message: more than 24 hours since the patient's last message.
OUTSIDE_WINDOW_CODES = frozenset({131047})
#: The recipient has stopped marketing messages from this business.
OPTED_OUT_CODES = frozenset({131050})
#: Worth retrying later: throttling, Meta-side trouble, per-user limits.
TRANSIENT_CODES = frozenset(
    {1, 2, 4, 17, 32, 613, 80007, 130429, 131000, 131016, 131048, 131049, 131056, 133004}
)
#: Our token, app, phone number, account or template set-up is wrong.
MISCONFIGURED_CODES = frozenset(
    {0, 3, 10, 33, 190, 368, 131005, 131031, 131037, 131042, 131045, 133010}
    | {132000, 132001, 132005, 132007, 132012, 132015, 132016, 132068, 132069}
)
_PERMISSION_CODES = range(200, 300)

_STATUS = {
    "accepted": DeliveryStatus.QUEUED,
    "held_for_quality_assessment": DeliveryStatus.QUEUED,
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.READ,
    "played": DeliveryStatus.READ,
    "failed": DeliveryStatus.FAILED,
}

#: Inbound message types that are not something the patient said to us.
_IGNORED_TYPES = frozenset({"reaction", "revoke", "system", "ephemeral", "edit"})


def service_window_open(
    last_inbound_at: datetime | None, now: datetime, *, window: timedelta = SERVICE_WINDOW
) -> bool:
    """Whether free-form messages may be sent: the patient wrote less than 24 hours ago."""
    if last_inbound_at is None:
        return False
    return now - last_inbound_at < window


def verify_subscription(params: Mapping[str, str], verify_token: str) -> str | None:
    """The GET handshake: the ``hub.challenge`` to echo when ``hub.mode`` is ``subscribe`` and
    ``hub.verify_token`` is ours; None otherwise (answer 403)."""
    if params.get("hub.mode") != "subscribe" or not verify_token:
        return None
    offered = params.get("hub.verify_token") or ""
    if not hmac.compare_digest(offered.encode("utf-8"), verify_token.encode("utf-8")):
        return None
    challenge = params.get("hub.challenge")
    return challenge if challenge else None


def verify_signature(raw_body: bytes, header: str | None, app_secret: str) -> bool:
    """``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body with the app secret>``,
    compared in constant time. Use the body bytes exactly as received."""
    if not header or not app_secret:
        return False
    scheme, _, received = header.strip().partition("=")
    if scheme.lower() != "sha256" or not received:
        return False
    expected = hmac.new(app_secret.encode("utf-8"), raw_body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, received.lower())


@dataclass(frozen=True)
class WhatsAppWebhook:
    """What one webhook POST carried that we act on. ``ignored`` counts changes and messages
    skipped (other fields such as template status updates, reactions, system messages)."""

    messages: list[InboundMessage] = field(default_factory=list)
    statuses: list[StatusUpdate] = field(default_factory=list)
    ignored: int = 0


def _timestamp(value: Any, fallback: datetime) -> datetime:
    try:
        return datetime.fromtimestamp(int(value), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return fallback


def _message_text(message: Mapping[str, Any]) -> tuple[str, str | None, dict[str, str]]:
    """(text, button payload, extras) of one inbound message."""
    kind = str(message.get("type") or "")
    extras: dict[str, str] = {"type": kind}
    if kind == "text":
        return str((message.get("text") or {}).get("body") or ""), None, extras
    if kind == "button":  # a template's quick-reply button
        button = message.get("button") or {}
        return str(button.get("text") or ""), str(button.get("payload") or "") or None, extras
    if kind == "interactive":
        interactive = message.get("interactive") or {}
        sub = str(interactive.get("type") or "")
        extras["interactive_type"] = sub
        reply = interactive.get(sub) or {}
        if sub in ("button_reply", "list_reply"):
            return str(reply.get("title") or ""), str(reply.get("id") or "") or None, extras
        return "", None, extras
    media = message.get(kind)
    if isinstance(media, Mapping):
        if media.get("id"):
            extras["media_id"] = str(media["id"])
        return str(media.get("caption") or ""), None, extras
    return "", None, extras


def parse_webhook(
    payload: bytes | str | Mapping[str, Any], *, received_at: datetime
) -> WhatsAppWebhook:
    """Inbound messages and statuses of one webhook body (``entry[].changes[].value``). Fields
    other than ``messages`` and message types that are not the patient speaking are skipped;
    a body that is not a WhatsApp webhook raises ValueError."""
    body: Any = json.loads(payload) if isinstance(payload, (bytes, str)) else payload
    if not isinstance(body, Mapping) or body.get("object") != "whatsapp_business_account":
        raise ValueError("not a WhatsApp Business Account webhook")
    try:
        return _parse_entries(body, received_at)
    except (AttributeError, TypeError, KeyError) as exc:
        raise ValueError(f"malformed WhatsApp webhook: {type(exc).__name__}") from exc


def _parse_entries(body: Mapping[str, Any], received_at: datetime) -> WhatsAppWebhook:
    messages: list[InboundMessage] = []
    statuses: list[StatusUpdate] = []
    ignored = 0
    for entry in body.get("entry") or []:
        for change in (entry or {}).get("changes") or []:
            if not isinstance(change, Mapping) or change.get("field") != "messages":
                ignored += 1
                continue
            value = change.get("value") or {}
            metadata = value.get("metadata") or {}
            business = str(metadata.get("display_phone_number") or "")
            names = {
                str(contact.get("wa_id")): str((contact.get("profile") or {}).get("name") or "")
                for contact in value.get("contacts") or []
                if isinstance(contact, Mapping)
            }
            for message in value.get("messages") or []:
                if not isinstance(message, Mapping) or not message.get("id"):
                    ignored += 1
                    continue
                if str(message.get("type") or "") in _IGNORED_TYPES:
                    ignored += 1
                    continue
                text, payload_id, extras = _message_text(message)
                sender = str(message.get("from") or "")
                if names.get(sender):
                    extras["profile_name"] = names[sender]
                if metadata.get("phone_number_id"):
                    extras["phone_number_id"] = str(metadata["phone_number_id"])
                context = message.get("context") or {}
                messages.append(
                    InboundMessage(
                        channel=Channel.WHATSAPP,
                        from_address=f"+{sender}" if sender and sender[0] != "+" else sender,
                        to_address=f"+{business}" if business and business[0] != "+" else business,
                        text=text.strip(),
                        raw_text=text,
                        provider_message_id=str(message["id"]),
                        received_at=_timestamp(message.get("timestamp"), received_at),
                        in_reply_to=str(context["id"]) if context.get("id") else None,
                        button_payload=payload_id,
                        extras=extras,
                    )
                )
            for status in value.get("statuses") or []:
                if not isinstance(status, Mapping) or not status.get("id"):
                    ignored += 1
                    continue
                errors = status.get("errors") or []
                code = errors[0].get("code") if errors and isinstance(errors[0], Mapping) else None
                raw = str(status.get("status") or "")
                statuses.append(
                    StatusUpdate(
                        provider_message_id=str(status["id"]),
                        status=_STATUS.get(raw),
                        raw_status=raw,
                        error_code=None if code is None else str(code),
                        occurred_at=_timestamp(status.get("timestamp"), received_at),
                        recipient_opted_out=code in OPTED_OUT_CODES,
                    )
                )
    return WhatsAppWebhook(messages=messages, statuses=statuses, ignored=ignored)


def _recipient(address: str) -> str:
    """WhatsApp wants the number with country code; accept "+1555…", "whatsapp:+1555…"."""
    number = address.removeprefix("whatsapp:").strip()
    return number if number.startswith("+") else f"+{number}"


def template_payload(template: WhatsAppTemplate) -> dict[str, Any]:
    components: list[dict[str, Any]] = []
    if template.body_parameters:
        components.append(
            {
                "type": "body",
                "parameters": [{"type": "text", "text": p} for p in template.body_parameters],
            }
        )
    for index, button_payload in enumerate(template.button_payloads):
        components.append(
            {
                "type": "button",
                "sub_type": "quick_reply",
                "index": str(index),
                "parameters": [{"type": "payload", "payload": button_payload}],
            }
        )
    payload: dict[str, Any] = {"name": template.name, "language": {"code": template.language}}
    if components:
        payload["components"] = components
    return payload


def error_for(code: int | None, http_status: int) -> DeliveryError:
    what = f"WhatsApp refused the message (HTTP {http_status}, error {code})"
    if code in OUTSIDE_WINDOW_CODES:
        return delivery_error(OutsideServiceWindow, what, code)
    if code in OPTED_OUT_CODES:
        return delivery_error(RecipientOptedOut, what, code)
    if code in TRANSIENT_CODES or http_status == 429 or http_status >= 500:
        return delivery_error(TransientError, what, code)
    if (
        code in MISCONFIGURED_CODES
        or (code is not None and code in _PERMISSION_CODES)
        or http_status in (401, 403)
    ):
        return delivery_error(ChannelMisconfigured, what, code)
    return delivery_error(PermanentError, what, code)


class WhatsAppChannel:
    """Sends with ``POST {base_url}/{api_version}/{phone_number_id}/messages``.

    A message with ``whatsapp_template`` goes as that template. One without goes as free-form
    text only when ``last_inbound_at`` is within the 24-hour window; otherwise it raises
    OutsideServiceWindow without calling Meta, so the caller sends a template or uses another
    channel."""

    def __init__(
        self,
        settings: WhatsAppSettings,
        *,
        client: httpx.Client | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._settings = settings
        self._client = client or httpx.Client(timeout=settings.timeout_seconds)
        self._clock = clock or (lambda: datetime.now(UTC))

    def close(self) -> None:
        self._client.close()

    @property
    def messages_url(self) -> str:
        settings = self._settings
        base = settings.base_url.rstrip("/")
        return f"{base}/{settings.api_version}/{settings.phone_number_id}/messages"

    def request_body(self, message: OutboundMessage) -> dict[str, Any]:
        body: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": _recipient(message.to),
        }
        if message.whatsapp_template is not None:
            body["type"] = "template"
            body["template"] = template_payload(message.whatsapp_template)
            return body
        window = timedelta(hours=self._settings.service_window_hours)
        if not service_window_open(message.last_inbound_at, self._clock(), window=window):
            raise delivery_error(
                OutsideServiceWindow,
                "free-form WhatsApp text outside the 24-hour window: send a template",
            )
        body["type"] = "text"
        body["text"] = {"preview_url": False, "body": message.body}
        return body

    def send(self, message: OutboundMessage) -> SendResult:
        body = self.request_body(message)
        token = self._settings.access_token.get_secret_value()
        try:
            response = self._client.post(
                self.messages_url,
                json=body,
                headers={"Authorization": f"Bearer {token}"},
                timeout=self._settings.timeout_seconds,
            )
        except httpx.TimeoutException as exc:
            raise delivery_error(TransientError, "WhatsApp did not answer in time") from exc
        except httpx.HTTPError as exc:
            raise delivery_error(
                TransientError, f"could not reach WhatsApp: {type(exc).__name__}"
            ) from exc
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if response.status_code >= 300:
            error = payload.get("error") if isinstance(payload, dict) else None
            code = error.get("code") if isinstance(error, dict) else None
            failure = error_for(code if isinstance(code, int) else None, response.status_code)
            raise failure from httpx.HTTPStatusError(
                f"HTTP {response.status_code}", request=response.request, response=response
            )
        try:
            first = payload["messages"][0]
            message_id = str(first["id"])
        except (TypeError, KeyError, IndexError) as exc:
            raise delivery_error(TransientError, "WhatsApp's answer had no message id") from exc
        return SendResult(provider_message_id=message_id, status=DeliveryStatus.QUEUED.value)
