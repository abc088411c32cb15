"""FHIR R4 JSON import, parsing only: the official R4 examples and hand-made Bundles become rows.

Phone numbers are read in the practice's region only. The official examples are Australian
(Patient-example) and Dutch (Patient-f001) numbers written without a country code, so in a US
practice those Patients are rejected with the JSON path of the telecom entry. We never guess
another region: "(03) 3410 5613" is a valid number in Australia *and* in the Netherlands, and a
reminder sent to the wrong one is a privacy breach. Given with "+61 3 …", it imports anywhere.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from conftest import shared_file
from frontdesk.adapters.importers.base import ImportRow
from frontdesk.adapters.importers.fhir_json import read_fhir
from frontdesk.domain.appointments import AppointmentStatus
from frontdesk.domain.errors import FieldError, ValidationFailed
from frontdesk.domain.intake import AppointmentIn, PatientIn

US = {"default_region": "US", "default_timezone": "America/New_York"}
# Words of the examples' clinical content (description, comment, reason, narrative, service
# type, specialty) that must never reach a record or a stored raw text.
CLINICAL = [
    "Discussion on the results of your recent MRI",
    "MRI",
    "Severe burn",
    "Clinical Review",
    "General Discussion",
    "General practice",
    "Brian",
    "Erewhon",
]


def example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(shared_file("fhir", "r4", name).read_text("utf-8"))
    return data


def write(tmp_path: Path, document: Any, name: str = "file.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def bundle(*resources: dict[str, Any], kind: str = "collection") -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": kind,
        "entry": [{"resource": r} for r in resources],
    }


def rows_of(path: Path, context: dict[str, Any] | None = None) -> list[ImportRow]:
    return list(read_fhir(path, source="fhir", context=context or US))


def one(path: Path, context: dict[str, Any] | None = None) -> ImportRow:
    rows = rows_of(path, context)
    assert len(rows) == 1
    return rows[0]


def appointment(row: ImportRow) -> AppointmentIn:
    assert row.ok, row.errors
    assert isinstance(row.record, AppointmentIn)
    return row.record


def patient(row: ImportRow) -> PatientIn:
    assert row.ok, row.errors
    assert isinstance(row.record, PatientIn)
    return row.record


def assert_no_clinical_content(row: ImportRow) -> None:
    stored = row.raw + (row.record.model_dump_json() if row.record else "")
    for words in CLINICAL:
        assert words not in stored


# --- the official R4 examples ------------------------------------------------------------------


def test_appointment_example() -> None:
    row = one(shared_file("fhir", "r4", "Appointment-example.json"))
    record = appointment(row)
    assert (row.kind, row.source, row.external_id) == ("appointment", "fhir", "example")
    assert row.reference == "$ (Appointment/example)"
    assert record.start == datetime(2013, 12, 10, 9, 0, tzinfo=UTC)
    assert record.end == datetime(2013, 12, 10, 11, 0, tzinfo=UTC)
    assert record.duration_minutes is None
    assert record.status is AppointmentStatus.BOOKED
    assert record.patient.external_id == "example"
    assert record.patient.source == "fhir"
    # The Patient is not in the file: the participant's display is all we know of them.
    assert record.patient.name == "Peter James Chalmers"
    assert record.patient.model_fields_set == {"external_id", "source", "name"}
    assert record.clinician is not None
    assert (record.clinician.name, record.clinician.external_id) == ("Dr Adam Careful", "example")
    assert record.location is not None
    assert record.location.name == "South Wing, second floor"
    assert record.confirmation is None  # "accepted" by the EHR is not the patient's answer
    assert_no_clinical_content(row)


def test_appointment_with_two_practitioners_takes_the_first() -> None:
    row = one(shared_file("fhir", "r4", "Appointment-2docs.json"))
    record = appointment(row)
    assert record.start == datetime(2013, 12, 9, 9, 0, tzinfo=UTC)
    assert record.end == datetime(2013, 12, 9, 11, 0, tzinfo=UTC)
    assert record.clinician is not None
    assert (record.clinician.name, record.clinician.external_id) == ("Dr Adam Careful", "example")
    # The "Phone Call" participant has no reference; no Location participant clears it.
    assert record.location is None
    assert "location" in record.model_fields_set
    assert_no_clinical_content(row)


def test_proposed_appointment_without_start_is_rejected() -> None:
    row = one(shared_file("fhir", "r4", "Appointment-examplereq.json"))
    assert not row.ok
    assert row.record is None
    assert (row.kind, row.external_id) == ("appointment", "examplereq")
    assert row.errors == [
        FieldError(
            "$.start",
            "appointment has no start time (proposed or waitlist appointments cannot be reminded)",
        )
    ]
    # The raw text kept for replay is what we read, not the clinical content.
    kept = json.loads(row.raw)
    assert set(kept) == {"resourceType", "id", "status", "minutesDuration", "participant"}
    assert_no_clinical_content(row)


def test_minutes_duration_without_end_becomes_duration(tmp_path: Path) -> None:
    resource = example("Appointment-examplereq.json")
    resource["start"] = "2026-03-02T15:00:00-05:00"
    record = appointment(one(write(tmp_path, resource)))
    assert record.start == datetime(2026, 3, 2, 20, 0, tzinfo=UTC)
    assert record.end is None
    assert record.duration_minutes == 15
    assert record.status is AppointmentStatus.PROPOSED
    # Its only Practitioner-like participant has no actor: no clinician, stored one cleared.
    assert record.clinician is None


def test_patient_example_in_a_us_practice_rejects_the_australian_phone() -> None:
    row = one(shared_file("fhir", "r4", "Patient-example.json"))
    assert (row.kind, row.external_id, row.reference) == (
        "patient",
        "example",
        "$ (Patient/example)",
    )
    # telecom[2] is the mobile number, preferred over the rank-1 work number for texting.
    assert row.errors == [
        FieldError("$.telecom[2].value", "not a valid phone number for its country")
    ]
    assert_no_clinical_content(row)
    assert "photo" not in json.loads(row.raw)


def test_patient_example_in_an_australian_practice() -> None:
    row = one(shared_file("fhir", "r4", "Patient-example.json"), {"default_region": "AU"})
    record = patient(row)
    assert record.name == "Peter James Chalmers"  # official, given names then family
    assert record.preferred_name == "Jim"  # the usual name when the official one is chosen
    assert record.date_of_birth == date(1974, 12, 25)
    assert record.phone == "+61334105613"
    assert record.email is None
    assert record.language is None
    assert "Windsor" not in record.model_dump_json()  # the maiden name is never the name


def test_same_national_digits_are_another_number_in_another_region() -> None:
    # Why the importer never tries other regions: this is a valid Dutch number too.
    row = one(shared_file("fhir", "r4", "Patient-example.json"), {"default_region": "NL"})
    assert patient(row).phone == "+31334105613"


def test_patient_f001_in_a_dutch_practice() -> None:
    row = one(shared_file("fhir", "r4", "Patient-f001.json"), {"default_region": "NL"})
    record = patient(row)
    assert record.name == "Pieter van de Heuvel"  # the suffix "MSc" is not part of it
    assert record.preferred_name is None
    assert record.date_of_birth == date(1944, 11, 17)
    assert record.phone == "+31648352638"
    assert record.email == "p.heuvel@gmail.com"
    assert record.language == "nl"
    # Nothing else: no address, no marital status, no emergency contact.
    assert "Amsterdam" not in row.raw
    assert "Abels" not in row.raw
    assert "Getrouwd" not in row.raw


def test_patient_f001_in_a_us_practice_is_rejected_at_its_phone() -> None:
    row = one(shared_file("fhir", "r4", "Patient-f001.json"))
    assert row.errors == [
        FieldError("$.telecom[0].value", "not a valid phone number for its country")
    ]


def test_patient_pat1_and_glossy() -> None:
    pat1 = patient(one(shared_file("fhir", "r4", "Patient-pat1.json")))
    # The example really does spell given "Duck", family "Donald".
    assert pat1.name == "Duck Donald"
    assert (pat1.date_of_birth, pat1.phone, pat1.email) == (None, None, None)
    glossy = patient(one(shared_file("fhir", "r4", "Patient-glossy.json")))
    assert glossy.name == "Henry Levin"  # name without use; suffix "The 7th" left out
    assert glossy.date_of_birth == date(1932, 9, 24)
    # A FHIR Patient is the whole picture: what it lacks is sent as empty, to clear it.
    assert {"phone", "email", "language", "preferred_name"} <= glossy.model_fields_set


# --- Bundles -----------------------------------------------------------------------------------


def test_bundle_yields_patients_first_and_skips_other_types(tmp_path: Path) -> None:
    document = bundle(
        example("Appointment-example.json"),
        example("Practitioner-example.json"),
        example("Patient-glossy.json"),
        example("Location-1.json"),
        example("Patient-pat1.json"),
        kind="searchset",
    )
    rows = rows_of(write(tmp_path, document))
    assert [r.reference for r in rows] == [
        "entry[2].resource (Patient/glossy)",
        "entry[4].resource (Patient/pat1)",
        "entry[0].resource (Appointment/example)",
    ]
    assert [r.kind for r in rows] == ["patient", "patient", "appointment"]


def test_patient_in_the_file_keeps_its_own_name(tmp_path: Path) -> None:
    visit = example("Appointment-example.json")
    visit["participant"][0]["actor"]["reference"] = "Patient/glossy"
    rows = rows_of(write(tmp_path, bundle(visit, example("Patient-glossy.json"))))
    record = appointment(rows[1])
    assert record.patient.external_id == "glossy"
    # "Peter James Chalmers" (the display) must not overwrite the Patient's own name.
    assert record.patient.model_fields_set == {"external_id", "source"}


def test_patient_rejected_in_the_file_falls_back_to_the_display(tmp_path: Path) -> None:
    document = bundle(example("Appointment-example.json"), example("Patient-example.json"))
    patient_row, appointment_row = rows_of(write(tmp_path, document))
    assert not patient_row.ok
    assert patient_row.errors[0].loc == "entry[1].resource.telecom[2].value"
    assert appointment(appointment_row).patient.name == "Peter James Chalmers"


def test_resource_that_fhir_refuses_is_rejected_and_the_rest_import(tmp_path: Path) -> None:
    broken = copy.deepcopy(example("Patient-glossy.json"))
    broken["id"] = "broken"
    broken["birthDate"] = "1932-13-45"
    broken["telecom"] = [{"system": "phone", "value": 5551234}]
    late = example("Appointment-2docs.json")
    late["start"] = "2013-12-09 09:00"
    visit = example("Appointment-example.json")
    document = bundle(example("Patient-pat1.json"), broken, late, visit)
    rows = rows_of(write(tmp_path, document))
    by_ref = {r.reference: r for r in rows}
    assert by_ref["entry[0].resource (Patient/pat1)"].ok
    assert by_ref["entry[3].resource (Appointment/example)"].ok
    refused = by_ref["entry[1].resource (Patient/broken)"]
    assert refused.record is None
    assert refused.errors == [
        FieldError("entry[1].resource.birthDate", "Date value string does not match spec regex."),
        FieldError("entry[1].resource.telecom[0].value", "Input should be a valid string"),
    ]
    assert json.loads(refused.raw)["birthDate"] == "1932-13-45"
    assert by_ref["entry[2].resource (Appointment/2docs)"].errors == [
        FieldError("entry[2].resource.start", "Instant value string does not match spec regex.")
    ]


def test_our_validation_errors_point_at_the_fhir_element(tmp_path: Path) -> None:
    # fhir.resources accepts any code here; our status list does not.
    visit = example("Appointment-example.json")
    visit["status"] = "postponed"
    visit["participant"][2]["actor"]["display"] = "x" * 201
    document = bundle(example("Patient-pat1.json"), visit)
    row = rows_of(write(tmp_path, document))[1]
    assert [e.loc for e in row.errors] == [
        "entry[1].resource.status",
        "entry[1].resource.participant[2].actor",
    ]
    assert row.errors[0].message.startswith("Input should be 'proposed', 'pending', 'booked'")


def test_end_before_start_is_located_at_the_resource(tmp_path: Path) -> None:
    visit = example("Appointment-example.json")
    visit["end"] = "2013-12-10T08:00:00Z"
    row = one(write(tmp_path, bundle(visit)))
    assert row.errors == [FieldError("entry[0].resource.end", "end must be after start")]


def test_appointment_without_patient_or_start(tmp_path: Path) -> None:
    visit = example("Appointment-example.json")
    del visit["start"], visit["end"]
    visit["participant"] = visit["participant"][1:]
    row = one(write(tmp_path, visit))
    assert row.errors == [
        FieldError(
            "$.start",
            "appointment has no start time (proposed or waitlist appointments cannot be reminded)",
        ),
        FieldError("$.participant", "appointment has no Patient participant"),
    ]


def test_group_appointment_is_rejected(tmp_path: Path) -> None:
    visit = example("Appointment-example.json")
    visit["participant"].append(
        {"actor": {"reference": "Patient/pat1"}, "required": "required", "status": "accepted"}
    )
    row = one(write(tmp_path, visit))
    assert [e.message for e in row.errors] == [
        "appointment has more than one Patient participant (group sessions are not supported)"
    ]


def test_transaction_references_resolve_through_full_urls(tmp_path: Path) -> None:
    person = example("Patient-glossy.json")
    nameless = {"resourceType": "Patient", "name": [{"family": "Nobody"}]}
    person_url = "urn:uuid:9d1f3a52-0000-4000-8000-000000000001"
    nameless_url = "urn:uuid:9d1f3a52-0000-4000-8000-000000000002"
    visit = example("Appointment-example.json")
    visit["participant"][0]["actor"] = {"reference": person_url}
    other = example("Appointment-2docs.json")
    other["participant"][0]["actor"] = {"reference": nameless_url}
    document = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": person_url,
                "resource": person,
                "request": {"method": "PUT", "url": "Patient/glossy"},
            },
            {
                "fullUrl": nameless_url,
                "resource": nameless,
                "request": {"method": "POST", "url": "Patient"},
            },
            {"resource": visit, "request": {"method": "PUT", "url": "Appointment/example"}},
            {"resource": other, "request": {"method": "PUT", "url": "Appointment/2docs"}},
            {"request": {"method": "DELETE", "url": "Appointment/old"}},
        ],
    }
    rows = rows_of(write(tmp_path, document))
    assert [r.ok for r in rows] == [True, False, True, False]
    assert rows[1].errors == [
        FieldError("entry[1].resource.id", "a Patient needs an id: patients are kept by it")
    ]
    assert rows[1].reference == "entry[1].resource (Patient)"
    assert appointment(rows[2]).patient.external_id == "glossy"
    assert rows[3].errors == [
        FieldError(
            "entry[3].resource.participant[0].actor.reference", "refers to a Patient without an id"
        )
    ]


def test_absolute_versioned_reference(tmp_path: Path) -> None:
    visit = example("Appointment-example.json")
    visit["participant"][0]["actor"]["reference"] = (
        "https://ehr.example.org/fhir/Patient/pat1/_history/3"
    )
    assert appointment(one(write(tmp_path, visit))).patient.external_id == "pat1"


def test_location_without_display_is_named_by_its_id(tmp_path: Path) -> None:
    visit = example("Appointment-example.json")
    del visit["participant"][2]["actor"]["display"]
    del visit["participant"][1]["actor"]["display"]
    record = appointment(one(write(tmp_path, visit)))
    assert record.location is not None
    assert record.location.name == "1"
    # A practitioner without a name is not invented: the stored clinician is left alone.
    assert "clinician" not in record.model_fields_set


# --- Patient details ---------------------------------------------------------------------------


def test_phone_email_and_language_choice(tmp_path: Path) -> None:
    person = {
        "resourceType": "Patient",
        "id": "p1",
        "name": [
            {"use": "nickname", "given": ["Sunny"]},
            {"use": "old", "given": ["Former"], "family": "Name"},
            {"use": "usual", "given": ["Alex"], "family": "Rivera"},
        ],
        "telecom": [
            {"system": "phone", "value": "(212) 555-0100", "use": "old"},
            {"system": "phone", "value": "+1 415 555 2671", "use": "work", "rank": 1},
            {"system": "email", "value": "old@example.org", "use": "old"},
            {"system": "email", "value": "alex@example.org", "rank": 2},
            {"system": "email", "value": "first@example.org", "rank": 1},
            {"system": "phone", "value": "+1 (415) 555-2672", "use": "mobile", "rank": 3},
        ],
        "birthDate": "1990",
        "communication": [
            {"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "en"}]}},
            {
                "language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "es-mx"}]},
                "preferred": True,
            },
        ],
        "address": [{"line": ["1 Main St"], "city": "Springfield", "country": "US"}],
    }
    row = one(write(tmp_path, person))
    record = patient(row)
    assert record.name == "Alex Rivera"
    assert record.preferred_name == "Sunny"
    assert record.phone == "+14155552672"
    assert record.email == "first@example.org"
    assert record.language == "es-MX"
    # A year alone is a valid FHIR birth date but not a date: the stored one is left alone.
    assert "date_of_birth" not in record.model_fields_set
    assert "Springfield" not in row.raw


def test_bad_email_and_language_are_located(tmp_path: Path) -> None:
    person = {
        "resourceType": "Patient",
        "id": "p2",
        "telecom": [{"system": "email", "value": "not an address"}],
        "communication": [{"language": {"coding": [{"code": "!!"}]}}],
    }
    row = one(write(tmp_path, person))
    assert [e.loc for e in row.errors] == [
        "$.telecom[0].value",
        "$.communication[0].language.coding[0].code",
    ]


def test_unknown_contained_resource_is_a_rejected_row(tmp_path: Path) -> None:
    person = example("Patient-glossy.json")
    person["contained"] = [{"resourceType": "NoSuchThing", "id": "x"}]
    row = one(write(tmp_path, bundle(person)))
    assert row.errors == [
        FieldError("entry[0].resource.contained", "unknown resource type 'R4.NoSuchThingType'")
    ]


def test_empty_bundle_has_no_rows(tmp_path: Path) -> None:
    assert rows_of(write(tmp_path, {"resourceType": "Bundle", "type": "searchset"})) == []


# --- files we cannot read ----------------------------------------------------------------------


def failure(path: Path, source: str = "fhir") -> ValidationFailed:
    with pytest.raises(ValidationFailed) as caught:
        list(read_fhir(path, source=source, context=US))
    return caught.value


def test_malformed_json(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"resourceType": "Bundle",\n  "entry": [}\n', encoding="utf-8")
    assert failure(path).errors == [
        FieldError(str(path), "malformed JSON: Expecting value at line 2 column 13")
    ]


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes('{"resourceType": "Patient", "id": "é"}'.encode("latin-1"))
    assert failure(path).errors == [FieldError(str(path), "the file is not UTF-8 text")]


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.json"
    assert failure(path).errors == [FieldError(str(path), "No such file or directory")]


@pytest.mark.parametrize("document", [{"id": "x", "status": "booked"}, [1, 2], "Patient"])
def test_json_that_is_not_a_resource(tmp_path: Path, document: Any) -> None:
    exc = failure(write(tmp_path, document))
    assert [e.loc for e in exc.errors] == ["$.resourceType"]
    assert "is not a FHIR resource" in exc.message


def test_single_resource_of_another_type(tmp_path: Path) -> None:
    exc = failure(write(tmp_path, example("Practitioner-example.json")))
    assert exc.errors == [
        FieldError("$.resourceType", "expected a Bundle, Appointment or Patient, got Practitioner")
    ]


def test_bundle_envelope_is_validated(tmp_path: Path) -> None:
    document = bundle(example("Patient-pat1.json"))
    del document["type"]
    exc = failure(write(tmp_path, document))
    assert exc.errors == [FieldError("type", "Value for the field 'type' is required.")]


def test_entry_without_resource_type(tmp_path: Path) -> None:
    document = bundle(example("Patient-pat1.json"), {"id": "mystery"})
    exc = failure(write(tmp_path, document))
    assert exc.errors == [
        FieldError("entry[1].resource", "is not a FHIR resource (no resourceType)")
    ]


def test_source_is_checked(tmp_path: Path) -> None:
    path = write(tmp_path, example("Patient-pat1.json"))
    assert [e.loc for e in failure(path, source="My EHR").errors] == ["source"]
    assert one_with_source(path, " EHR-1 ").source == "ehr-1"


def one_with_source(path: Path, source: str) -> ImportRow:
    (row,) = read_fhir(path, source=source, context=US)
    return row
