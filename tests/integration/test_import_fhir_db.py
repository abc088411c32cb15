"""FHIR import through the real service, on SQLite and (when configured) PostgreSQL.

The official R4 examples in a US practice: Patient-example (Australian phone) and Patient-f001
(Dutch phone) are written without a country code, so they are rejected at their telecom entry;
their appointments still land with the participant's display name (see test_import_fhir.py for
why no other region is tried).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from conftest import everything_stored, shared_file
from frontdesk.adapters.db.models import Appointment, IntakeRejection, Patient
from frontdesk.adapters.importers.fhir_json import read_fhir
from frontdesk.bootstrap import Runtime
from frontdesk.domain.channels import Channel
from frontdesk.services.imports import ImportSummary, run_import
from frontdesk.services.patients import contact_of, effective_channel

US = {"default_region": "US", "default_timezone": "America/New_York"}
EXAMPLES = [
    "Appointment-example.json",
    "Appointment-2docs.json",
    "Appointment-examplereq.json",
    "Patient-example.json",
    "Patient-f001.json",
    "Patient-pat1.json",
    "Patient-glossy.json",
]
DESCRIPTION = "Discussion on the results of your recent MRI"


def example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(shared_file("fhir", "r4", name).read_text("utf-8"))
    return data


def write_bundle(tmp_path: Path, *resources: dict[str, Any]) -> Path:
    path = tmp_path / "bundle.json"
    document = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in resources],
    }
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def import_file(
    runtime: Runtime, path: Path, context: dict[str, Any] | None = None
) -> ImportSummary:
    rows = read_fhir(path, source="fhir", context=context or US)
    return run_import(runtime, rows, practice_slug="default", channel="import.fhir", actor="test")


def counts(summary: ImportSummary) -> tuple[int, int, int, int]:
    return summary.created, summary.updated, summary.unchanged, summary.rejected


def stored_appointment(runtime: Runtime, external_id: str) -> dict[str, Any]:
    with runtime.transaction() as session:
        found = session.scalars(
            select(Appointment).where(
                Appointment.source == "fhir", Appointment.external_id == external_id
            )
        ).one()
        return {
            "start": found.start_at,
            "end": found.end_at,
            "status": found.status,
            "confirmation": found.confirmation,
            "patient": (found.patient.source, found.patient.external_id, found.patient.name),
            "clinician": found.clinician.name if found.clinician else None,
            "location": found.location.name if found.location else None,
        }


def stored_patient(runtime: Runtime, external_id: str) -> tuple[Patient, Any]:
    with runtime.transaction() as session:
        found = session.scalars(
            select(Patient).where(Patient.source == "fhir", Patient.external_id == external_id)
        ).one()
        session.expunge(found)
    return found, contact_of(found, runtime.cipher)


def test_official_examples_land_and_reimport_unchanged(runtime: Runtime, tmp_path: Path) -> None:
    path = write_bundle(tmp_path, *(example(name) for name in EXAMPLES))

    first = import_file(runtime, path)
    # Created: Patients pat1 and glossy, Appointments example and 2docs. Rejected: the two
    # Patients with foreign national phone numbers and the proposed appointment without start.
    assert counts(first) == (4, 0, 0, 3)
    assert sorted(r["reference"] for r in first.rejections) == [
        "entry[2].resource (Appointment/examplereq)",
        "entry[3].resource (Patient/example)",
        "entry[4].resource (Patient/f001)",
    ]

    assert stored_appointment(runtime, "example") == {
        "start": datetime(2013, 12, 10, 9, 0, tzinfo=UTC),
        "end": datetime(2013, 12, 10, 11, 0, tzinfo=UTC),
        "status": "booked",
        "confirmation": "unconfirmed",
        "patient": ("fhir", "example", "Peter James Chalmers"),
        "clinician": "Dr Adam Careful",
        "location": "South Wing, second floor",
    }
    assert stored_appointment(runtime, "2docs") == {
        "start": datetime(2013, 12, 9, 9, 0, tzinfo=UTC),
        "end": datetime(2013, 12, 9, 11, 0, tzinfo=UTC),
        "status": "booked",
        "confirmation": "unconfirmed",
        "patient": ("fhir", "example", "Peter James Chalmers"),
        "clinician": "Dr Adam Careful",
        "location": None,
    }
    # The Patient resource was rejected, so the patient holds only the display name.
    peter, contact = stored_patient(runtime, "example")
    assert (contact.phone, contact.email, contact.date_of_birth) == (None, None, None)
    assert peter.preferred_channel is None
    glossy, contact = stored_patient(runtime, "glossy")
    assert glossy.name == "Henry Levin"
    assert glossy.language == "en"
    assert contact.date_of_birth == date(1932, 9, 24)

    with runtime.transaction() as session:
        rejections = {
            r.reference: r
            for r in session.scalars(
                select(IntakeRejection).where(IntakeRejection.channel == "import.fhir")
            )
        }
        assert rejections["entry[3].resource (Patient/example)"].errors == {
            "errors": [
                {
                    "loc": "entry[3].resource.telecom[2].value",
                    "message": "not a valid phone number for its country",
                }
            ]
        }
        sealed = rejections["entry[4].resource (Patient/f001)"].raw_sealed
        assert json.loads(runtime.cipher.open(sealed) or "")["id"] == "f001"

    stored = everything_stored(runtime)
    for clinical in (DESCRIPTION, "MRI", "Severe burn", "Clinical Review", "Erewhon", "Getrouwd"):
        assert clinical not in stored

    again = import_file(runtime, path)
    assert counts(again) == (0, 0, 4, 3)
    with runtime.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Appointment)) == 2
        assert session.scalar(select(func.count()).select_from(Patient)) == 3


def test_dutch_practice_imports_f001_with_sealed_contact(runtime: Runtime) -> None:
    path = shared_file("fhir", "r4", "Patient-f001.json")
    nl = {"default_region": "NL", "default_timezone": "Europe/Amsterdam"}

    assert counts(import_file(runtime, path, nl)) == (1, 0, 0, 0)
    patient, contact = stored_patient(runtime, "f001")
    assert patient.name == "Pieter van de Heuvel"
    assert patient.language == "nl"
    assert patient.preferred_channel is None  # FHIR carries no choice of channel
    assert effective_channel(patient) == Channel.SMS  # so the phone number decides
    assert contact.phone == "+31648352638"
    assert contact.email == "p.heuvel@gmail.com"
    assert contact.date_of_birth == date(1944, 11, 17)
    stored = everything_stored(runtime)
    for plain in ("648352638", "p.heuvel", "1944-11-17", "Amsterdam", "Abels"):
        assert plain not in stored

    assert counts(import_file(runtime, path, nl)) == (0, 0, 1, 0)


def test_patient_resource_is_a_whole_picture(runtime: Runtime, tmp_path: Path) -> None:
    nl = {"default_region": "NL", "default_timezone": "Europe/Amsterdam"}
    person = example("Patient-f001.json")
    import_file(runtime, write_bundle(tmp_path, person), nl)

    person["telecom"] = [t for t in person["telecom"] if t["system"] != "email"]
    assert counts(import_file(runtime, write_bundle(tmp_path, person), nl)) == (0, 1, 0, 0)
    _, contact = stored_patient(runtime, "f001")
    assert (contact.phone, contact.email) == ("+31648352638", None)


def test_bundle_with_bad_resources_lands_the_others(runtime: Runtime, tmp_path: Path) -> None:
    broken_patient = example("Patient-pat1.json")
    broken_patient["id"] = "broken"
    broken_patient["birthDate"] = "1974-13-45"
    visit = example("Appointment-example.json")
    visit["participant"][0]["actor"]["reference"] = "Patient/glossy"
    broken_visit = example("Appointment-example.json")
    broken_visit["id"] = "broken-visit"
    broken_visit["status"] = "postponed"
    path = write_bundle(
        tmp_path, example("Patient-glossy.json"), broken_patient, visit, broken_visit
    )

    summary = import_file(runtime, path)
    assert counts(summary) == (2, 0, 0, 2)
    assert [(r["reference"], [e["loc"] for e in r["errors"]]) for r in summary.rejections] == [
        ("entry[1].resource (Patient/broken)", ["entry[1].resource.birthDate"]),
        ("entry[3].resource (Appointment/broken-visit)", ["entry[3].resource.status"]),
    ]
    landed = stored_appointment(runtime, "example")
    # The Patient of the file names the patient, not the participant's display.
    assert landed["patient"] == ("fhir", "glossy", "Henry Levin")
    assert landed["start"] == datetime(2013, 12, 10, 9, 0, tzinfo=UTC)
    with runtime.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Patient)) == 1
        raws = [
            runtime.cipher.open(sealed) or ""
            for sealed in session.scalars(select(IntakeRejection.raw_sealed))
        ]
    assert len(raws) == 2
    # The rejected appointment is kept for replay without its clinical content.
    assert DESCRIPTION not in everything_stored(runtime)
    assert any('"postponed"' in raw for raw in raws)
