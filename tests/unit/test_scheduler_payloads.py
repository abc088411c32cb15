"""Scheduler payloads (the shared Calendly, Cal.com and FHIR samples), signatures, and the FHIR
write-back rules: pure code, no database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fhir.resources.R4B.appointment import Appointment as FhirAppointment
from fhir.resources.R4B.communication import Communication as FhirCommunication

from conftest import shared_file
from frontdesk.adapters.importers.fhir_json import read_fhir_document
from frontdesk.adapters.schedulers import calcom, calendly, signatures
from frontdesk.domain.errors import Unauthorized, ValidationFailed
from frontdesk.domain.fhir_writeback import (
    CommunicationSent,
    ParticipantAnswer,
    StatusChange,
    change_as_dict,
    change_from_dict,
    communication,
    decide,
)
from frontdesk.domain.intake import AppointmentIn

CONTEXT = {"default_region": "US", "default_timezone": "America/New_York"}
SCHEDULED_EVENT = {
    "uri": "https://api.calendly.com/scheduled_events/AAAAAAAAAAAAAAAA",
    "status": "active",
    "start_time": "2026-12-01T15:00:00.000000Z",
    "end_time": "2026-12-01T15:50:00.000000Z",
    "location": {"type": "zoom", "join_url": "https://zoom.example/j/123"},
    "event_memberships": [{"user_name": "Dr. Ada Lovelace", "user_email": "ada@example.com"}],
}


def _json(*parts: str) -> Any:
    return json.loads(shared_file(*parts).read_text())


# --- Calendly ----------------------------------------------------------------------------------


def test_the_calendly_samples_parse_into_booking_events() -> None:
    created = calendly.parse(_json("webhooks", "calendly", "invitee_created.json"))
    assert created.action == "book"
    assert created.external_id == "AAAAAAAAAAAAAAAA"
    assert created.dedupe_key == (
        "invitee.created:https://api.calendly.com/scheduled_events/AAAAAAAAAAAAAAAA"
        "/invitees/AAAAAAAAAAAAAAAA"
    )
    assert created.event_uri == "https://api.calendly.com/scheduled_events/AAAAAAAAAAAAAAAA"
    # The published example does not embed the scheduled event: the time is read from the API.
    assert created.record is None
    assert (created.replaces, created.replaced_by, created.rescheduled) == (None, None, False)

    canceled = calendly.parse(_json("webhooks", "calendly", "invitee_canceled.json"))
    assert canceled.action == "cancel"
    assert canceled.dedupe_key.startswith("invitee.canceled:")
    assert canceled.dedupe_key != created.dedupe_key
    assert canceled.rescheduled is False


def test_a_calendly_invitee_with_its_scheduled_event_maps_to_an_appointment() -> None:
    document = _json("webhooks", "calendly", "invitee_created.json")
    document["payload"]["scheduled_event"] = SCHEDULED_EVENT
    record = calendly.parse(document).record
    assert record is not None
    data = AppointmentIn.model_validate(record, context=CONTEXT)
    assert data.start == datetime(2026, 12, 1, 15, tzinfo=UTC)
    assert data.end == datetime(2026, 12, 1, 15, 50, tzinfo=UTC)
    assert data.status == "booked"
    assert data.telehealth_url == "https://zoom.example/j/123"
    assert data.clinician is not None and data.clinician.name == "Dr. Ada Lovelace"
    patient = data.patient
    assert patient.name == "John Doe" and patient.email == "test@example.com"
    assert patient.timezone == "America/New_York"
    # The e-mail address is not the key: a digest of it is.
    assert patient.external_id.startswith("email-") and "example" not in patient.external_id


def test_a_calendly_reschedule_links_both_halves() -> None:
    old = "https://api.calendly.com/scheduled_events/E1/invitees/OLD"
    new = "https://api.calendly.com/scheduled_events/E2/invitees/NEW"
    cancel = _json("webhooks", "calendly", "invitee_canceled.json")
    cancel["payload"].update(uri=old, rescheduled=True, new_invitee=new)
    create = _json("webhooks", "calendly", "invitee_created.json")
    create["payload"].update(uri=new, old_invitee=old)
    first, second = calendly.parse(cancel), calendly.parse(create)
    assert (first.external_id, first.rescheduled, first.replaced_by) == ("OLD", True, "NEW")
    assert (second.external_id, second.replaces) == ("NEW", "OLD")


@pytest.mark.parametrize(
    ("document", "loc"),
    [
        ({}, "body.event"),
        ({"event": "invitee.created"}, "body.payload"),
        ({"event": "invitee.created", "payload": {}}, "body.payload.uri"),
        ({"event": "invitee.created", "payload": {"uri": 5}}, "body.payload.uri"),
    ],
)
def test_a_broken_calendly_body_names_the_field(document: dict[str, Any], loc: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        calendly.parse(document)
    assert caught.value.errors[0].loc == loc


def test_other_calendly_events_are_ignored() -> None:
    event = calendly.parse({"event": "routing_form_submission.created", "payload": {"uri": "x"}})
    assert event.action == "ignore"


# --- Cal.com -----------------------------------------------------------------------------------


def test_the_calcom_sample_maps_to_an_appointment() -> None:
    event = calcom.parse(_json("webhooks", "calcom", "booking_created.json"))
    assert event.action == "book"
    assert event.external_id == "bFJeNb2uX8ANpT3JL5EfXw"
    assert event.dedupe_key == "BOOKING_CREATED:bFJeNb2uX8ANpT3JL5EfXw:2023-05-25T09:30:00Z"
    assert event.record is not None
    data = AppointmentIn.model_validate(event.record, context=CONTEXT)
    assert data.start == datetime(2023, 5, 25, 9, 30, tzinfo=UTC)
    assert data.end == datetime(2023, 5, 25, 10, 30, tzinfo=UTC)
    assert data.status == "booked"
    assert data.clinician is not None and data.clinician.name == "Pro Example"
    assert data.location is not None and data.location.name == "Calcom HQ"
    assert data.patient.name == "John Doe"
    assert data.patient.email == "john.doe@example.com"
    assert data.patient.timezone == "Asia/Kolkata"
    assert data.patient.language == "en"


def test_calcom_reschedule_and_cancel_events() -> None:
    document = _json("webhooks", "calcom", "booking_created.json")
    document["triggerEvent"] = "BOOKING_RESCHEDULED"
    document["payload"].update(uid="NEWUID", rescheduleUid="bFJeNb2uX8ANpT3JL5EfXw")
    moved = calcom.parse(document)
    assert (moved.action, moved.external_id, moved.replaces) == (
        "book",
        "NEWUID",
        "bFJeNb2uX8ANpT3JL5EfXw",
    )
    document["triggerEvent"] = "BOOKING_CANCELLED"
    cancelled = calcom.parse(document)
    assert cancelled.action == "cancel" and cancelled.replaces is None
    assert cancelled.record is not None and cancelled.record["status"] == "cancelled"


def test_a_calcom_group_booking_is_refused_with_its_field() -> None:
    document = _json("webhooks", "calcom", "booking_created.json")
    document["payload"]["attendees"].append({"name": "B", "email": "b@example.com"})
    with pytest.raises(ValidationFailed) as caught:
        calcom.parse(document)
    assert caught.value.errors[0].loc == "body.payload.attendees"


# --- signatures --------------------------------------------------------------------------------

NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)
BODY = b'{"event":"invitee.created"}'


def test_a_calendly_signature_is_accepted() -> None:
    header = signatures.calendly_signature("signing-key-1", BODY, int(NOW.timestamp()))
    signatures.verify_calendly(header, BODY, "signing-key-1", now=NOW)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "v1=abc",
        "t=abc,v1=abc",
        signatures.calendly_signature("another-key", BODY, int(NOW.timestamp())),
        signatures.calendly_signature("signing-key-1", BODY + b" ", int(NOW.timestamp())),
        signatures.calendly_signature("signing-key-1", BODY, int(NOW.timestamp()) - 600),
        signatures.calendly_signature("signing-key-1", BODY, int(NOW.timestamp()) + 600),
    ],
    ids=["absent", "empty", "no-t", "bad-t", "forged", "other-body", "stale", "future"],
)
def test_a_bad_calendly_signature_is_refused(header: str | None) -> None:
    with pytest.raises(Unauthorized):
        signatures.verify_calendly(header, BODY, "signing-key-1", now=NOW)


def test_a_calendly_signature_within_the_tolerance_passes() -> None:
    header = signatures.calendly_signature("k" * 10, BODY, int(NOW.timestamp()) - 120)
    signatures.verify_calendly(header, BODY, "k" * 10, now=NOW, tolerance=timedelta(minutes=3))


def test_calcom_signatures() -> None:
    good = signatures.calcom_signature("calcom-secret", BODY)
    signatures.verify_calcom(good, BODY, "calcom-secret")
    signatures.verify_calcom(good.upper(), BODY, "calcom-secret")
    for header in (None, "", signatures.calcom_signature("other-secret", BODY), "00" * 32):
        with pytest.raises(Unauthorized):
            signatures.verify_calcom(header, BODY, "calcom-secret")


# --- FHIR --------------------------------------------------------------------------------------


def test_the_fhir_samples_map_through_the_shared_importer() -> None:
    patient = _json("fhir", "r4", "Patient-example.json")
    appointment = _json("fhir", "r4", "Appointment-example.json")
    document = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": appointment}, {"resource": patient}],
    }
    # The sample patient is Australian: her numbers have no country code.
    context = CONTEXT | {"default_region": "AU"}
    rows = list(read_fhir_document(document, name="poll", source="ehr", context=context))
    assert [(r.kind, r.external_id, r.ok) for r in rows] == [
        ("patient", "example", True),
        ("appointment", "example", True),
    ]
    record = rows[1].record
    assert isinstance(record, AppointmentIn)
    assert record.patient.external_id == "example"
    assert record.clinician is not None


def test_a_patient_answer_sets_their_participant_status() -> None:
    appointment = _json("fhir", "r4", "Appointment-example.json")
    appointment["participant"][0]["status"] = "needs-action"
    decision = decide(appointment, ParticipantAnswer("accepted"), "example")
    assert decision.action == "write" and decision.resource is not None
    statuses = [p.get("status") for p in decision.resource["participant"]]
    assert statuses == ["accepted", "accepted", "accepted"]
    FhirAppointment.model_validate(decision.resource)
    assert appointment["participant"][0]["status"] == "needs-action"  # never mutated
    assert decide(decision.resource, ParticipantAnswer("accepted"), "example").action == "already"


@pytest.mark.parametrize(
    ("status", "change", "action"),
    [
        ("booked", StatusChange("cancelled"), "write"),
        ("pending", StatusChange("cancelled"), "write"),
        ("cancelled", StatusChange("cancelled"), "already"),
        ("fulfilled", StatusChange("cancelled"), "superseded"),
        ("arrived", StatusChange("cancelled"), "superseded"),
        ("booked", StatusChange("noshow"), "write"),
        ("noshow", StatusChange("noshow"), "already"),
        ("fulfilled", StatusChange("noshow"), "superseded"),
        ("cancelled", ParticipantAnswer("accepted"), "superseded"),
        ("entered-in-error", ParticipantAnswer("declined"), "superseded"),
    ],
)
def test_a_change_is_decided_against_the_servers_current_state(
    status: str, change: ParticipantAnswer | StatusChange, action: str
) -> None:
    appointment = _json("fhir", "r4", "Appointment-example.json")
    appointment["status"] = status
    appointment["participant"][0]["status"] = "needs-action"
    decision = decide(appointment, change, "example")
    assert decision.action == action
    if action == "write":
        assert decision.resource is not None
        FhirAppointment.model_validate(decision.resource)
        if change == StatusChange("cancelled"):
            assert decision.resource["cancelationReason"]["coding"][0]["code"] == "pat"


def test_an_answer_for_a_patient_no_longer_on_the_appointment_is_superseded() -> None:
    appointment = _json("fhir", "r4", "Appointment-example.json")
    assert decide(appointment, ParticipantAnswer("accepted"), "someone-else").action == (
        "superseded"
    )


def test_a_communication_is_valid_fhir() -> None:
    resource = communication(
        identifier="default-message-7",
        appointment_id="a1",
        patient_id="p1",
        channel="sms",
        text="Reminder: your session is tomorrow at 3 pm.",
        sent=NOW,
    )
    model = FhirCommunication.model_validate(resource)
    assert model.status == "completed"
    assert resource["basedOn"] == [{"reference": "Appointment/a1"}]


def test_changes_round_trip_through_the_queue_format() -> None:
    for change in (ParticipantAnswer("declined"), StatusChange("noshow"), CommunicationSent(7)):
        assert change_from_dict(change_as_dict(change)) == change
    with pytest.raises(ValueError):
        change_from_dict({"kind": "status", "status": "booked"})
