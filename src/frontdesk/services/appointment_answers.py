"""A patient's answer about an appointment: confirm, cannot come, or wants another time.

Each answer changes the appointment and re-plans its reminders in the caller's transaction, so
no reminder already cancelled by the answer can be sent, and records what the scheduling system
must hear (the integrations deliver it after commit).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from frontdesk.adapters.db.models import Appointment, Practice, ReviewItem
from frontdesk.domain.appointments import AppointmentStatus, Confirmation
from frontdesk.domain.fhir_writeback import ParticipantAnswer, StatusChange
from frontdesk.services import audit, events, reminders
from frontdesk.services.fhir_writeback import queue_fhir_writeback
from frontdesk.services.reminders import Planning

CONFIRM = "confirm"
CANCEL = "cancel"
RESCHEDULE = "reschedule"
ANSWERS = (CONFIRM, CANCEL, RESCHEDULE)

# Statuses in which a patient's answer still means something.
ANSWERABLE = frozenset({AppointmentStatus.BOOKED.value, AppointmentStatus.PENDING.value})


def apply_answer(
    session: Session,
    practice: Practice,
    appointment: Appointment,
    answer: str,
    planning: Planning,
    *,
    actor: str,
    source: str,
) -> bool:
    """Apply ``answer``; returns False when the appointment is no longer answerable (already
    cancelled, past, …) or the answer changes nothing."""
    if appointment.status not in ANSWERABLE:
        return False
    before = (appointment.status, appointment.confirmation)
    if answer == CONFIRM:
        appointment.confirmation = Confirmation.CONFIRMED.value
    elif answer == CANCEL:
        appointment.status = AppointmentStatus.CANCELLED.value
        appointment.confirmation = Confirmation.DECLINED.value
        appointment.status_changed_at = planning.now
    elif answer == RESCHEDULE:
        appointment.confirmation = Confirmation.RESCHEDULE_REQUESTED.value
        _open_review(session, appointment, "reschedule_requested")
    else:
        raise ValueError(f"unknown answer {answer!r}")
    if (appointment.status, appointment.confirmation) == before:
        return False
    appointment.version += 1
    reminders.replan(session, practice, appointment, planning)
    _tell_the_scheduling_system(session, practice, appointment, answer, source)
    audit.record(
        session,
        practice_id=practice.id,
        actor=actor,
        action=f"appointment.{answer}",
        entity_type="appointment",
        entity_id=appointment.id,
        details={"source": source, "status": appointment.status},
    )
    return True


_EVENTS = {
    CONFIRM: "appointment.confirmed",
    CANCEL: "appointment.cancelled",
    RESCHEDULE: "appointment.reschedule_requested",
}
_FHIR: dict[str, list[ParticipantAnswer | StatusChange]] = {
    CONFIRM: [ParticipantAnswer("accepted")],
    CANCEL: [ParticipantAnswer("declined"), StatusChange("cancelled")],
    # The EHR has no "wants another time": the patient's participation becomes tentative.
    RESCHEDULE: [ParticipantAnswer("tentative")],
}


def _tell_the_scheduling_system(
    session: Session, practice: Practice, appointment: Appointment, answer: str, source: str
) -> None:
    """Recorded in this transaction, delivered after commit by the worker: the signed webhook
    to the practice's endpoints, and the write-back to an EHR the appointment came from."""
    session.flush()
    events.publish(
        session,
        practice.id,
        _EVENTS[answer],
        events.appointment_data(appointment, answered_by=source.split(":")[0]),
        appointment_id=appointment.id,
    )
    for change in _FHIR[answer]:
        queue_fhir_writeback(session, appointment.id, change)


def _open_review(session: Session, appointment: Appointment, kind: str) -> None:
    existing = session.scalar(
        select(ReviewItem).where(
            ReviewItem.appointment_id == appointment.id, ReviewItem.kind == kind
        )
    )
    if existing is None:
        session.add(
            ReviewItem(
                practice_id=appointment.practice_id,
                appointment_id=appointment.id,
                patient_id=appointment.patient_id,
                kind=kind,
                state="open",
            )
        )
    elif existing.state != "open":
        existing.state = "open"
        existing.resolved_at = None
