"""Handoffs: a crisis reaches people at once and the patient gets the crisis message; the agent
stays silent in a staff-owned thread until it is handed back."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from frontdesk.adapters.channels.outbox import OutboxChannel
from frontdesk.adapters.db.handoff_models import Handoff, StaffAlert
from frontdesk.adapters.db.models import Conversation, OutboxMessage, Practice
from frontdesk.bootstrap import Runtime
from frontdesk.domain.channels import Channel
from frontdesk.services import handoff, practices
from frontdesk.services.handoff import AlertSender
from frontdesk.services.outgoing import MessageSender, fixed_senders
from frontdesk.services.reminders import Planning
from frontdesk.services.replies import Inbound, Interpretation, ReplyContext, receive
from integration.test_reminders_flow import T0, Clock, put


def _meaning(text: str, _channel: Channel) -> Interpretation:
    """A stand-in for the agent's understanding: the test says what each message means."""
    return Interpretation(text.split(":", 1)[0])


def _receive(
    runtime: Runtime, clock: Clock, text: str, message_id: str, sender: str = "+12025550101"
) -> str:
    context = ReplyContext(
        cipher=runtime.cipher,
        planning=Planning(runtime.settings.reminder_policy, clock.now),
        interpret=_meaning,
        public_url="https://desk.example",
    )
    with runtime.transaction() as session:
        practice = practices.resolve_practice(session, "default")
        outcome = receive(
            session,
            practice,
            Inbound(Channel.SMS, sender, text, message_id, clock.now),
            context,
        )
    outbox = OutboxChannel(runtime.sessions, runtime.cipher)
    lookup = fixed_senders({Channel.SMS: outbox, Channel.EMAIL: outbox})
    AlertSender(runtime, lookup, clock=clock).send_due()
    MessageSender(runtime, lookup, clock=clock).send_now(outcome.queued_ids)
    return outcome.action


def _on_call(runtime: Runtime) -> None:
    with runtime.transaction() as session:
        practice = session.scalars(select(Practice)).one()
        handoff.set_on_call(
            practice,
            runtime.cipher,
            [
                {"name": "Dr. On Call", "phone": "+12025550900"},
                {"name": "Office", "email": "office@example.com"},
            ],
        )


def test_a_crisis_alerts_on_call_now_and_the_patient_gets_the_crisis_message(
    runtime: Runtime,
) -> None:
    clock = Clock(T0)
    put(runtime, clock, T0 + timedelta(days=3), announce=False)
    _on_call(runtime)
    assert _receive(runtime, clock, "crisis: …", "SM1") == "handoff:crisis"

    with runtime.transaction() as session:
        conversation = session.scalars(select(Conversation)).one()
        assert (conversation.owner, conversation.needs_attention, conversation.urgent) == (
            "staff",
            True,
            True,
        )
        assert conversation.escalated_at == T0 and conversation.acknowledged_at is None
        [record] = session.scalars(select(Handoff)).all()
        assert (record.reason, record.urgent) == ("crisis", True)
        alerts = session.scalars(select(StaffAlert).order_by(StaffAlert.id)).all()
        assert [(a.channel, a.status) for a in alerts] == [("sms", "sent"), ("email", "sent")]
        sent = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
    bodies = [m.body for m in sent]
    # Alerts name no patient and nothing clinical: only where to look.
    alert_bodies = [b for b in bodies if "URGENT" in b]
    assert len(alert_bodies) == 2
    assert all("Avery" not in b and "https://desk.example/inbox/" in b for b in alert_bodies)
    # The patient got the crisis message on their channel.
    crisis = [b for b in bodies if "988" in b]
    assert len(crisis) == 1 and "911" in crisis[0] and "not monitored" in crisis[0]


def test_the_agent_is_silent_in_a_staff_thread_until_handed_back(runtime: Runtime) -> None:
    clock = Clock(T0)
    put(runtime, clock, T0 + timedelta(days=3), announce=False)
    assert _receive(runtime, clock, "clinical_concern: …", "SM1") == "handoff:clinical_concern"
    # Free text in a staff-owned thread: no automatic acknowledgement.
    assert _receive(runtime, clock, "other: still there?", "SM2") == "needs_person"
    with runtime.transaction() as session:
        assert session.scalars(select(OutboxMessage)).all() == []
        conversation = session.scalars(select(Conversation)).one()
        assert conversation.urgent is False
        handoff.hand_back(session, conversation, "staff:1", clock.now)
    with runtime.transaction() as session:
        conversation = session.scalars(select(Conversation)).one()
        assert conversation.owner == "agent"
        assert session.scalars(select(Handoff.acknowledged_by)).one() == "staff:1"
    # Keywords still work in any thread (a carrier's STOP must always be honoured).
    assert _receive(runtime, clock, "opt_out: STOP", "SM3") == "opted_out"


def test_on_call_list_over_the_api(client: TestClient) -> None:
    bad = client.put("/api/v1/on-call", json=[{"name": "", "phone": "12"}])
    assert bad.status_code == 422
    locs = {f["loc"] for f in bad.json()["error"]["fields"]}
    assert locs == {"on_call[0].name", "on_call[0].phone"}
    good = client.put("/api/v1/on-call", json=[{"name": "Dr. On Call", "phone": "(202) 555-0900"}])
    assert good.status_code == 200, good.text
    assert client.get("/api/v1/on-call").json()["items"] == [
        {"name": "Dr. On Call", "phone": "…0900", "email": ""}
    ]
