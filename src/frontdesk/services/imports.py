"""File imports: every valid row lands, every bad row is reported and kept, nothing half-written.

Rows are committed in batches of ``BATCH_SIZE``. A row refused by validation is kept in
``intake_rejections`` and writes nothing else; a conflict with a concurrent writer makes the
batch start again with one savepoint per row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from frontdesk.adapters.db.bulk import is_postgres
from frontdesk.adapters.db.models import (
    Appointment,
    AuditEvent,
    IntakeRejection,
    Patient,
    Practice,
    Reminder,
)
from frontdesk.adapters.importers.base import ImportRow
from frontdesk.bootstrap import Runtime
from frontdesk.domain.errors import FieldError, ValidationFailed
from frontdesk.domain.intake import AppointmentIn, IntakeOutcome, PatientIn
from frontdesk.domain.times import now_utc
from frontdesk.services import audit, practices
from frontdesk.services.appointments import upsert_appointment
from frontdesk.services.lookups import AppointmentKey, IntakeCache, PatientKey, prefetch
from frontdesk.services.patients import upsert_patient
from frontdesk.services.reminders import Planning

BATCH_SIZE = 500
# A report listing 100,000 identical errors helps nobody; the rest are counted and stored.
MAX_REPORTED = 1000


@dataclass
class ImportSummary:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    rejections: list[dict[str, Any]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.created + self.updated + self.unchanged + self.rejected

    def count(self, outcome: IntakeOutcome) -> None:
        setattr(self, outcome.value, getattr(self, outcome.value) + 1)

    def merge(self, other: ImportSummary) -> None:
        self.created += other.created
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.rejected += other.rejected
        room = MAX_REPORTED - len(self.rejections)
        self.rejections.extend(other.rejections[: max(room, 0)])

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
            "rejections": self.rejections,
        }


@dataclass(frozen=True)
class _Job:
    """One import run: where rows go, who is doing it, and whether patients hear of it."""

    runtime: Runtime
    practice_slug: str | None
    channel: str
    actor: str
    announce: bool


def run_import(
    runtime: Runtime,
    rows: Iterable[ImportRow],
    *,
    practice_slug: str | None,
    channel: str,
    actor: str,
    progress: Callable[[int], None] | None = None,
    announce: bool = False,
) -> ImportSummary:
    """Import ``rows``. ``announce`` sends booking confirmations for new appointments; off by
    default, since an import usually brings in a schedule patients already know about."""
    job = _Job(runtime, practice_slug, channel, actor, announce)
    summary = ImportSummary()
    batch: list[ImportRow] = []
    full_batches = 0
    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH_SIZE:
            summary.merge(_run_batch(job, batch))
            if progress:
                progress(len(batch))
            batch = []
            full_batches += 1
            if full_batches & (full_batches - 1) == 0:  # after batch 1, 2, 4, 8, …
                _refresh_statistics(runtime)
    if batch:
        summary.merge(_run_batch(job, batch))
        if progress:
            progress(len(batch))
    with runtime.transaction() as session:
        practice = practices.resolve_practice(session, practice_slug)
        audit.record(
            session,
            practice_id=practice.id,
            actor=actor,
            action="import.finished",
            entity_type="import",
            details={k: v for k, v in summary.as_dict().items() if k != "rejections"}
            | {"channel": channel},
        )
    return summary


# The tables a large import grows (see _refresh_statistics).
_GROWN = tuple(
    model.__tablename__ for model in (Patient, Appointment, Reminder, AuditEvent, IntakeRejection)
)


def _refresh_statistics(runtime: Runtime) -> None:
    """PostgreSQL: ``ANALYZE`` the tables the import is growing, after full batch 1, 2, 4, 8, ….

    Without statistics (a new database, no autovacuum, or autovacuum not yet round) PostgreSQL
    plans as if these tables held a handful of rows; an import is what makes them big. Doubling
    intervals keep this to about log2(batches) runs, each sampling at most 30,000 rows a table.
    (A role that does not own a table gets a warning and no statistics, not an error.)"""
    if runtime.engine.dialect.name != "postgresql":
        return
    with runtime.transaction() as session:
        session.execute(text(f"ANALYZE {', '.join(_GROWN)}"))


def _run_batch(job: _Job, batch: list[ImportRow]) -> ImportSummary:
    try:
        with job.runtime.transaction() as session:
            _plan_for_now(session)
            return _apply_batch(job, session, batch, row_savepoints=False)
    except IntegrityError:
        # A concurrent writer created one of these keys while we worked: redo the batch row by
        # row, each in a savepoint, so only the contested rows are retried.
        with job.runtime.transaction() as session:
            _plan_for_now(session)
            return _apply_batch(job, session, batch, row_savepoints=True)


def _plan_for_now(session: Session) -> None:
    """PostgreSQL: plan the batch's statements (and the foreign-key checks its inserts fire)
    for the tables as they are now, not with a generic plan cached when they were small: the
    backend's cached plans are dropped once per batch (as the dispatcher does per transaction;
    see Dispatcher._transaction)."""
    if is_postgres(session):
        session.execute(text("DISCARD PLANS"))


def _apply_batch(
    job: _Job, session: Session, batch: list[ImportRow], *, row_savepoints: bool
) -> ImportSummary:
    """Apply every row; a row refused by validation writes nothing (the services check before
    they write), so only database conflicts need savepoints."""
    done = ImportSummary()
    practice = practices.resolve_practice(session, job.practice_slug)
    planning = Planning(job.runtime.settings.reminder_policy, now_utc(), job.announce)
    cache = _prefetched(session, practice, batch)
    for index, row in enumerate(batch):
        if not row.ok:
            _reject(job, session, practice, row, row.errors, done)
            continue
        try:
            if not row_savepoints:
                outcome = _apply(job, session, practice, row, cache, planning)
            else:
                outcome, cache = _apply_in_savepoint(
                    job, session, practice, batch[index:], cache, planning
                )
        except ValidationFailed as exc:
            _reject(job, session, practice, row, exc.errors, done)
            continue
        except IntegrityError as exc:
            reason = f"the database refused the row twice ({type(exc.orig).__name__})"
            _reject(job, session, practice, row, [FieldError("row", reason)], done)
            continue
        done.count(outcome)
    return done


def _apply_in_savepoint(
    job: _Job,
    session: Session,
    practice: Practice,
    rest: list[ImportRow],
    cache: IntakeCache,
    planning: Planning,
) -> tuple[IntakeOutcome, IntakeCache]:
    """Apply ``rest[0]``, retrying once after a conflict. Returns the cache to go on with: a
    rolled-back savepoint may have undone rows the old cache still holds."""
    try:
        with session.begin_nested():
            return _apply(job, session, practice, rest[0], cache, planning), cache
    except IntegrityError:
        cache = _prefetched(session, practice, rest)
    with session.begin_nested():
        return _apply(job, session, practice, rest[0], cache, planning), cache


def _prefetched(session: Session, practice: Practice, rows: list[ImportRow]) -> IntakeCache:
    cache = IntakeCache()
    patients: list[PatientKey] = []
    appointments: list[AppointmentKey] = []
    for row in rows:
        if isinstance(row.record, AppointmentIn):
            appointments.append(AppointmentKey(row.source, row.external_id))
            ref = row.record.patient
            patients.append(PatientKey(ref.source or row.source, ref.external_id))
        elif isinstance(row.record, PatientIn):
            patients.append(PatientKey(row.source, row.external_id))
    prefetch(session, practice.id, cache, patients, appointments)
    return cache


def _apply(
    job: _Job,
    session: Session,
    practice: Practice,
    row: ImportRow,
    cache: IntakeCache,
    planning: Planning,
) -> IntakeOutcome:
    cipher = job.runtime.cipher
    if isinstance(row.record, AppointmentIn):
        _, outcome = upsert_appointment(
            session,
            cipher,
            practice,
            row.source,
            row.external_id,
            row.record,
            actor=job.actor,
            default_minutes=job.runtime.settings.default_session_minutes,
            planning=planning,
            cache=cache,
            create_patient=True,
        )
        return outcome
    assert isinstance(row.record, PatientIn)
    _, outcome = upsert_patient(
        session,
        cipher,
        practice,
        PatientKey(row.source, row.external_id),
        row.record,
        actor=job.actor,
        planning=planning,
        cache=cache,
    )
    return outcome


def _reject(
    job: _Job,
    session: Session,
    practice: Practice,
    row: ImportRow,
    errors: list[FieldError],
    summary: ImportSummary,
) -> None:
    summary.rejected += 1
    if len(summary.rejections) < MAX_REPORTED:
        summary.rejections.append(
            {"reference": row.reference, "errors": [e.as_dict() for e in errors]}
        )
    session.add(
        IntakeRejection(
            practice_id=practice.id,
            channel=job.channel,
            reference=row.reference[:300],
            raw_sealed=job.runtime.cipher.seal(row.raw) or "",
            errors={"errors": [e.as_dict() for e in errors]},
        )
    )
