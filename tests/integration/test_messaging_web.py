"""The messaging surfaces over HTTP: templates API, messages and consent, the outbox page, and
one-click links."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from frontdesk.adapters.db.models import Appointment, OutboxMessage
from frontdesk.bootstrap import Runtime
from frontdesk.domain.times import now_utc
from integration.test_reminders_flow import Clock, dispatcher, drain, put, three_days_out_in_daytime
from integration.test_replies import _outbox
from staff_support import add_staff, signed_in


def _booked_and_reminded(runtime: Runtime, **fields: object) -> None:
    """An appointment three days from now whose -72h reminder went out through the outbox."""
    now = now_utc()
    start = three_days_out_in_daytime(now)
    clock = Clock(now - timedelta(hours=1))
    put(runtime, clock, start, announce=False, **fields)
    clock.now = start - timedelta(hours=72) + timedelta(minutes=1)
    drain(dispatcher(runtime, clock, _outbox(runtime)))


def test_preview_shows_the_text_and_its_sms_segments(client: TestClient) -> None:
    response = client.post(
        "/api/v1/templates/preview",
        json={"purpose": "reminder", "channel": "sms", "language": "es"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["body"].startswith("My Practice: le recordamos su cita el ")
    assert body["sms"]["encoding"] == "UCS-2"  # "más" is not GSM-7
    assert body["sms"]["segments"] == 3

    draft = client.post(
        "/api/v1/templates/preview",
        json={"purpose": "reminder", "channel": "sms", "body": "Hi {{ first_name }}: {{ when }}"},
    ).json()
    assert draft["body"].startswith("Hi Alex: ")
    assert draft["sms"] == {"encoding": "GSM-7", "characters": len(draft["body"]), "segments": 1}


def test_a_template_reaching_for_python_is_refused_with_the_field(client: TestClient) -> None:
    response = client.put(
        "/api/v1/templates/reminder/sms/en",
        json={"body": "{{ first_name.__class__.__mro__ }}"},
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["fields"][0]["loc"] == "body"
    assert "not allowed" in error["fields"][0]["message"]
    unknown = client.put("/api/v1/templates/bogus/sms/en", json={"body": "x"})
    assert unknown.status_code == 422
    assert unknown.json()["error"]["fields"][0]["loc"] == "purpose"


def test_a_practice_template_is_used_for_the_next_reminder(
    client: TestClient, runtime: Runtime
) -> None:
    response = client.put(
        "/api/v1/templates/reminder/sms/en",
        json={"body": "See you {{ when }}, {{ first_name }}. {{ reply_instructions }}"},
    )
    assert response.status_code == 200, response.text
    listed = client.get("/api/v1/templates").json()["items"]
    own = [t for t in listed if t["custom"]]
    assert [(t["purpose"], t["channel"], t["language"]) for t in own] == [("reminder", "sms", "en")]
    _booked_and_reminded(runtime)
    with runtime.transaction() as session:
        sent = session.scalars(select(OutboxMessage)).one()
    assert sent.body.startswith("See you ") and ", Avery. Reply C to confirm" in sent.body
    assert client.delete("/api/v1/templates/reminder/sms/en").json() == {"reset": True}


def test_messages_consent_and_outbox_replies_over_the_api(
    client: TestClient, runtime: Runtime
) -> None:
    _booked_and_reminded(runtime)
    messages = client.get("/api/v1/messages").json()["items"]
    assert len(messages) == 1 and messages[0]["status"] == "delivered"
    patient_id = messages[0]["patient_id"]

    reply = client.post("/api/v1/outbox/replies", json={"patient_id": patient_id, "text": "STOP"})
    assert reply.status_code == 200, reply.text
    assert reply.json()["action"] == "opted_out"
    ledger = client.get(f"/api/v1/consent/{patient_id}").json()
    assert ledger["current"]["sms"] == "revoked"
    assert [(e["channel"], e["action"], e["source"]) for e in ledger["ledger"]][-1] == (
        "sms",
        "revoked",
        "keyword",
    )
    empty = client.post("/api/v1/outbox/replies", json={"patient_id": patient_id, "text": " "})
    assert empty.status_code == 422
    missing = client.post("/api/v1/outbox/replies", json={"patient_id": 999, "text": "C"})
    assert missing.status_code == 404


def test_the_outbox_page_shows_threads_and_plays_the_patient(
    app_client: TestClient, runtime: Runtime
) -> None:
    _booked_and_reminded(runtime)
    assert app_client.get("/outbox", follow_redirects=False).status_code == 303  # staff only
    add_staff(runtime, "desk@example.com", "front_desk")
    csrf = signed_in(app_client)
    page = app_client.get("/outbox")
    assert page.status_code == 200
    assert "reminder of your appointment" in page.text and "Avery" in page.text
    patient_id = int(page.text.split('data-patient="', 1)[1].split('"', 1)[0])

    form = {"patient_id": str(patient_id), "text": "C", "channel": "sms"}
    no_token = app_client.post("/outbox/reply", data=form, headers={"Origin": "http://testserver"})
    assert no_token.status_code == 403  # the form's CSRF token is required
    form["csrf_token"] = csrf
    forged = app_client.post("/outbox/reply", data=form, headers={"Origin": "https://evil.example"})
    assert forged.status_code == 403
    posted = app_client.post(
        "/outbox/reply",
        data=form,
        headers={"Origin": "http://testserver"},
        follow_redirects=False,
    )
    assert posted.status_code == 303
    thread = app_client.get(posted.headers["location"]).text
    assert "Thanks, you&#39;re confirmed" in thread
    with runtime.transaction() as session:
        assert session.scalars(select(Appointment.confirmation)).one() == "confirmed"


def test_a_one_click_link_acts_only_on_the_button_and_only_once(
    app_client: TestClient, runtime: Runtime
) -> None:
    _booked_and_reminded(runtime, patient={"preferred_channel": "email"})
    with runtime.transaction() as session:
        email = session.scalars(select(OutboxMessage)).one()
    line = next(x for x in email.body.splitlines() if x.startswith("I can't come: "))
    path = "/a/" + line.rsplit("/a/", 1)[1]

    # A mail scanner fetching the link changes nothing.
    shown = app_client.get(path)
    assert shown.status_code == 200 and "Cancel my appointment" in shown.text
    with runtime.transaction() as session:
        assert session.scalars(select(Appointment.status)).one() == "booked"

    done = app_client.post(path)
    assert "Your appointment is cancelled." in done.text
    again = app_client.post(path)
    assert "already used" in again.text
    with runtime.transaction() as session:
        assert session.scalars(select(Appointment.status)).one() == "cancelled"
    assert "not valid" in app_client.get("/a/nonsense").text


def test_link_pages_speak_the_patients_language(app_client: TestClient, runtime: Runtime) -> None:
    _booked_and_reminded(runtime, patient={"preferred_channel": "email", "language": "es"})
    with runtime.transaction() as session:
        email = session.scalars(select(OutboxMessage)).one()
    assert email.subject and email.subject.startswith("Su cita del")
    line = next(x for x in email.body.splitlines() if x.startswith("Confirmar: "))
    page = app_client.get("/a/" + line.rsplit("/a/", 1)[1])
    assert 'lang="es"' in page.text and "Confirme su cita" in page.text
