"""The default channel: messages are stored, not sent, so a practice can try everything with no
provider account. It honours idempotency keys like a good provider: a retry of the same message
returns the first copy."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from frontdesk.adapters.channels.base import OutboundMessage, SendResult
from frontdesk.adapters.crypto import FieldCipher
from frontdesk.adapters.db.models import OutboxMessage
from frontdesk.domain.errors import TransientError


class OutboxChannel:
    def __init__(self, sessions: sessionmaker[Session], cipher: FieldCipher) -> None:
        self._sessions = sessions
        self._cipher = cipher

    def send(self, message: OutboundMessage) -> SendResult:
        try:
            with self._sessions() as session, session.begin():
                row = OutboxMessage(
                    practice_id=message.practice_id,
                    patient_id=message.patient_id,
                    channel=message.channel.value,
                    to_sealed=self._cipher.seal(message.to) or "",
                    subject=message.subject,
                    body=message.body,
                    idempotency_key=message.idempotency_key,
                    attempts=1,
                )
                session.add(row)
                session.flush()
                return SendResult(provider_message_id=f"outbox-{row.id}", status="delivered")
        except IntegrityError:
            with self._sessions() as session, session.begin():
                existing = session.scalar(
                    select(OutboxMessage).where(
                        OutboxMessage.idempotency_key == message.idempotency_key
                    )
                )
                if existing is None:
                    raise TransientError("outbox write conflicted; retry") from None
                existing.attempts += 1
                return SendResult(provider_message_id=f"outbox-{existing.id}", status="delivered")
