"""Slot filling in conversations on both databases: re-asks, corrections, hand-off after N bad
answers, interruptions (a crisis always wins, a question is answered and the action resumes),
expiry, and a restart in the middle; identity checks that never reveal whether a record exists."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select

from frontdesk.adapters.db.action_models import IdentityAttempt
from frontdesk.adapters.db.models import AuditEvent
from frontdesk.bootstrap import Runtime, build_runtime
from frontdesk.domain.channels import Channel
from integration.action_support import (
    Patient1,
    add_spec,
    configure,
    conversation_owner,
    outbound,
    run_state,
    seed,
    sender,
    step_log,
)
from integration.test_reminders_flow import T0, Clock

INTAKE = """
name: callback_request
description: Collect how to reach the patient and when.
trigger: {event: keyword, keywords: [callback, "call me"]}
fields:
  - name: channel
    kind: channel
    prompt: {en: "Email, text or WhatsApp?", es: "¿Correo, texto o WhatsApp?"}
    max_asks: 3
  - name: when
    kind: datetime_preference
    prompt: {en: "When suits you?"}
  - name: topic
    kind: choice
    choices: [billing, scheduling]
    prompt: {en: "Is it about billing or scheduling?"}
steps:
  - type: if
    when: {field: channel, equals: sms}
    then:
      - type: send
        text: {en: "We'll text you ({{ fields.topic }})."}
    else:
      - type: send
        text: {en: "We'll reach you by {{ fields.channel }} ({{ fields.topic }})."}
"""

VERIFY = """
name: check_me
trigger: {event: keyword, keywords: [details]}
identity: {identifier: full_name, date_of_birth: dob}
fields:
  - {name: full_name, kind: name, prompt: {en: "Your full name?"}}
  - {name: dob, kind: date_of_birth, prompt: {en: "Your date of birth?"}}
steps:
  - type: send
    text: {en: "Verified: your session is on {{ when }}."}
