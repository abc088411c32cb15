"""Reminder rows: planned in the same transaction as every appointment change.

``replan`` turns the pure plan (domain/reminders.py) into rows: a ``send`` becomes (or stays) a
``scheduled`` row with its due time; a row no longer wanted is ``cancelled`` with the reason;
rows already claimed, sent, delivered or failed are history and never touched.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from frontdesk.adapters.db.models import Appointment, Patient, Practice, Reminder
from frontdesk.domain.appointments import AppointmentStatus, Confirmation
from frontdesk.domain.channels import Channel, ConsentStatus
from frontdesk.domain.errors import FieldError, ValidationFailed
from frontdesk.domain.intake import field_errors
from frontdesk.domain.reminders import (
    FINAL_STATES,
    AppointmentFacts,
    PatientFacts,
    PlannedReminder,
    ReminderKind,
    ReminderPolicy,
    ReminderState,
    plan,
)
from frontdesk.domain.times import iso
from frontdesk.services.claimed import PatientRow

POLICY_KEY = "reminder_policy"


@dataclass(frozen=True)
class Planning:
    """What planning needs besides the rows: the deployment's default policy (from settings),
    the time, and whether patients should hear about this change (False for bulk imports)."""

    default_policy: ReminderPolicy
    now: datetime
    announce: bool = True


def policy_for(practice: Practice, default: ReminderPolicy) -> ReminderPolicy:
    """The practice's own policy when it has one, else the deployment's default."""
    stored = (practice.settings or {}).get(POLICY_KEY)
    if not stored:
        return default
    return ReminderPolicy.model_validate(stored)


def set_policy(practice: Practice, payload: Any) -> ReminderPolicy:
    """Validate and store a practice's policy; field errors name the JSON path."""
    if not isinstance(payload, dict):
        raise ValidationFailed([FieldError("body", "expected a JSON object")])
    try:
        policy = ReminderPolicy.model_validate(payload)
    except ValidationError as exc:
        raise ValidationFailed(field_errors(exc, "body")) from exc
    practice.settings = {**(practice.settings or {}), POLICY_KEY: policy.model_dump(mode="json")}
    return policy


def appointment_facts(appointment: Appointment) -> AppointmentFacts:
    return AppointmentFacts(
        start=appointment.start_at,
        status=AppointmentStatus(appointment.status),
        confirmation=Confirmation(appointment.confirmation),
        time_set_at=appointment.time_set_at,
        status_changed_at=appointment.status_changed_at,
    )


def patient_facts(patient: PatientRow, practice: Practice) -> PatientFacts:
    return PatientFacts(
        timezone=patient.timezone or practice.timezone,
        reminders_enabled=patient.reminders_enabled,
        preferred_channel=Channel(patient.preferred_channel) if patient.preferred_channel else None,
        has_phone=patient.phone_sealed is not None,
        has_email=patient.email_sealed is not None,
        consent={Channel(c.channel): ConsentStatus(c.status) for c in patient.consents},
    )


def plan_for(
    appointment: Appointment,
    practice: Practice,
    policy: ReminderPolicy,
    now: datetime,
    *,
    announce: bool = True,
) -> list[PlannedReminder]:
    return plan(
        appointment_facts(appointment),
        patient_facts(appointment.patient, practice),
        policy,
        now,
        announce=announce,
    )


def replan(
    session: Session,
    practice: Practice,
    appointment: Appointment,
    planning: Planning,
    *,
    existing: Iterable[Reminder] | None = None,
) -> None:
    """Bring the appointment's reminder rows in line with its current state."""
    policy = policy_for(practice, planning.default_policy)
    planned = plan_for(appointment, practice, policy, planning.now, announce=planning.announce)
    if existing is None:
        existing = (
            session.scalars(select(Reminder).where(Reminder.appointment_id == appointment.id))
            if appointment.id is not None
            else []
        )
    rows = {(r.stage, r.planned_start): r for r in existing}
    wanted: set[tuple[str, datetime]] = set()
    for item in planned:
        key = (item.stage, appointment.start_at)
        row = rows.get(key)
        if (
            row is None
            and item.kind == ReminderKind.BOOKING_CONFIRMATION
            and appointment.time_set_at != planning.now
        ):
            # "Your appointment is booked" belongs to the change that set this time: a later
            # edit (a confirmation, a consent change) of a slot imported quietly announces
            # nothing.
            continue
        if item.action == "send" or item.record:
            wanted.add(key)
        if row is not None and _settled(row):
            continue
        if item.action == "send":
            state, reason = ReminderState.SCHEDULED, None
        elif item.record:
            state, reason = ReminderState.SKIPPED, item.reason
        elif row is not None:
            state, reason = ReminderState.CANCELLED, item.reason
        else:
            continue  # does not apply and never did: no row
        if row is None:
            session.add(
                Reminder(
                    practice_id=practice.id,
                    appointment=appointment,
                    patient=appointment.patient,
                    kind=item.kind.value,
                    stage=item.stage,
                    planned_start=appointment.start_at,
                    channel=item.channel.value if item.channel else None,
                    due_at=item.due_at,
                    state=state.value,
                    reason=reason,
                    attempts=0,
                )
            )
        else:
            row.state = state.value
            row.reason = reason
            row.due_at = item.due_at
            row.channel = item.channel.value if item.channel else None
    # Rows for an earlier start time, or stages the policy no longer has.
    for key, row in rows.items():
        if key not in wanted and row.state == ReminderState.SCHEDULED.value:
            row.state = ReminderState.CANCELLED.value
            row.reason = (
                "the appointment moved" if key[1] != appointment.start_at else "no longer planned"
            )


