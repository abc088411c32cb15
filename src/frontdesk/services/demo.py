"""The demo practice: enough people and a week of sessions around now to try everything.

Seeding is an idempotent upsert (source ``demo``): running it again moves the week to the new
"now" instead of piling up copies.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from frontdesk.adapters.crypto import FieldCipher
from frontdesk.adapters.db.models import Message, Patient, Practice, Reminder
from frontdesk.domain.appointments import AppointmentStatus, Confirmation
from frontdesk.domain.channels import Channel, Direction
from frontdesk.domain.intake import AppointmentIn, ClinicianIn, LocationIn, PatientIn, PatientRef
from frontdesk.domain.reminders import ReminderPolicy
from frontdesk.domain.templates import Purpose
from frontdesk.services.appointments import upsert_appointment
from frontdesk.services.knowledge import seed_demo_documents
from frontdesk.services.lookups import IntakeCache, PatientKey
from frontdesk.services.patients import upsert_patient
from frontdesk.services.reminders import Planning
from frontdesk.services.replies import thread_for
from frontdesk.services.templates import TemplateBook, context_for, render

SOURCE = "demo"
ACTOR = "demo-seed"

CLINICIANS = [
    ClinicianIn(name="Dr. Maya Okafor", external_id="clin-okafor"),
    ClinicianIn(name="Luis Herrera, LCSW", external_id="clin-herrera"),
    ClinicianIn(name="Sam Whitfield, LMFT", external_id="clin-whitfield"),
]
LOCATIONS = [
    LocationIn(name="Harbor Street office", address="120 Harbor St, Suite 4, Portland, ME"),
    LocationIn(name="Westside office", address="88 Elm Ave, Portland, ME"),
]


@dataclass(frozen=True)
class DemoPatient:
    key: str
    name: str
    preferred: str | None
    phone: str | None
    email: str | None
    channel: str
    language: str
    timezone: str | None = None


# 555-01xx numbers are reserved for fiction, so the demo never texts a real person.
PATIENTS = [
    DemoPatient("p-01", "Avery Johnson", "Avery", "+12025550101", "avery@example.com", "sms", "en"),
    DemoPatient("p-02", "María Fernanda López", "Mafe", "+12025550102", None, "sms", "es"),
    DemoPatient("p-03", "Jordan Lee", None, None, "jordan.lee@example.com", "email", "en"),
    DemoPatient(
        "p-04", "Priya Raman", "Priya", "+12025550104", "priya@example.org", "whatsapp", "en"
    ),
    DemoPatient("p-05", "José Martínez", None, "+12025550105", "jose.m@example.com", "sms", "es"),
    DemoPatient(
        "p-06", "Taylor Brooks", "Tay", "+12025550106", None, "sms", "en", "America/Chicago"
    ),
    DemoPatient("p-07", "Chen Wei", None, None, "chen.wei@example.net", "email", "en"),
    DemoPatient(
        "p-08", "Lucía Romero", "Lucía", "+12025550108", "lucia@example.com", "whatsapp", "es"
    ),
    DemoPatient(
        "p-09",
        "Noah Williams",
        None,
        "+12025550109",
        "noah.w@example.com",
        "email",
        "en",
        "America/Los_Angeles",
    ),
    DemoPatient("p-10", "Grace Kim", "Gracie", "+12025550110", None, "sms", "en"),
    DemoPatient(
        "p-11", "Diego Castillo", None, "+12025550111", "diego@example.com", "webchat", "es"
    ),
    DemoPatient("p-12", "Hannah Schultz", None, "+12025550112", "hannah@example.com", "sms", "en"),
]

# Fictional dates of birth: the No-show reminder action checks one before it reveals anything
# (docs/ACTIONS.md, "Try it in the demo": Avery Johnson, 03/25/1990).
BIRTHDAYS = {
    "p-01": "1990-03-25",
    "p-02": "1985-07-14",
    "p-03": "1978-11-02",
    "p-04": "1994-01-30",
    "p-05": "1969-05-21",
    "p-06": "2001-09-09",
    "p-07": "1988-12-17",
    "p-08": "1999-04-03",
    "p-09": "1975-08-26",
    "p-10": "1992-02-11",
    "p-11": "1983-10-05",
    "p-12": "1996-06-28",
}

# (day offset from today, local hour, patient, clinician, location) — location None is video.
SCHEDULE: list[tuple[int, int, int, int, int | None]] = [
    (-3, 9, 0, 0, 0),
    (-3, 14, 1, 1, None),
    (-2, 10, 2, 2, 1),
    (-2, 16, 3, 0, 0),
    (-1, 11, 4, 1, 1),
    (-1, 17, 5, 2, None),
    (0, 8, 6, 0, 0),
    (0, 10, 7, 1, None),
    (0, 13, 8, 2, 1),
    (0, 15, 9, 0, 0),
    (0, 18, 10, 1, None),
    (1, 9, 11, 2, 1),
    (1, 11, 0, 0, 0),
    (1, 14, 1, 1, None),
    (2, 10, 2, 2, 1),
    (2, 15, 3, 0, 0),
    (3, 9, 4, 1, 1),
    (3, 12, 5, 2, None),
    (3, 16, 6, 0, 0),
    (4, 10, 7, 1, None),
    (4, 13, 8, 2, 1),
    (5, 11, 9, 0, 0),
    (6, 10, 10, 1, None),
    (6, 14, 11, 2, 1),
]


def _status_for(day: int, index: int) -> tuple[AppointmentStatus, Confirmation]:
    """A believable mix: past sessions mostly fulfilled, a no-show, a cancellation, replies."""
    if day < 0:
        return (
            AppointmentStatus.NOSHOW if index == 3 else AppointmentStatus.FULFILLED,
            Confirmation.CONFIRMED if index != 3 else Confirmation.UNCONFIRMED,
        )
    cycle = index % 6
    if cycle == 1:
        return AppointmentStatus.BOOKED, Confirmation.CONFIRMED
    if cycle == 3:
        return AppointmentStatus.CANCELLED, Confirmation.DECLINED
    if cycle == 4:
        return AppointmentStatus.BOOKED, Confirmation.RESCHEDULE_REQUESTED
    return AppointmentStatus.BOOKED, Confirmation.UNCONFIRMED


def seed_demo(
    session: Session,
    cipher: FieldCipher,
    practice: Practice,
    now: datetime,
    policy: ReminderPolicy,
) -> int:
    """Make ``practice`` the demo practice; returns how many appointments it has this week.
    Seeding announces nothing (no booking confirmations): the demo week already exists."""
    planning = Planning(policy, now, announce=False)
    practice.name = "Harbor Light Counseling (demo)"
    practice.timezone = "America/New_York"
    practice.phone = "+12025550100"
    practice.email = "frontdesk@harborlight.example"
    practice.booking_url = "https://harborlight.example/book"
    session.flush()
    for p in PATIENTS:
        data = PatientIn.model_validate(
            {
                "name": p.name,
                "preferred_name": p.preferred,
                "phone": p.phone,
                "email": p.email,
                "preferred_channel": p.channel,
                "language": p.language,
                "timezone": p.timezone,
                "date_of_birth": BIRTHDAYS.get(p.key),
                # Meta requires an opt-in for WhatsApp: the WhatsApp patients gave one; the
                # others have none on record (not an opt-out: they may still choose it).
                "consent": {"sms": p.phone is not None, "email": p.email is not None}
                | ({"whatsapp": True} if p.channel == "whatsapp" else {}),
            }
        )
        upsert_patient(
            session,
            cipher,
            practice,
            PatientKey(SOURCE, p.key),
            data,
            actor=ACTOR,
            planning=planning,
        )
    tz = ZoneInfo(practice.timezone)
    today = now.astimezone(tz).date()
    cache = IntakeCache()
    for index, (day, hour, patient, clinician, where) in enumerate(SCHEDULE):
        start = datetime.combine(today + timedelta(days=day), time(hour), tzinfo=tz)
        status, confirmation = _status_for(day, index)
        record = AppointmentIn(
            patient=PatientRef(external_id=PATIENTS[patient].key),
            start=start,
            duration_minutes=50,
            status=status,
            confirmation=confirmation,
            clinician=CLINICIANS[clinician],
            location=None if where is None else LOCATIONS[where],
            telehealth_url="https://video.harborlight.example/room/" + PATIENTS[patient].key
            if where is None
            else None,
        )
        upsert_appointment(
            session,
            cipher,
            practice,
            SOURCE,
            f"demo-{index:02d}",
            record,
            actor=ACTOR,
            default_minutes=50,
            planning=planning,
            cache=cache,
        )
    _seed_reminded_session(session, cipher, practice, now, planning, cache)
    seed_demo_documents(session, practice)  # the practice's policies, for grounded answers
    from frontdesk.services.actions import seed_demo_actions

    seed_demo_actions(session, cipher, practice)  # custom actions: the built-in examples, on
    return len(SCHEDULE) + 1  # with the reminded session


def _seed_reminded_session(
    session: Session,
    cipher: FieldCipher,
    practice: Practice,
    now: datetime,
    planning: Planning,
    cache: IntakeCache,
) -> None:
    """Avery's session about 20 hours from now, still unconfirmed although its 24-hour reminder
    went out 4 hours ago (by text): whatever the time of day, the demo has a session the
    No-show reminder action starts on as soon as the worker runs."""
    start = (now + timedelta(hours=20)).replace(minute=0, second=0, microsecond=0)
    patient = PATIENTS[0]
    appointment, _ = upsert_appointment(
        session,
        cipher,
        practice,
        SOURCE,
        "demo-reminded",
        AppointmentIn(
            patient=PatientRef(external_id=patient.key),
            start=start,
            duration_minutes=50,
            status=AppointmentStatus.BOOKED,
            confirmation=Confirmation.UNCONFIRMED,
            clinician=CLINICIANS[0],
            location=LOCATIONS[0],
        ),
        actor=ACTOR,
        default_minutes=50,
        planning=planning,
        cache=cache,
    )
    sent_at = now - timedelta(hours=4)
    exists = session.scalar(
        select(Reminder.id).where(
            Reminder.appointment_id == appointment.id, Reminder.sent_at.is_not(None)
        )
    )
    if exists is not None:
        return
    session.add(
        Reminder(
            practice_id=practice.id,
            appointment_id=appointment.id,
            patient_id=appointment.patient_id,
            kind="stage",
            stage="-24h",
            planned_start=appointment.start_at,
            channel=Channel.SMS.value,
            due_at=sent_at,
            state="sent",
            attempts=1,
            sent_at=sent_at,
            reason="demo history",
        )
    )
    person = session.get(Patient, appointment.patient_id)
    assert person is not None
    text = TemplateBook.load(session, practice.id).text_for(
        Purpose.REMINDER, Channel.SMS.value, person.language
    )
    values = context_for(
        practice=practice,
        channel=Channel.SMS.value,
        language=person.language,
        patient_name=person.name,
        patient_preferred_name=person.preferred_name,
        tz_name=person.timezone or practice.timezone,
        appointment=appointment,
    )
    conversation = thread_for(session, cipher, practice, person, Channel.SMS, None)
    session.add(
        Message(
            practice_id=practice.id,
            conversation=conversation,
            appointment_id=appointment.id,
            channel=Channel.SMS.value,
            direction=Direction.OUTBOUND.value,
            purpose=Purpose.REMINDER.value,
            body=render(text, values).body,
            delivery_status="delivered",
            created_at=sent_at,
        )
    )
    session.flush()
