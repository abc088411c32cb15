"""What a sent reminder leaves behind: the message in the patient's thread, and — for a missed
session — the front desk's review item.

Both are written with ``INSERT … ON CONFLICT`` against their unique keys instead of a look-up
followed by an insert: one statement whatever the group's size, no race between two workers
creating the same thread, and nothing that depends on the planner's idea of how big
``conversations`` or ``messages`` are (a unique index is used whatever the statistics say).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, literal, select, text
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


@dataclass(frozen=True)
class SentReminder:
    """A reminder a channel accepted: the state to mark it with, and its message."""

    reminder_id: int
    state: str
    sent: SentMessage


def record_sent_postgres(session: Session, items: Sequence[SentReminder], now: datetime) -> None:
    """PostgreSQL: mark the reminders sent and log their messages in ONE statement (below).

    The group travels as one JSON parameter (``json_to_recordset``): json.dumps is C, where
    psycopg dumps each array element in Python (it was a tenth of the worker's CPU). The guarded
    ``UPDATE … RETURNING`` decides which messages are logged, as the three statements did: a
    reminder already marked sent (a twin attempt recorded it first) logs nothing, and a message
    whose provider id is already logged is not logged again.
    """
    if not items:
        return
    rows = [
        {
            "reminder_id": item.reminder_id,
            "state": item.state,
            "practice_id": item.sent.message.practice_id,
            "patient_id": item.sent.message.patient_id,
            "appointment_id": item.sent.appointment_id,
            "channel": item.sent.message.channel.value,
            "body": item.sent.message.body,
            "provider_message_id": item.sent.result.provider_message_id,
            "delivery_status": item.sent.result.status,
        }
        for item in sorted(items, key=lambda item: item.reminder_id)
    ]
    session.connection().execute(
        _RECORD_SENT_PG, {"rows": json.dumps(rows), "now": now, **_RECORD_DEFAULTS}
    )


def _column_default(column: Any) -> Any:
    return column.default.arg


_RECORD_DEFAULTS = {
    "needs_attention": _column_default(Conversation.__table__.c.needs_attention),
    "owner": _column_default(Conversation.__table__.c.owner),
    "urgent": _column_default(Conversation.__table__.c.urgent),
    "attempts": _column_default(Message.__table__.c.attempts),
    "outbound": Direction.OUTBOUND.value,
    "open": "open",
}
# Threads are upserted in key order (two workers never wait for each other in a circle); the
# foreign-key checks of the new messages run at the end of the statement, when the threads the
# statement itself created are there.
_RECORD_SENT_PG = text(
    """
WITH v AS MATERIALIZED (
    SELECT * FROM json_to_recordset(CAST(:rows AS json)) AS v(
        reminder_id integer, state text, practice_id integer, patient_id integer,
        appointment_id integer, channel text, body text, provider_message_id text,
        delivery_status text)
),
marked AS (
    UPDATE reminders AS r
    SET state = v.state, provider_message_id = v.provider_message_id, sent_at = :now,
        updated_at = :now, reason = NULL, claimed_by = NULL
    FROM v
    WHERE r.id = v.reminder_id AND r.state NOT IN ('sent', 'delivered')
    RETURNING r.id
),
fresh AS MATERIALIZED (
    SELECT v.* FROM v JOIN marked ON marked.id = v.reminder_id
),
threads AS (
    INSERT INTO conversations (practice_id, patient_id, channel, status, created_at,
        last_message_at, needs_attention, owner, urgent)
    SELECT DISTINCT practice_id, patient_id, channel, :open, CAST(:now AS timestamptz),
        CAST(:now AS timestamptz), :needs_attention, :owner, :urgent
    FROM fresh
    ORDER BY practice_id, patient_id, channel
    ON CONFLICT (practice_id, patient_id, channel)
    DO UPDATE SET last_message_at = excluded.last_message_at
    RETURNING id, practice_id, patient_id, channel
)
INSERT INTO messages (practice_id, conversation_id, appointment_id, channel, direction, body,
    provider_message_id, delivery_status, created_at, attempts)
SELECT fresh.practice_id, threads.id, fresh.appointment_id, fresh.channel, :outbound,
    fresh.body, fresh.provider_message_id, fresh.delivery_status, :now, :attempts
FROM fresh
JOIN threads ON threads.practice_id = fresh.practice_id
    AND threads.patient_id = fresh.patient_id AND threads.channel = fresh.channel
ORDER BY fresh.reminder_id
ON CONFLICT (practice_id, channel, provider_message_id) DO NOTHING
"""
).bindparams(bindparam("now", type_=UTCDateTime()))


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
