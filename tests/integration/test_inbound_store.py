"""Inbound webhooks are stored raw before processing, processed once, and retried on failure."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from frontdesk.adapters.db.models import InboundWebhook, Practice
from frontdesk.bootstrap import Runtime
from frontdesk.services import inbound


def _practice(runtime: Runtime) -> int:
    with runtime.transaction() as session:
        practice = Practice(slug="p", name="P", timezone="America/New_York")
        session.add(practice)
        session.flush()
        return practice.id


def test_a_redelivery_is_stored_once_and_processed_once(runtime: Runtime) -> None:
    practice_id = _practice(runtime)
    seen: list[str] = []

    def handler(session: Session, row: InboundWebhook, payload: str) -> None:
        seen.append(payload)

    states = []
    for _ in range(3):
        stored = inbound.store(
            runtime,
            practice_id=practice_id,
            provider="twilio",
            kind="message",
            dedupe_key="SM123",
            payload="Body=C&From=%2B15555550100",
        )
        if not stored.duplicate:
            states.append(inbound.process(runtime, stored.webhook_id, handler))
        else:
            # Processing a duplicate again is refused by the row's state, too.
            states.append(inbound.process(runtime, stored.webhook_id, handler))
    assert seen == ["Body=C&From=%2B15555550100"]
    assert states == ["processed", "processed", "processed"]
    with runtime.transaction() as session:
        rows = session.scalars(select(InboundWebhook)).all()
        assert len(rows) == 1
        # Sealed at rest: the phone number is not in the stored column.
        assert "5555550100" not in rows[0].raw_sealed


def test_a_failed_handler_leaves_the_webhook_retryable_without_phi(runtime: Runtime) -> None:
    practice_id = _practice(runtime)
    calls = []

    def broken(session: Session, row: InboundWebhook, payload: str) -> None:
        calls.append(1)
        raise ValueError(f"cannot parse {payload}")

    stored = inbound.store(
        runtime,
        practice_id=practice_id,
        provider="whatsapp",
        kind="message",
        dedupe_key="wamid.1",
        payload='{"from": "15555550100"}',
    )
    assert inbound.process(runtime, stored.webhook_id, broken) == "failed"
    with runtime.transaction() as session:
        row = session.get(InboundWebhook, stored.webhook_id)
        assert row is not None and row.state == "failed"
        assert row.error is not None and "5555550100" not in row.error

    fixed: list[str] = []
    counts = inbound.retry_failed(
        runtime, {"whatsapp": lambda session, row, payload: fixed.append(payload)}
    )
    assert counts == {"processed": 1}
    assert fixed == ['{"from": "15555550100"}']
    assert inbound.retry_failed(runtime, {"whatsapp": broken}) == {}
