"""Finding a batch of intake records by their source keys (``lookups.prefetch``), on both
databases: on PostgreSQL one unique-index probe per key (``unnest`` + ``LATERAL``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from frontdesk.adapters.db.models import Appointment, Patient, Practice
from frontdesk.bootstrap import Runtime
from frontdesk.services.imports import _refresh_statistics
from frontdesk.services.lookups import AppointmentKey, IntakeCache, PatientKey, prefetch

START = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)


def _practice(session: Session, slug: str) -> Practice:
    practice = Practice(slug=slug, name=slug.title(), timezone="America/New_York", settings={})
    session.add(practice)
    return practice


def test_prefetch_finds_each_key_of_its_practice_and_source_and_marks_the_rest_absent(
    runtime: Runtime,
) -> None:
    with runtime.transaction() as session:
        here, there = _practice(session, "here"), _practice(session, "there")
        session.flush()
        for practice in (here, there):
            for source in ("csv", "ehr"):
                for n in range(3):
                    patient = Patient(practice_id=practice.id, source=source, external_id=f"p{n}")
                    session.add(patient)
                    session.flush()
                    session.add(
                        Appointment(
                            practice_id=practice.id,
                            source=source,
                            external_id=f"a{n}",
                            patient_id=patient.id,
                            start_at=START + timedelta(days=n),
                            end_at=START + timedelta(days=n, minutes=50),
                        )
                    )
        here_id = here.id
    wanted_patients = [PatientKey("csv", "p0"), PatientKey("csv", "p2"), PatientKey("ehr", "p1")]
    absent_patients = [PatientKey("csv", "p9"), PatientKey("fhir", "p0")]
    wanted_appointments = [AppointmentKey("ehr", "a0"), AppointmentKey("ehr", "a2")]
    absent_appointments = [AppointmentKey("csv", "a7")]
    with runtime.transaction() as session:
        cache = IntakeCache()
        prefetch(
            session,
            here_id,
            cache,
            [*wanted_patients, *absent_patients, wanted_patients[0]],  # a repeat is harmless
            [*wanted_appointments, *absent_appointments],
        )
        for key in wanted_patients:
            found = cache.patients[key]
            assert found is not None
            assert (found.practice_id, found.source, found.external_id) == (
                here_id,
                key.source,
                key.external_id,
            )
        for appointment_key in wanted_appointments:
            appointment = cache.appointments[appointment_key]
            assert appointment is not None and appointment.practice_id == here_id
            assert appointment.external_id == appointment_key.external_id
        assert all(cache.patients[key] is None for key in absent_patients)
        assert all(cache.appointments[key] is None for key in absent_appointments)
        assert len(cache.patients) == 5 and len(cache.appointments) == 3
        # The objects are the session's own: a change to one is written like any other.
        assert (
            cache.patients[wanted_patients[0]]
            is session.scalars(
                select(Patient).where(
                    Patient.practice_id == here_id,
                    Patient.source == "csv",
                    Patient.external_id == "p0",
                )
            ).one()
        )


def test_statistics_are_refreshed_on_postgresql_and_skipped_elsewhere(runtime: Runtime) -> None:
    _refresh_statistics(runtime)  # SQLite: nothing to do
    if runtime.engine.dialect.name != "postgresql":
        return
    with runtime.transaction() as session:
        analyzed = session.execute(
            text(
                "SELECT relname, analyze_count + autoanalyze_count FROM pg_stat_user_tables "
                "WHERE relname IN ('patients', 'appointments', 'reminders')"
            )
        ).all()
    assert len(analyzed) == 3 and all(count >= 1 for _name, count in analyzed)
