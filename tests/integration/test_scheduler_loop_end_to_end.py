"""Issue 8's loop, end to end: a booking posted as a Calendly webhook gets its reminders; the
patient's "C" reaches the practice's endpoint as a signed ``appointment.confirmed``; and for an
appointment polled from a FHIR server, the participant status is written back to it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from frontdesk.adapters.db.models import Appointment, Conversation, Patient, Reminder
from frontdesk.adapters.db.webhook_models import WebhookDelivery
from frontdesk.bootstrap import Runtime
from frontdesk.domain.webhooks import EndpointIn
from frontdesk.services import inbound_messages, practices, scheduler_sync, webhooks
from frontdesk.services.chores import message_sender
from frontdesk.services.webhook_delivery import deliver_due
from integration.test_fhir_sync import CLIENTS, _connect
from integration.test_scheduler_webhooks import _invitee, _post_calendly, _setup
from scheduler_fakes import fake_schedulers, fhir_appointment, fhir_patient
from staff_support import add_staff, signed_in


@pytest.fixture
def endpoint() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """The practice's system on loopback: records each delivery with its headers."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"headers": dict(self.headers), "body": body.decode()})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks", received
    finally:
        server.shutdown()
        server.server_close()


def _patient_says(runtime: Runtime, text: str) -> str:
    with runtime.transaction() as session:
        practice_id = practices.resolve_practice(session, "default").id
        patient_id = session.scalars(select(Patient.id)).one()
    return inbound_messages.outbox_reply(
        runtime, message_sender(runtime), practice_id=practice_id, patient_id=patient_id, text=text
    ).action


def test_a_calendly_booking_confirmed_by_the_patient_reaches_the_practice_signed(
    runtime: Runtime, app_client: TestClient, endpoint: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = endpoint
    _setup(runtime)
    with runtime.transaction() as session:
        _, secret = webhooks.create_endpoint(
            session,
            runtime.cipher,
            practices.resolve_practice(session, "default"),
            EndpointIn(url=url, event_types=["appointment.confirmed"]),
            actor="test",
        )
    assert _post_calendly(app_client, _invitee("INV9")).status_code == 200
    with runtime.transaction() as session:
        appointment = session.scalars(select(Appointment)).one()
        stages = {r.stage for r in session.scalars(select(Reminder))}
    assert {"-72h", "-24h", "-2h"} <= stages  # the booking got its reminders

    assert _patient_says(runtime, "C") == "confirmed"
    assert deliver_due(runtime).delivered == 1
    [delivery] = received
    # Verified with the Standard Webhooks reference library, as the practice would.
    payload = Webhook(secret).verify(delivery["body"], delivery["headers"])
    assert payload["type"] == "appointment.confirmed"
    assert payload["data"]["appointment"]["external_id"] == appointment.external_id
    assert payload["data"]["appointment"]["confirmation"] == "confirmed"

    # The thread shows what the practice's system was told, and staff can send it again.
    add_staff(runtime)
    csrf = signed_in(app_client)
    with runtime.transaction() as session:
        conversation_id = session.scalars(select(Conversation.id)).first()
        delivery_id = session.scalars(select(WebhookDelivery.id)).one()
    page = app_client.get(f"/inbox/{conversation_id}").text
    assert "appointment.confirmed · delivered" in page
    again = app_client.post(
        f"/inbox/{conversation_id}/redeliver/{delivery_id}", data={"csrf_token": csrf}
    )
    assert again.status_code == 200
    assert deliver_due(runtime).delivered == 1
    assert received[1]["headers"]["webhook-id"] == delivery["headers"]["webhook-id"]


def test_the_patients_answer_is_written_back_to_the_ehr(runtime: Runtime) -> None:
    start = (datetime.now(UTC) + timedelta(days=3)).replace(
        hour=15, minute=0, second=0, microsecond=0
    )
    with fake_schedulers() as (base, ehr):
        ehr.put(fhir_patient("p1", "Avery Quinn", "+14155550101"))
        ehr.put(fhir_appointment("a1", "p1", start))
        _connect(runtime, base)
        now = datetime.now(UTC) + timedelta(seconds=1)
        first = scheduler_sync.run_round(runtime, now=now, clients=CLIENTS)
        assert [p["state"] for p in first["polls"]] == ["synced"]
        assert _patient_says(runtime, "C") == "confirmed"
        second = scheduler_sync.run_round(runtime, now=now + timedelta(seconds=2), clients=CLIENTS)
        assert second["writebacks"] == {"done": 1}
        participant = ehr.get("Appointment", "a1")["participant"]
        statuses = {p["actor"]["reference"]: p["status"] for p in participant}
        assert statuses["Patient/p1"] == "accepted"
        [put] = [w for w in ehr.writes("PUT") if w.path.endswith("/Appointment/a1")]
        # A conditional update: the EHR's version is never overwritten blindly.
        assert {k.lower(): v for k, v in put.headers.items()}["if-match"].startswith('W/"')
