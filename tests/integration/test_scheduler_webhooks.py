"""Calendly and Cal.com webhooks end to end: signatures, store-then-process, dedupe, reschedule
linking, and the appointments and reminders they produce (SQLite and PostgreSQL)."""

from __future__ import annotations

import copy
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from conftest import shared_file
from frontdesk.adapters.db.models import Appointment, InboundWebhook, IntakeRejection, Reminder
from frontdesk.adapters.db.scheduler_models import AppointmentAlias
from frontdesk.adapters.schedulers import signatures
from frontdesk.adapters.schedulers.clients import HttpClients
from frontdesk.bootstrap import Runtime
from frontdesk.domain.reminders import ReminderPolicy
from frontdesk.services import integrations, practices, reminders, scheduler_sync
from scheduler_fakes import Fault, fake_schedulers

CALENDLY_KEY = "calendly-signing-key-123"
CALCOM_SECRET = "calcom-secret-456"
START = (datetime.now(UTC) + timedelta(days=5)).replace(hour=15, minute=0, second=0, microsecond=0)


def _setup(runtime: Runtime, *, token: str | None = None) -> int:
    practice_id = integrations.practice_id_of(runtime, "default")
    integrations.configure_webhook(
        runtime, practice_id, "calendly", secret=CALENDLY_KEY, token=token, actor="test"
    )
    integrations.configure_webhook(
        runtime, practice_id, "calcom", secret=CALCOM_SECRET, actor="test"
    )
    with runtime.transaction() as session:
        practice = practices.resolve_practice(session, "default")
        policy = ReminderPolicy().model_dump(mode="json") | {"cancellation_followup": True}
        reminders.set_policy(practice, policy)
    return practice_id


def _invitee(
    invitee: str,
    *,
    event: str = "invitee.created",
    start: datetime = START,
    old: str | None = None,
    new: str | None = None,
    embed: bool = True,
) -> dict[str, Any]:
    name = "invitee_created.json" if event == "invitee.created" else "invitee_canceled.json"
    document = json.loads(shared_file("webhooks", "calendly", name).read_text())
    uri = f"https://api.calendly.com/scheduled_events/EV-{invitee}/invitees/{invitee}"
    document["payload"].update(
        uri=uri,
        event=f"https://api.calendly.com/scheduled_events/EV-{invitee}",
        text_reminder_number="+1 415 555 0100",
        old_invitee=f"https://api.calendly.com/scheduled_events/EV-{old}/invitees/{old}"
        if old
        else None,
        new_invitee=f"https://api.calendly.com/scheduled_events/EV-{new}/invitees/{new}"
        if new
        else None,
        rescheduled=bool(new),
    )
    if embed:
        document["payload"]["scheduled_event"] = {
            "uri": document["payload"]["event"],
            "status": "active",
            "start_time": start.isoformat().replace("+00:00", "Z"),
            "end_time": (start + timedelta(minutes=50)).isoformat().replace("+00:00", "Z"),
            "location": {"type": "physical", "location": "Suite 4"},
            "event_memberships": [{"user_name": "Dr. Ada Lovelace"}],
        }
    return document


def _post_calendly(
    client: TestClient, document: dict[str, Any], *, key: str = CALENDLY_KEY, age: int = 0
) -> Any:
    body = json.dumps(document).encode()
    header = signatures.calendly_signature(key, body, int(time.time()) - age)
    return client.post(
        "/webhooks/calendly/default",
        content=body,
        headers={"Calendly-Webhook-Signature": header, "Content-Type": "application/json"},
    )


def _post_calcom(
    client: TestClient, document: dict[str, Any], *, secret: str = CALCOM_SECRET
) -> Any:
    body = json.dumps(document).encode()
    return client.post(
        "/webhooks/calcom/default",
        content=body,
        headers={"X-Cal-Signature-256": signatures.calcom_signature(secret, body)},
    )


def _appointments(runtime: Runtime) -> list[Appointment]:
    with runtime.transaction() as session:
        rows = list(session.scalars(select(Appointment).order_by(Appointment.id)))
        session.expunge_all()
        return rows


def _reminder_kinds(runtime: Runtime, appointment_id: int) -> list[tuple[str, str]]:
    with runtime.transaction() as session:
        return [
            (r.kind, r.state)
            for r in session.scalars(
                select(Reminder).where(Reminder.appointment_id == appointment_id)
            )
        ]


