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

from sqlalchemy import bindparam, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from frontdesk.adapters.channels.base import OutboundMessage, SendResult
from frontdesk.adapters.db.bulk import int_array, text_array, unnest
from frontdesk.adapters.db.models import (
    Conversation,
    Message,
    ReviewItem,
    UTCDateTime,
)
from frontdesk.domain.channels import Direction
from frontdesk.services.claimed import AppointmentRow


def upsert(session: Session, model: type[Any]) -> Any:
    """The dialect's own ``insert`` (it has ``on_conflict_do_nothing`` / ``_do_update``)."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(model)
    return sqlite.insert(model)


def open_missed_session_review(session: Session, appointment: AppointmentRow) -> None:
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
    Both statements are built once per dialect (below).
    """
    if not sent:
        return
    connection = session.connection()
    keys = sorted(
        {(s.message.practice_id, s.message.patient_id, s.message.channel.value) for s in sent}
    )
    rows = [
        {
            "practice_id": s.message.practice_id,
            "patient_id": s.message.patient_id,
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
    if connection.dialect.name == "postgresql":
        threads_upsert, messages_insert = _POSTGRES
        found = connection.execute(
            threads_upsert,
            {
                "practice_ids": [key[0] for key in keys],
                "patient_ids": [key[1] for key in keys],
                "channels": [key[2] for key in keys],
                "now": now,
            },
        )
    else:
        threads_upsert, messages_insert = _SQLITE
        found = connection.execute(
            threads_upsert,
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
            ],
        )
    threads = {
        (practice_id, patient_id, channel): conversation_id
        for conversation_id, practice_id, patient_id, channel in found
    }
    for row in rows:
        row["conversation_id"] = threads[
            (row["practice_id"], row.pop("patient_id"), row["channel"])
        ]
    if connection.dialect.name == "postgresql":
        columns = (
            "practice_id",
            "conversation_id",
            "appointment_id",
            "channel",
            "body",
            "provider_message_id",
            "delivery_status",
        )
        params: Any = {name: [row[name] for row in rows] for name in columns}
        params["now"] = now
        connection.execute(messages_insert, params)
    else:
        connection.execute(messages_insert, rows)


_THREAD_KEY = [Conversation.practice_id, Conversation.patient_id, Conversation.channel]
_THREAD_COLUMNS = (
    Conversation.id,
    Conversation.practice_id,
    Conversation.patient_id,
    Conversation.channel,
)
_MESSAGE_KEY = [Message.practice_id, Message.channel, Message.provider_message_id]


def _sqlite_statements() -> tuple[Any, Any]:
    """One parameter set per row; SQLAlchemy sends them as one multi-row ``VALUES``."""
    threads = sqlite.insert(Conversation)
    threads_upsert = threads.on_conflict_do_update(
        index_elements=_THREAD_KEY, set_={"last_message_at": threads.excluded.last_message_at}
    ).returning(*_THREAD_COLUMNS)
    messages_insert = sqlite.insert(Message).on_conflict_do_nothing(index_elements=_MESSAGE_KEY)
    return threads_upsert, messages_insert


def _postgres_statements() -> tuple[Any, Any]:
    """One array per column (``INSERT … SELECT … FROM unnest(…)``): one short statement text
    whatever the group's size (see adapters/db/bulk.py)."""
    now = bindparam("now", type_=UTCDateTime())
    keys = unnest(
        ("practice_id", int_array("practice_ids")),
        ("patient_id", int_array("patient_ids")),
        ("channel", text_array("channels")),
    )
    threads = postgresql.insert(Conversation).from_select(
        ["practice_id", "patient_id", "channel", "status", "created_at", "last_message_at"],
        select(keys.c.practice_id, keys.c.patient_id, keys.c.channel, literal("open"), now, now),
    )
    threads_upsert = threads.on_conflict_do_update(
        index_elements=_THREAD_KEY, set_={"last_message_at": threads.excluded.last_message_at}
    ).returning(*_THREAD_COLUMNS)
    rows = unnest(
        ("practice_id", int_array("practice_id")),
        ("conversation_id", int_array("conversation_id")),
        ("appointment_id", int_array("appointment_id")),
        ("channel", text_array("channel")),
        ("body", text_array("body")),
        ("provider_message_id", text_array("provider_message_id")),
        ("delivery_status", text_array("delivery_status")),
    )
    messages_insert = (
        postgresql.insert(Message)
        .from_select(
            [
                "practice_id",
                "conversation_id",
                "appointment_id",
                "channel",
                "direction",
                "body",
                "provider_message_id",
                "delivery_status",
                "created_at",
            ],
            select(
                rows.c.practice_id,
                rows.c.conversation_id,
                rows.c.appointment_id,
                rows.c.channel,
                literal(Direction.OUTBOUND.value),
                rows.c.body,
                rows.c.provider_message_id,
                rows.c.delivery_status,
                now,
            ),
        )
        .on_conflict_do_nothing(index_elements=_MESSAGE_KEY)
    )
    return threads_upsert, messages_insert


_SQLITE = _sqlite_statements()
_POSTGRES = _postgres_statements()
