"""Acuity Scheduling webhooks end to end, against a local server playing the Acuity API:
signature, store-then-process, dedupe, in-place reschedule, cancellation, an API outage retried
by the worker (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from frontdesk.adapters.db.models import Appointment, InboundWebhook, Reminder
from frontdesk.adapters.schedulers import acuity
from frontdesk.adapters.schedulers.clients import HttpClients
from frontdesk.bootstrap import Runtime
from frontdesk.services import integrations, scheduler_sync
from scheduler_fakes import FakeState, Fault, fake_schedulers

USER_ID, API_KEY = "12345", "acuity-api-key-789"
START = (datetime.now(UTC) + timedelta(days=5)).replace(hour=17, minute=0, second=0, microsecond=0)


@pytest.fixture
def acuity_api(runtime: Runtime) -> Iterator[tuple[HttpClients, FakeState]]:
    integrations.configure_webhook(
        runtime,
        integrations.practice_id_of(runtime, "default"),
        "acuity",
        secret=API_KEY,
        token=USER_ID,
        actor="test",
    )
    with fake_schedulers() as (base, state):
        yield HttpClients(acuity_api=f"{base}/acuity"), state


def _appointment(appointment_id: int, start: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "id": appointment_id,
        "firstName": "Bob",
        "lastName": "McTest",
        "phone": "+14155550100",
        "email": "bob@example.com",
        "datetime": start.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "duration": "50",
        "calendar": "Dr. Ada Lovelace",
        "calendarID": 27238,
        "timezone": "America/New_York",
        "location": "Suite 4",
        "canceled": False,
    } | extra


def _deliver(
    runtime: Runtime, clients: HttpClients, action: str, appointment_id: int, *, key: str = API_KEY
) -> scheduler_sync.WebhookResult:
    body = urlencode(
        {"action": action, "id": appointment_id, "calendarID": 27238, "appointmentTypeID": 1}
    ).encode()
    headers = {acuity.HEADER: acuity.signature(key, body)}
    return scheduler_sync.receive_webhook(
        runtime, "acuity", "default", body, headers, clients=clients
    )


def _appointments(runtime: Runtime) -> list[tuple[str, str, datetime]]:
    with runtime.transaction() as session:
        return [
            (a.external_id, a.status, a.start_at)
            for a in session.scalars(select(Appointment).order_by(Appointment.id))
        ]


def _scheduled_reminders(runtime: Runtime) -> int:
    with runtime.transaction() as session:
        return (
            session.scalar(
                select(func.count()).select_from(Reminder).where(Reminder.state == "scheduled")
            )
            or 0
        )


def test_scheduled_rescheduled_canceled(
    runtime: Runtime, acuity_api: tuple[HttpClients, FakeState]
) -> None:
    clients, state = acuity_api
    state.acuity_appointments["501"] = _appointment(501, START)
    assert _deliver(runtime, clients, "scheduled", 501).state == "processed"
    assert _appointments(runtime) == [("501", "booked", START)]
    assert _scheduled_reminders(runtime) > 0
    # The API was read with the account's Basic credentials.
    [seen] = [s for s in state.log if s.path == "/acuity/appointments/501"]
    assert seen.headers["authorization"].startswith("Basic ")

    moved = START + timedelta(days=1)
    state.acuity_appointments["501"] = _appointment(501, moved)
    assert _deliver(runtime, clients, "rescheduled", 501).state == "processed"
    assert _appointments(runtime) == [("501", "booked", moved)]  # moved in place, one row
    with runtime.transaction() as session:
        due = session.scalars(
            select(Reminder.due_at).where(Reminder.state == "scheduled", Reminder.kind == "stage")
        ).all()
        assert due and all(d.replace(tzinfo=UTC) < moved for d in due)
        assert any(d.replace(tzinfo=UTC) > START for d in due)  # planned for the new time

    state.acuity_appointments["501"] = _appointment(501, moved, canceled=True)
    assert _deliver(runtime, clients, "canceled", 501).state == "processed"
    assert _appointments(runtime) == [("501", "cancelled", moved)]
    assert _scheduled_reminders(runtime) == 0


def test_a_redelivery_is_a_duplicate_but_a_second_move_is_not(
    runtime: Runtime, acuity_api: tuple[HttpClients, FakeState]
) -> None:
    clients, state = acuity_api
    state.acuity_appointments["502"] = _appointment(502, START)
    first = _deliver(runtime, clients, "scheduled", 502)
    again = _deliver(runtime, clients, "scheduled", 502)
    assert (first.duplicate, again.duplicate) == (False, True)
    assert again.webhook_id == first.webhook_id
    state.acuity_appointments["502"] = _appointment(502, START + timedelta(hours=2))
    assert not _deliver(runtime, clients, "rescheduled", 502).duplicate
    state.acuity_appointments["502"] = _appointment(502, START + timedelta(hours=4))
    assert not _deliver(runtime, clients, "rescheduled", 502).duplicate
    assert _appointments(runtime) == [("502", "booked", START + timedelta(hours=4))]


def test_a_forged_delivery_is_refused_and_not_stored(
    runtime: Runtime, acuity_api: tuple[HttpClients, FakeState], app_client: TestClient
) -> None:
    _, state = acuity_api
    state.acuity_appointments["503"] = _appointment(503, START)
    body = b"action=scheduled&id=503&calendarID=1&appointmentTypeID=1"
    for header in ({}, {acuity.HEADER: acuity.signature("wrong-key-000", body)}):
        response = app_client.post("/webhooks/acuity/default", content=body, headers=header)
        assert response.status_code == 401
    assert app_client.post("/webhooks/acuity/nobody", content=body).status_code == 404
    with runtime.transaction() as session:
        assert session.scalar(select(func.count()).select_from(InboundWebhook)) == 0
    assert state.log == []  # refused before the API was asked


def test_an_api_outage_fails_the_delivery_for_the_worker_to_retry(
    runtime: Runtime, acuity_api: tuple[HttpClients, FakeState]
) -> None:
    clients, state = acuity_api
    state.acuity_appointments["504"] = _appointment(504, START)
    state.faults += [Fault("GET", "/acuity/", "500"), Fault("GET", "/acuity/", "500")]
    result = _deliver(runtime, clients, "scheduled", 504)
    assert result.state == "failed"
    with runtime.transaction() as session:
        row = session.scalar(select(InboundWebhook))
        assert row is not None and row.error == "TransientSyncError while processing"
        assert "Bob" not in (row.error or "")
    assert _appointments(runtime) == []
    later = datetime.now(UTC) + timedelta(minutes=1)
    assert scheduler_sync.retry_webhooks(runtime, clients=clients, now=later) == {"processed": 1}
    assert _appointments(runtime) == [("504", "booked", START)]


def test_an_appointment_acuity_does_not_have_is_kept_and_refused(
    runtime: Runtime, acuity_api: tuple[HttpClients, FakeState]
) -> None:
    clients, _ = acuity_api
    result = _deliver(runtime, clients, "scheduled", 505)
    assert result.state == "rejected"
    assert [e.loc for e in result.errors] == ["appointment"]
    # A cancellation of an appointment neither side has changes nothing, quietly.
    assert _deliver(runtime, clients, "canceled", 506).state == "ignored"
    assert _appointments(runtime) == []
