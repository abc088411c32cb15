"""Two-way replies on both databases: a reminder goes out, the patient answers on the same
channel, the appointment and its reminders follow, a receipt comes back, consent is kept."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from frontdesk.adapters.channels.outbox import OutboxChannel
from frontdesk.adapters.db.channel_models import ActionLink, ConsentEvent
from frontdesk.adapters.db.models import (
    Appointment,
    Conversation,
    InboundWebhook,
    Message,
    OutboxMessage,
    Patient,
    ReviewItem,
)
from frontdesk.bootstrap import Runtime
from frontdesk.domain.channels import Channel
from frontdesk.services import inbound_messages, knowledge, links, practices
from frontdesk.services.outgoing import MessageSender, fixed_senders
from frontdesk.services.reminders import Planning
from integration.test_reminders_flow import T0, Clock, dispatcher, drain, put, states


def _outbox(runtime: Runtime) -> OutboxChannel:
    return OutboxChannel(runtime.sessions, runtime.cipher)


def _sender(runtime: Runtime, clock: Clock) -> MessageSender:
    outbox = _outbox(runtime)
    return MessageSender(
        runtime,
        fixed_senders({Channel.SMS: outbox, Channel.EMAIL: outbox, Channel.WHATSAPP: outbox}),
        clock=clock,
    )


def _ids(runtime: Runtime) -> tuple[int, int]:
    with runtime.transaction() as session:
        practice = practices.resolve_practice(session, "default")
        patient = session.scalars(select(Patient)).one()
        return practice.id, patient.id


def _reply(
    runtime: Runtime, clock: Clock, text: str, channel: Channel | None = None
) -> inbound_messages.ReplyOutcome:
    practice_id, patient_id = _ids(runtime)
    return inbound_messages.outbox_reply(
        runtime,
        _sender(runtime, clock),
        practice_id=practice_id,
        patient_id=patient_id,
        text=text,
        channel=channel,
        clock=clock,
    )


def _thread(runtime: Runtime) -> list[tuple[str, str, str | None, str]]:
    """(direction, channel, status, body) of every message, oldest first."""
    with runtime.transaction() as session:
        return [
            (m.direction, m.channel, m.delivery_status, m.body)
            for m in session.scalars(select(Message).order_by(Message.id))
        ]


def _book_and_remind(runtime: Runtime, clock: Clock, **fields: object) -> None:
    """An appointment 3 days out; the -72h reminder goes out by SMS."""
    put(runtime, clock, T0 + timedelta(days=3), announce=False, **fields)
    clock.now = T0 + timedelta(minutes=5)
    drain(dispatcher(runtime, clock, _outbox(runtime)))


def _appointment(runtime: Runtime) -> tuple[str, str]:
    with runtime.transaction() as session:
        appointment = session.scalars(select(Appointment)).one()
        return appointment.status, appointment.confirmation


def test_c_confirms_stops_the_next_reminders_and_sends_a_receipt(runtime: Runtime) -> None:
    clock = Clock(T0)
    _book_and_remind(runtime, clock)
    assert states(runtime)[("a1", "-72h")] == "delivered"
    assert states(runtime)[("a1", "-24h")] == "scheduled"

    clock.now += timedelta(minutes=10)
    outcome = _reply(runtime, clock, "C")
    assert (outcome.intent, outcome.action) == ("confirm", "confirmed")
    assert _appointment(runtime) == ("booked", "confirmed")
    # Unconfirmed-only stages are cancelled in the same transaction as the answer.
    assert states(runtime)[("a1", "-24h")] == "cancelled"
    assert states(runtime)[("a1", "-2h")] == "cancelled"

    thread = _thread(runtime)
    assert [(d, c) for d, c, _s, _b in thread] == [
        ("outbound", "sms"),
        ("inbound", "sms"),
        ("outbound", "sms"),
    ]
    assert thread[2][2] == "delivered"
    assert thread[2][3] == "Thanks, you're confirmed for Thu, Dec 10 at 10:00 AM. See you then."

    # Days later, when the -24h reminder would have been due, nothing goes out.
    clock.now = T0 + timedelta(days=2, hours=1)
    drain(dispatcher(runtime, clock, _outbox(runtime)))
    assert len(_thread(runtime)) == 3


@pytest.mark.parametrize(
    ("text", "action", "status", "confirmation"),
    [
        ("N", "cancelled", "cancelled", "declined"),
        ("no", "cancelled", "cancelled", "declined"),
        ("R", "reschedule_requested", "booked", "reschedule_requested"),
        ("Sí", "confirmed", "booked", "confirmed"),
        ("👍", "confirmed", "booked", "confirmed"),
        ("cambiar", "reschedule_requested", "booked", "reschedule_requested"),
    ],
)
def test_keyword_answers(
    runtime: Runtime, text: str, action: str, status: str, confirmation: str
) -> None:
    clock = Clock(T0)
    _book_and_remind(runtime, clock)
    clock.now += timedelta(minutes=10)
    outcome = _reply(runtime, clock, text)
    assert outcome.action == action
    assert _appointment(runtime) == (status, confirmation)
    assert states(runtime)[("a1", "-24h")] == "cancelled"
    with runtime.transaction() as session:
        kinds = set(session.scalars(select(ReviewItem.kind)))
    assert ("reschedule_requested" in kinds) == (action == "reschedule_requested")


def test_a_crisis_that_also_says_stop_reaches_staff_and_keeps_the_opt_out(
    runtime: Runtime,
) -> None:
    clock = Clock(T0)
    _book_and_remind(runtime, clock)
    clock.now += timedelta(minutes=10)
    outcome = _reply(runtime, clock, "stop texting me, I took all my pills")
    assert (outcome.intent, outcome.action, outcome.urgent) == ("crisis", "handoff:crisis", True)

    replies = [t for t in _thread(runtime) if t[0] == "outbound"][1:]
    assert "988" in replies[0][3] and replies[0][2] == "delivered"  # the crisis message first
    assert "no more messages" in replies[1][3] and replies[1][2] == "delivered"
    with runtime.transaction() as session:
        ledger = session.scalars(select(ConsentEvent)).all()
        assert [(e.channel, e.action) for e in ledger] == [("sms", "revoked")]
        conversation = session.scalars(select(Conversation)).one()
        assert (conversation.owner, conversation.urgent) == ("staff", True)


def test_a_patient_who_opted_out_still_gets_the_crisis_message(runtime: Runtime) -> None:
    clock = Clock(T0)
    _book_and_remind(runtime, clock)
    clock.now += timedelta(minutes=10)
    assert _reply(runtime, clock, "STOP").action == "opted_out"
    clock.now += timedelta(days=1)
    assert _reply(runtime, clock, "I want to die").intent == "crisis"
    last = _thread(runtime)[-1]
    assert last[0] == "outbound" and "988" in last[3]
    assert last[2] == "delivered"  # a reply to the patient's own crisis, never outreach


def test_stop_opts_out_with_one_confirmation_then_silence(runtime: Runtime) -> None:
    clock = Clock(T0)
    _book_and_remind(runtime, clock)
    clock.now += timedelta(minutes=10)
    assert _reply(runtime, clock, "STOP").action == "opted_out"
    assert _reply(runtime, clock, "stop").action == "opted_out"
    _reply(runtime, clock, "hello?")

    outbound = [t for t in _thread(runtime) if t[0] == "outbound"]
    confirmations = [t for t in outbound if "no more messages" in t[3]]
    assert len(confirmations) == 1 and confirmations[0][2] == "delivered"
    # The acknowledgement of "hello?" was refused: the patient opted out of SMS.
    assert outbound[-1][2] == "failed"
    with runtime.transaction() as session:
        ledger = session.scalars(select(ConsentEvent).order_by(ConsentEvent.id)).all()
        assert [(e.channel, e.action, e.source) for e in ledger] == [
            ("sms", "revoked", "keyword"),
            ("sms", "revoked", "keyword"),
        ]
        assert ledger[0].evidence_message_id is not None
        assert ledger[1].detail is not None and ledger[1].detail.startswith("repeated")
        sent_to = {m.channel for m in session.scalars(select(OutboxMessage))}
    # Reminders move to the next consented channel at once: email (WhatsApp needs an opt-in
    # this patient never gave).
    assert states(runtime)[("a1", "-24h")] == "scheduled"
    clock.now = T0 + timedelta(days=2, hours=1)
    drain(dispatcher(runtime, clock, _outbox(runtime)))
    last = _thread(runtime)[-1]
    assert last[:3] == ("outbound", "email", "delivered")
    assert sent_to == {"sms"}

    # START opts back in, with its own confirmation.
    assert _reply(runtime, clock, "START", Channel.SMS).action == "opted_in"
    assert "subscribed again" in _thread(runtime)[-1][3]


def test_a_bare_cancel_by_sms_is_a_carrier_opt_out_and_email_explains(runtime: Runtime) -> None:
    clock = Clock(T0)
    _book_and_remind(runtime, clock, patient={"consent": {"email": True}})
    clock.now += timedelta(minutes=10)
    outcome = _reply(runtime, clock, "CANCEL")
    assert (outcome.intent, outcome.action) == ("opt_out", "opted_out")
    assert _appointment(runtime) == ("booked", "unconfirmed")  # not cancelled by the keyword
    answers = [t for t in _thread(runtime) if t[0] == "outbound"][1:]
    assert [(c, s) for _d, c, s, _b in answers] == [("sms", "delivered"), ("email", "delivered")]
    assert "reply N" in answers[1][3]
    # And N on email does cancel.
    assert _reply(runtime, clock, "N", Channel.EMAIL).action == "cancelled"
    assert _appointment(runtime) == ("cancelled", "declined")


def test_a_bare_cancel_cancels_when_the_provider_has_no_such_keyword(runtime: Runtime) -> None:
    runtime.settings.sms_cancel_is_opt_out = False
    clock = Clock(T0)
    _book_and_remind(runtime, clock)
    clock.now += timedelta(minutes=10)
    assert _reply(runtime, clock, "CANCEL").action == "cancelled"


def test_small_talk_waits_for_a_person_with_one_acknowledgement(runtime: Runtime) -> None:
    clock = Clock(T0)
    _book_and_remind(runtime, clock)
    clock.now += timedelta(minutes=10)
    assert _reply(runtime, clock, "thanks so much").action == "needs_person"
    assert _reply(runtime, clock, "have a nice weekend").action == "needs_person"
    acks = [t for t in _thread(runtime) if "will get back to you" in t[3]]
    assert len(acks) == 1
    # A message the agent did not understand may be a crisis it missed: the resources go too.
    assert "988" in acks[0][3] and "911" in acks[0][3]
    with runtime.transaction() as session:
        conversation = session.scalars(select(Conversation)).one()
        assert conversation.needs_attention and conversation.status == "open"


def test_questions_are_answered_from_the_practices_documents_or_go_to_a_person(
    runtime: Runtime,
) -> None:
    with runtime.transaction() as session:
        knowledge.seed_demo_documents(session, practices.resolve_practice(session, "default"))
    clock = Clock(T0)
    _book_and_remind(runtime, clock)
    clock.now += timedelta(minutes=10)

    answered = _reply(runtime, clock, "What's your late cancellation fee?")
    assert (answered.intent, answered.action) == ("question", "answered")
    answer = _thread(runtime)[-1][3]
    assert answer.startswith("Automated assistant: ")  # the first answer says what it is
    assert "(From: " in answer  # with its source

    unknown = _reply(runtime, clock, "Do you validate parking for the stadium garage on game days?")
    assert unknown.action == "unanswered"
    assert "don't have that information" in _thread(runtime)[-1][3]
    assert not _thread(runtime)[-1][3].startswith("Automated assistant")  # said once
    with runtime.transaction() as session:
        assert session.scalars(select(ReviewItem.kind)).all() == ["unanswered_question"]
        assert session.scalars(select(Conversation)).one().needs_attention


def test_a_question_the_answerer_finds_dangerous_is_handed_off_as_a_crisis(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Belt and braces: should the answerer see danger the classifier missed, safety wins."""
    from frontdesk.agent.answer import Answer, Citation

    seen = Answer(
        True,
        "Call or text 988.",
        (Citation("crisis.md", "x", "Call or text 988."),),
        "crisis",
        "en",
    )
    monkeypatch.setattr(knowledge, "answer", lambda *args, **kwargs: seen)
    clock = Clock(T0)
    _book_and_remind(runtime, clock)
    clock.now += timedelta(minutes=10)
    outcome = _reply(runtime, clock, "what's your late cancellation fee?")
    assert (outcome.intent, outcome.action, outcome.urgent) == ("question", "handoff:crisis", True)
    last = _thread(runtime)[-1]
    assert last[0] == "outbound" and "988" in last[3] and "(From: " not in last[3]
    with runtime.transaction() as session:
        conversation = session.scalars(select(Conversation)).one()
        assert (conversation.owner, conversation.urgent) == ("staff", True)


