"""The built-in no-show action driven by the patient's real replies: every message goes through
the inbound path (stored, understood) and the running action gets it first."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from frontdesk.adapters.db.models import Appointment, Conversation, Patient
from frontdesk.bootstrap import Runtime
from frontdesk.domain.channels import Channel
from frontdesk.services import inbound_messages, practices
from frontdesk.services.outgoing import MessageSender
from integration.action_support import (
    Patient1,
    configure,
    outbound,
    run_state,
    scheduler_server,
    sender,
)
from integration.test_actions_builtin import _remind
from integration.test_reminders_flow import T0, Clock
from staff_support import add_staff, signed_in


def _says(runtime: Runtime, clock: Clock, text: str, channel: Channel | None = None) -> str:
    with runtime.transaction() as session:
        practice_id = practices.resolve_practice(session, "default").id
        patient_id = session.scalars(select(Patient.id)).one()
    out: MessageSender = sender(runtime, clock)
    return inbound_messages.outbox_reply(
        runtime,
        out,
        practice_id=practice_id,
        patient_id=patient_id,
        text=text,
        channel=channel,
        clock=clock,
    ).action


def test_no_show_action_through_the_inbound_path(runtime: Runtime, app_client: TestClient) -> None:
    clock = Clock(T0)
    _remind(runtime, clock)
    with scheduler_server() as scheduler:
        configure(runtime, scheduler.url)
        worker = Patient1(runtime, clock).worker()
        assert worker.run_due() >= 1
        assert "full name" in outbound(runtime)[-1][1]
        assert _says(runtime, clock, "Avery Johnson") == "action"
        # A question mid-way is answered from the documents (none here: a person follows up)
        # and the action asks its pending field again.
        assert _says(runtime, clock, "wait, what's your address?") == "unanswered"
        assert "date of birth" in outbound(runtime)[-1][1]
        assert _says(runtime, clock, "03/25/1990") == "action"
        assert _says(runtime, clock, "by email please") == "action"
        assert worker.perform_effects() == 1
        assert scheduler.requests[0]["valid"]
    assert run_state(runtime) == ("waiting_reply", None)
    assert _says(runtime, clock, "C", Channel.EMAIL) == "action"
    with runtime.transaction() as session:
        assert session.scalars(select(Appointment.confirmation)).one() == "confirmed"
    assert run_state(runtime) == ("done", "completed")

    # Staff see the run step by step in the thread, with the webhook redacted.
    add_staff(runtime)
    signed_in(app_client)
    with runtime.transaction() as session:
        conversation_id = session.scalars(select(Conversation.id)).first()
    page = app_client.get(f"/inbox/{conversation_id}").text
    assert "no_show_reminder · done · completed" in page
    assert "webhook_call · ok" in page and "[redacted]" in page
    assert "1990" not in page.split('id="runs"')[1].split("</section>")[0]


def test_a_crisis_mid_action_stops_it_and_reaches_a_person(runtime: Runtime) -> None:
    clock = Clock(T0)
    _remind(runtime, clock)
    with scheduler_server() as scheduler:
        configure(runtime, scheduler.url)
        assert Patient1(runtime, clock).worker().run_due() >= 1
        assert _says(runtime, clock, "I want to end my life") == "handoff:crisis"
    assert run_state(runtime) == ("interrupted", "crisis")
    assert any("988" in body for _channel, body in outbound(runtime))
