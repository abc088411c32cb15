"""What a sent reminder leaves behind: the message in the patient's thread, and — for a missed
session — the front desk's review item.

Both are written with ``INSERT … ON CONFLICT`` against their unique keys instead of a look-up
followed by an insert: one statement whatever the group's size, no race between two workers
creating the same thread, and nothing that depends on the planner's idea of how big
``conversations`` or ``messages`` are (a unique index is used whatever the statistics say).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from frontdesk.adapters.channels.base import OutboundMessage, SendResult
from frontdesk.adapters.db.models import (
    Appointment,
    Conversation,
    Message,
    ReviewItem,
)
from frontdesk.domain.channels import Direction


def upsert(session: Session, model: type[Any]) -> Any:
    """The dialect's own ``insert`` (it has ``on_conflict_do_nothing`` / ``_do_update``)."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(model)
    return sqlite.insert(model)


def open_missed_session_review(session: Session, appointment: Appointment) -> None:
    """One open review item per missed appointment (the unique key (appointment, kind))."""
    session.execute(
        upsert(session, ReviewItem)
        .values(
            practice_id=appointment.practice_id,
            appointment_id=appointment.id,
            patient_id=appointment.patient_id,
            kind="missed_session",
            state="open",
        )
        .on_conflict_do_nothing(index_elements=[ReviewItem.appointment_id, ReviewItem.kind])
    )


@dataclass(frozen=True)
class SentMessage:
    """A message a channel accepted, to be logged in the patient's thread."""

    message: OutboundMessage
    appointment_id: int | None
    result: SendResult


def log_sent(session: Session, sent: Sequence[SentMessage], now: datetime) -> None:
    """Log every message in its patient's thread on its channel: two statements for a group.

    The threads are upserted (created when new, ``last_message_at`` moved on when not) and
    return their ids; the messages are inserted unless their (practice, channel, provider id)
    is already logged — a re-send the provider de-duplicated comes back with the first send's
    id. Threads are taken in key order, so two workers never wait for each other in a circle.
    """
    if not sent:
        return
    keys = sorted(
        {(s.message.practice_id, s.message.patient_id, s.message.channel.value) for s in sent}
    )
    threads_insert = upsert(session, Conversation).values(
        [
            {
                "practice_id": practice_id,
                "patient_id": patient_id,
                "channel": channel,
                "status": "open",
                "created_at": now,
                "last_message_at": now,
            }
            for practice_id, patient_id, channel in keys
        ]
    )
    threads_upsert = threads_insert.on_conflict_do_update(
        index_elements=[Conversation.practice_id, Conversation.patient_id, Conversation.channel],
        set_={"last_message_at": threads_insert.excluded.last_message_at},
    ).returning(
        Conversation.id, Conversation.practice_id, Conversation.patient_id, Conversation.channel
    )
    threads = {
        (practice_id, patient_id, channel): conversation_id
        for conversation_id, practice_id, patient_id, channel in session.execute(threads_upsert)
    }
    session.execute(
        upsert(session, Message)
        .values(
            [
                {
                    "practice_id": s.message.practice_id,
                    "conversation_id": threads[
                        (s.message.practice_id, s.message.patient_id, s.message.channel.value)
                    ],
                    "appointment_id": s.appointment_id,
                    "channel": s.message.channel.value,
                    "direction": Direction.OUTBOUND.value,
                    "body": s.message.body,
                    "provider_message_id": s.result.provider_message_id,
                    "delivery_status": s.result.status,
                    "created_at": now,
                }
                for s in sent
            ]
        )
        .on_conflict_do_nothing(
            index_elements=[Message.practice_id, Message.channel, Message.provider_message_id]
        )
    )
