"""REST intake: auth, tenancy, idempotent upserts and every kind of bad input, on both databases."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from conftest import new_api_key
from frontdesk.adapters.db.models import Appointment, AuditEvent, IntakeRejection, Patient
from frontdesk.bootstrap import Runtime
from frontdesk.services import practices
from staff_support import add_staff, signed_in

APPOINTMENT: dict[str, Any] = {
    "patient": {
        "external_id": "pt-1",
        "name": "Avery Johnson",
        "phone": "(202) 555-0143",
        "email": "Avery@Example.COM",
        "language": "en",
    },
    "start": "2026-12-03T15:00:00-05:00",
    "end": "2026-12-03T15:50:00-05:00",
    "clinician": "Dr. Maya Okafor",
    "location": "Harbor Street office",
}


def put(client: TestClient, body: Any, path: str = "ehr/appt-1") -> Any:
    return client.put(f"/api/v1/appointments/{path}", json=body)


def fields(response: Any) -> dict[str, str]:
    return {f["loc"]: f["message"] for f in response.json()["error"]["fields"]}


def count(runtime: Runtime, model: Any) -> int:
    with runtime.transaction() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


# --- auth ------------------------------------------------------------------------------------


def test_missing_key_is_401_with_json_error(app_client: TestClient) -> None:
    response = app_client.get("/api/v1/appointments")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize(
    "header",
    [
        "Bearer not-a-key",
        "Bearer fdk_000000000000_wrongsecret",
        "Basic dXNlcjpwYXNz",
        "Bearer ",
    ],
)
def test_bad_keys_are_401(app_client: TestClient, header: str) -> None:
    response = app_client.get("/api/v1/appointments", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


def test_right_prefix_wrong_secret_is_401(app_client: TestClient, api_key: str) -> None:
    forged = api_key[:-4] + ("aaaa" if not api_key.endswith("aaaa") else "bbbb")
    response = app_client.get("/api/v1/appointments", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401


def test_x_api_key_header_works(app_client: TestClient, api_key: str) -> None:
    assert app_client.get("/api/v1/appointments", headers={"X-API-Key": api_key}).status_code == 200


def test_revoked_key_is_401(app_client: TestClient, runtime: Runtime, api_key: str) -> None:
    from frontdesk.services.apikeys import revoke_api_key

    with runtime.transaction() as session:
        practice = practices.resolve_practice(session, "default")
        revoke_api_key(session, practice, api_key.split("_")[1], actor="test")
    response = app_client.get(
        "/api/v1/appointments", headers={"Authorization": f"Bearer {api_key}"}
    )
    assert response.status_code == 401
    assert "revoked" in response.json()["error"]["message"]


def test_read_only_key_may_read_but_not_write(app_client: TestClient, runtime: Runtime) -> None:
    token = new_api_key(runtime, "default", can_write=False)
    headers = {"Authorization": f"Bearer {token}"}
    assert app_client.get("/api/v1/appointments", headers=headers).status_code == 200
    response = app_client.put("/api/v1/appointments/ehr/a1", json=APPOINTMENT, headers=headers)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert count(runtime, Appointment) == 0


# --- tenancy ---------------------------------------------------------------------------------


def test_a_key_of_practice_a_never_reads_or_writes_practice_b(
    app_client: TestClient, runtime: Runtime
) -> None:
    with runtime.transaction() as session:
        practices.create_practice(session, "other", practices.PracticeProfile(name="Other"))
    key_a = {"Authorization": f"Bearer {new_api_key(runtime, 'default')}"}
    key_b = {"Authorization": f"Bearer {new_api_key(runtime, 'other')}"}

    created = app_client.put("/api/v1/appointments/ehr/shared-id", json=APPOINTMENT, headers=key_a)
    assert created.status_code == 201

    # B sees nothing of A's: not the appointment, not the patient, not in lists.
    assert app_client.get("/api/v1/appointments/ehr/shared-id", headers=key_b).status_code == 404
    assert app_client.get("/api/v1/patients/ehr/pt-1", headers=key_b).status_code == 404
    assert app_client.get("/api/v1/appointments", headers=key_b).json()["total"] == 0
    assert app_client.get("/api/v1/patients", headers=key_b).json()["total"] == 0

    # The same key in B creates B's own record and leaves A's untouched.
    moved = {**APPOINTMENT, "start": "2026-12-04T10:00:00Z", "end": "2026-12-04T10:50:00Z"}
    b_created = app_client.put("/api/v1/appointments/ehr/shared-id", json=moved, headers=key_b)
    assert b_created.status_code == 201
    a_view = app_client.get("/api/v1/appointments/ehr/shared-id", headers=key_a).json()
    assert a_view["start"] == "2026-12-03T20:00:00Z"
    assert a_view["id"] != b_created.json()["appointment"]["id"]
    # An appointment in B cannot point at A's patient by id alone.
    by_ref = {"patient": {"external_id": "pt-9"}, "start": "2026-12-05T10:00:00Z"}
    assert (
        app_client.put("/api/v1/appointments/ehr/x", json=by_ref, headers=key_a).status_code == 422
    )


# --- idempotent upserts ----------------------------------------------------------------------


def test_put_creates_then_same_data_changes_nothing(client: TestClient, runtime: Runtime) -> None:
    first = put(client, APPOINTMENT)
    assert first.status_code == 201
    body = first.json()
    assert body["result"] == "created"
    appointment = body["appointment"]
    assert appointment["start"] == "2026-12-03T20:00:00Z"
    assert appointment["end"] == "2026-12-03T20:50:00Z"
    assert appointment["local_start"] == "2026-12-03T15:00:00-05:00"
    assert appointment["status"] == "booked"
    assert appointment["confirmation"] == "unconfirmed"
    assert appointment["clinician"]["name"] == "Dr. Maya Okafor"
    assert appointment["location"]["name"] == "Harbor Street office"
    audits = count(runtime, AuditEvent)

    for _ in range(3):
        again = put(client, APPOINTMENT)
        assert again.status_code == 200
        assert again.json()["result"] == "unchanged"
        assert again.json()["appointment"]["version"] == 1
    assert count(runtime, Appointment) == 1
    assert count(runtime, Patient) == 1
    assert count(runtime, AuditEvent) == audits  # nothing changed, nothing to audit


def test_changed_time_moves_and_asks_for_confirmation_again(client: TestClient) -> None:
    put(client, {**APPOINTMENT, "confirmation": "confirmed"})
    moved = put(
        client,
        {**APPOINTMENT, "start": "2026-12-04T15:00:00-05:00", "end": "2026-12-04T15:50:00-05:00"},
    )
    assert moved.status_code == 200
    view = moved.json()["appointment"]
    assert moved.json()["result"] == "updated"
    assert view["start"] == "2026-12-04T20:00:00Z"
    assert view["confirmation"] == "unconfirmed"
    assert view["version"] == 2


def test_same_instant_in_another_offset_is_unchanged(client: TestClient) -> None:
    put(client, APPOINTMENT)
    same = put(
        client, {**APPOINTMENT, "start": "2026-12-03T20:00:00Z", "end": "2026-12-03T21:50:00+01:00"}
    )
    assert same.json()["result"] == "unchanged"


def test_cancellation_cancels(client: TestClient, runtime: Runtime) -> None:
    put(client, APPOINTMENT)
    cancelled = put(client, {**APPOINTMENT, "status": "cancelled"})
    assert cancelled.json()["appointment"]["status"] == "cancelled"
    with runtime.transaction() as session:
        actions = list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))
    assert actions[-1] == "appointment.cancelled"


def test_omitted_fields_keep_their_values(client: TestClient) -> None:
    put(client, APPOINTMENT)
    partial = {
        "patient": {"external_id": "pt-1"},
        "start": APPOINTMENT["start"],
        "end": APPOINTMENT["end"],
        "status": "arrived",
    }
    view = put(client, partial).json()["appointment"]
    assert view["status"] == "arrived"
    assert view["clinician"]["name"] == "Dr. Maya Okafor"
    patient = client.get("/api/v1/patients/ehr/pt-1").json()
    assert patient["phone"] == "+12025550143"


def test_naive_time_with_timezone_field_is_that_zones_wall_time(client: TestClient) -> None:
    body = {
        **APPOINTMENT,
        "start": "2026-07-01T09:00:00",
        "end": None,
        "duration_minutes": 45,
        "timezone": "America/Los_Angeles",
    }
    view = put(client, body).json()["appointment"]
    assert view["start"] == "2026-07-01T16:00:00Z"
    assert view["end"] == "2026-07-01T16:45:00Z"


def test_end_defaults_to_the_session_length(client: TestClient) -> None:
    body = {k: v for k, v in APPOINTMENT.items() if k != "end"}
    view = put(client, body).json()["appointment"]
    assert view["end"] == "2026-12-03T20:50:00Z"  # 50-minute default session


def test_patient_upsert_and_contact_normalisation(client: TestClient, runtime: Runtime) -> None:
    body = {
        "name": "María López",
        "phone": "202.555.0199",
        "email": "Maria@Example.org",
        "language": "ES",
        "preferred_channel": "whatsapp",
        "timezone": "America/Chicago",
        "date_of_birth": "1988-04-02",
        "consent": {"sms": True, "whatsapp": False},
    }
    created = client.put("/api/v1/patients/ehr/p-7", json=body)
    assert created.status_code == 201
    patient = created.json()["patient"]
    assert patient["phone"] == "+12025550199"
    assert patient["email"] == "Maria@example.org"
    assert patient["language"] == "es"
    assert patient["channel"] == "whatsapp"
    assert patient["consent"] == {"sms": "granted", "whatsapp": "revoked"}
    assert client.put("/api/v1/patients/ehr/p-7", json=body).json()["result"] == "unchanged"
    # Contact data is sealed at rest: neither the number nor the address is in the row.
    with runtime.transaction() as session:
        row = session.scalars(select(Patient)).one()
        stored = json.dumps([row.phone_sealed, row.email_sealed, row.date_of_birth_sealed])
    assert "5550199" not in stored and "Example.org" not in stored and "1988" not in stored


def test_concurrent_first_puts_of_one_key_make_one_record(
    client: TestClient, runtime: Runtime
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = list(pool.map(lambda _i: put(client, APPOINTMENT).status_code, range(8)))
    assert sorted(statuses).count(201) == 1
    assert all(s in (200, 201) for s in statuses)
    assert count(runtime, Appointment) == 1
    assert count(runtime, Patient) == 1


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "loc", "words"),
    [
        (
            {"patient": {**APPOINTMENT["patient"], "phone": "555-CALL-NOW"}},
            "body.patient.phone",
            "phone",
        ),
        (
            {"patient": {**APPOINTMENT["patient"], "timezone": "Mars/Olympus"}},
            "body.patient.timezone",
            "unknown IANA timezone",
        ),
        ({"timezone": "Not/AZone"}, "body.timezone", "unknown IANA timezone"),
        ({"end": "2026-12-03T14:00:00-05:00"}, "body.end", "end must be after start"),
        ({"status": "maybe"}, "body.status", "booked"),
        ({"start": "2026-12-03T15:00:00"}, "body.start", "no UTC offset"),
        ({"start": "next tuesday"}, "body.start", "datetime"),
        (
            {"patient": {**APPOINTMENT["patient"], "email": "not-an-email"}},
            "body.patient.email",
            "@",
        ),
        ({"surprise": 1}, "body.surprise", "Extra inputs"),
        (
            {"start": "2026-03-08T02:30:00", "timezone": "America/New_York", "end": None},
            "body.start",
            "does not exist",
        ),
    ],
)
def test_bad_field_is_422_with_its_location_and_nothing_lands(
    client: TestClient, runtime: Runtime, change: dict[str, Any], loc: str, words: str
) -> None:
    response = put(client, {**APPOINTMENT, **change})
    assert response.status_code == 422, response.text
    errors = fields(response)
    assert loc in errors, errors
    assert words.lower() in errors[loc].lower()
    assert count(runtime, Appointment) == 0
    assert count(runtime, Patient) == 0


def test_rejected_payload_is_kept_sealed_for_replay(client: TestClient, runtime: Runtime) -> None:
    bad = {**APPOINTMENT, "status": "maybe"}
    assert put(client, bad).status_code == 422
    with runtime.transaction() as session:
        rejection = session.scalars(select(IntakeRejection)).one()
        assert rejection.channel == "api.appointment"
        assert rejection.reference == "ehr/appt-1"
        assert "555" not in rejection.raw_sealed
        assert json.loads(runtime.cipher.open(rejection.raw_sealed) or "") == bad
        assert rejection.errors["errors"][0]["loc"] == "body.status"


def test_malformed_json_is_422_with_line_and_column(client: TestClient) -> None:
    response = client.put(
        "/api/v1/appointments/ehr/a1",
        content=b'{"patient": {"external_id": "p"},\n "start": }',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422
    message = fields(response)["body"]
    assert "malformed JSON" in message and "line 2" in message


@pytest.mark.parametrize("body", [b"[]", b'"text"', b"\xff\xfe"])
def test_non_object_bodies_are_422(client: TestClient, body: bytes) -> None:
    response = client.put("/api/v1/appointments/ehr/a1", content=body)
    assert response.status_code == 422
    assert "body" in fields(response)


def test_unknown_patient_reference_is_422(client: TestClient) -> None:
    response = put(client, {"patient": {"external_id": "ghost"}, "start": APPOINTMENT["start"]})
    assert response.status_code == 422
    assert "no patient ehr/ghost" in fields(response)["patient"]


def test_bad_path_keys_are_422(client: TestClient) -> None:
    response = put(client, APPOINTMENT, path="Not%20A%20Source/a1")
    assert response.status_code == 422
    assert "path.source" in fields(response)


def test_oversized_body_is_413(client: TestClient, runtime: Runtime) -> None:
    huge = {**APPOINTMENT, "padding": "x" * 2_000_000}
    response = put(client, huge)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert count(runtime, Appointment) == 0


def test_oversized_chunked_body_is_413(client: TestClient) -> None:
    def chunks() -> Any:
        for _ in range(40):
            yield b"x" * 65536

    response = client.put("/api/v1/appointments/ehr/a1", content=chunks())
    assert response.status_code == 413


# --- reading ---------------------------------------------------------------------------------


def test_list_filters_by_date_range_and_status_and_pages(client: TestClient) -> None:
    for day in range(1, 8):
        body = {
            **APPOINTMENT,
            "start": f"2026-12-0{day}T15:00:00Z",
            "end": None,
            "status": "cancelled" if day == 4 else "booked",
        }
        assert put(client, body, path=f"ehr/a{day}").status_code == 201
    window = client.get(
        "/api/v1/appointments",
        params={"from": "2026-12-02T00:00:00Z", "to": "2026-12-05T00:00:00Z"},
    )
    assert [a["external_id"] for a in window.json()["items"]] == ["a2", "a3", "a4"]
    booked = client.get("/api/v1/appointments", params={"status": "booked"}).json()
    assert booked["total"] == 6
    page = client.get("/api/v1/appointments", params={"limit": 3, "offset": 3}).json()
    assert [a["external_id"] for a in page["items"]] == ["a4", "a5", "a6"]
    assert page["next_offset"] == 6
    assert client.get("/api/v1/appointments", params={"offset": 6}).json()["next_offset"] is None


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"from": "2026-12-02T00:00:00"}, "query.from"),
        ({"from": "2026-12-05T00:00:00Z", "to": "2026-12-01T00:00:00Z"}, "query.to"),
        ({"status": "maybe"}, "query.status"),
        ({"limit": 0}, "query.limit"),
        ({"from": "yesterday"}, "query.from"),
    ],
)
def test_bad_list_filters_are_422(client: TestClient, params: dict[str, Any], loc: str) -> None:
    response = client.get("/api/v1/appointments", params=params)
    assert response.status_code == 422
    assert loc in fields(response)


def test_get_unknown_is_404(client: TestClient) -> None:
    response = client.get("/api/v1/appointments/ehr/nope")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_openapi_documents_the_intake_bodies(app_client: TestClient) -> None:
    assert app_client.get("/docs").status_code == 200
    spec = app_client.get("/openapi.json").json()
    put_op = spec["paths"]["/api/v1/appointments/{source}/{external_id}"]["put"]
    schema = put_op["requestBody"]["content"]["application/json"]["schema"]
    assert "patient" in schema["properties"] and "start" in schema["required"]
    assert {"401", "403", "422"} <= set(put_op["responses"])


# --- pages -----------------------------------------------------------------------------------


def test_home_shows_todays_appointments_in_the_practice_timezone(
    client: TestClient, runtime: Runtime
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    body = {**APPOINTMENT, "start": now.isoformat(), "end": None}
    put(client, body, path="ehr/today")
    # The API key does not open pages: the schedule is for signed-in staff.
    assert client.get("/", follow_redirects=False).status_code == 303
    add_staff(runtime, "desk@example.com", "front_desk")
    signed_in(client)
    page = client.get("/")
    assert page.status_code == 200
    assert "My Practice" in page.text
    assert "Avery Johnson" in page.text
    from zoneinfo import ZoneInfo

    local = now.astimezone(ZoneInfo("America/New_York"))
    assert local.strftime("%H:%M") in page.text
    assert "unconfirmed" in page.text


def test_healthz(app_client: TestClient) -> None:
    response = app_client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}
