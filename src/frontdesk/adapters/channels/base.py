"""What every channel offers the dispatcher: send one message, idempotently; and the plain shapes
in which provider adapters hand inbound messages and delivery statuses to the services."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol, TypeVar

from frontdesk.domain.channels import Channel
from frontdesk.domain.errors import DeliveryError


@dataclass(frozen=True)
class WhatsAppTemplate:
    """An approved WhatsApp message template: its name, language code (``en_US``, ``es``), the
    values of its body placeholders ``{{1}}``, ``{{2}}`` … in order, and one payload per
    quick-reply button (index 0, 1, …) that comes back in the patient's button reply."""

    name: str
    language: str
    body_parameters: tuple[str, ...] = ()
    button_payloads: tuple[str, ...] = ()


@dataclass(frozen=True)
class OutboundMessage:
    """One message to one patient. ``idempotency_key`` is the same on every retry of the same
    message, so a provider that honours it (and our outbox) never delivers it twice.

    The optional fields are used by the channels that understand them and ignored by the others:
    ``html_body``, ``in_reply_to``, ``references`` and ``unsubscribe_url`` by email;
    ``status_callback_url`` by Twilio; ``whatsapp_template`` and ``last_inbound_at`` (when the
    patient last wrote on WhatsApp, which opens the 24-hour window for free-form text) by
    WhatsApp."""

    practice_id: int
    patient_id: int | None  # None: a staff alert, or a sender on no patient's record
    channel: Channel
    to: str
    body: str
    idempotency_key: str
    subject: str | None = None
    html_body: str | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    unsubscribe_url: str | None = None
    status_callback_url: str | None = None
    whatsapp_template: WhatsAppTemplate | None = None
    last_inbound_at: datetime | None = None


@dataclass(frozen=True)
class SendResult:
    provider_message_id: str
    status: str  # "queued", "sent" or "delivered"


class ChannelSender(Protocol):
    """Sends on one channel; raises TransientError or PermanentError (domain/errors.py)."""

    def send(self, message: OutboundMessage) -> SendResult: ...


class DeliveryStatus(StrEnum):
    """A provider's delivery status, normalised across providers."""

    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    READ = "read"


@dataclass(frozen=True)
class InboundMessage:
    """One message a patient sent us, as a provider delivered it.

    ``text`` is what to read: for email, the new reply with quoted history and signature
    stripped; for a WhatsApp button, the button's title. ``raw_text`` is the whole body as
    received. ``button_payload`` is the payload / id of a WhatsApp button or list choice.
    ``in_reply_to`` is the provider id of our message this answers (email ``In-Reply-To``,
    WhatsApp ``context.id``). ``extras`` keeps other provider fields worth storing (never used
    for matching); it may contain contact data and is to be treated like the body."""

    channel: Channel
    from_address: str
    to_address: str
    text: str
    raw_text: str
    provider_message_id: str
    received_at: datetime
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    subject: str | None = None
    button_payload: str | None = None
    extras: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StatusUpdate:
    """A delivery-status callback for one message we sent. ``status`` is None when the provider
    status has no meaning for us (e.g. Twilio's ``receiving``); ``raw_status`` keeps the
    provider's word. ``recipient_opted_out`` is True when the error code says the recipient has
    opted out at the provider."""

    provider_message_id: str
    status: DeliveryStatus | None
    raw_status: str
    error_code: str | None = None
    occurred_at: datetime | None = None
    recipient_opted_out: bool = False


E = TypeVar("E", bound=DeliveryError)


def delivery_error(kind: type[E], message: str, provider_code: str | int | None = None) -> E:
    """An error of our hierarchy carrying the provider's error code. ``message`` must not carry
    contact data or message text (it ends up in logs and the outbox's error column)."""
    error = kind(message)
    error.provider_code = None if provider_code is None else str(provider_code)
    return error
