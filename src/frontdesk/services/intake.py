"""Intake from the REST API: raw bytes in, a stored record or field-level errors out.

A rejected payload is kept (``intake_rejections``) with its reasons, in its own transaction,
so nothing a scheduling system sent is lost even when we could not accept it.
"""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from pydantic import ValidationError
from sqlalchemy.orm import Session

from frontdesk.adapters.db.models import IntakeRejection, Practice
from frontdesk.bootstrap import Runtime
from frontdesk.domain.contact import region_of_locale
from frontdesk.domain.errors import FieldError, NotFound, ValidationFailed
from frontdesk.domain.intake import (
    SOURCE_PATTERN,
    SOURCE_RULE,
    AppointmentIn,
    IntakeOutcome,
    PatientIn,
    field_errors,
)
from frontdesk.domain.times import now_utc
from frontdesk.services import audit, queries, reminders
from frontdesk.services.apikeys import Caller
from frontdesk.services.appointments import upsert_appointment
from frontdesk.services.lookups import AppointmentKey, PatientKey, find_appointment, find_patient
from frontdesk.services.patients import upsert_patient
from frontdesk.services.reminders import Planning
from frontdesk.services.views import appointment_view, patient_view

M = TypeVar("M", AppointmentIn, PatientIn)
_EXTERNAL_ID = re.compile(r"^\S{1,200}$")


def planning_now(runtime: Runtime, *, announce: bool = True) -> Planning:
    return Planning(runtime.settings.reminder_policy, now_utc(), announce)


def check_key(source: str, external_id: str) -> None:
    errors = []
    if not SOURCE_PATTERN.match(source):
        errors.append(FieldError("path.source", SOURCE_RULE))
    if not _EXTERNAL_ID.match(external_id):
        errors.append(FieldError("path.external_id", "use 1-200 characters without spaces"))
    if errors:
        raise ValidationFailed(errors)


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except UnicodeDecodeError as exc:
        raise ValidationFailed([FieldError("body", "the body is not UTF-8 text")]) from exc
    except json.JSONDecodeError as exc:
        raise ValidationFailed(
            [
                FieldError(
                    "body",
                    f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                )
            ],
            message="The body is not valid JSON.",
        ) from exc


def validation_context(practice: Practice) -> dict[str, Any]:
    return {"default_region": region_of_locale(practice.locale)}


def put_appointment(
    runtime: Runtime, caller: Caller, source: str, external_id: str, body: bytes
) -> tuple[dict[str, Any], IntakeOutcome]:
    def work(session: Session) -> tuple[dict[str, Any], IntakeOutcome]:
        practice = practice_of(session, caller)
        check_key(source, external_id)
        data = _validate(AppointmentIn, parse_json(body), practice)
        appointment, outcome = upsert_appointment(
            session,
            runtime.cipher,
            practice,
            source,
            external_id,
            data,
            actor=caller.actor,
            default_minutes=runtime.settings.default_session_minutes,
            planning=planning_now(runtime),
        )
        session.flush()  # the answer carries the new row's id
        return appointment_view(appointment, practice), outcome

    try:
        return runtime.retrying(work)
    except ValidationFailed as exc:
        _keep_rejected(runtime, caller, "api.appointment", f"{source}/{external_id}", body, exc)
        raise


def put_patient(
    runtime: Runtime, caller: Caller, source: str, external_id: str, body: bytes
) -> tuple[dict[str, Any], IntakeOutcome]:
    def work(session: Session) -> tuple[dict[str, Any], IntakeOutcome]:
        practice = practice_of(session, caller)
        check_key(source, external_id)
        data = _validate(PatientIn, parse_json(body), practice)
        patient, outcome = upsert_patient(
            session,
            runtime.cipher,
            practice,
            PatientKey(source, external_id),
            data,
            actor=caller.actor,
            planning=planning_now(runtime),
        )
        session.flush()
        return patient_view(patient, runtime.cipher), outcome

    try:
        return runtime.retrying(work)
    except ValidationFailed as exc:
        _keep_rejected(runtime, caller, "api.patient", f"{source}/{external_id}", body, exc)
        raise


