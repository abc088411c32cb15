"""The webhooks API (endpoints, deliveries, redelivery, inbound secret) and the generic inbound
webhook, through the real app, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from standardwebhooks import Webhook

from conftest import new_api_key
from frontdesk.adapters.db.models import Appointment, InboundWebhook, IntakeRejection, Practice
from frontdesk.adapters.db.webhook_models import WebhookEndpoint, WebhookInboundSecret
from frontdesk.bootstrap import Runtime
from frontdesk.services import events
from frontdesk.services.webhook_delivery import DeliverySettings, WebhookDeliverer
from webhook_receiver import receiving

E = "/api/v1/webhooks/endpoints"


# --- endpoints ---------------------------------------------------------------------------------


def test_an_endpoints_secret_is_shown_once_and_sealed(client: TestClient, runtime: Runtime) -> None:
    created = client.post(
        E,
        json={
            "url": "https://ehr.example/hooks",
            "event_types": ["appointment.cancelled", "appointment.confirmed"],
            "description": "EHR",
        },
    )
    assert created.status_code == 201, created.text
    body = created.json()
    secret = body["secret"]
    assert secret.startswith("whsec_")
    assert body["event_types"] == ["appointment.cancelled", "appointment.confirmed"]
    assert body["enabled"] is True
    listed = client.get(E).json()["endpoints"]
    one = client.get(f"{E}/{body['id']}").json()
    assert [e["id"] for e in listed] == [body["id"]]
    assert "secret" not in listed[0] and "secret" not in one
    assert secret not in json.dumps(listed) + json.dumps(one)
    with runtime.transaction() as session:
        row = session.get(WebhookEndpoint, body["id"])
        assert row is not None and secret not in row.secret_sealed
        assert runtime.cipher.open(row.secret_sealed) == secret


def test_endpoints_can_be_changed_and_deleted(client: TestClient) -> None:
    endpoint = client.post(E, json={"url": "https://ehr.example/hooks"}).json()
    assert endpoint["event_types"] is None  # every type
    changed = client.patch(
        f"{E}/{endpoint['id']}",
        json={"url": "https://ehr.example/v2", "event_types": ["patient.opted_out"]},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["url"] == "https://ehr.example/v2"
    assert changed.json()["event_types"] == ["patient.opted_out"]
    off = client.patch(f"{E}/{endpoint['id']}", json={"enabled": False}).json()
    assert off["enabled"] is False and off["disabled_reason"].startswith("disabled by api_key:")
    on = client.patch(f"{E}/{endpoint['id']}", json={"enabled": True, "event_types": None}).json()
    assert on["enabled"] is True and on["disabled_reason"] is None and on["event_types"] is None
    assert client.delete(f"{E}/{endpoint['id']}").status_code == 204
    assert client.get(f"{E}/{endpoint['id']}").status_code == 404
    assert client.delete(f"{E}/{endpoint['id']}").status_code == 404


def test_bad_endpoints_get_field_errors(client: TestClient) -> None:
    cases: list[tuple[Any, str]] = [
        ({"url": "ftp://x.example"}, "body.url"),
        ({"url": "http://ehr.example/hooks"}, "body.url"),  # plain http beyond loopback
        ({"url": "https://user:pw@ehr.example/"}, "body.url"),
        (
            {"url": "https://ehr.example/", "event_types": ["appointment.exploded"]},
            "body.event_types",
        ),
        ({"url": "https://ehr.example/", "event_types": []}, "body.event_types"),
        ({"url": "https://ehr.example/", "colour": "red"}, "body.colour"),
        ({}, "body.url"),
        ([], "body"),
    ]
    for payload, loc in cases:
        answer = client.post(E, json=payload)
        assert answer.status_code == 422, (payload, answer.text)
        assert loc in [f["loc"] for f in answer.json()["error"]["fields"]], answer.text
    assert client.post(E, content=b"{nope").status_code == 422
    assert client.post(E, json={"url": "http://127.0.0.1:9/hooks"}).status_code == 201


def test_endpoints_belong_to_their_practice(client: TestClient, runtime: Runtime) -> None:
    endpoint = client.post(E, json={"url": "https://ehr.example/hooks"}).json()
    with runtime.transaction() as session:
        session.add(Practice(slug="other", name="Other", timezone="America/Chicago"))
    other = new_api_key(runtime, "other")
    headers = {"Authorization": f"Bearer {other}"}
    assert client.get(f"{E}/{endpoint['id']}", headers=headers).status_code == 404
    assert client.get(E, headers=headers).json() == {"endpoints": []}
    assert client.delete(f"{E}/{endpoint['id']}", headers=headers).status_code == 404


def test_reading_needs_a_key_and_writing_a_writer(client: TestClient, runtime: Runtime) -> None:
    reader = new_api_key(runtime, "default", can_write=False)
    headers = {"Authorization": f"Bearer {reader}"}
    assert client.get(E, headers=headers).status_code == 200
    assert client.post(E, json={"url": "https://a.example/"}, headers=headers).status_code == 403
    assert client.get(E, headers={"Authorization": "Bearer nope"}).status_code == 401


# --- deliveries --------------------------------------------------------------------------------


def test_deliveries_are_listed_with_attempts_and_can_be_redelivered(
    client: TestClient, runtime: Runtime
) -> None:
    with receiving() as receiver:
        endpoint = client.post(E, json={"url": receiver.url}).json()
        with runtime.transaction() as session:
            practice_id = session.scalars(select(Practice.id)).one()
            event = events.publish(
                session, practice_id, "conversation.handoff", {"conversation": {"id": 3}}
            )
            event_id = event.id
        worker = WebhookDeliverer(runtime, worker_id="t", settings=DeliverySettings(timeout=5))
        try:
            worker.deliver_due()
            listed = client.get(
                "/api/v1/webhooks/deliveries", params={"endpoint_id": endpoint["id"]}
            ).json()
            assert listed["total"] == 1
            [delivery] = listed["deliveries"]
            assert delivery["state"] == "delivered"
            assert delivery["event"]["type"] == "conversation.handoff"
            [attempt] = delivery["attempt_log"]
            assert attempt["response_status"] == 200
            assert attempt["request_headers"]["webhook-id"] == delivery["event"]["webhook_id"]
            assert json.loads(attempt["request_body"])["data"] == {"conversation": {"id": 3}}
            Webhook(endpoint["secret"]).verify(attempt["request_body"], attempt["request_headers"])
            by_event = client.get(
                "/api/v1/webhooks/deliveries", params={"event_id": event_id}
            ).json()
            assert [d["id"] for d in by_event["deliveries"]] == [delivery["id"]]
            assert (
                client.get("/api/v1/webhooks/deliveries", params={"state": "dead"}).json()["total"]
                == 0
            )
            assert (
                client.get("/api/v1/webhooks/deliveries", params={"state": "lost"}).status_code
                == 422
            )
            again = client.post(f"/api/v1/webhooks/deliveries/{delivery['id']}/redeliver")
            assert again.status_code == 202, again.text
            assert again.json()["state"] == "pending"
            worker.deliver_due()
            one = client.get(f"/api/v1/webhooks/deliveries/{delivery['id']}").json()
            assert one["state"] == "delivered" and len(one["attempt_log"]) == 2
            assert receiver.ids() == [delivery["event"]["webhook_id"]] * 2
        finally:
            worker.close()
    assert client.post("/api/v1/webhooks/deliveries/999999/redeliver").status_code == 404


# --- the generic inbound webhook ---------------------------------------------------------------

APPOINTMENT = {
    "external_id": "bk-1",
    "patient": {"external_id": "p-1", "name": "Ana Example", "phone": "+1 617 555 0100"},
    "start": "2030-03-02T15:00:00-05:00",
    "duration_minutes": 50,
}


def _signed(secret: str, body: dict[str, Any], msg_id: str, at: datetime | None = None) -> Any:
    raw = json.dumps(body)
    at = at or datetime.now(UTC)
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, raw),
        "content-type": "application/json",
    }
    return raw, headers


def _inbound_secret(client: TestClient) -> str:
    answer = client.post("/api/v1/webhooks/inbound-secret")
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["configured"] is True and body["url_path"] == "/webhooks/generic/default"
    return str(body["secret"])


def _stored(runtime: Runtime) -> list[InboundWebhook]:
    with runtime.transaction() as session:
        return list(session.scalars(select(InboundWebhook).order_by(InboundWebhook.id)))


def test_a_signed_upsert_creates_the_appointment(client: TestClient, runtime: Runtime) -> None:
    secret = _inbound_secret(client)
    raw, headers = _signed(secret, {"type": "appointment.upsert", "data": APPOINTMENT}, "evt_1")
    answer = client.post("/webhooks/generic/default", content=raw, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "processed" and answer.json()["result"] == "created"
    stored = client.get("/api/v1/appointments/generic/bk-1").json()
    assert stored["start"] == "2030-03-02T20:00:00Z" and stored["status"] == "booked"
    [row] = _stored(runtime)
    assert (row.provider, row.dedupe_key, row.state) == ("generic", "evt_1", "processed")
    assert "Ana Example" not in row.raw_sealed  # sealed at rest
    # Cancelled by a second event.
    raw, headers = _signed(
        secret,
        {"type": "appointment.cancel", "data": {"external_id": "bk-1"}},
        "evt_2",
    )
    answer = client.post("/webhooks/generic/default", content=raw, headers=headers)
    assert answer.status_code == 200 and answer.json()["result"] == "cancelled", answer.text
    assert client.get("/api/v1/appointments/generic/bk-1").json()["status"] == "cancelled"


def test_a_replayed_webhook_id_is_not_processed_again(client: TestClient, runtime: Runtime) -> None:
    secret = _inbound_secret(client)
    raw, headers = _signed(secret, {"type": "appointment.upsert", "data": APPOINTMENT}, "evt_9")
    assert client.post("/webhooks/generic/default", content=raw, headers=headers).status_code == 200
    replay = client.post("/webhooks/generic/default", content=raw, headers=headers)
    assert replay.status_code == 200 and replay.json()["status"] == "duplicate"
    # Same id, other content (say a captured id reused): still not processed.
    moved = {**APPOINTMENT, "start": "2030-03-03T15:00:00-05:00"}
    raw, headers = _signed(secret, {"type": "appointment.upsert", "data": moved}, "evt_9")
    again = client.post("/webhooks/generic/default", content=raw, headers=headers)
    assert again.json()["status"] == "duplicate"
    assert client.get("/api/v1/appointments/generic/bk-1").json()["start"] == "2030-03-02T20:00:00Z"
    assert len(_stored(runtime)) == 1


def test_forged_and_stale_webhooks_are_refused_and_not_stored(
    client: TestClient, runtime: Runtime
) -> None:
    secret = _inbound_secret(client)
    body = {"type": "appointment.upsert", "data": APPOINTMENT}
    forged_raw, forged = _signed("whsec_" + "A" * 43 + "=", body, "evt_f")
    stale_raw, stale = _signed(secret, body, "evt_s", datetime.now(UTC) - timedelta(minutes=6))
    good_raw, good = _signed(secret, body, "evt_t")
    cases = [
        (forged_raw, forged),
        (stale_raw, stale),
        (good_raw.replace("bk-1", "bk-2"), good),  # tampered body
        (good_raw, {k: v for k, v in good.items() if k != "webhook-signature"}),
        (good_raw, {}),
    ]
    for raw, headers in cases:
        answer = client.post("/webhooks/generic/default", content=raw, headers=headers)
        assert answer.status_code == 403, answer.text
        assert answer.json()["error"]["code"] == "forbidden"
    assert _stored(runtime) == []
    assert client.get("/api/v1/appointments/generic/bk-1").status_code == 404
    assert (
        client.post("/webhooks/generic/nowhere", content=good_raw, headers=good).status_code == 404
    )


def test_without_a_secret_every_inbound_webhook_is_refused(
    client: TestClient, runtime: Runtime
) -> None:
    raw, headers = _signed(
        "whsec_" + "B" * 43 + "=", {"type": "appointment.upsert", "data": APPOINTMENT}, "e1"
    )
    assert client.post("/webhooks/generic/default", content=raw, headers=headers).status_code == 403
    status = client.get("/api/v1/webhooks/inbound-secret").json()
    assert status["configured"] is False
    secret = _inbound_secret(client)
    with runtime.transaction() as session:
        row = session.scalars(select(WebhookInboundSecret)).one()
        assert secret not in row.secret_sealed
    # Replacing it retires the old one at once; deleting it refuses everything again.
    newer = _inbound_secret(client)
    raw, headers = _signed(secret, {"type": "appointment.upsert", "data": APPOINTMENT}, "e2")
    assert client.post("/webhooks/generic/default", content=raw, headers=headers).status_code == 403
    raw, headers = _signed(newer, {"type": "appointment.upsert", "data": APPOINTMENT}, "e3")
    assert client.post("/webhooks/generic/default", content=raw, headers=headers).status_code == 200
    assert client.delete("/api/v1/webhooks/inbound-secret").status_code == 204
    raw, headers = _signed(newer, {"type": "appointment.upsert", "data": APPOINTMENT}, "e4")
    assert client.post("/webhooks/generic/default", content=raw, headers=headers).status_code == 403


def test_invalid_data_gets_field_errors_and_is_kept(client: TestClient, runtime: Runtime) -> None:
    secret = _inbound_secret(client)
    bad = {**APPOINTMENT, "start": "2030-03-02T15:00:00", "status": "maybe"}
    raw, headers = _signed(secret, {"type": "appointment.upsert", "data": bad}, "evt_bad")
    answer = client.post("/webhooks/generic/default", content=raw, headers=headers)
    assert answer.status_code == 422, answer.text
    locs = {f["loc"] for f in answer.json()["error"]["fields"]}
    assert {"body.data.start", "body.data.status"} <= locs
    [row] = _stored(runtime)
    assert row.state == "rejected"
    with runtime.transaction() as session:
        kept = session.scalars(select(IntakeRejection)).one()
        assert kept.channel == "webhook.generic" and kept.reference == "generic/evt_bad"
        assert runtime.cipher.open(kept.raw_sealed) == raw
        assert session.scalars(select(Appointment)).all() == []
    # The sender retrying the same id gets the same answer, and nothing new is kept.
    again = client.post("/webhooks/generic/default", content=raw, headers=headers)
    assert again.status_code == 422
    assert {f["loc"] for f in again.json()["error"]["fields"]} == locs
    with runtime.transaction() as session:
        assert len(session.scalars(select(IntakeRejection)).all()) == 1
    for body, loc in [
        ({"type": "booking.made", "data": APPOINTMENT}, "body.type"),
        ({"type": "appointment.upsert", "data": []}, "body.data"),
        (
            {"type": "appointment.upsert", "data": {**APPOINTMENT, "external_id": ""}},
            "body.data.external_id",
        ),
        ({"type": "appointment.cancel", "data": {"external_id": "nope"}}, "body.data.external_id"),
    ]:
        raw, headers = _signed(secret, body, f"evt_{loc}_{body['type']}".replace(".", "-"))
        answer = client.post("/webhooks/generic/default", content=raw, headers=headers)
        assert answer.status_code == 422, answer.text
        assert loc in [f["loc"] for f in answer.json()["error"]["fields"]]
    raw, headers = _signed(secret, {"type": "appointment.upsert"}, "evt_json")
    broken = client.post(
        "/webhooks/generic/default",
        content=b"{not json",
        headers={
            **headers,
            "webhook-signature": Webhook(secret).sign(
                "evt_json",
                datetime.fromtimestamp(int(headers["webhook-timestamp"]), UTC),
                "{not json",
            ),
        },
    )
    assert broken.status_code == 422