def _webhook_count(runtime: Runtime) -> int:
    with runtime.transaction() as session:
        return session.scalar(select(func.count()).select_from(InboundWebhook)) or 0


# --- Calendly ----------------------------------------------------------------------------------


def test_a_calendly_booking_becomes_an_appointment_with_reminders(
    runtime: Runtime, app_client: TestClient
) -> None:
    _setup(runtime)
    response = _post_calendly(app_client, _invitee("INV1"))
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "processed"
    [appointment] = _appointments(runtime)
    assert (appointment.source, appointment.external_id) == ("calendly", "INV1")
    assert appointment.start_at == START and appointment.status == "booked"
    kinds = _reminder_kinds(runtime, appointment.id)
    assert ("stage", "scheduled") in kinds
    assert any(kind == "booking_confirmation" for kind, _ in kinds)


def test_the_same_calendly_webhook_three_times_is_processed_once(
    runtime: Runtime, app_client: TestClient
) -> None:
    _setup(runtime)
    document = _invitee("INV1")
    answers = [_post_calendly(app_client, document) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [a.json()["duplicate"] for a in answers] == [False, True, True]
    assert _webhook_count(runtime) == 1
    [appointment] = _appointments(runtime)
    assert appointment.version == 1  # applied once, not three times


@pytest.mark.parametrize(
    ("key", "age"),
    [("not-the-signing-key", 0), (CALENDLY_KEY, 600), (CALENDLY_KEY, -600)],
    ids=["forged", "stale", "future"],
)
def test_a_forged_or_stale_calendly_webhook_is_refused_and_not_stored(
    runtime: Runtime, app_client: TestClient, key: str, age: int
) -> None:
    _setup(runtime)
    response = _post_calendly(app_client, _invitee("INV1"), key=key, age=age)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert _webhook_count(runtime) == 0 and _appointments(runtime) == []


def test_webhooks_for_an_unknown_practice_or_integration_are_404(
    runtime: Runtime, app_client: TestClient
) -> None:
    body = json.dumps(_invitee("INV1")).encode()
    answer = app_client.post("/webhooks/calendly/default", content=body)
    assert answer.status_code == 404  # no Calendly integration yet
    _setup(runtime)
    answer = app_client.post("/webhooks/calendly/nowhere", content=body)
    assert answer.status_code == 404
    assert _webhook_count(runtime) == 0


def test_a_calendly_cancellation_cancels_the_appointment(
    runtime: Runtime, app_client: TestClient
) -> None:
    _setup(runtime)
    _post_calendly(app_client, _invitee("INV1"))
    response = _post_calendly(app_client, _invitee("INV1", event="invitee.canceled"))
    assert response.status_code == 200 and response.json()["state"] == "processed"
    [appointment] = _appointments(runtime)
    assert appointment.status == "cancelled"
    assert ("cancellation_followup", "scheduled") in _reminder_kinds(runtime, appointment.id)
    # A late or replayed create does not revive it.
    replay = copy.deepcopy(_invitee("INV1"))
    replay["created_at"] = "2026-01-01T00:00:00Z"
    assert _post_calendly(app_client, replay).json()["duplicate"] is True
    assert _appointments(runtime)[0].status == "cancelled"


@pytest.mark.parametrize("cancel_first", [False, True], ids=["create-first", "cancel-first"])
def test_a_calendly_reschedule_moves_one_appointment_without_a_cancellation(
    runtime: Runtime, app_client: TestClient, cancel_first: bool
) -> None:
    _setup(runtime)
    _post_calendly(app_client, _invitee("OLD"))
    [before] = _appointments(runtime)
    later = START + timedelta(days=1, hours=2)
    cancel = _invitee("OLD", event="invitee.canceled", new="NEW")
    create = _invitee("NEW", start=later, old="OLD")
    halves = [cancel, create] if cancel_first else [create, cancel]
    states = [_post_calendly(app_client, half).json()["state"] for half in halves]
    assert states == (["processed", "processed"] if cancel_first else ["processed", "ignored"])

    [after] = _appointments(runtime)
    assert after.id == before.id  # one appointment, one history
    assert (after.external_id, after.start_at, after.status) == ("NEW", later, "booked")
    kinds = _reminder_kinds(runtime, after.id)
    assert ("cancellation_followup", "scheduled") not in kinds
    assert not any(kind == "cancellation_followup" for kind, _ in kinds)
    with runtime.transaction() as session:
        aliases = session.scalars(select(AppointmentAlias.external_id)).all()
    assert aliases == ["OLD"]
    # Events about the old invitee now find the moved appointment and change nothing.
    again = _invitee("OLD", event="invitee.canceled")
    again["payload"]["uri"] += "/"  # a different delivery about the same old invitee
    assert _post_calendly(app_client, again).json()["state"] == "ignored"
    assert _appointments(runtime)[0].status == "booked"


def test_the_old_half_alone_holds_the_session_quietly(
    runtime: Runtime, app_client: TestClient
) -> None:
    _setup(runtime)
    _post_calendly(app_client, _invitee("OLD"))
    _post_calendly(app_client, _invitee("OLD", event="invitee.canceled", new="NEW"))
    [held] = _appointments(runtime)
    assert held.status == "pending"  # no reminders for the old time, no cancellation message
    kinds = _reminder_kinds(runtime, held.id)
    assert ("stage", "scheduled") not in kinds
    assert not any(kind == "cancellation_followup" for kind, _ in kinds)


def test_a_calendly_delivery_without_its_event_reads_it_from_the_api(
    runtime: Runtime, app_client: TestClient
) -> None:
    _setup(runtime, token="calendly-token")
    document = _invitee("INV9", embed=False)
    event = _invitee("INV9")["payload"]["scheduled_event"]
    with fake_schedulers() as (base, state):
        state.calendly_events["EV-INV9"] = event
        document["payload"]["event"] = f"{base}/calendly/scheduled_events/EV-INV9"
        clients = HttpClients(calendly_api=f"{base}/calendly")
        body = json.dumps(document).encode()
        header = signatures.calendly_signature(CALENDLY_KEY, body, int(time.time()))
        result = scheduler_sync.receive_webhook(
            runtime,
            "calendly",
            "default",
            body,
            {signatures.CALENDLY_HEADER: header},
            clients=clients,
        )
    assert result.state == "processed"
    [appointment] = _appointments(runtime)
    assert appointment.start_at == START


def test_a_calendly_delivery_without_time_or_token_is_kept_and_refused(
    runtime: Runtime, app_client: TestClient
) -> None:
    _setup(runtime)
    response = _post_calendly(app_client, _invitee("INV2", embed=False))
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["loc"] == "body.payload.scheduled_event"
    with runtime.transaction() as session:
        row = session.scalar(select(InboundWebhook))
        assert row is not None and row.state == "rejected"
        rejection = session.scalar(select(IntakeRejection))
        assert rejection is not None and rejection.channel == "webhook.calendly"
    # Rejected rows are not retried by the worker.
    later = datetime.now(UTC) + timedelta(minutes=5)
    assert scheduler_sync.retry_webhooks(runtime, now=later) == {}


def test_a_webhook_stored_but_not_processed_is_picked_up_by_the_worker(
    runtime: Runtime,
) -> None:
    from frontdesk.services import inbound

    practice_id = _setup(runtime)
    inbound.store(
        runtime,
        practice_id=practice_id,
        provider="calendly",
        kind="booking",
        dedupe_key="invitee.created:x",
        payload=json.dumps(_invitee("INV5")),
    )  # ... and the process crashed before processing it
    assert scheduler_sync.retry_webhooks(runtime) == {}  # too fresh: its request may be at it
    later = datetime.now(UTC) + timedelta(minutes=1)
    assert scheduler_sync.retry_webhooks(runtime, now=later) == {"processed": 1}
    assert [a.external_id for a in _appointments(runtime)] == ["INV5"]


# --- Cal.com -----------------------------------------------------------------------------------


def _booking(trigger: str, uid: str, start: datetime, old: str | None = None) -> dict[str, Any]:
    document = json.loads(shared_file("webhooks", "calcom", "booking_created.json").read_text())
    document["triggerEvent"] = trigger
    document["payload"].update(
        uid=uid,
        startTime=start.isoformat().replace("+00:00", "Z"),
        endTime=(start + timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
    )
    if old:
        document["payload"]["rescheduleUid"] = old
    return document


def test_calcom_created_rescheduled_cancelled(runtime: Runtime, app_client: TestClient) -> None:
    _setup(runtime)
    created = _post_calcom(app_client, _booking("BOOKING_CREATED", "U1", START))
    assert created.status_code == 200 and created.json()["state"] == "processed"
    [first] = _appointments(runtime)
    assert (first.source, first.external_id, first.start_at) == ("calcom", "U1", START)

    later = START + timedelta(days=2)
    moved = _post_calcom(app_client, _booking("BOOKING_RESCHEDULED", "U2", later, old="U1"))
    assert moved.json()["state"] == "processed"
    [after] = _appointments(runtime)
    assert (after.id, after.external_id, after.start_at) == (first.id, "U2", later)
    assert not any(k == "cancellation_followup" for k, _ in _reminder_kinds(runtime, after.id))

    # The old booking's cancellation (sent by some versions) changes nothing.
    stale = _post_calcom(app_client, _booking("BOOKING_CANCELLED", "U1", START))
    assert stale.json()["state"] == "ignored"
    assert _appointments(runtime)[0].status == "booked"

    cancelled = _post_calcom(app_client, _booking("BOOKING_CANCELLED", "U2", later))
    assert cancelled.json()["state"] == "processed"
    assert _appointments(runtime)[0].status == "cancelled"


def test_calcom_signatures_and_dedupe(runtime: Runtime, app_client: TestClient) -> None:
    _setup(runtime)
    document = _booking("BOOKING_CREATED", "U1", START)
    assert _post_calcom(app_client, document, secret="wrong-secret").status_code == 401
    unsigned = app_client.post("/webhooks/calcom/default", content=json.dumps(document))
    assert unsigned.status_code == 401
    assert _webhook_count(runtime) == 0
    answers = [_post_calcom(app_client, document).json() for _ in range(3)]
    assert [a["duplicate"] for a in answers] == [False, True, True]
    assert _webhook_count(runtime) == 1 and len(_appointments(runtime)) == 1


def test_a_calcom_body_that_is_not_json_is_kept_and_refused(
    runtime: Runtime, app_client: TestClient
) -> None:
    _setup(runtime)
    body = b"not json at all"
    response = app_client.post(
        "/webhooks/calcom/default",
        content=body,
        headers={"X-Cal-Signature-256": signatures.calcom_signature(CALCOM_SECRET, body)},
    )
    assert response.status_code == 422
    assert response.json()["error"]["fields"] == [
        {"loc": "body", "message": "the body is not JSON"}
    ]
    assert _webhook_count(runtime) == 1


def _receive(runtime: Runtime, document: dict[str, Any], clients: HttpClients | None = None) -> Any:
    body = json.dumps(document).encode()
    header = signatures.calendly_signature(CALENDLY_KEY, body, int(time.time()))
    return scheduler_sync.receive_webhook(
        runtime, "calendly", "default", body, {signatures.CALENDLY_HEADER: header}, clients=clients
    )


def test_a_calendly_api_outage_fails_the_delivery_for_the_worker_to_retry(
    runtime: Runtime,
) -> None:
    _setup(runtime, token="calendly-token")
    document = _invitee("INV7", embed=False)
    with fake_schedulers() as (base, state):
        state.calendly_events["EV-INV7"] = _invitee("INV7")["payload"]["scheduled_event"]
        document["payload"]["event"] = f"{base}/calendly/scheduled_events/EV-INV7"
        clients = HttpClients(calendly_api=f"{base}/calendly")
        state.faults += [Fault("GET", "/calendly/", "500"), Fault("GET", "/calendly/", "500")]
        result = _receive(runtime, document, clients)
        assert result.state == "failed"
        with runtime.transaction() as session:
            row = session.scalar(select(InboundWebhook))
            assert row is not None and row.error == "TransientSyncError while processing"
        assert _appointments(runtime) == []
        later = datetime.now(UTC) + timedelta(minutes=1)
        assert scheduler_sync.retry_webhooks(runtime, clients=clients, now=later) == {
            "processed": 1
        }
    assert [a.start_at for a in _appointments(runtime)] == [START]


def test_the_two_halves_of_a_reschedule_arriving_together_move_one_appointment(
    runtime: Runtime,
) -> None:
    _setup(runtime)
    _receive(runtime, _invitee("OLD"))
    later = START + timedelta(days=1)
    halves = [
        _invitee("OLD", event="invitee.canceled", new="NEW"),
        _invitee("NEW", start=later, old="OLD"),
    ]
    barrier = threading.Barrier(2)
    results: list[Any] = []

    def deliver(document: dict[str, Any]) -> None:
        barrier.wait()
        results.append(_receive(runtime, document))

    threads = [threading.Thread(target=deliver, args=(h,)) for h in halves]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(r.state for r in results) in (["ignored", "processed"], ["processed"] * 2)
    [after] = _appointments(runtime)
    assert (after.external_id, after.start_at, after.status) == ("NEW", later, "booked")
