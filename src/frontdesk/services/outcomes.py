"""What a sent reminder leaves behind: the message in the patient's thread, and — for a missed
session — the front desk's review item."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from frontdesk.adapters.channels.base import OutboundMessage, SendResult
from frontdesk.adapters.db.models import (
    Appointment,
    Conversation,
    Message,
    ReviewItem,
)
from frontdesk.domain.channels import Direction


def open_missed_session_review(session: Session, appointment: Appointment) -> None:
    exists = session.scalar(
        select(ReviewItem.id).where(
            ReviewItem.appointment_id == appointment.id, ReviewItem.kind == "missed_session"
        )
    )
    if exists is None:
        session.add(
            ReviewItem(
                practice_id=appointment.practice_id,
                appointment_id=appointment.id,
                patient_id=appointment.patient_id,
                kind="missed_session",
                state="open",
            )
        )


class MessageLog:
    """Every message we send lands in the patient's thread on that channel. Loaded once for a
    batch of sends: the threads they go to, and which provider ids are already logged."""

    def __init__(
        self,
        session: Session,
        threads: dict[tuple[int, int | None, str], Conversation],
        logged: set[tuple[str, str]],
    ) -> None:
        self._session = session
        self._threads = threads
        self._logged = logged

    @classmethod
    def load(cls, session: Session, sent: list[tuple[OutboundMessage, SendResult]]) -> MessageLog:
        threads: dict[tuple[int, int | None, str], Conversation] = {}
        logged: set[tuple[str, str]] = set()
        patients = {message.patient_id for message, _ in sent}
        if patients:
            for conversation in session.scalars(
                select(Conversation).where(Conversation.patient_id.in_(patients))
            ):
                key = (conversation.practice_id, conversation.patient_id, conversation.channel)
                threads[key] = conversation
            # A re-send the provider de-duplicated comes back with the first send's id.
            # Grouped by practice and channel so the lookup uses the messages' unique index.
            wanted: dict[tuple[int, str], list[str]] = {}
            for message, result in sent:
                group = (message.practice_id, message.channel.value)
                wanted.setdefault(group, []).append(result.provider_message_id)
            for (practice_id, channel), provider_ids in wanted.items():
                for provider_id in session.scalars(
                    select(Message.provider_message_id).where(
                        Message.practice_id == practice_id,
                        Message.channel == channel,
                        Message.provider_message_id.in_(provider_ids),
                    )
                ):
                    if provider_id is not None:
                        logged.add((channel, provider_id))
        return cls(session, threads, logged)

    def add(
        self, message: OutboundMessage, appointment_id: int, result: SendResult, now: datetime
    ) -> None:
        marker = (message.channel.value, result.provider_message_id)
        if marker in self._logged:
            return
        self._logged.add(marker)
        key = (message.practice_id, message.patient_id, message.channel.value)
        conversation = self._threads.get(key)
        if conversation is None:
            conversation = Conversation(
                practice_id=message.practice_id,
                patient_id=message.patient_id,
                channel=message.channel.value,
                status="open",
            )
            self._session.add(conversation)
            self._threads[key] = conversation
        conversation.last_message_at = now
        self._session.add(
            Message(
                practice_id=message.practice_id,
                conversation=conversation,
                appointment_id=appointment_id,
                channel=message.channel.value,
                direction=Direction.OUTBOUND.value,
                body=message.body,
                provider_message_id=result.provider_message_id,
                delivery_status=result.status,
            )
        )
