"""Recording what the dispatcher sent, on both databases: one thread per patient and channel,
one message per send even when two attempts record the same reminder, and the migration that
introduced the thread key merging threads created twice before it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import func, insert, select
from sqlalchemy.engine import make_url
from test_reminders_flow import T0, Clock, dispatcher, drain, put

from conftest import POSTGRES_ENV, TEST_SECRET
from frontdesk.adapters.channels.outbox import OutboxChannel
from frontdesk.adapters.db import migrate
from frontdesk.adapters.db.engine import make_engine
from frontdesk.adapters.db.models import (
    Appointment,
    Conversation,
    Message,
    OutboxMessage,
    Patient,
    Practice,
    Reminder,
    UTCDateTime,
)
from frontdesk.bootstrap import Runtime


def test_reminders_to_one_patient_share_one_thread(runtime: Runtime) -> None:
    clock = Clock(T0)
    start = T0 + timedelta(days=4)
    put(runtime, clock, start, announce=False)
    outbox = OutboxChannel(runtime.sessions, runtime.cipher)
    for stage in ("-72h", "-24h"):
        clock.now = start + timedelta(hours=int(stage[:-1]))
        drain(dispatcher(runtime, clock, outbox))
    with runtime.transaction() as session:
        threads = session.scalars(select(Conversation)).all()
        messages = session.scalars(select(Message).order_by(Message.id)).all()
        sent = session.scalars(select(Reminder).where(Reminder.sent_at.is_not(None))).all()
    assert len(sent) == 2
    assert len(threads) == 1 and threads[0].channel == "sms"
    assert threads[0].last_message_at == start - timedelta(hours=24)
    assert [m.conversation_id for m in messages] == [threads[0].id] * 2
    assert {m.provider_message_id for m in messages} == {r.provider_message_id for r in sent}
    assert {m.appointment_id for m in messages} == {r.appointment_id for r in sent}


def test_a_twin_attempt_recording_second_changes_nothing(runtime: Runtime) -> None:
    """The first worker sent, stalled past its lease, and recorded after a second worker had
    sent (same key: the outbox kept one message) and recorded: still one message logged, and
    the reminder keeps the record of the attempt that came first."""
    clock = Clock(T0)
    start = T0 + timedelta(days=2)
    put(runtime, clock, start, announce=False)
    clock.now = start - timedelta(hours=24)
    outbox = OutboxChannel(runtime.sessions, runtime.cipher)
    slow = dispatcher(runtime, clock, outbox, worker="slow")
    [claimed] = slow.claim()
    [prepared], _ = slow.prepare([claimed])
    result = slow._send(prepared)
    clock.now += timedelta(minutes=6)
    drain(dispatcher(runtime, clock, outbox, worker="second"))
    with runtime.transaction() as session:
        reminder = session.get(Reminder, claimed)
        assert reminder is not None
        first_record = (reminder.state, reminder.sent_at, reminder.provider_message_id)
    clock.now += timedelta(minutes=1)
    assert slow._record([result]) == ["sent"]
    with runtime.transaction() as session:
        reminder = session.get(Reminder, claimed)
        assert reminder is not None
        assert (reminder.state, reminder.sent_at, reminder.provider_message_id) == first_record
        assert session.scalar(select(func.count()).select_from(Message)) == 1
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 1


# --- the migration that made threads unique --------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"{POSTGRES_ENV} is not set")
    import psycopg

    name = f"frontdesk_test_{uuid.uuid4().hex[:12]}"
    admin = make_url(base).set(drivername="postgresql")
    conninfo = admin.render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# The two tables as they stand at revision 0007 (the models describe the latest schema, whose
# later columns do not exist yet there).
_AT_0007 = sa.MetaData()
CONVERSATIONS_0007 = sa.Table(
    "conversations",
    _AT_0007,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("practice_id", sa.Integer),
    sa.Column("patient_id", sa.Integer),
    sa.Column("channel", sa.String),
    sa.Column("status", sa.String),
    sa.Column("owner", sa.String),
    sa.Column("urgent", sa.Boolean),
    sa.Column("created_at", UTCDateTime()),
    sa.Column("last_message_at", UTCDateTime()),
)
MESSAGES_0007 = sa.Table(
    "messages",
    _AT_0007,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("practice_id", sa.Integer),
    sa.Column("conversation_id", sa.Integer),
    sa.Column("channel", sa.String),
    sa.Column("direction", sa.String),
    sa.Column("body", sa.String),
    sa.Column("provider_message_id", sa.String),
    sa.Column("attempts", sa.Integer),
    sa.Column("created_at", UTCDateTime()),
)


def test_the_thread_key_migration_merges_threads_created_twice(empty_database: str) -> None:
    from frontdesk.config import Settings

    url = Settings(database_url=empty_database, secret_key=TEST_SECRET).sqlalchemy_url
    engine = make_engine(url)
    try:
        migrate.upgrade(engine, "0007")
        early, late = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)
        with engine.begin() as conn:
            [practice_id] = conn.scalars(
                insert(Practice).returning(Practice.id),
                [{"slug": "p", "name": "P", "timezone": "UTC", "settings": {}}],
            )
            patient_ids = list(
                conn.scalars(
                    insert(Patient).returning(Patient.id, sort_by_parameter_order=True),
                    [
                        {"practice_id": practice_id, "source": "t", "external_id": f"p{i}"}
                        for i in range(2)
                    ],
                )
            )
            # Patient 0: the same SMS thread created twice (a race before the key), plus an
            # email thread; patient 1: one thread; two threads without a patient.
            threads = [
                (patient_ids[0], "sms", early),
                (patient_ids[0], "sms", late),
                (patient_ids[0], "email", early),
                (patient_ids[1], "sms", early),
                (None, "sms", early),
                (None, "sms", early),
            ]
            thread_ids = list(
                conn.scalars(
                    insert(CONVERSATIONS_0007).returning(
                        CONVERSATIONS_0007.c.id, sort_by_parameter_order=True
                    ),
                    [
                        {
                            "practice_id": practice_id,
                            "patient_id": patient,
                            "channel": channel,
                            "status": "open",
                            "owner": "agent",
                            "urgent": False,
                            "created_at": at,
                            "last_message_at": at,
                        }
                        for patient, channel, at in threads
                    ],
                )
            )
            conn.execute(
                insert(MESSAGES_0007),
                [
                    {
                        "practice_id": practice_id,
                        "conversation_id": thread_id,
                        "channel": channel,
                        "direction": "outbound",
                        "body": "hello",
                        "provider_message_id": f"m{i}",
                        "attempts": 0,
                        "created_at": early,
                    }
                    for i, (thread_id, (_, channel, _)) in enumerate(
                        zip(thread_ids, threads, strict=True)
                    )
                ],
            )
        migrate.upgrade(engine)
        with engine.connect() as conn:
            left = conn.execute(
                select(Conversation.id, Conversation.last_message_at).order_by(Conversation.id)
            ).all()
            messages = dict(
                conn.execute(select(Message.provider_message_id, Message.conversation_id)).all()
            )
        assert [row.id for row in left] == [thread_ids[0], *thread_ids[2:]]
        assert left[0].last_message_at == late  # the merged thread keeps the latest time
        assert set(messages) == {f"m{i}" for i in range(len(threads))}, messages
        assert messages["m0"] == messages["m1"] == thread_ids[0]
        assert len(messages) == len(threads)  # no message lost
        # And down again: the key goes, the merged threads stay merged.
        cfg = migrate.alembic_config()
        with engine.begin() as connection:
            cfg.attributes["connection"] = connection
            command.downgrade(cfg, "0007")
    finally:
        engine.dispose()


# --- re-planning many appointments at once ---------------------------------------------------


def test_replanning_in_chunks_matches_one_at_a_time(runtime: Runtime) -> None:
    """replan_many (rows loaded a chunk at a time) leaves exactly the rows replan() would."""
    from frontdesk.services import practices
    from frontdesk.services.reminders import Planning, replan, replan_many, set_policy

    clock = Clock(T0)
    for n in range(5):
        put(
            runtime,
            clock,
            T0 + timedelta(days=3 + n, hours=n),
            external_id=f"a{n}",
            announce=False,
            patient={"external_id": f"p{n % 2}", "phone": f"+1202555010{n % 2}"},
        )
    new_policy = {"stages": [{"offset": "-48h", "condition": "always"}, {"offset": "-24h"}]}

    def replanned(batched: bool) -> list[tuple[str, str, str, datetime]]:
        with runtime.transaction() as session:
            practice = practices.resolve_practice(session, "default")
            set_policy(practice, new_policy)
            planning = Planning(runtime.settings.reminder_policy, clock.now)
            upcoming = session.scalars(select(Appointment).order_by(Appointment.id)).all()
            if batched:
                replan_many(session, practice, upcoming, planning, chunk_size=2)
            else:
                for appointment in upcoming:
                    replan(session, practice, appointment, planning)
            session.flush()
            found = [
                (r.appointment.external_id, r.stage, r.state, r.due_at)
                for r in session.scalars(select(Reminder).order_by(Reminder.id))
            ]
            session.rollback()
        return found

    one_at_a_time = replanned(batched=False)
    scheduled = {stage for _a, stage, state, _d in one_at_a_time if state == "scheduled"}
    assert {"-48h", "-24h"} <= scheduled and "-72h" not in scheduled
    assert replanned(batched=True) == one_at_a_time


# --- what a failure to record can leave behind -----------------------------------------------


def test_when_recording_fails_at_most_max_unrecorded_went_out(runtime: Runtime) -> None:
    """Sends stop with the first failure to record: what went out and is not recorded (what a
    crash would leave to be re-sent after the lease) is never more than ``max_unrecorded``."""
    from frontdesk.adapters.channels.fake import FakeChannel
    from frontdesk.domain.channels import Channel
    from frontdesk.services.dispatcher import Dispatcher, DispatchSettings

    class RecordingFails(Dispatcher):
        def _record(self, results: list[Any]) -> list[str]:
            raise RuntimeError("the database went away")

    clock = Clock(T0)
    start = T0 + timedelta(days=2)
    for n in range(12):
        put(
            runtime,
            clock,
            start,
            external_id=f"a{n}",
            announce=False,
            patient={"external_id": f"p{n}", "phone": f"+120255501{n:02d}"},
        )
    clock.now = start - timedelta(hours=24)
    fake = FakeChannel()
    worker = RecordingFails(
        runtime,
        {Channel.SMS: fake, Channel.EMAIL: fake, Channel.WHATSAPP: fake},
        worker_id="w1",
        clock=clock,
        settings=DispatchSettings(rate_per_second=1000, concurrency=2, max_unrecorded=4),
    )
    with pytest.raises(RuntimeError):
        worker.dispatch_due()
    assert 1 <= len(fake.calls) <= 4
    with runtime.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 0
        claimed = session.scalar(
            select(func.count()).select_from(Reminder).where(Reminder.state == "claimed")
        )
    assert claimed == 12  # all still claimed: retried after the lease, with the same keys