@pytest.mark.parametrize(
    ("text", "action"),
    [
        (
            "honestly I don't see the point anymore, I won't be around for next week",
            "handoff:crisis",
        ),
        ("took too many of my pills", "handoff:crisis"),
        (
            "I've been feeling a lot worse since starting the new medication",
            "handoff:clinical_concern",
        ),
        ("can I talk to a real person please?", "handoff:asked_for_person"),
        ("is this a bot?", "disclosed"),
        ("I'm NOT cancelling, see you then", "confirmed"),
        ("please cancel my appointment", "cancelled"),
        ("stop texting me", "opted_out"),
        ("this traffic is killing me, 5 min late", "needs_person"),
    ],
)
def test_free_text_is_understood_and_acted_on(runtime: Runtime, text: str, action: str) -> None:
    clock = Clock(T0)
    _book_and_remind(runtime, clock)
    clock.now += timedelta(minutes=10)
    assert _reply(runtime, clock, text).action == action
    bodies = [t[3] for t in _thread(runtime) if t[0] == "outbound"]
    # The crisis message goes only with a crisis (every acknowledgement names 988 and 911 too).
    assert any("Crisis Lifeline" in b for b in bodies) == (action == "handoff:crisis")


def test_the_same_webhook_three_times_is_processed_once(runtime: Runtime) -> None:
    clock = Clock(T0)
    _book_and_remind(runtime, clock)
    clock.now += timedelta(minutes=10)
    practice_id, _ = _ids(runtime)
    payload = json.dumps(
        {
            "channel": "sms",
            "from_address": "+12025550101",
            "text": "C",
            "provider_message_id": "SM-dup-1",
            "received_at": clock.now.isoformat(),
        }
    )
    outcomes = [
        inbound_messages.accept(
            runtime,
            _sender(runtime, clock),
            practice_id=practice_id,
            provider="outbox",
            kind="message",
            dedupe_key="SM-dup-1",
            payload=payload,
            clock=clock,
        )
        for _ in range(3)
    ]
    assert [len(o) for o in outcomes] == [1, 0, 0]
    with runtime.transaction() as session:
        assert len(session.scalars(select(InboundWebhook)).all()) == 1
        inbound = session.scalars(select(Message).where(Message.direction == "inbound")).all()
        assert len(inbound) == 1
    assert len([t for t in _thread(runtime) if "confirmed for" in t[3]]) == 1


