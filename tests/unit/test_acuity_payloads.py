"""Acuity Scheduling: the shared reference (its form fields, actions, signature algorithm and the
appointment object's field names) parsed and mapped by the adapter."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any
from urllib.parse import urlencode

import pytest

from conftest import shared_file
from frontdesk.adapters.schedulers import acuity
from frontdesk.domain.errors import Unauthorized, ValidationFailed
from frontdesk.domain.intake import AppointmentIn

API_KEY = "acuity-api-key-789"


def _reference() -> dict[str, Any]:
    return json.loads(shared_file("webhooks", "acuity", "webhook_reference.json").read_text())


def _appointment(**overrides: Any) -> dict[str, Any]:
    """An appointment object carrying every field name the reference lists."""
    values: dict[str, Any] = {
        "id": 1630290133,
        "firstName": "Bob",
        "lastName": "McTest",
        "phone": "+1 415 555 0100",
        "email": "bob.mctest@example.com",
        "date": "December 4, 2026",
        "time": "10:15am",
        "endTime": "11:05am",
        "dateCreated": "November 28, 2026",
        "datetime": "2026-12-04T10:15:00-0800",
        "price": "150.00",
        "paid": "no",
        "amountPaid": "0.00",
        "type": "Therapy session",
        "appointmentTypeID": 1,
        "addonIDs": [],
        "classID": None,
        "category": "",
        "duration": "50",
        "calendar": "Dr. Ada Lovelace",
        "calendarID": 27238,
        "canClientCancel": True,
        "canClientReschedule": True,
        "location": "Suite 4, 12 Main St",
        "certificate": None,
        "confirmationPage": "https://acuityscheduling.com/schedule.php?owner=1&action=appt",
        "formsText": "Reason for visit: (clinical text that must never be read)",
        "notes": "clinical notes that must never be read",
        "timezone": "America/Los_Angeles",
        "forms": [],
        "labels": None,
    }
    for name in _reference()["appointment_object_field_names_from_docs_example"]:
        assert name in values, f"the test appointment lacks the documented field {name!r}"
    return values | overrides


def _form(action: str, appointment_id: str = "1630290133") -> bytes:
    """A delivery with exactly the form fields the reference documents."""
    fields = _reference()["form_fields"]
    values = {"action": action, "id": appointment_id, "calendarID": "27238"}
    values["appointmentTypeID"] = "1"
    assert set(values) == set(fields)
    return urlencode(values).encode()


def test_the_reference_actions_are_all_understood() -> None:
    reference = _reference()
    static = [a.strip() for a in reference["form_fields"]["action"].split(":", 1)[1].split("|")]
    static = [a.split(" ")[0].strip() for a in static]
    assert {"scheduled", "rescheduled", "canceled", "changed"} <= set(static)
    for action in ("scheduled", "rescheduled", "canceled", "changed"):
        notification = acuity.parse_notification(_form(action))
        assert notification.relevant and notification.action == action
        assert notification.appointment_id == "1630290133"
        assert (notification.calendar_id, notification.appointment_type_id) == ("27238", "1")
    # Dynamic webhooks name the same actions with a prefix; orders are not appointments.
    for event in reference["dynamic_webhook_events"]:
        notification = acuity.parse_notification(_form(event))
        assert notification.relevant == event.startswith("appointment.")
    ignored = acuity.booking(acuity.parse_notification(_form("order.completed")), None)
    assert ignored.action == "ignore"


def test_the_signature_follows_the_documented_algorithm() -> None:
    reference = _reference()["signature"]
    assert reference["header"] == acuity.HEADER
    assert reference["algorithm"] == "base64(HMAC-SHA256(key=API key, message=raw request body))"
    body = _form("scheduled")
    expected = base64.b64encode(hmac.new(API_KEY.encode(), body, hashlib.sha256).digest()).decode()
    assert acuity.signature(API_KEY, body) == expected
    acuity.verify(expected, body, API_KEY)
    with pytest.raises(Unauthorized):
        acuity.verify(expected, body + b"&x=1", API_KEY)
    with pytest.raises(Unauthorized):
        acuity.verify(acuity.signature("another-key-000", body), body, API_KEY)
    with pytest.raises(Unauthorized):
        acuity.verify(None, body, API_KEY)


def test_a_scheduled_appointment_maps_to_a_valid_appointment() -> None:
    event = acuity.booking(acuity.parse_notification(_form("scheduled")), _appointment())
    assert (event.provider, event.action, event.external_id) == ("acuity", "book", "1630290133")
    assert event.record is not None
    record = event.record
    # datetime carries a numeric offset without a colon (the reference's note).
    assert record["start"] == "2026-12-04T10:15:00-08:00"
    assert record["end"] == "2026-12-04T11:05:00-08:00"
    assert record["status"] == "booked"
    assert record["clinician"] == {"name": "Dr. Ada Lovelace"}
    assert record["location"] == {"name": "Suite 4, 12 Main St"}
    patient = record["patient"]
    assert patient["name"] == "Bob McTest"
    assert patient["timezone"] == "America/Los_Angeles"
    assert patient["external_id"].startswith("email-") and "mctest" not in patient["external_id"]
    # Forms and notes may be clinical: never copied.
    assert "clinical" not in json.dumps(record)
    parsed = AppointmentIn.model_validate(
        record | {"patient": patient | {"source": "acuity"}},
        context={"default_timezone": "America/New_York"},
    )
    assert parsed.start.utcoffset() is not None


def test_a_telehealth_location_becomes_the_video_link() -> None:
    event = acuity.booking(
        acuity.parse_notification(_form("scheduled")),
        _appointment(location="https://meet.example.org/room-7"),
    )
    assert event.record is not None
    assert event.record["telehealth_url"] == "https://meet.example.org/room-7"
    assert "location" not in event.record


def test_cancellation_comes_from_the_action_or_the_appointment_itself() -> None:
    canceled = acuity.booking(acuity.parse_notification(_form("canceled")), None)
    assert (canceled.action, canceled.record) == ("cancel", None)
    # "changed" fires for every change: what the appointment says decides.
    changed = acuity.parse_notification(_form("changed"))
    assert acuity.booking(changed, _appointment(canceled=True)).action == "cancel"
    assert acuity.booking(changed, _appointment(canceled=False)).action == "book"


def test_the_dedupe_key_tells_a_redelivery_from_a_second_reschedule() -> None:
    moved = acuity.parse_notification(_form("rescheduled"))
    once = acuity.dedupe_key(moved, _appointment(datetime="2026-12-05T09:00:00-0800"))
    again = acuity.dedupe_key(moved, _appointment(datetime="2026-12-05T09:00:00-0800"))
    later = acuity.dedupe_key(moved, _appointment(datetime="2026-12-06T09:00:00-0800"))
    assert once == again != later


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        (b"id=1", "body.action"),
        (b"action=scheduled", "body.id"),
        (b"action=scheduled&id=abc", "body.id"),
    ],
)
def test_a_broken_delivery_names_the_field(body: bytes, loc: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        acuity.parse_notification(body)
    assert [e.loc for e in caught.value.errors] == [loc]


def test_an_appointment_whose_id_differs_from_the_delivery_is_refused() -> None:
    with pytest.raises(ValidationFailed):
        acuity.booking(acuity.parse_notification(_form("scheduled")), _appointment(id=99))


def test_an_appointment_without_an_offset_is_refused() -> None:
    with pytest.raises(ValidationFailed) as caught:
        acuity.booking(
            acuity.parse_notification(_form("scheduled")),
            _appointment(datetime="2026-12-04T10:15:00"),
        )
    assert caught.value.errors[0].loc == "appointment.datetime"
