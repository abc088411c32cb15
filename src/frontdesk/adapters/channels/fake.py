"""A channel for tests: records what it was asked to send, fails when told to."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from frontdesk.adapters.channels.base import OutboundMessage, SendResult


@dataclass
class FakeChannel:
    """Counts every call, and (like a provider honouring idempotency keys) delivers a key once.

    ``fail`` may raise TransientError / PermanentError for a message to simulate the provider.
    """

    fail: Callable[[OutboundMessage], None] | None = None
    calls: list[OutboundMessage] = field(default_factory=list)
    delivered: dict[str, OutboundMessage] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, message: OutboundMessage) -> SendResult:
        with self._lock:
            self.calls.append(message)
        if self.fail is not None:
            self.fail(message)
        with self._lock:
            self.delivered.setdefault(message.idempotency_key, message)
        return SendResult(provider_message_id=f"fake-{message.idempotency_key}", status="sent")