def test_an_unknown_number_is_kept_and_waits_for_a_person(runtime: Runtime) -> None:
    clock = Clock(T0)
    _book_and_remind(runtime, clock)
    practice_id, _ = _ids(runtime)
    payload = json.dumps(
        {
            "channel": "sms",
            "from_address": "+12025550199",
            "text": "C",
            "provider_message_id": "SM-unknown",
            "received_at": clock.now.isoformat(),
        }
    )
    [outcome] = inbound_messages.accept(
        runtime,
        _sender(runtime, clock),
        practice_id=practice_id,
        provider="outbox",
        kind="message",
        dedupe_key="SM-unknown",
        payload=payload,
        clock=clock,
    )
    assert outcome.action == "no_appointment"
    assert _appointment(runtime) == ("booked", "unconfirmed")
    with runtime.transaction() as session:
        stranger = session.scalars(
            select(Conversation).where(Conversation.patient_id.is_(None))
        ).one()
        assert stranger.needs_attention
        assert stranger.address_sealed and "5550199" not in stranger.address_sealed


def test_email_reminders_carry_single_use_expiring_links(runtime: Runtime) -> None:
    clock = Clock(T0)
    _book_and_remind(runtime, clock, patient={"preferred_channel": "email"})
    with runtime.transaction() as session:
        sent = session.scalars(select(OutboxMessage)).one()
        assert sent.channel == "email" and sent.subject
        assert len(session.scalars(select(ActionLink)).all()) == 3
    confirm_url = next(line for line in sent.body.splitlines() if line.startswith("Confirm: "))
    token = confirm_url.rsplit("/a/", 1)[1]
    planning = Planning(runtime.settings.reminder_policy, clock.now)
    with runtime.transaction() as session:
        assert links.use(session, token, planning).status == "done"
    with runtime.transaction() as session:
        assert links.use(session, token, planning).status == "used"
        assert links.use(session, "not-a-token", planning).status == "unknown"
    assert _appointment(runtime) == ("booked", "confirmed")
    late = Planning(runtime.settings.reminder_policy, T0 + timedelta(days=4))
    cancel = next(line for line in sent.body.splitlines() if line.startswith("I can't come: "))
    with runtime.transaction() as session:
        assert links.use(session, cancel.rsplit("/a/", 1)[1], late).status == "expired"
    assert _appointment(runtime) == ("booked", "confirmed")
