"""iCalendar import through the real service, on SQLite and (when configured) PostgreSQL.

Expected instants are worked out by hand from the shared files (see test_import_ics.py):
America/Los_Angeles left summer time on 2012-11-04, Europe/Berlin entered it on 2019-03-31.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from conftest import everything_stored, shared_file
from frontdesk.adapters.db.models import Appointment, IntakeRejection, Patient
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


def test_a_week_of_a_real_google_calendar(runtime: Runtime) -> None:
    # Occurrences of daylight_saving_time.ics starting in 2019-02-25 … 2019-03-04 (UTC), worked
    # out from the file (weekly and fortnightly series counted from their DTSTART):
    #   single events: "Bioökonomie-Tag" 02-28 19:00Z, "Workshop DiReBio" 02-28 14:00Z, and
    #     "Open Health HACKademy" 03-01 16:30Z until 03-03 17:00Z (over 24 hours: refused);
    #   series still running: Montessori Thursdays and Fridays 08:30 CET, Chaostreff Wednesdays
    #     19:00 CET, "#TEC" Thursdays 15:00 CET, OpenLab Thursdays 18:00 CET (since 2017);
    #   not in the week: the fortnightly OK Lab and Plenum Tuesdays fall on 02-19 and 03-05,
    #     the repairCafé series' February dates are the 9th and the moved 24th, and
    #     "HACKademy - freie Termine" begins 03-04.
    path = shared_file("icalendar", "recurring_ical_events", "daylight_saving_time.ics")
    window = (utc(2019, 2, 25), utc(2019, 3, 4))

    first = import_file(runtime, path, window, patient_from="summary")
    assert counts(first) == (7, 0, 0, 1)
    g = "@google.com"
    assert stored(runtime) == {
        f"4pudsugalsbuqetcfdns8demti{g}": (utc(2019, 2, 28, 19), utc(2019, 2, 28, 20), "booked"),
        f"4mm2ak3in2j3pllqdk1ubtbp9p{g}": (utc(2019, 2, 28, 14), utc(2019, 2, 28, 17), "booked"),
        f"7g6502aejkun96i5fenfu6hvc1{g}@20190228T073000Z": (
            utc(2019, 2, 28, 7, 30),
            utc(2019, 2, 28, 13, 30),
            "booked",
        ),
        f"1djkkpk5edlt8ocfscsd8a52et{g}@20190301T073000Z": (
            utc(2019, 3, 1, 7, 30),
            utc(2019, 3, 1, 13, 30),
            "booked",
        ),
        f"7uartkcnhf0elbvs8md0itrf6c{g}@20190227T180000Z": (
            utc(2019, 2, 27, 18),
            utc(2019, 2, 27, 20),
            "booked",
        ),
        f"ctfr0ikn17n8okmi83au0qfuhs{g}@20190228T140000Z": (
            utc(2019, 2, 28, 14),
            utc(2019, 2, 28, 16),
            "booked",
        ),
        f"5neh1ktep3uqvjk197abrb0gio{g}@20190228T170000Z": (
            utc(2019, 2, 28, 17),
            utc(2019, 2, 28, 19),
            "booked",
        ),
    }
    # X-WR-TIMEZONE:Europe/Berlin: the library shows Google's UTC times in Berlin time.
    assert first.rejections == [
        {
            "reference": (
                "daylight_saving_time.ics UID 5v18ih724kes1sf1eeu27dsq5n@google.com"
                " @ 2019-03-01T17:30:00+01:00"
            ),
            "errors": [
                {"loc": "DTEND", "message": "an appointment cannot last more than 24 hours"}
            ],
        }
    ]
    # The two Montessori series share their SUMMARY, so they share one patient.
    assert count(runtime, Patient) == 6

    again = import_file(runtime, path, window, patient_from="summary")
    assert counts(again) == (0, 0, 7, 1)
    assert count(runtime, Appointment) == 7
    assert count(runtime, IntakeRejection) == 2


def write(tmp_path: Path, *events: str) -> Path:
    body = "".join(f"BEGIN:VEVENT\n{e.strip()}\nEND:VEVENT\n" for e in events)
    text = f"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//frontdesk tests//EN\n{body}END:VCALENDAR\n"
    path = tmp_path / "practice.ics"
    path.write_bytes(text.replace("\n", "\r\n").encode("utf-8"))
    return path


SERIES = """
UID:weekly-ann
SUMMARY:Ann Lee
DESCRIPTION:Working on sleep and panic symptoms
ORGANIZER;CN=Dr Rao:mailto:rao@practice.example
ATTENDEE;CN=Dr Rao:mailto:rao@practice.example
ATTENDEE;CN=Ann Lee:mailto:ann@example.com
LOCATION:https://video.practice.example/rao
DTSTART;TZID=America/New_York:20240301T100000
DTEND;TZID=America/New_York:20240301T105000
RRULE:FREQ=WEEKLY;COUNT=3
"""


def test_editing_the_calendar_updates_only_the_edited_occurrences(
    runtime: Runtime, tmp_path: Path
) -> None:
    # Fridays 10:00 New York: 03-01 and 03-08 in EST (15:00Z), 03-15 in EDT (14:00Z).
    first = import_file(runtime, write(tmp_path, SERIES))
    assert counts(first) == (3, 0, 0, 0)
    assert stored(runtime) == {
        "weekly-ann@20240301T150000Z": (utc(2024, 3, 1, 15), utc(2024, 3, 1, 15, 50), "booked"),
        "weekly-ann@20240308T150000Z": (utc(2024, 3, 8, 15), utc(2024, 3, 8, 15, 50), "booked"),
        "weekly-ann@20240315T140000Z": (utc(2024, 3, 15, 14), utc(2024, 3, 15, 14, 50), "booked"),
    }
    with runtime.transaction() as session:
        appointment = session.scalars(select(Appointment)).first()
        assert appointment is not None
        assert appointment.telehealth_url == "https://video.practice.example/rao"
        assert appointment.location_id is None
    assert "panic" not in everything_stored(runtime)

    # The second session moves to 11:00, the third is cancelled.
    moved = """
UID:weekly-ann
RECURRENCE-ID;TZID=America/New_York:20240308T100000
ORGANIZER;CN=Dr Rao:mailto:rao@practice.example
ATTENDEE;CN=Ann Lee:mailto:ann@example.com
DTSTART;TZID=America/New_York:20240308T110000
DTEND;TZID=America/New_York:20240308T115000
"""
    cancelled = """
UID:weekly-ann
RECURRENCE-ID;TZID=America/New_York:20240315T100000
STATUS:CANCELLED
ATTENDEE;CN=Ann Lee:mailto:ann@example.com
DTSTART;TZID=America/New_York:20240315T100000
DTEND;TZID=America/New_York:20240315T105000
"""
    second = import_file(runtime, write(tmp_path, SERIES, moved, cancelled))
    assert counts(second) == (0, 2, 1, 0)
    assert stored(runtime) == {
        "weekly-ann@20240301T150000Z": (utc(2024, 3, 1, 15), utc(2024, 3, 1, 15, 50), "booked"),
        "weekly-ann@20240308T150000Z": (utc(2024, 3, 8, 16), utc(2024, 3, 8, 16, 50), "booked"),
        "weekly-ann@20240315T140000Z": (
            utc(2024, 3, 15, 14),
            utc(2024, 3, 15, 14, 50),
            "cancelled",
        ),
    }
    assert count(runtime, Patient) == 1
