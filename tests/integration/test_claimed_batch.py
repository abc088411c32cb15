"""The dispatcher's batch reader (plain rows from Core SELECTs) against the ORM it replaced, its
write-back, and — on PostgreSQL — recording a group of sends in one statement."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from test_reminders_flow import T0, Clock, dispatcher, put

from frontdesk.adapters.channels.base import SendResult
from frontdesk.adapters.channels.outbox import OutboxChannel
from frontdesk.adapters.db.models import Conversation, Message, Practice, Reminder
from frontdesk.bootstrap import Runtime
from frontdesk.domain.channels import Channel
from frontdesk.services.claimed import MUTABLE, load_claimed, write_back
from frontdesk.services.outcomes import SentMessage, SentReminder, record_sent_postgres
from frontdesk.services.reminders import patient_facts, policy_for
from frontdesk.services.send_time import SendContext, later_moment, no_longer_wanted, still_missed


def _book_a_mixed_day(runtime: Runtime, clock: Clock) -> None:
    start = T0 + timedelta(days=3)
    put(runtime, clock, start, announce=True)
    put(
        runtime,
        clock,
        start + timedelta(hours=1),
        external_id="a2",
        patient={
            "external_id": "p2",
            "name": "Blake",
            "preferred_name": "B",
            "email": "blake@example.com",
            "phone": None,
            "language": "es",
            "timezone": "Europe/Madrid",
            "consent": {"sms": False, "email": True},
        },
        clinician={"name": "Dr. Rivera", "email": "rivera@example.com"},
        location={"name": "Main office", "address": "1 Main St"},
        telehealth_url="https://example.org/room/2",
        confirmation="confirmed",
    )
    put(
        runtime,
        clock,
        start + timedelta(hours=2),
        external_id="a3",
        patient={"external_id": "p3", "name": "Casey", "phone": "+12025550103"},
        status="cancelled",
    )


def test_the_batch_reader_sees_what_the_orm_sees(runtime: Runtime) -> None:
    clock = Clock(T0)
    _book_a_mixed_day(runtime, clock)
    now = T0 + timedelta(days=3)  # every stage due (and some superseded)
    with runtime.transaction() as session:
        reminders = session.scalars(select(Reminder).order_by(Reminder.due_at, Reminder.id)).all()
        ids = [r.id for r in reminders]
        claimed = load_claimed(session, [*ids, 999_999])  # a vanished id is just not there
        assert [c.id for c in claimed] == ids
        practice = session.scalars(select(Practice)).one()
        policy = policy_for(practice, runtime.settings.reminder_policy)
        orm_context = SendContext.load(session, list(reminders), now)
        row_context = SendContext.load(session, claimed, now)
        assert orm_context == row_context
        for orm, row in zip(reminders, claimed, strict=True):
            for name in (
                "practice_id",
                "appointment_id",
                "patient_id",
                "kind",
                "stage",
                "planned_start",
                "failed_channels",
                *MUTABLE,
            ):
                assert getattr(row, name) == getattr(orm, name), name
            assert not row.changed()
            appointment, plain = orm.appointment, row.appointment
            for name in ("id", "practice_id", "patient_id", "start_at", "status"):
                assert getattr(plain, name) == getattr(appointment, name), name
            assert (plain.confirmation, plain.telehealth_url) == (
                appointment.confirmation,
                appointment.telehealth_url,
            )
            assert (plain.clinician is None) == (appointment.clinician is None)
            if appointment.clinician is not None:
                assert plain.clinician is not None
                assert plain.clinician.name == appointment.clinician.name
                assert plain.clinician.booking_url == appointment.clinician.booking_url
            assert (plain.location is None) == (appointment.location is None)
            if appointment.location is not None:
                assert plain.location is not None
                assert plain.location.name == appointment.location.name
                assert plain.location.address == appointment.location.address
            patient = appointment.patient
            for name in (
                "id",
                "name",
                "preferred_name",
                "language",
                "timezone",
                "reminders_enabled",
                "preferred_channel",
                "phone_sealed",
                "email_sealed",
                "date_of_birth_sealed",
            ):
                assert getattr(plain.patient, name) == getattr(patient, name), name
            # The send-time checks decide the same on either.
            facts = patient_facts(patient, practice)
            assert patient_facts(plain.patient, practice) == facts
            assert still_missed(plain) == still_missed(appointment)
            assert no_longer_wanted(row, plain, policy) == no_longer_wanted(
                orm, appointment, policy
            )
            for channel in Channel:
                assert later_moment(
                    row, channel, facts.timezone, policy, now, row_context
                ) == later_moment(orm, channel, facts.timezone, policy, now, orm_context)
    # Someone with consents, a clinician and a location was among them.
    assert any(c.appointment.clinician and c.appointment.location for c in claimed)
    assert any(c.appointment.patient.consents for c in claimed)


def test_write_back_stores_only_what_a_decision_changed(runtime: Runtime) -> None:
    clock = Clock(T0)
    _book_a_mixed_day(runtime, clock)
    with runtime.transaction() as session:
        ids = list(session.scalars(select(Reminder.id).order_by(Reminder.id)))
        before = {
            r.id: (r.state, r.reason, r.updated_at) for r in session.scalars(select(Reminder))
        }
    with runtime.transaction() as session:
        claimed = load_claimed(session, ids)
        claimed[0].state, claimed[0].reason = "skipped", "because"
        claimed[1].due_at += timedelta(hours=1)
        claimed[1].attempts -= 1
        claimed[2].channel = claimed[2].channel  # the same value: not a change
        assert write_back(session, claimed) == 2
    with runtime.transaction() as session:
        after = {r.id: r for r in session.scalars(select(Reminder))}
    assert (after[claimed[0].id].state, after[claimed[0].id].reason) == ("skipped", "because")
    assert after[claimed[1].id].due_at == claimed[1].due_at
    assert after[claimed[1].id].attempts == claimed[1].attempts
    for other in claimed[2:]:
        assert (
            after[other.id].state,
            after[other.id].reason,
            after[other.id].updated_at,
        ) == before[other.id]


def test_one_statement_records_each_message_once_on_postgresql(runtime: Runtime) -> None:
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("the single-statement recording is PostgreSQL's")
    clock = Clock(T0)
    start = T0 + timedelta(days=2)
    put(runtime, clock, start, announce=False)
    put(
        runtime,
        clock,
        start + timedelta(hours=1),
        external_id="a2",
        announce=False,
        patient={"external_id": "p2", "name": "Blake", "phone": "+12025550102"},
    )
    clock.now = start - timedelta(hours=24) + timedelta(hours=1)
    d = dispatcher(runtime, clock, OutboxChannel(runtime.sessions, runtime.cipher))
    ids = d.claim()
    sends, settled = d.prepare(ids)
    assert len(sends) == 2 and not settled

    def items(suffix: str) -> list[SentReminder]:
        return [
            SentReminder(
                send.reminder_id,
                "sent",
                SentMessage(
                    send.message, send.appointment_id, SendResult(f"pm-{n}{suffix}", "sent")
                ),
            )
            for n, send in enumerate(sends)
        ]

    with runtime.transaction() as session:
        record_sent_postgres(session, items(""), clock.now)
    # Recorded again (a twin attempt; the same provider ids, or new ones): nothing changes.
    later = clock.now + timedelta(minutes=7)
    for suffix in ("", "-twin"):
        with runtime.transaction() as session:
            record_sent_postgres(session, items(suffix), later)
    with runtime.transaction() as session:
        messages = session.scalars(select(Message).order_by(Message.id)).all()
        threads = session.scalars(select(Conversation)).all()
        rows = {r.id: r for r in session.scalars(select(Reminder).where(Reminder.id.in_(ids)))}
        assert session.scalar(select(func.count()).select_from(Message)) == 2
    assert len(threads) == 2 and {t.last_message_at for t in threads} == {clock.now}
    assert sorted(m.provider_message_id or "" for m in messages) == ["pm-0", "pm-1"]
    assert {m.conversation_id for m in messages} == {t.id for t in threads}
    assert [m.direction for m in messages] == ["outbound", "outbound"]
    assert {m.appointment_id for m in messages} == {s.appointment_id for s in sends}
    assert all(m.body for m in messages) and all(m.attempts == 0 for m in messages)
    for n, send in enumerate(sends):
        row = rows[send.reminder_id]
        assert (row.state, row.provider_message_id, row.sent_at) == (
            "sent",
            f"pm-{n}",
            clock.now,
        )
        assert row.claimed_by is None and row.reason is None
