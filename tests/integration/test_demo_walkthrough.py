"""The demo's walk-through of the No-show reminder action (issue 6, "Done when"): the demo's
unconfirmed, already-reminded session starts the action; the patient answers in the outbox and
picks WhatsApp; the scheduling system (a loopback server) receives the signed webhook; the
reminder arrives on WhatsApp; the inline "C" confirms; the run is logged step by step."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from frontdesk.adapters.channels.outbox import OutboxChannel
from frontdesk.adapters.db.action_models import ActionRun, ActionStepLog
from frontdesk.adapters.db.models import Appointment, Message, Patient
from frontdesk.bootstrap import Runtime
from frontdesk.domain.channels import Channel
from frontdesk.services import actions, practices
from frontdesk.services.demo import seed_demo
from frontdesk.services.inbound_messages import outbox_reply
from frontdesk.services.outgoing import MessageSender, fixed_senders
from integration.action_support import SECRET, scheduler_server


def _last_outbound(runtime: Runtime, patient_id: int) -> tuple[str, str]:
    with runtime.transaction() as session:
        message = session.scalars(
            select(Message)
            .join(Message.conversation)
            .where(Message.direction == "outbound")
            .where(Message.conversation.has(patient_id=patient_id))
            .order_by(Message.id.desc())
        ).first()
        assert message is not None
        return message.channel, message.body


def _demo(runtime: Runtime) -> tuple[int, int, MessageSender]:
    with runtime.transaction() as session:
        practice = practices.resolve_practice(session, "default")
        seed_demo(
            session, runtime.cipher, practice, datetime.now(UTC), runtime.settings.reminder_policy
        )
        actions.set_webhook_secret(practice, runtime.cipher.seal(SECRET))
        avery = session.scalars(select(Patient).where(Patient.name == "Avery Johnson")).one()
        practice_id, patient_id = practice.id, avery.id
    outbox = OutboxChannel(runtime.sessions, runtime.cipher)
    sender = MessageSender(
        runtime,
        fixed_senders({Channel.SMS: outbox, Channel.EMAIL: outbox, Channel.WHATSAPP: outbox}),
    )
    return practice_id, patient_id, sender


def test_a_c_to_the_reminder_while_the_action_asks_confirms_and_ends_the_run(
    runtime: Runtime,
) -> None:
    practice_id, patient_id, sender = _demo(runtime)
    actions.ActionWorker(runtime, sender).run_due()
    assert "full name" in _last_outbound(runtime, patient_id)[1]
    outcome = outbox_reply(
        runtime, sender, practice_id=practice_id, patient_id=patient_id, text="C"
    )
    assert outcome.action != "action"  # the reply was handled as a confirmation
    with runtime.transaction() as session:
        appointment = session.scalars(
            select(Appointment).where(Appointment.external_id == "demo-reminded")
        ).one()
        assert appointment.confirmation == "confirmed"
        run = session.scalars(select(ActionRun)).one()
        assert (run.state, run.outcome) == ("cancelled", "patient_replied_confirm")


def test_a_channel_answer_read_as_a_question_is_still_the_answer(runtime: Runtime) -> None:
    from frontdesk.agent.understand import understand

    practice_id, patient_id, sender = _demo(runtime)
    actions.ActionWorker(runtime, sender).run_due()
    for text in ("Avery Johnson", "03/25/1990"):
        outbox_reply(runtime, sender, practice_id=practice_id, patient_id=patient_id, text=text)
    answer = "whatsapp?"
    assert understand(answer).intent == "question"  # what made it interrupt before
    outcome = outbox_reply(
        runtime, sender, practice_id=practice_id, patient_id=patient_id, text=answer
    )
    assert outcome.action == "action"
    with runtime.transaction() as session:
        run = session.scalars(select(ActionRun)).one()
        assert run.state == "waiting_effect"


def test_the_demo_no_show_reminder_walk_through(runtime: Runtime) -> None:
    practice_id, patient_id, sender = _demo(runtime)

    def reply(text: str, channel: Channel | None = None) -> None:
        outbox_reply(
            runtime,
            sender,
            practice_id=practice_id,
            patient_id=patient_id,
            text=text,
            channel=channel,
        )

    with scheduler_server() as scheduler:
        with runtime.transaction() as session:
            practice = practices.resolve_practice(session, "default")
            practice.settings = {**practice.settings, "action_webhook_url": scheduler.url}
        worker = actions.ActionWorker(runtime, sender)
        worker.run_due()
        channel, text = _last_outbound(runtime, patient_id)
        assert channel == "sms" and "full name" in text
        reply("Avery Johnson")
        reply("03/25/1990")
        assert "WhatsApp" in _last_outbound(runtime, patient_id)[1]
        reply("whatsapp")
        worker.run_due()
        [request] = scheduler.requests
        assert request["valid"] and request["body"]["reminder"] == {"channel": "whatsapp"}
    channel, text = _last_outbound(runtime, patient_id)
    assert channel == "whatsapp" and "reminder" in text.lower()
    reply("C", Channel.WHATSAPP)
    with runtime.transaction() as session:
        appointment = session.scalars(
            select(Appointment).where(Appointment.external_id == "demo-reminded")
        ).one()
        assert appointment.confirmation == "confirmed"
        run = session.scalars(select(ActionRun)).one()
        assert (run.action_name, run.state, run.outcome) == (
            "no_show_reminder",
            "done",
            "completed",
        )
        steps = [
            (s.kind, s.outcome)
            for s in session.scalars(
                select(ActionStepLog)
                .where(ActionStepLog.run_id == run.id)
                .order_by(ActionStepLog.id)
            )
        ]
    for expected in (
        ("identity", "verified"),
        ("consent", "granted"),
        ("webhook_call", "ok"),
        ("send", "queued"),
        ("set_status", "changed"),
    ):
        assert expected in steps
