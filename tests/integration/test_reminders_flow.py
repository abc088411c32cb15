"""Reminders end to end on both databases: planned with each change, sent once, re-checked."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from frontdesk.adapters.channels.base import OutboundMessage
from frontdesk.adapters.channels.fake import FakeChannel
from frontdesk.adapters.channels.outbox import OutboxChannel
from frontdesk.adapters.db.models import Message, OutboxMessage, Reminder, ReviewItem
from frontdesk.bootstrap import Runtime
from frontdesk.domain.appointments import AppointmentStatus
from frontdesk.domain.channels import Channel
from frontdesk.domain.errors import PermanentError, TransientError
from frontdesk.domain.intake import AppointmentIn
from frontdesk.services import practices
from frontdesk.services.appointments import upsert_appointment
from frontdesk.services.dispatcher import Dispatcher, DispatchSettings
from frontdesk.services.reminders import Planning

# A Monday in December (no DST), times in New York (UTC-5).
T0 = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)  # 10:00 local


def three_days_out_in_daytime(now: datetime) -> datetime:
    """A whole-hour start at least 3 days and 1 hour after ``now`` whose -72h reminder is due
    between 15:00 and 20:00 UTC (10:00-16:00 in New York, the patient's zone, either side of
    DST): a test that dispatches it at the real time of day is never deferred by quiet hours."""
    start = (now + timedelta(days=3, hours=1)).replace(minute=0, second=0, microsecond=0)
    while not 15 <= start.hour <= 20:
        start += timedelta(hours=1)
    return start


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


def put(
    runtime: Runtime,
    clock: Clock,
    start: datetime,
    *,
    external_id: str = "a1",
    announce: bool = True,
    **fields: Any,
) -> None:
    patient = {
        "external_id": "p1",
        "name": "Avery",
        "phone": "+12025550101",
        "email": "avery@example.com",
        **fields.pop("patient", {}),
    }
    record = AppointmentIn.model_validate({"patient": patient, "start": start, **fields})
    with runtime.transaction() as session:
        practice = practices.resolve_practice(session, "default")
        upsert_appointment(
            session,
            runtime.cipher,
            practice,
            "ehr",
            external_id,
            record,
            actor="test",
            default_minutes=50,
            planning=Planning(runtime.settings.reminder_policy, clock.now, announce),
        )


def rows(runtime: Runtime) -> dict[tuple[str, str], tuple[str, datetime, str | None]]:
    """(appointment external id, stage) → (state, due_at, reason) for the current start time."""
    with runtime.transaction() as session:
        found = session.scalars(select(Reminder).order_by(Reminder.id)).all()
        return {
            (r.appointment.external_id, r.stage): (r.state, r.due_at, r.reason)
            for r in found
            if r.planned_start == r.appointment.start_at
        }


def states(runtime: Runtime) -> dict[tuple[str, str], str]:
    return {k: v[0] for k, v in rows(runtime).items()}


def dispatcher(
    runtime: Runtime, clock: Clock, channel: Any, *, worker: str = "w1", **settings: Any
) -> Dispatcher:
    senders = {Channel.SMS: channel, Channel.EMAIL: channel, Channel.WHATSAPP: channel}
    return Dispatcher(
        runtime,
        senders,
        worker_id=worker,
        clock=clock,
        settings=DispatchSettings(rate_per_second=1000, **settings),
    )


def drain(d: Dispatcher) -> None:
    while d.dispatch_due().claimed:
        pass


# --- planning with each change ---------------------------------------------------------------


def test_a_new_booking_plans_its_stages_confirmation_and_follow_up(runtime: Runtime) -> None:
    clock = Clock(T0)
    start = T0 + timedelta(days=5)  # Sat 12 Dec, 10:00 local
    put(runtime, clock, start)
    planned = rows(runtime)
    assert {k: v[0] for k, v in planned.items()} == {
        ("a1", "-72h"): "scheduled",
        ("a1", "-24h"): "scheduled",
        ("a1", "-2h"): "scheduled",
        ("a1", "booked"): "scheduled",
        ("a1", "missed"): "scheduled",
    }
    assert planned[("a1", "-72h")][1] == start - timedelta(hours=72)
    assert planned[("a1", "-2h")][1] == start - timedelta(hours=2)  # 08:00 local: allowed
    assert planned[("a1", "booked")][1] == T0 + timedelta(minutes=3)  # the edit grace
    assert planned[("a1", "missed")][1] == start + timedelta(minutes=15)


def test_rescheduling_moves_the_reminders(runtime: Runtime) -> None:
    clock = Clock(T0)
    put(runtime, clock, T0 + timedelta(days=5))
    clock.now = T0 + timedelta(hours=1)
    new_start = T0 + timedelta(days=6)
    put(runtime, clock, new_start)
    with runtime.transaction() as session:
        old = session.scalars(
            select(Reminder).where(Reminder.planned_start == T0 + timedelta(days=5))
        ).all()
    assert {r.state for r in old} == {"cancelled"}
    assert {r.reason for r in old} == {"the appointment moved"}
    planned = rows(runtime)
    assert planned[("a1", "-24h")][:2] == ("scheduled", new_start - timedelta(hours=24))
    assert planned[("a1", "booked")][1] == clock.now + timedelta(minutes=3)


def test_confirming_cancels_unconfirmed_only_stages_but_keeps_the_follow_up(
    runtime: Runtime,
) -> None:
    clock = Clock(T0)
    start = T0 + timedelta(days=5)
    put(runtime, clock, start)
    put(runtime, clock, start, confirmation="confirmed")
    assert states(runtime) == {
        ("a1", "-72h"): "cancelled",
        ("a1", "-24h"): "cancelled",
        ("a1", "-2h"): "cancelled",
        ("a1", "booked"): "scheduled",
        ("a1", "missed"): "scheduled",
    }
    assert rows(runtime)[("a1", "-24h")][2] == "patient already answered (confirmed)"


def test_cancelling_cancels_everything(runtime: Runtime) -> None:
    clock = Clock(T0)
    start = T0 + timedelta(days=5)
    put(runtime, clock, start)
    put(runtime, clock, start, status="cancelled")
    assert set(states(runtime).values()) == {"cancelled"}


def test_a_late_booking_sends_no_burst_of_stale_reminders(runtime: Runtime) -> None:
    clock = Clock(T0)
    put(runtime, clock, T0 + timedelta(hours=1))  # booked an hour ahead
    assert states(runtime) == {("a1", "booked"): "scheduled", ("a1", "missed"): "scheduled"}
    fake = FakeChannel()
    clock.now = T0 + timedelta(minutes=5)
    drain(dispatcher(runtime, clock, fake))
    assert [m.body for m in fake.calls] == [
        "My Practice: your appointment is booked for Mon, Dec 7 at 11:00 AM. Reply C to "
        "confirm, R to reschedule, or N if you can't come. Reply STOP to opt out."
    ]


# --- sending ---------------------------------------------------------------------------------


def test_the_whole_schedule_goes_out_exactly_once_in_order(runtime: Runtime) -> None:
    clock = Clock(T0)
    start = T0 + timedelta(days=5)
    put(runtime, clock, start, announce=False)
    fake = FakeChannel()
    d = dispatcher(runtime, clock, fake)
    moments = [start + timedelta(hours=h) for h in (-72, -24, -2)] + [start + timedelta(minutes=16)]
    for moment in moments:
        clock.now = moment
        drain(d)
        drain(d)
    assert len(fake.calls) == 4
    assert len({m.idempotency_key for m in fake.calls}) == 4
    assert set(states(runtime).values()) == {"sent"}
    with runtime.transaction() as session:
        review = session.scalars(select(ReviewItem)).one()
        assert review.kind == "missed_session" and review.state == "open"
        logged = session.scalars(select(Message).order_by(Message.id)).all()
        assert [m.direction for m in logged] == ["outbound"] * 4
        assert len({m.conversation_id for m in logged}) == 1  # one SMS thread
    assert "we missed you today" in fake.calls[-1].body


def test_a_reminder_claimed_before_a_cancellation_is_not_sent(runtime: Runtime) -> None:
    clock = Clock(T0)
    start = T0 + timedelta(days=2)
    put(runtime, clock, start, announce=False)
    clock.now = start - timedelta(hours=24)
    fake = FakeChannel()
    d = dispatcher(runtime, clock, fake)
    claimed = d.claim()
    assert len(claimed) == 1
    put(runtime, clock, start, status="cancelled")  # the EHR cancels while we hold the claim
    outcomes = [d.process(i) for i in claimed]
    assert outcomes == ["cancelled"]
    assert fake.calls == []
    assert rows(runtime)[("a1", "-24h")][:1] == ("cancelled",)


def test_a_patient_who_arrived_gets_no_missed_follow_up_and_no_review_item(
    runtime: Runtime,
) -> None:
    clock = Clock(T0)
    start = T0 + timedelta(days=2)
    put(runtime, clock, start, announce=False, confirmation="confirmed")
    put(runtime, clock, start, status="arrived", confirmation="confirmed")
    clock.now = start + timedelta(minutes=20)
    fake = FakeChannel()
    drain(dispatcher(runtime, clock, fake))
    assert fake.calls == []
    with runtime.transaction() as session:
        assert session.scalars(select(ReviewItem)).all() == []


def test_a_patient_with_reminders_off_still_gets_a_review_item_when_missed(
    runtime: Runtime,
) -> None:
    clock = Clock(T0)
    start = T0 + timedelta(days=2)
    put(runtime, clock, start, announce=False, patient={"reminders_enabled": False})
    # (-72h is simply not planned: the booking came after its moment.)
    assert states(runtime) == {
        ("a1", "-24h"): "skipped",
        ("a1", "-2h"): "skipped",
        ("a1", "missed"): "scheduled",
    }
    assert rows(runtime)[("a1", "-24h")][2] == "the patient has reminders turned off"
    clock.now = start + timedelta(minutes=16)
    fake = FakeChannel()
    drain(dispatcher(runtime, clock, fake))
    assert fake.calls == []
    assert rows(runtime)[("a1", "missed")][0] == "skipped"
    with runtime.transaction() as session:
        assert session.scalars(select(ReviewItem)).one().kind == "missed_session"


def test_quiet_hours_at_send_time_defer_to_the_morning(runtime: Runtime) -> None:
    clock = Clock(T0)
    start = T0 + timedelta(days=2)  # Wed 10:00 local
    put(runtime, clock, start, announce=False)
    # The worker was down: at 22:30 local on Tuesday the -24h reminder (due 10:00) is overdue.
    clock.now = datetime(2026, 12, 9, 3, 30, tzinfo=UTC)
    fake = FakeChannel()
    drain(dispatcher(runtime, clock, fake))
    assert fake.calls == []
    state, due, reason = rows(runtime)[("a1", "-24h")]
    assert (state, due) == ("scheduled", datetime(2026, 12, 9, 13, 0, tzinfo=UTC))  # 08:00
    assert reason == "waiting: quiet hours"


def test_email_is_not_held_by_quiet_hours(runtime: Runtime) -> None:
    clock = Clock(T0)
    start = T0 + timedelta(days=2)
    put(runtime, clock, start, announce=False, patient={"preferred_channel": "email"})
    clock.now = datetime(2026, 12, 9, 3, 30, tzinfo=UTC)  # 22:30 local
    fake = FakeChannel()
    drain(dispatcher(runtime, clock, fake))
    assert [m.channel for m in fake.calls] == [Channel.EMAIL]


def test_after_downtime_only_the_latest_due_stage_is_sent(runtime: Runtime) -> None:
    clock = Clock(T0)
    start = T0 + timedelta(days=4, hours=6)  # Fri 16:00 local
    put(runtime, clock, start, announce=False)
    clock.now = start - timedelta(hours=3)  # -72h and -24h both overdue, -2h not yet
    fake = FakeChannel()
    drain(dispatcher(runtime, clock, fake))
    assert len(fake.calls) == 1
    assert states(runtime)[("a1", "-72h")] == "skipped"
    assert states(runtime)[("a1", "-24h")] == "sent"
    # A later change re-plans the appointment; the superseded stage stays skipped.
    put(runtime, clock, start, announce=False, patient={"email": "new@example.com"})
    assert states(runtime)[("a1", "-72h")] == "skipped"
    drain(dispatcher(runtime, clock, fake))
    assert len(fake.calls) == 1


def test_after_downtime_past_the_start_no_stage_reminder_is_sent(runtime: Runtime) -> None:
    clock = Clock(T0)
    start = T0 + timedelta(days=4, hours=6)
    put(runtime, clock, start, announce=False)
    clock.now = start + timedelta(minutes=20)  # every stage overdue, the session has begun
    fake = FakeChannel()
    drain(dispatcher(runtime, clock, fake))
    assert all("missed you" in call.body for call in fake.calls)  # the follow-up only
    with runtime.transaction() as session:
        reasons = {r.stage: (r.state, r.reason) for r in session.scalars(select(Reminder))}
    assert reasons["-2h"] == ("skipped", "the session had already started")
    assert {reasons["-72h"][0], reasons["-24h"][0]} == {"skipped"}


def test_daily_cap_defers_a_second_reminder_for_the_same_patient(runtime: Runtime) -> None:
    clock = Clock(T0)
    put(runtime, clock, T0 + timedelta(days=3), external_id="a1", announce=False)
    put(runtime, clock, T0 + timedelta(days=3, hours=5), external_id="a2", announce=False)
    fake = FakeChannel()
    d = dispatcher(runtime, clock, fake)
    clock.now = T0 + timedelta(days=2, hours=5)  # both -24h reminders are due
    drain(d)
    assert len(fake.calls) == 1
    waiting = rows(runtime)[("a2", "-24h")]
    assert (
        waiting[0] == "scheduled"
        and waiting[2] == "waiting: daily cap of 1 reminder(s) per patient"
    )


def test_transient_errors_retry_with_backoff_then_send(runtime: Runtime) -> None:
    clock = Clock(T0)
    start = T0 + timedelta(days=2)
    put(runtime, clock, start, announce=False)
    failures = iter([TransientError("503"), TransientError("timeout")])

    def flaky(_m: OutboundMessage) -> None:
        error = next(failures, None)
        if error is not None:
            raise error

    fake = FakeChannel(fail=flaky)
    d = dispatcher(runtime, clock, fake, backoff_base=timedelta(seconds=60))
    clock.now = start - timedelta(hours=24)
    drain(d)
    state, due, reason = rows(runtime)[("a1", "-24h")]
    assert state == "scheduled" and reason == "retrying: 503"
    assert clock.now + timedelta(seconds=30) <= due <= clock.now + timedelta(seconds=60)
    clock.now = due
    drain(d)
    state, due2, _ = rows(runtime)[("a1", "-24h")]
    assert clock.now + timedelta(seconds=60) <= due2 <= clock.now + timedelta(seconds=120)
    clock.now = due2
    drain(d)
    assert states(runtime)[("a1", "-24h")] == "sent"
    assert len(fake.calls) == 3 and len(fake.delivered) == 1


def test_retries_give_up_and_fail_with_the_reason(runtime: Runtime) -> None:
    clock = Clock(T0)
    start = T0 + timedelta(days=2)
    put(runtime, clock, start, announce=False)

    def down(_m: OutboundMessage) -> None:
        raise TransientError("provider down")

    d = dispatcher(runtime, clock, FakeChannel(fail=down), max_attempts=3)
    clock.now = start - timedelta(hours=24)
    for _ in range(5):
        drain(d)
        clock.now += timedelta(hours=1)
    state, _, reason = rows(runtime)[("a1", "-24h")]
    assert state == "failed" and reason == "gave up after retries: provider down"


def test_a_permanent_failure_falls_back_to_the_next_channel(runtime: Runtime) -> None:
    clock = Clock(T0)
    start = T0 + timedelta(days=2)
    # WhatsApp needs the patient's opt-in (Meta's rule), which this patient gave.
    put(runtime, clock, start, announce=False, patient={"consent": {"whatsapp": True}})

    def landline(message: OutboundMessage) -> None:
        if message.channel != Channel.EMAIL:
            raise PermanentError("the number is a landline")

    fake = FakeChannel(fail=landline)
    clock.now = start - timedelta(hours=24)
    drain(dispatcher(runtime, clock, fake))
    # The practice's order: SMS, then WhatsApp, then email.
    assert [m.channel for m in fake.calls] == [Channel.SMS, Channel.WHATSAPP, Channel.EMAIL]
    assert [m.to for m in fake.calls][-1] == "avery@example.com"
    assert states(runtime)[("a1", "-24h")] == "sent"


def test_a_dead_workers_claim_expires_and_another_sends_it_once(runtime: Runtime) -> None:
    clock = Clock(T0)
    start = T0 + timedelta(days=2)
    put(runtime, clock, start, announce=False)
    clock.now = start - timedelta(hours=24)
    outbox = OutboxChannel(runtime.sessions, runtime.cipher)
    dead = dispatcher(runtime, clock, outbox, worker="dead", lease=timedelta(minutes=5))
    [claimed] = dead.claim()  # ... and the worker dies here
    alive = dispatcher(runtime, clock, outbox, worker="alive")
    assert alive.claim() == []  # the lease still holds
    clock.now += timedelta(minutes=6)
    drain(alive)
    assert dead.process(claimed) == "lost_claims"  # the dead one's late wake-up sends nothing
    with runtime.transaction() as session:
        sent = session.scalars(select(OutboxMessage)).all()
    assert len(sent) == 1 and sent[0].attempts == 1


def test_a_send_whose_outcome_was_not_recorded_is_delivered_once(runtime: Runtime) -> None:
    """The residual window: the provider took the message, the worker died before recording.
    The retry carries the same idempotency key, so the outbox keeps one message."""
    clock = Clock(T0)
    start = T0 + timedelta(days=2)
    put(runtime, clock, start, announce=False)
    clock.now = start - timedelta(hours=24)
    outbox = OutboxChannel(runtime.sessions, runtime.cipher)
    first = dispatcher(runtime, clock, outbox, worker="first")
    [claimed] = first.claim()
    [prepared], settled = first.prepare([claimed])
    assert settled == []
    outbox.send(prepared.message)  # delivered; then the process is killed
    clock.now += timedelta(minutes=6)
    drain(dispatcher(runtime, clock, outbox, worker="second"))
    with runtime.transaction() as session:
        sent = session.scalars(select(OutboxMessage)).all()
        reminder = session.get(Reminder, claimed)
        assert reminder is not None and reminder.state == "delivered"
    assert len(sent) == 1 and sent[0].attempts == 2


def test_a_noshow_marked_by_the_ehr_still_gets_the_warm_follow_up(runtime: Runtime) -> None:
    clock = Clock(T0)
    start = T0 + timedelta(days=2)
    put(runtime, clock, start, announce=False, confirmation="confirmed")
    clock.now = start + timedelta(minutes=5)
    put(runtime, clock, start, status=AppointmentStatus.NOSHOW.value, confirmation="confirmed")
    clock.now = start + timedelta(minutes=30)
    fake = FakeChannel()
    drain(dispatcher(runtime, clock, fake))
    assert len(fake.calls) == 1 and "we missed you" in fake.calls[0].body
