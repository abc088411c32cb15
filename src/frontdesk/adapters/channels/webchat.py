"""The web chat 'provider': a message to a visitor is delivered by storing it in their thread,
which the widget reads (and is told about over server-sent events)."""

from __future__ import annotations

from frontdesk.adapters.channels.base import OutboundMessage, SendResult


class WebchatChannel:
    def send(self, message: OutboundMessage) -> SendResult:
        return SendResult(
            provider_message_id=f"webchat-{message.idempotency_key}", status="delivered"
        )
