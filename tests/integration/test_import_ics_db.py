"""iCalendar import through the real service, on SQLite and (when configured) PostgreSQL.

Expected instants are worked out by hand from the shared files (see test_import_ics.py):
America/Los_Angeles left summer time on 2012-11-04, Europe/Berlin entered it on 2019-03-31.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from conftest import shared_file
from frontdesk.adapters.db.models import Appointment, Base, Patient
from frontdesk.adapters.importers.ics_file import read_ics
from frontdesk.bootstrap import Runtime
from frontdesk.services.imports import ImportSummary, run_import
from frontdesk.services.patients import contact_of

US = {"default_region": "US", "default_timezone": "America/New_York"}


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def import_file(
    runtime: Runtime,
    path: Path,
    window: tuple[datetime, datetime] = (utc(1990, 1, 1), utc(2030, 1, 1)),
    patient_from: str = "attendee",
) -> ImportSummary:
    rows = read_ics(
        path,
        source="ics",
        context=US,
        window_start=window[0],
        window_end=window[1],
        patient_from=patient_from,
    )
    return run_import(runtime, rows, practice_slug="default", channel="import.ics", actor="test")


def counts(summary: ImportSummary) -> tuple[int, int, int, int]:
    return summary.created, summary.updated, summary.unchanged, summary.rejected


def stored(runtime: Runtime) -> dict[str, tuple[datetime, datetime, str]]:
    """external_id → (start, end, status) of every imported appointment."""
    with runtime.transaction() as session:
        found = session.scalars(select(Appointment).where(Appointment.source == "ics")).all()
        return {a.external_id: (a.start_at, a.end_at, a.status) for a in found}


def count(runtime: Runtime, model: Any) -> int:
    with runtime.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def everything_stored(runtime: Runtime) -> str:
    chunks = []
    with runtime.transaction() as session:
        for table in Base.metadata.sorted_tables:
            for row in session.execute(select(table)):
                chunks.extend(str(value) for value in row if value is not None)
    return "\n".join(chunks)


def test_series_with_rdates_lands_once_and_reimports_unchanged(runtime: Runtime) -> None:
    path = shared_file("icalendar", "ical_js", "recur_instances_finite.ics")

    first = import_file(runtime, path)
    assert counts(first) == (5, 0, 0, 0)
    uid = "623c13c0-6c2b-45d6-a12b-c33ad61c4868"
    half_hour_at = {
        f"{uid}@20121002T170000Z": utc(2012, 10, 2, 17),  # 10:00 PDT
        f"{uid}@20121105T180000Z": utc(2012, 11, 5, 18),  # 10:00 PST (RDATE)
        f"{uid}@20121106T180000Z": utc(2012, 11, 6, 18),
        f"{uid}@20121110T180000Z": utc(2012, 11, 10, 18),  # RDATE
        f"{uid}@20121204T180000Z": utc(2012, 12, 4, 18),
    }
    assert stored(runtime) == {
        key: (start, start.replace(minute=30), "booked") for key, start in half_hour_at.items()
    }
    # One patient, the attendee (not the organizer), with the address as contact.
    with runtime.transaction() as session:
        patient = session.scalars(select(Patient)).one()
        assert (patient.source, patient.external_id, patient.name) == (
            "ics",
            "calmozilla1@gmail.com",
            "Sahaja Lal",
        )
        assert contact_of(patient, runtime.cipher).email == "calmozilla1@gmail.com"
    assert "IAM FOO" not in everything_stored(runtime)  # the event's DESCRIPTION

    again = import_file(runtime, path)
    assert counts(again) == (0, 0, 5, 0)
    assert count(runtime, Appointment) == 5
    assert count(runtime, Patient) == 1


def test_deleted_week_and_dst_change_stored_in_utc(runtime: Runtime) -> None:
    path = shared_file("icalendar", "recurring_ical_events", "each_week_but_one_deleted.ics")

    first = import_file(runtime, path, patient_from="summary")
    assert counts(first) == (7, 0, 0, 0)
    starts = sorted(start for start, _, _ in stored(runtime).values())
    assert starts == [
        utc(2019, 3, 3, 23, 30),  # Monday 00:30 CET
        # 2019-03-10 23:30Z is the EXDATE
        utc(2019, 3, 17, 23, 30),
        utc(2019, 3, 24, 23, 30),
        utc(2019, 3, 31, 22, 30),  # Monday 00:30 CEST
        utc(2019, 4, 7, 22, 30),
        utc(2019, 4, 14, 22, 30),
        utc(2019, 4, 21, 22, 30),
    ]
    assert counts(import_file(runtime, path, patient_from="summary")) == (0, 0, 7, 0)
    assert count(runtime, Appointment) == 7


def test_real_calendar_window_with_edits_and_all_day_rejections(runtime: Runtime) -> None:
    # Google calendar, 2019-02-25 … 2019-03-04 (UTC), read by SUMMARY. Counted from the file:
    # timed occurrences starting in the window are
    #   Mon 02-25 "#TEC" (ends with 2019-01-13? no: 3gp01…_R20180910 ended 2019-01-13) → none,
    #   Thu 02-28: "Bioökonomie-Tag" 19:00Z, Montessori 07:30Z, "#TEC" 14:00Z, DiReBio 14:00Z,
    #   Fri 03-01: Montessori 07:30Z, HACKademy 16:30Z (ends 03-03),
    #   Wed 02-27: Chaostreff 18:00Z;
    # "Open Health HACKademy - freie Termine" starts 03-04 13:00Z, after the window end.
    path = shared_file("icalendar", "recurring_ical_events", "daylight_saving_time.ics")
    window = (utc(2019, 2, 25), utc(2019, 3, 4))

    first = import_file(runtime, path, window, patient_from="summary")
    assert counts(first) == (7, 0, 0, 0)
    assert (
        stored(runtime)
        == {
            "4pudsugalsbuqetcfdns8demti@google.com": (
                utc(2019, 2, 28, 19),
                utc(2019, 2, 28, 20),
                "booked",
            ),
            "7g6502aejkun96i5fenfu6hvc1@google.com@20190228T073000Z": (
                utc(2019, 2, 28, 7, 30),
                utc(2019, 2, 28, 13, 30),
                "booked",
            ),
            "ctfr0ikn17n8okmi83au0qfuhs@google.com@20190228T140000Z": (
                utc(2019, 2, 28, 14),
                utc(2019, 2, 28, 16),
                "booked",
            ),
            "4mm2ak3in2j3pllqdk1ubtbp9p@google.com": (
                utc(2019, 2, 28, 14),
                utc(2019, 2, 28, 17),
                "booked",
            ),
            "1djkkpk5edlt8ocfscsd8a52et@google.com@20190301T073000Z": (
                utc(2019, 3, 1, 7, 30),
                utc(2019, 3, 1, 13, 30),
                "booked",
            ),
            "7uartkcnhf0elbvs8md0itrf6c@google.com@20190227T180000Z": (
                utc(2019, 2, 27, 18),
                utc(2019, 2, 27, 20),
                "booked",
            ),
            # 2019-03-01 17:30 CET to 2019-03-03 18:00 CET is longer than a day: refused, see below.
        }
        | {}
    )
    assert counts(import_file(runtime, path, window, patient_from="summary")) == (0, 0, 7, 0)
