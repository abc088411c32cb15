"""What every channel offers the dispatcher: send one message, idempotently."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from frontdesk.domain.channels import Channel


@dataclass(frozen=True)
class OutboundMessage:
    """One message to one patient. ``idempotency_key`` is the same on every retry of the same
    message, so a provider that honours it (and our outbox) never delivers it twice."""

    practice_id: int
    patient_id: int
    channel: Channel
    to: str
    body: str
    idempotency_key: str
    subject: str | None = None


@dataclass(frozen=True)
class SendResult:
    provider_message_id: str
    status: str  # "queued", "sent" or "delivered"


class ChannelSender(Protocol):
    """Sends on one channel; raises TransientError or PermanentError (domain/errors.py)."""

    def send(self, message: OutboundMessage) -> SendResult: ...
