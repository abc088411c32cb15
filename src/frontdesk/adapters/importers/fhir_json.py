"""FHIR R4 JSON: a Bundle (of any type) or a single Appointment or Patient, as import rows.

Resources are validated with ``fhir.resources``. Its 8.x top level is R5, and it ships R4B (4.3)
but not R4 (4.0.1). R4B's Patient and Appointment have exactly R4's elements and the official R4
examples validate against them unchanged (tests/unit/test_import_fhir.py), so R4B is what we use.

We read the minimum a reminder needs: who (name, birth date, one phone, one email, language)
and when (status, start, end, clinician, location). Clinical content — description, comment,
reasons, service type, specialty, the narrative ``text`` — is never copied into a record; nor
into a rejected row's raw text, which is stored for replay and so keeps only what we read.

A FHIR resource is a whole picture, not a patch: an element the resource leaves out (a phone, a
location) clears what we stored from it earlier.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fhir.resources.R4B.appointment import Appointment as FhirAppointment
from fhir.resources.R4B.bundle import Bundle as FhirBundle
from fhir.resources.R4B.patient import Patient as FhirPatient
from pydantic import ValidationError

from frontdesk.adapters.importers.base import ImportRow, build_row, rejected
from frontdesk.domain.errors import FieldError, ValidationFailed

_MODELS: dict[str, Any] = {"Patient": FhirPatient, "Appointment": FhirAppointment}
# The elements a rejected row keeps: enough to see and fix what we read, and still a resource
# this importer can replay.
_KEPT: dict[str, tuple[str, ...]] = {
    "Patient": ("resourceType", "id", "name", "telecom", "birthDate", "communication"),
    "Appointment": (
        "resourceType",
        "id",
        "status",
        "start",
        "end",
        "minutesDuration",
        "participant",
    ),
}
_SOURCE = re.compile(r"^[a-z0-9_.-]{1,40}$")
# "Patient/123", "https://ehr.example/fhir/Patient/123/_history/4": type and id of the target.
_REFERENCE = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9.-]{1,64})(?:/_history/[^/]+)?$")
# Which HumanName is the patient's name; old, maiden, anonymous and nickname names never are.
_NAME_RANK = {"official": 0, "usual": 1, None: 2, "temp": 3}
_UNRANKED = 1_000_000

Target = tuple[str, str | None]
"""What a reference points at: resource type and id (None when the target has no id)."""


@dataclass(frozen=True)
class _Resource:
    path: str  # "entry[3].resource", or "$" when the file is the resource
    type: str
    data: dict[str, Any]

    @property
    def id(self) -> str:
        value = self.data.get("id")
        return value if isinstance(value, str) else ""

    @property
    def reference(self) -> str:
        return f"{self.path} ({self.type}/{self.id})" if self.id else f"{self.path} ({self.type})"

    @property
    def raw(self) -> str:
        kept = {k: self.data[k] for k in _KEPT[self.type] if k in self.data}
        return json.dumps(kept, ensure_ascii=False)

    def at(self, relative: str) -> str:
        return _join(self.path, relative)


def read_fhir(path: Path, *, source: str, context: dict[str, Any]) -> Iterator[ImportRow]:
    """Rows for the Patients of ``path``, then its Appointments.

    A file that is not JSON, not a FHIR resource, or a Bundle whose envelope is broken raises
    ``ValidationFailed`` before any row; a Patient or Appointment that is not valid becomes a
    rejected row and the others still import. Other resource types in a Bundle are skipped.
    """
    yield from read_fhir_document(_load(path), name=path.name, source=source, context=context)


def read_fhir_document(
    document: dict[str, Any], *, name: str, source: str, context: dict[str, Any]
) -> Iterator[ImportRow]:
    """``read_fhir`` for a resource already parsed (a FHIR server's search Bundle): ``name``
    names it in error messages."""
    source = _checked_source(source)
    resources, targets = _resources(document, name)
    usable_patients: set[str] = set()
    for resource in resources:
        if resource.type == "Patient":
            row = _patient_row(resource, source, context)
            if row.ok:
                usable_patients.add(row.external_id)
            yield row
    for resource in resources:
        if resource.type == "Appointment":
            yield _appointment_row(resource, source, context, usable_patients, targets)


# --- the file ----------------------------------------------------------------------------------


def _checked_source(source: str) -> str:
    # Patient rows carry the source as their key unvalidated, so a bad one is refused up front
    # rather than stored on patients while every appointment is rejected for it.
    cleaned = source.strip().lower()
    if not _SOURCE.match(cleaned):
        raise ValidationFailed(
            [FieldError("source", "use 1-40 lower-case letters, digits, '.', '_' or '-'")]
        )
    return cleaned


def _load(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValidationFailed([FieldError(str(path), exc.strerror or str(exc))]) from exc
    try:
        document = json.loads(data)
    except UnicodeDecodeError as exc:
        raise ValidationFailed(
            [FieldError(str(path), "the file is not UTF-8 text")],
            message=f"{path.name} is not a JSON file.",
        ) from exc
    except json.JSONDecodeError as exc:
        raise ValidationFailed(
            [
                FieldError(
                    str(path), f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
                )
            ],
            message=f"{path.name} is not valid JSON.",
        ) from exc
    if not isinstance(document, dict) or not isinstance(document.get("resourceType"), str):
        raise ValidationFailed(
            [
                FieldError(
                    "$.resourceType",
                    "missing: a FHIR file is a JSON object with a resourceType "
                    "(a Bundle, Appointment or Patient)",
                )
            ],
            message=f"{path.name} is not a FHIR resource.",
        )
    return document


def _resources(document: dict[str, Any], name: str) -> tuple[list[_Resource], dict[str, Target]]:
    """The Patients and Appointments of the file, and what each Bundle ``fullUrl`` names."""
    kind = document["resourceType"]
    if kind in _MODELS:
        return [_Resource("$", kind, document)], {}
    if kind != "Bundle":
        raise ValidationFailed(
            [
                FieldError(
                    "$.resourceType", f"expected a Bundle, Appointment or Patient, got {kind}"
                )
            ],
            message=f"{name} holds no appointments or patients.",
        )
    entries = document.get("entry")
    # The envelope is validated without its resources: one bad resource must not sink the
    # file, and fhir.resources fails with a KeyError on a resource type it does not know.
    envelope = dict(document)
    if isinstance(entries, list):
        envelope["entry"] = [
            {k: v for k, v in e.items() if k != "resource"} if isinstance(e, dict) else e
            for e in entries
        ]
    _, problems = _validate(FhirBundle, envelope, "")
    if problems:
        raise ValidationFailed(problems, message=f"{name}: the Bundle is not valid FHIR.")
    resources: list[_Resource] = []
    targets: dict[str, Target] = {}
    for index, entry in enumerate(entries or []):
        resource = entry.get("resource")
        at = f"entry[{index}].resource"
        if resource is None:
            continue  # e.g. a transaction's DELETE
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            problems.append(FieldError(at, "is not a FHIR resource (no resourceType)"))
            continue
        found = _Resource(at, resource["resourceType"], resource)
        if isinstance(entry.get("fullUrl"), str):
            targets[entry["fullUrl"]] = (found.type, found.id or None)
        if found.type in _MODELS:
            resources.append(found)
    if problems:
        raise ValidationFailed(problems, message=f"{name}: the Bundle is not valid FHIR.")
    return resources, targets


def _validate(model: Any, data: dict[str, Any], base: str) -> tuple[Any, list[FieldError]]:
    """The fhir.resources model of ``data``, or its problems located under ``base``."""
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        errors = []
        for err in exc.errors(include_url=False):
            relative = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"])
            message = " ".join(err["msg"].removeprefix("Value error, ").split())
            errors.append(FieldError(_join(base, relative.lstrip(".")), message))
        return None, errors
    except KeyError as exc:  # a contained resource of a type fhir.resources does not know
        return None, [FieldError(_join(base, "contained"), f"unknown resource type {exc}")]


def _join(base: str, relative: str) -> str:
    if not relative:
        return base or "$"
    if not base:
        return relative
    return f"{base}{relative}" if relative.startswith("[") else f"{base}.{relative}"


def _located(row: ImportRow, resource: _Resource, origin: dict[str, str]) -> ImportRow:
    """Point each field error of our record at the FHIR element its value came from."""
    located = []
    for error in row.errors:
        loc = error.loc
        field_loc = "" if loc == resource.path else loc.removeprefix(resource.path + ".")
        best = max(
            (k for k in origin if field_loc == k or field_loc.startswith(k + ".")),
            key=len,
            default=None,
        )
        located.append(
            FieldError(resource.at(origin[best]) if best is not None else loc, error.message)
        )
    row.errors = located
    return row


def _pick(items: list[Any], rank: Callable[[Any], tuple[int, ...] | None]) -> int | None:
    """Index of the best-ranked item (lowest rank, then first in the file); None if none fits."""
    ranked = [(r, i) for i, item in enumerate(items) if (r := rank(item)) is not None]
    return min(ranked)[1] if ranked else None


# --- Patient -----------------------------------------------------------------------------------


def _patient_row(resource: _Resource, source: str, context: dict[str, Any]) -> ImportRow:
    model, problems = _validate(FhirPatient, resource.data, resource.path)
    if not problems and not resource.id:
        problems = [FieldError(resource.at("id"), "a Patient needs an id: patients are kept by it")]
    if problems:
        return rejected(resource.reference, resource.raw, "patient", source, resource.id, *problems)
    payload, origin = _patient_payload(model)
    row = build_row(
        reference=resource.reference,
        raw=resource.raw,
        kind="patient",
        source=source,
        external_id=resource.id,
        payload=payload,
        context=context,
        loc_prefix=resource.path,
    )
    return _located(row, resource, origin)


def _patient_payload(patient: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """PatientIn fields, and the FHIR element (relative path) each came from."""
    payload: dict[str, Any] = {}
    origin: dict[str, str] = {"date_of_birth": "birthDate"}

    names: list[Any] = list(patient.name or [])
    chosen = _pick(names, _name_rank)
    payload["name"] = _full_name(names[chosen]) if chosen is not None else None
    origin["name"] = f"name[{chosen}]"
    preferred = _pick(names, lambda n: (0,) if n.use == "nickname" else None)
    if preferred is None and chosen is not None and names[chosen].use == "official":
        # The official name may be a legal name the patient does not go by (a deadname, a
        # formal first name): their usual name is how they want to be addressed.
        preferred = _pick(names, lambda n: (0,) if n.use == "usual" else None)
    preferred_name = _full_name(names[preferred]) if preferred is not None else None
    payload["preferred_name"] = preferred_name if preferred_name != payload["name"] else None
    origin["preferred_name"] = f"name[{preferred}]"

    telecom: list[Any] = list(patient.telecom or [])
    phone = _pick(telecom, _phone_rank)
    payload["phone"] = telecom[phone].value if phone is not None else None
    origin["phone"] = f"telecom[{phone}].value"
    email = _pick(telecom, _email_rank)
    payload["email"] = telecom[email].value if email is not None else None
    origin["email"] = f"telecom[{email}].value"

    birth = patient.birthDate
    if birth is None or not isinstance(birth, str):
        payload["date_of_birth"] = birth
    # else a partial date ("1974", "1974-12"): valid FHIR, but not a date we can store

    languages: list[Any] = list(patient.communication or [])
    spoken = _pick(languages, lambda c: (0 if c.preferred else 1,))
    code = None
    if spoken is not None and languages[spoken].language.coding:
        code = languages[spoken].language.coding[0].code
    payload["language"] = code
    origin["language"] = f"communication[{spoken}].language.coding[0].code"
    return payload, origin


def _name_rank(name: Any) -> tuple[int, ...] | None:
    if name.use not in _NAME_RANK or not _full_name(name):
        return None
    return (_NAME_RANK[name.use],)


def _full_name(name: Any) -> str | None:
    parts = [*(name.given or []), *([name.family] if name.family else [])]
    text = " ".join(p.strip() for p in parts if p and p.strip()) or (name.text or "").strip()
    return text or None


def _phone_rank(point: Any) -> tuple[int, ...] | None:
    if point.system not in ("phone", "sms") or not point.value or point.use == "old":
        return None
    textable = point.system == "sms" or point.use == "mobile"
    return (0 if textable else 1, point.rank or _UNRANKED)


def _email_rank(point: Any) -> tuple[int, ...] | None:
    if point.system != "email" or not point.value or point.use == "old":
        return None
    return (point.rank or _UNRANKED,)


# --- Appointment -------------------------------------------------------------------------------


def _appointment_row(
    resource: _Resource,
    source: str,
    context: dict[str, Any],
    usable_patients: set[str],
    targets: dict[str, Target],
) -> ImportRow:
    model, problems = _validate(FhirAppointment, resource.data, resource.path)
    if model is not None:
        problems = _appointment_problems(resource, model, targets)
    if problems:
        return rejected(
            resource.reference, resource.raw, "appointment", source, resource.id, *problems
        )
    payload, origin = _appointment_payload(model, source, usable_patients, targets)
    row = build_row(
        reference=resource.reference,
        raw=resource.raw,
        kind="appointment",
        source=source,
        external_id=resource.id,
        payload=payload,
        context=context,
        loc_prefix=resource.path,
    )
    return _located(row, resource, origin)


def _participants(
    appointment: Any, targets: dict[str, Target], kind: str
) -> list[tuple[int, str | None, str | None]]:
    """(index, id, display) of the participants whose actor is a ``kind``."""
    found = []
    for index, participant in enumerate(appointment.participant or []):
        actor = participant.actor
        if actor is None or not actor.reference:
            continue
        target = targets.get(actor.reference) or _parse_reference(actor.reference)
        if target is not None and target[0] == kind:
            found.append((index, target[1], actor.display))
    return found


def _parse_reference(reference: str) -> Target | None:
    match = _REFERENCE.search(reference)
    return (match.group(1), match.group(2)) if match else None


def _appointment_problems(
    resource: _Resource, appointment: Any, targets: dict[str, Target]
) -> list[FieldError]:
    problems = []
    if not resource.id:
        problems.append(
            FieldError(resource.at("id"), "an Appointment needs an id: appointments are kept by it")
        )
    if appointment.start is None:
        problems.append(
            FieldError(
                resource.at("start"),
                "appointment has no start time (proposed or waitlist appointments cannot be "
                "reminded)",
            )
        )
    patients = _participants(appointment, targets, "Patient")
    if not patients:
        problems.append(
            FieldError(resource.at("participant"), "appointment has no Patient participant")
        )
    for index, patient_id, _ in patients:
        if patient_id is None:
            problems.append(
                FieldError(
                    resource.at(f"participant[{index}].actor.reference"),
                    "refers to a Patient without an id",
                )
            )
    if len({p[1] for p in patients}) > 1:
        # One appointment, one patient: reminding only the first member of a group would
        # silently leave the others out.
        problems.append(
            FieldError(
                resource.at("participant"),
                "appointment has more than one Patient participant (group sessions are not "
                "supported)",
            )
        )
    return problems


def _appointment_payload(
    appointment: Any, source: str, usable_patients: set[str], targets: dict[str, Target]
) -> tuple[dict[str, Any], dict[str, str]]:
    """AppointmentIn fields, and the FHIR element (relative path) each came from."""
    index, patient_id, display = _participants(appointment, targets, "Patient")[0]
    actor = f"participant[{index}].actor"
    patient: dict[str, Any] = {"external_id": patient_id, "source": source}
    # A Patient of the file that imports brings its own name; otherwise the display is all we
    # know, and it lets the appointment land (the Patient's own rejection is reported).
    if display and patient_id not in usable_patients:
        patient["name"] = display
    payload: dict[str, Any] = {
        "patient": patient,
        "status": str(appointment.status),
        "start": appointment.start,
    }
    origin = {
        "patient": actor,
        "patient.name": f"{actor}.display",
        "patient.external_id": f"{actor}.reference",
        "status": "status",
        "start": "start",
        "end": "end",
        "duration_minutes": "minutesDuration",
    }
    if appointment.end is not None:
        payload["end"] = appointment.end
    elif appointment.minutesDuration is not None:
        payload["duration_minutes"] = appointment.minutesDuration

    clinicians = _participants(appointment, targets, "Practitioner")
    if not clinicians:
        payload["clinician"] = None
    elif clinicians[0][2]:
        # Without a display we have no name to show patients: keep the stored clinician.
        index, clinician_id, name = clinicians[0]
        payload["clinician"] = {"name": name, "external_id": clinician_id}
        origin["clinician"] = f"participant[{index}].actor"
        origin["clinician.name"] = f"participant[{index}].actor.display"
        origin["clinician.external_id"] = f"participant[{index}].actor.reference"
    locations = [loc for loc in _participants(appointment, targets, "Location") if loc[2] or loc[1]]
    if locations:
        index, location_id, name = locations[0]
        payload["location"] = {"name": name or location_id}
        origin["location"] = f"participant[{index}].actor"
    else:
        payload["location"] = None
    return payload, origin