def _settled(row: Reminder) -> bool:
    """History planning must not rewrite: claimed or sent rows, and skips the dispatcher decided
    at send time (a stage superseded after downtime must not come back later)."""
    if ReminderState(row.state) in FINAL_STATES:
        return True
    return row.state == ReminderState.SKIPPED.value and row.attempts > 0


def replan_practice(session: Session, practice: Practice, planning: Planning) -> int:
    """After a policy change: re-plan every appointment that has not started yet."""
    upcoming = session.scalars(
        select(Appointment)
        .where(Appointment.practice_id == practice.id, Appointment.start_at > planning.now)
        .options(selectinload(Appointment.patient))
        .order_by(Appointment.id)
    ).all()
    replan_many(session, practice, upcoming, planning)
    return len(upcoming)


def replan_patient(
    session: Session, practice: Practice, patient: Patient, planning: Planning
) -> None:
    """After a patient change (contact, consent, reminders off): re-plan their future sessions."""
    upcoming = session.scalars(
        select(Appointment)
        .where(Appointment.patient_id == patient.id, Appointment.start_at > planning.now)
        .order_by(Appointment.id)
    ).all()
    replan_many(session, practice, upcoming, planning)


REPLAN_CHUNK = 500


def replan_many(
    session: Session,
    practice: Practice,
    appointments: Sequence[Appointment],
    planning: Planning,
    *,
    chunk_size: int = REPLAN_CHUNK,
) -> None:
    """``replan`` for many appointments, their existing rows loaded in one query per
    ``chunk_size`` appointments instead of one per appointment."""
    for first in range(0, len(appointments), chunk_size):
        chunk = appointments[first : first + chunk_size]
        existing: dict[int, list[Reminder]] = {appointment.id: [] for appointment in chunk}
        for row in session.scalars(
            select(Reminder).where(Reminder.appointment_id.in_(list(existing)))
        ):
            existing[row.appointment_id].append(row)
        for appointment in chunk:
            replan(session, practice, appointment, planning, existing=existing[appointment.id])


def dry_run(
    session: Session,
    practice: Practice,
    default_policy: ReminderPolicy,
    start_from: datetime,
    start_to: datetime,
    now: datetime,
) -> list[dict[str, Any]]:
    """What planning says for appointments starting in [start_from, start_to): every message
    with its time, channel and action, and every skip with its reason. Nothing is written.
    Caps and send-time checks (quiet hours on the current channel, later stages also due) are
    applied by the dispatcher when the time comes."""
    policy = policy_for(practice, default_policy)
    appointments = session.scalars(
        select(Appointment)
        .where(
            Appointment.practice_id == practice.id,
            Appointment.start_at >= start_from,
            Appointment.start_at < start_to,
        )
        .order_by(Appointment.start_at, Appointment.id)
    )
    out: list[dict[str, Any]] = []
    for appointment in appointments:
        for item in plan_for(appointment, practice, policy, now, announce=False):
            out.append(
                {
                    "source": appointment.source,
                    "external_id": appointment.external_id,
                    "appointment_start": iso(appointment.start_at),
                    "kind": item.kind.value,
                    "stage": item.stage,
                    "channel": item.channel.value if item.channel else None,
                    "due_at": iso(item.due_at),
                    "action": item.action,
                    "reason": item.reason,
                }
            )
    out.sort(key=lambda row: (row["due_at"], row["external_id"]))
    return out


def reminder_rows(
    session: Session, practice: Practice, *, state: str | None = None, limit: int = 200
) -> list[dict[str, Any]]:
    """Stored reminders, soonest due first."""
    query = select(Reminder).where(Reminder.practice_id == practice.id)
    if state:
        query = query.where(Reminder.state == state)
    rows = session.scalars(query.order_by(Reminder.due_at, Reminder.id).limit(limit))
    return [
        {
            "id": r.id,
            "source": r.appointment.source,
            "external_id": r.appointment.external_id,
            "kind": r.kind,
            "stage": r.stage,
            "channel": r.channel,
            "due_at": iso(r.due_at),
            "state": r.state,
            "reason": r.reason,
            "attempts": r.attempts,
            "sent_at": iso(r.sent_at),
        }
        for r in rows
    ]