def get_appointment(
    runtime: Runtime, caller: Caller, source: str, external_id: str
) -> dict[str, Any]:
    with runtime.transaction() as session:
        practice = practice_of(session, caller)
        appointment = find_appointment(session, practice.id, AppointmentKey(source, external_id))
        if appointment is None:
            raise NotFound(f"no appointment {source}/{external_id}")
        return appointment_view(appointment, practice)


def get_patient(runtime: Runtime, caller: Caller, source: str, external_id: str) -> dict[str, Any]:
    with runtime.transaction() as session:
        practice = practice_of(session, caller)
        patient = find_patient(session, practice.id, PatientKey(source, external_id))
        if patient is None:
            raise NotFound(f"no patient {source}/{external_id}")
        return patient_view(patient, runtime.cipher)


def practice_of(session: Session, caller: Caller) -> Practice:
    practice = session.get(Practice, caller.practice_id)
    if practice is None:  # the key outlived its practice
        raise NotFound("the practice of this API key no longer exists")
    return practice


def _validate(model: type[M], payload: Any, practice: Practice) -> M:
    if not isinstance(payload, dict):
        raise ValidationFailed([FieldError("body", "expected a JSON object")])
    try:
        return model.model_validate(payload, context=validation_context(practice))
    except ValidationError as exc:
        raise ValidationFailed(field_errors(exc, "body")) from exc


def _keep_rejected(
    runtime: Runtime,
    caller: Caller,
    channel: str,
    reference: str,
    body: bytes,
    exc: ValidationFailed,
) -> None:
    with runtime.transaction() as session:
        session.add(
            IntakeRejection(
                practice_id=caller.practice_id,
                channel=channel,
                reference=reference[:300],
                raw_sealed=runtime.cipher.seal(body.decode("utf-8", errors="replace")) or "",
                errors={"errors": [e.as_dict() for e in exc.errors]},
            )
        )


def list_appointments(runtime: Runtime, caller: Caller, **filters: Any) -> dict[str, Any]:
    with runtime.transaction() as session:
        return queries.list_appointments(session, practice_of(session, caller), **filters).as_dict()


def list_patients(runtime: Runtime, caller: Caller, *, limit: int, offset: int) -> dict[str, Any]:
    with runtime.transaction() as session:
        return queries.list_patients(
            session, runtime.cipher, practice_of(session, caller), limit=limit, offset=offset
        ).as_dict()


def get_reminder_policy(runtime: Runtime, caller: Caller) -> dict[str, Any]:
    with runtime.transaction() as session:
        practice = practice_of(session, caller)
        policy = reminders.policy_for(practice, runtime.settings.reminder_policy)
        own = reminders.POLICY_KEY in (practice.settings or {})
        return {"policy": policy.model_dump(mode="json"), "practice_specific": own}


def put_reminder_policy(runtime: Runtime, caller: Caller, body: bytes) -> dict[str, Any]:
    """Store the practice's policy and re-plan its upcoming appointments in one transaction."""
    try:
        with runtime.transaction() as session:
            practice = practice_of(session, caller)
            policy = reminders.set_policy(practice, parse_json(body))
            replanned = reminders.replan_practice(session, practice, planning_now(runtime))
            audit.record(
                session,
                practice_id=practice.id,
                actor=caller.actor,
                action="reminder_policy.updated",
                entity_type="practice",
                entity_id=practice.id,
                details={"replanned": replanned},
            )
            return {"policy": policy.model_dump(mode="json"), "replanned": replanned}
    except ValidationFailed as exc:
        _keep_rejected(runtime, caller, "api.reminder_policy", "reminder-policy", body, exc)
        raise
