"""A patient's answer closes the loop: in the same transaction it records the signed event for
the practice's endpoints and, for an appointment from an EHR, the FHIR write-back."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from frontdesk.adapters.db.scheduler_models import FhirWriteback
from frontdesk.adapters.db.webhook_models import WebhookDelivery, WebhookEvent
from frontdesk.bootstrap import Runtime
from frontdesk.domain.webhooks import EndpointIn
from frontdesk.services import integrations, practices, webhooks
from integration.test_reminders_flow import T0, Clock, dispatcher, drain, put
from integration.test_replies import _outbox, _reply


def _endpoint(runtime: Runtime) -> None:
    with runtime.transaction() as session:
        practice = practices.resolve_practice(session, "default")
        webhooks.create_endpoint(
            session,
            runtime.cipher,
            practice,
            EndpointIn(url="https://scheduler.example/hooks"),
            actor="test",
        )


def _events(runtime: Runtime) -> list[tuple[str, dict]]:  # type: ignore[type-arg]
    with runtime.transaction() as session:
        return [
            (e.type, e.payload)
            for e in session.scalars(select(WebhookEvent).order_by(WebhookEvent.id))
        ]


def test_confirm_and_opt_out_publish_signed_events(runtime: Runtime) -> None:
    _endpoint(runtime)
    clock = Clock(T0)
    put(runtime, clock, T0 + timedelta(days=3), announce=False)
    clock.now = T0 + timedelta(minutes=5)
    drain(dispatcher(runtime, clock, _outbox(runtime)))
    clock.now += timedelta(minutes=5)
    _reply(runtime, clock, "C")
    _reply(runtime, clock, "STOP")
    _reply(runtime, clock, "STOP")  # the second changes nothing: no second event

    events = _events(runtime)
    assert [t for t, _ in events] == ["appointment.confirmed", "patient.opted_out"]
    confirmed = events[0][1]
    assert confirmed["appointment"]["confirmation"] == "confirmed"
    assert confirmed["answered_by"] == "reply"
    assert "Avery" not in str(events)  # ids, not names
    with runtime.transaction() as session:
        assert len(session.scalars(select(WebhookDelivery)).all()) == 2


def test_an_ehr_appointment_queues_its_write_back(runtime: Runtime) -> None:
    with runtime.transaction() as session:
        practice = practices.resolve_practice(session, "default")
        integrations.add_polled(
            session,
            runtime.cipher,
            practice,
            "fhir",
            "https://ehr.example/fhir",
            source="ehr",
            now=T0,
            actor="test",
        )
    clock = Clock(T0)
    put(runtime, clock, T0 + timedelta(days=3), announce=False)  # source "ehr", as polled
    clock.now = T0 + timedelta(minutes=5)
    drain(dispatcher(runtime, clock, _outbox(runtime)))
    _reply(runtime, clock, "N")
    with runtime.transaction() as session:
        queued = [
            w.change for w in session.scalars(select(FhirWriteback).order_by(FhirWriteback.id))
        ]
    assert [c.get("status") or c.get("participant_status") for c in queued] == [
        "declined",
        "cancelled",
    ]
