"""The built-in actions end to end on both databases, on the outbox channel, with the practice's
scheduling system played by a loopback HTTP server."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select

from frontdesk.adapters.channels.config import WhatsAppSettings
from frontdesk.adapters.channels.outbox import OutboxChannel
from frontdesk.adapters.channels.whatsapp import WhatsAppChannel
from frontdesk.adapters.db.action_models import ActionEffect
from frontdesk.adapters.db.models import Appointment, Message, OutboxMessage, ReviewItem
from frontdesk.adapters.db.models import Patient as PatientRow
from frontdesk.bootstrap import Runtime
from frontdesk.domain.appointments import AppointmentStatus
from frontdesk.domain.channels import Channel, ConsentStatus
from frontdesk.services import actions, consent
from frontdesk.services.outgoing import MessageSender, fixed_senders
from integration.action_support import (
    Patient1,
    configure,
    conversation_owner,
    outbound,
    run_state,
    scheduler_server,
    seed,
    step_log,
)
from integration.test_reminders_flow import T0, Clock, dispatcher, drain, put
from provider_fakes import Reply, recording_server


def _remind(runtime: Runtime, clock: Clock) -> None:
    """A session in 3 days; the reminders go out as planned until 20 hours before it."""
    start = T0 + timedelta(days=3)
    seed(runtime, clock, start=start)
    outbox = OutboxChannel(runtime.sessions, runtime.cipher)
    clock.now = T0 + timedelta(minutes=5)
    drain(dispatcher(runtime, clock, outbox))
    clock.now = start - timedelta(hours=20)
    drain(dispatcher(runtime, clock, outbox))


def test_no_show_reminder_runs_end_to_end(runtime: Runtime) -> None:
    clock = Clock(T0)
    _remind(runtime, clock)
    patient = Patient1(runtime, clock)
    with scheduler_server() as scheduler:
        configure(runtime, scheduler.url)
        worker = patient.worker()
        assert worker.run_due() >= 1  # the unconfirmed appointment starts the action
        assert worker.start_triggered() == 0  # once per appointment
        assert "full name" in outbound(runtime)[-1][1]
        assert patient.write("Avery Johnson") is True
        assert "date of birth" in outbound(runtime)[-1][1]
        assert patient.write("03/25/1990") is True
        assert "email, text (SMS) or WhatsApp" in outbound(runtime)[-1][1]
        assert patient.write("by email please") is True
        assert run_state(runtime) == ("waiting_effect", None)
        assert scheduler.requests == []  # nothing leaves inside the transaction
        assert worker.perform_effects() == 1
        assert len(scheduler.requests) == 1
        request = scheduler.requests[0]
        assert request["valid"] and request["path"] == "/no-show-reminder"
        assert request["body"]["patient"]["name"] == "Avery Johnson"
        assert request["body"]["reminder"] == {"channel": "email"}
        assert request["key"].startswith("action-run-")
    channel, body = outbound(runtime)[-1]
    assert channel == "email" and "reminder of your appointment" in body
    assert run_state(runtime) == ("waiting_reply", None)
    assert patient.write("C", intent="confirm", channel=Channel.EMAIL) is True
    with runtime.transaction() as session:
        appointment = session.scalars(select(Appointment)).one()
        assert appointment.confirmation == "confirmed"
        delivered = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
        assert [m.channel for m in delivered][-1] == "email"
    assert run_state(runtime) == ("done", "completed")
    # The run's log, step by step, carries no PHI.
    logs = step_log(runtime)
    kinds = [(entry.kind, entry.outcome) for entry in logs]
    assert ("identity", "verified") in kinds
    assert ("webhook_call", "ok") in kinds
    assert ("set_status", "changed") in kinds
    dumped = json.dumps([entry.detail for entry in logs])
    for secret in ("Avery", "1990", "avery@example.com", "2025550101", "practice-webhook-secret"):
        assert secret not in dumped
    call = next(entry for entry in logs if entry.kind == "webhook_call")
    assert call.detail["request"]["headers"]["X-Frontdesk-Signature"] == "[secret]"
    assert call.detail["request"]["body"]["patient"]["name"] == "[redacted]"
    assert call.detail["response"]["status"] == 200
    assert call.duration_ms is not None


def test_no_show_reminder_hands_off_when_the_reply_never_comes(runtime: Runtime) -> None:
    clock = Clock(T0)
    _remind(runtime, clock)
    patient = Patient1(runtime, clock)
    with scheduler_server() as scheduler:
        configure(runtime, scheduler.url)
        worker = patient.worker()
        worker.run_due()
        patient.write("Avery Johnson")
        patient.write("1990-03-25")
        patient.write("text me")
        worker.perform_effects()
    assert run_state(runtime) == ("waiting_reply", None)
    clock.now += timedelta(hours=5)
    assert worker.time_out_waits() == 1
    assert run_state(runtime) == ("handed_off", "handoff_step")
    assert "staff" in conversation_owner(runtime)


def test_missed_session_follow_up_flags_review_and_sends_rebooking_link(runtime: Runtime) -> None:
    clock = Clock(T0)
    start = T0 - timedelta(hours=3)
    put(runtime, clock, start, announce=False, status=AppointmentStatus.NOSHOW.value)
    configure(runtime)
    with runtime.transaction() as session:
        from frontdesk.services import practices

        practices.resolve_practice(session, "default").booking_url = "https://book.example/x"
    patient = Patient1(runtime, clock)
    worker = patient.worker()
    assert worker.start_triggered() == 1
    with runtime.transaction() as session:
        review = session.scalars(select(ReviewItem)).all()
        assert [r.kind for r in review if r.kind == "missed_session_review"] == [
            "missed_session_review"
        ]
        assert session.scalars(select(ActionEffect)).all() == []
    assert "https://book.example/x" in outbound(runtime)[-1][1]
    assert run_state(runtime) == ("waiting_reply", None)
    assert patient.write("can I come thursday?") is True
    assert run_state(runtime) == ("handed_off", "handoff_step")


def test_a_crisis_on_another_channel_stops_the_waiting_run(runtime: Runtime) -> None:
    clock = Clock(T0)
    _remind(runtime, clock)
    patient = Patient1(runtime, clock)
    with scheduler_server() as scheduler:
        configure(runtime, scheduler.url)
        worker = patient.worker()
        worker.run_due()
        patient.write("Avery Johnson")
        patient.write("1990-03-25")
        patient.write("email")
        worker.perform_effects()
    assert run_state(runtime) == ("waiting_reply", None)
    assert patient.write("I can't go on", intent="crisis", channel=Channel.EMAIL) == "handed_off"
    assert run_state(runtime) == ("interrupted", "crisis")
    with runtime.transaction() as session:
        assert session.scalars(select(Appointment.confirmation)).one() == "unconfirmed"


def test_a_channel_the_patient_opted_out_of_is_asked_again(runtime: Runtime) -> None:
    clock = Clock(T0)
    _remind(runtime, clock)
    patient = Patient1(runtime, clock)
    with runtime.transaction() as session:
        record = session.scalars(select(PatientRow)).one()
        consent.set_consent(
            session,
            record,
            Channel.WHATSAPP,
            ConsentStatus.REVOKED,
            source="keyword",
            actor="patient",
        )
    with scheduler_server() as scheduler:
        configure(runtime, scheduler.url)
        worker = patient.worker()
        worker.run_due()
        patient.write("Avery Johnson")
        patient.write("1990-03-25")
        patient.write("whatsapp")  # they said STOP there: only START undoes it
        assert outbound(runtime)[-1][1].startswith("We can't reach you that way yet.")
        patient.write("sms then")
        worker.perform_effects()
        assert scheduler.requests[0]["body"]["reminder"] == {"channel": "sms"}
    assert run_state(runtime) == ("waiting_reply", None)
    assert outbound(runtime)[-1][0] == "sms"
    with runtime.transaction() as session:
        record = session.scalars(select(PatientRow)).one()
        assert consent.current(record, Channel.WHATSAPP) == ConsentStatus.REVOKED


def test_the_patient_picks_whatsapp_and_confirms_there(runtime: Runtime) -> None:
    """The demo's walk-through: no WhatsApp opt-in on record; the prompt says that choosing a
    channel agrees to messages there, so the choice is recorded as the opt-in, with the reply as
    evidence; the reminder goes out on WhatsApp and the inline C there confirms."""
    clock = Clock(T0)
    _remind(runtime, clock)
    patient = Patient1(runtime, clock)
    with scheduler_server() as scheduler:
        configure(runtime, scheduler.url)
        worker = patient.worker()
        worker.run_due()
        patient.write("Avery Johnson")
        patient.write("03/25/1990")
        prompt = outbound(runtime)[-1][1]
        assert "WhatsApp" in prompt and "My Practice" in prompt and "agree" in prompt
        assert patient.write("WhatsApp please") is True
        # The reminder goes through the real Cloud API adapter to a local server playing Meta:
        # the patient has never written on WhatsApp, so it must go as an approved template.
        reply = Reply(200, json.dumps({"messages": [{"id": "wamid.action1"}]}).encode())
        with recording_server(reply) as meta:
            cloud = WhatsAppChannel(
                WhatsAppSettings(
                    phone_number_id="1234567890",
                    access_token="meta-token",
                    app_secret="app-secret",
                    verify_token="verify-me",
                    base_url=meta.base_url,
                ),
                clock=lambda: clock.now,
            )
            outbox = OutboxChannel(runtime.sessions, runtime.cipher)
            senders = fixed_senders(
                {Channel.SMS: outbox, Channel.EMAIL: outbox, Channel.WHATSAPP: cloud}
            )
            worker = actions.ActionWorker(
                runtime, MessageSender(runtime, senders, clock=clock), clock=clock
            )
            assert worker.perform_effects() == 1
            [sent] = meta.requests
        assert scheduler.requests[0]["valid"]
        assert scheduler.requests[0]["body"]["reminder"] == {"channel": "whatsapp"}
    template = json.loads(sent.body)
    assert template["type"] == "template" and template["to"] == "+12025550101"
    assert template["template"]["name"] == "appointment_reminder"
    channel, body = outbound(runtime)[-1]
    assert channel == "whatsapp" and "reminder of your appointment" in body
    with runtime.transaction() as session:
        last = session.scalars(select(Message).order_by(Message.id.desc())).first()
        assert last is not None and last.purpose == "reminder"
        assert last.delivery_status == "queued" and last.provider_message_id == "wamid.action1"
    with runtime.transaction() as session:
        record = session.scalars(select(PatientRow)).one()
        assert consent.current(record, Channel.WHATSAPP) == ConsentStatus.GRANTED
        [event] = [e for e in consent.ledger(session, record.id) if e.channel == "whatsapp"]
        assert (event.action, event.source) == ("granted", "action_opt_in")
        evidence = session.get(Message, event.evidence_message_id)
        assert evidence is not None and evidence.body == "WhatsApp please"
    assert patient.write("C", intent="confirm", channel=Channel.WHATSAPP) is True
    with runtime.transaction() as session:
        assert session.scalars(select(Appointment.confirmation)).one() == "confirmed"
    assert outbound(runtime)[-1][0] == "whatsapp"
    assert run_state(runtime) == ("done", "completed")
    kinds = [(entry.kind, entry.outcome) for entry in step_log(runtime)]
    assert ("consent", "granted") in kinds and ("webhook_call", "ok") in kinds
    assert ("set_status", "changed") in kinds