"""


def _start(runtime: Runtime, spec: str = INTAKE) -> tuple[Patient1, Clock]:
    clock = Clock(T0)
    seed(runtime, clock)
    configure(runtime, builtins=False)
    add_spec(runtime, spec)
    return Patient1(runtime, clock), clock


def test_fields_are_asked_checked_reasked_and_corrected(runtime: Runtime) -> None:
    patient, _ = _start(runtime)
    assert patient.write("nothing to see", intent="other") is False  # no trigger: the caller's
    assert patient.write("Call me") is True
    assert outbound(runtime)[-1][1] == "Email, text or WhatsApp?"
    assert patient.write("carrier pigeon") is True
    assert outbound(runtime)[-1][1] == "Please answer email, text (SMS) or WhatsApp."
    assert patient.write("whatsapp") is True  # no WhatsApp opt-in on record
    assert outbound(runtime)[-1][1].startswith("We can't reach you that way yet.")
    assert patient.write("email") is True
    assert outbound(runtime)[-1][1] == "When suits you?"
    assert patient.write("actually, text me instead") is True  # a correction, mid-way
    assert [b for _, b in outbound(runtime)[-2:]] == [
        "Got it, I've updated that.",
        "When suits you?",
    ]
    assert patient.write("tuesday morning") is True
    assert patient.write("2") is True  # the second choice
    assert outbound(runtime)[-1][1] == "We'll text you (scheduling)."
    assert run_state(runtime) == ("done", "completed")
    corrections = [e.detail for e in step_log(runtime) if e.kind == "correction"]
    assert corrections == [{"field": "channel", "value": "sms"}]


def test_too_many_bad_answers_hand_off(runtime: Runtime) -> None:
    patient, _ = _start(runtime)
    patient.write("callback")
    patient.write("pigeon")
    patient.write("smoke signals")
    assert run_state(runtime) == ("collecting", None)
    patient.write("owl")
    assert run_state(runtime) == ("handed_off", "too_many_invalid_answers")
    assert conversation_owner(runtime) == ["staff"]
    assert "A member of our team will follow up" in outbound(runtime)[-1][1]


def test_a_crisis_always_wins_and_a_question_lets_the_action_resume(runtime: Runtime) -> None:
    patient, clock = _start(runtime)
    patient.write("callback")
    # A question: the runner gives control back, keeps the run, and re-asks when told.
    assert patient.write("what are your hours?", intent="question") is False
    assert run_state(runtime) == ("collecting", None)
    with runtime.transaction() as session:
        from frontdesk.adapters.db.models import Conversation
        from frontdesk.services import actions

        conversation = session.scalars(select(Conversation)).one()
        runner = actions.runner_for(runtime, clock.now)
        runner.resume(session, conversation)
    assert outbound(runtime)[-1][1] == "Email, text or WhatsApp?"
    assert patient.write("email") is True
    # A crisis: the caller hands off first and the run stops; the runner refuses it as well.
    assert patient.write("I want to end it all", intent="crisis") == "handed_off"
    assert run_state(runtime) == ("interrupted", "crisis")
    assert conversation_owner(runtime) == ["staff"]


def test_the_runner_never_swallows_a_crisis_even_if_the_caller_forgot(runtime: Runtime) -> None:
    patient, clock = _start(runtime)
    patient.write("callback")
    with runtime.transaction() as session:
        from frontdesk.adapters.db.models import Conversation
        from frontdesk.services import actions
        from frontdesk.services.replies import Interpretation

        conversation = session.scalars(select(Conversation)).one()
        runner = actions.runner_for(runtime, clock.now)
        assert (
            runner.on_message(session, conversation, "help me", Interpretation("crisis")) is False
        )
        assert runner.queued == []
    assert run_state(runtime) == ("interrupted", "crisis")


def test_state_survives_a_restart_and_expires(runtime: Runtime) -> None:
    patient, clock = _start(runtime)
    patient.write("callback")
    patient.write("email")
    # A new process on the same database picks the conversation up where it was.
    fresh = build_runtime(runtime.settings)
    try:
        again = Patient1(fresh, clock)
        assert again.write("friday afternoon") is True
        assert outbound(fresh)[-1][1] == "Is it about billing or scheduling?"
    finally:
        fresh.dispose()
    clock.now += timedelta(hours=25)  # past the default 24-hour time to live
    worker = patient.worker()
    assert worker.expire() == 1
    assert run_state(runtime) == ("expired", "expired")
    assert patient.write("billing") is False  # the caller handles it as a plain message


def test_an_expired_run_is_noticed_on_the_next_message(runtime: Runtime) -> None:
    patient, clock = _start(runtime)
    patient.write("callback")
    clock.now += timedelta(days=2)
    assert patient.write("email") is False
    assert run_state(runtime) == ("expired", "expired")


def test_opt_out_cancels_the_run(runtime: Runtime) -> None:
    patient, _ = _start(runtime)
    patient.write("callback")
    assert patient.write("STOP", intent="opt_out") is False
    assert run_state(runtime) == ("cancelled", "opt_out")


# --- identity --------------------------------------------------------------------------------


def test_identity_success_reveals_the_appointment(runtime: Runtime) -> None:
    patient, _ = _start(runtime, VERIFY)
    patient.write("details")
    patient.write("avery johnson")
    patient.write("March 25, 1990")
    assert outbound(runtime)[-1][1] == "Verified: your session is on Tue, Dec 8 at 6:00 AM."
    assert run_state(runtime) == ("done", "completed")


def test_identity_failure_says_the_same_whether_or_not_a_record_exists(runtime: Runtime) -> None:
    patient, _ = _start(runtime, VERIFY)
    patient.write("details")
    patient.write("Avery Johnson")
    patient.write("1991-01-01")  # the right person, the wrong date of birth
    wrong_date = outbound(runtime)[-2:]
    patient.write("Nobody Atall")
    patient.write("1990-03-25")  # a person who does not exist
    no_record = outbound(runtime)[-2:]
    assert wrong_date == no_record
    assert wrong_date[0][1] == "Sorry, I couldn't verify those details. Let's try again."
    assert "session" not in json.dumps(outbound(runtime)[-4:])


def test_repeated_identity_failures_lock_and_hand_off_with_an_audit_without_phi(
    runtime: Runtime,
) -> None:
    patient, _ = _start(runtime, VERIFY)
    patient.write("details")
    for _ in range(3):
        patient.write("Avery Johnson")
        patient.write("2001-02-03")
    assert run_state(runtime) == ("handed_off", "identity_locked")
    assert conversation_owner(runtime) == ["staff"]
    with runtime.transaction() as session:
        attempts = session.scalars(select(IdentityAttempt)).all()
        assert [a.succeeded for a in attempts] == [False, False, False]
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.action.like("identity.%"))
        ).all()
        assert {e.action for e in events} == {"identity.failed", "identity.locked"}
        dumped = json.dumps([e.details for e in events])
        assert "Avery" not in dumped and "2001" not in dumped


def test_address_on_record_with_a_signed_link_needs_no_questions(runtime: Runtime) -> None:
    _patient, clock = _start(runtime, VERIFY)
    with runtime.transaction() as session:
        from frontdesk.adapters.db.models import Appointment, Conversation, Patient, Practice
        from frontdesk.services import actions
        from frontdesk.services.replies import thread_for

        practice = session.scalars(select(Practice)).one()
        person = session.scalars(select(Patient)).one()
        conversation = thread_for(session, runtime.cipher, practice, person, Channel.SMS, None)
        session.flush()
        runner = actions.runner_for(runtime, clock.now)
        appointment_id = session.scalars(select(Appointment.id)).one()
        run = runner.start(
            session,
            "check_me",
            conversation,
            {"signed_link": True, "appointment_id": appointment_id},
        )
        assert run is not None and run.verified
        assert isinstance(conversation, Conversation)
        session.flush()
        ids = [m.id for m in runner.queued]
    sender(runtime, clock).send_now(ids)
    assert outbound(runtime) == [("sms", "Verified: your session is on Tue, Dec 8 at 6:00 AM.")]
    assert ("identity", "verified") in [(e.kind, e.outcome) for e in step_log(runtime)]


def test_no_action_starts_in_a_conversation_staff_own(runtime: Runtime) -> None:
    patient, _ = _start(runtime)
    patient.write("I feel unsafe", intent="crisis")
    assert patient.write("callback") is False
    with runtime.transaction() as session:
        from frontdesk.adapters.db.action_models import ActionRun

        assert session.scalars(select(ActionRun)).all() == []
