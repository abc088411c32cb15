"""Inbound webhooks: store the raw request first, then process it, once.

Every receiver (Twilio, WhatsApp, SendGrid / Mailgun, Calendly, Cal.com, generic) follows the
same three steps: verify the signature, ``store`` the raw payload (a redelivery finds its first
row and is not processed again), then ``process`` it with its own handler. A handler that
raises leaves the row ``failed`` with a PHI-free reason, to be retried by ``retry_failed``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from frontdesk.adapters.db.models import InboundWebhook
from frontdesk.bootstrap import Runtime
from frontdesk.domain.times import now_utc

# A handler gets the webhook's row and its opened payload, inside the processing transaction.
Handler = Callable[[Session, InboundWebhook, str], None]


@dataclass(frozen=True)
class Stored:
    webhook_id: int
    duplicate: bool  # True when this delivery was seen before: do not process it again


def store(
    runtime: Runtime,
    *,
    practice_id: int,
    provider: str,
    kind: str,
    dedupe_key: str,
    payload: str,
    content_type: str | None = None,
) -> Stored:
    """Keep the payload durably before anything reads it. Safe under concurrent redelivery: the
    unique (practice, provider, dedupe key) lets exactly one delivery create the row."""
    try:
        with runtime.transaction() as session:
            row = InboundWebhook(
                practice_id=practice_id,
                provider=provider,
                kind=kind,
                dedupe_key=dedupe_key[:300],
                content_type=content_type,
                raw_sealed=runtime.cipher.seal(payload) or "",
                state="received",
                attempts=0,
            )
            session.add(row)
            session.flush()
            return Stored(row.id, duplicate=False)
    except IntegrityError:
        with runtime.transaction() as session:
            existing = session.scalar(
                select(InboundWebhook.id).where(
                    InboundWebhook.practice_id == practice_id,
                    InboundWebhook.provider == provider,
                    InboundWebhook.dedupe_key == dedupe_key[:300],
                )
            )
            if existing is None:  # the other writer rolled back: try once more
                return store(
                    runtime,
                    practice_id=practice_id,
                    provider=provider,
                    kind=kind,
                    dedupe_key=dedupe_key,
                    payload=payload,
                    content_type=content_type,
                )
            return Stored(existing, duplicate=True)


def process(runtime: Runtime, webhook_id: int, handler: Handler) -> str:
    """Run ``handler`` on a stored webhook unless it was already processed. Returns the state.

    The row is locked for the processing transaction, so two processes retrying the same
    webhook cannot both act on it.
    """
    try:
        with runtime.transaction() as session:
            row = session.scalar(
                select(InboundWebhook).where(InboundWebhook.id == webhook_id).with_for_update()
            )
            if row is None:
                return "missing"
            if row.state in ("processed", "ignored"):
                return row.state
            row.attempts += 1
            payload = runtime.cipher.open(row.raw_sealed) or ""
            handler(session, row, payload)
            if row.state == "received" or row.state == "failed":
                row.state = "processed"
            row.error = None
            row.processed_at = now_utc()
            return row.state
    except Exception as exc:  # any failure must leave the row retryable
        with runtime.transaction() as session:
            row = session.get(InboundWebhook, webhook_id)
            if row is not None:
                row.state = "failed"
                row.attempts += 1
                # The exception's type only: its message may quote the payload.
                row.error = f"{type(exc).__name__} while processing"
        return "failed"


def retry_failed(
    runtime: Runtime,
    handlers: dict[str, Handler],
    *,
    limit: int = 100,
    stored_before: datetime | None = None,
) -> dict[str, int]:
    """Process again the webhooks that failed (or were stored but never processed, say by a
    crash between storing and processing), oldest first, with the handler for their provider.
    ``stored_before`` leaves alone what another process stored a moment ago and is handling."""
    with runtime.transaction() as session:
        pending = session.execute(
            select(InboundWebhook.id, InboundWebhook.provider)
            .where(
                InboundWebhook.state.in_(("received", "failed")),
                InboundWebhook.received_at < (stored_before or now_utc()),
            )
            .order_by(InboundWebhook.received_at)
            .limit(limit)
        ).all()
    counts: dict[str, int] = {}
    for webhook_id, provider in pending:
        handler = handlers.get(provider)
        if handler is None:
            continue
        state = process(runtime, webhook_id, handler)
        counts[state] = counts.get(state, 0) + 1
    return counts
