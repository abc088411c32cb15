"""iCalendar import, parsing only: which occurrences become which rows.

Expectations on the shared files (../shared/external/icalendar) were worked out by hand from
the file text, with the weekday and daylight-saving dates of the calendar years involved:
- Europe/Berlin changed to summer time on 2019-03-31 (CET +01:00 → CEST +02:00);
- America/Los_Angeles went back to standard time on 2012-11-04 (PDT -07:00 → PST -08:00).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from conftest import shared_file
from frontdesk.adapters.importers.base import ImportRow
from frontdesk.adapters.importers.ics_file import read_ics
from frontdesk.domain.errors import FieldError, ValidationFailed
from frontdesk.domain.intake import AppointmentIn

US = {"default_region": "US", "default_timezone": "America/New_York"}
EVERYTHING = (datetime(1990, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC))


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def rows_of(
    path: Path,
    start: datetime = EVERYTHING[0],
    end: datetime = EVERYTHING[1],
    patient_from: str = "attendee",
    context: dict[str, Any] | None = None,
) -> list[ImportRow]:
    return list(
        read_ics(
            path,
            source="ics",
            context=US if context is None else context,
            window_start=start,
            window_end=end,
            patient_from=patient_from,
        )
    )


def record(row: ImportRow) -> AppointmentIn:
    assert row.ok, row.errors
    assert isinstance(row.record, AppointmentIn)
    return row.record


def times(row: ImportRow) -> tuple[datetime, datetime | None]:
    appointment = record(row)
    return appointment.start, appointment.end


def of_uid(rows: list[ImportRow], uid: str) -> list[ImportRow]:
    return [r for r in rows if r.external_id == uid or r.external_id.startswith(uid + "@")]


def write(tmp_path: Path, *events: str, calendar_lines: str = "") -> Path:
    """A calendar of ``events`` (VEVENT bodies without BEGIN/END), with CRLF line ends."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//frontdesk tests//EN"]
    lines += [line for line in calendar_lines.splitlines() if line]
    for event in events:
        lines += ["BEGIN:VEVENT", *[line for line in event.strip().splitlines() if line]]
        lines.append("END:VEVENT")
    lines.append("END:VCALENDAR")
    path = tmp_path / "calendar.ics"
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("utf-8"))
    return path


ANN = "ATTENDEE;CN=Ann Lee:mailto:Ann.Lee@Example.com"


# --- real calendars -------------------------------------------------------------------------


def test_weekly_series_across_the_berlin_summer_time_change() -> None:
    # "#TEC - für Jugendliche": every Thursday 15:00-17:00 Europe/Berlin from 2019-01-17, no end.
    path = shared_file("icalendar", "recurring_ical_events", "daylight_saving_time.ics")
    rows = rows_of(path, utc(2019, 3, 25), utc(2019, 4, 8), patient_from="summary")
    tec = of_uid(rows, "ctfr0ikn17n8okmi83au0qfuhs@google.com")

    assert [r.external_id for r in tec] == [
        "ctfr0ikn17n8okmi83au0qfuhs@google.com@20190328T140000Z",  # 15:00 CET
        "ctfr0ikn17n8okmi83au0qfuhs@google.com@20190404T130000Z",  # 15:00 CEST
    ]
    assert [times(r) for r in tec] == [
        (utc(2019, 3, 28, 14), utc(2019, 3, 28, 16)),
        (utc(2019, 4, 4, 13), utc(2019, 4, 4, 15)),
    ]
    assert tec[0].reference == (
        "daylight_saving_time.ics UID ctfr0ikn17n8okmi83au0qfuhs@google.com"
        " @ 2019-03-28T15:00:00+01:00"
    )
    first = record(tec[0])
    assert first.patient.name == "#TEC - für Jugendliche"
    assert first.location is not None and first.location.name == "Haus 5 - machBar"
    assert first.status == "booked"


def test_exdate_removes_one_occurrence_of_a_weekly_series() -> None:
    # "Montessori Schulklasse": Thursdays 08:30-14:30 Berlin from 2019-02-28, EXDATE 2019-03-07.
    path = shared_file("icalendar", "recurring_ical_events", "daylight_saving_time.ics")
    rows = rows_of(path, utc(2019, 2, 25), utc(2019, 3, 18))
    montessori = of_uid(rows, "7g6502aejkun96i5fenfu6hvc1@google.com")

    assert [r.external_id for r in montessori] == [
        "7g6502aejkun96i5fenfu6hvc1@google.com@20190228T073000Z",
        "7g6502aejkun96i5fenfu6hvc1@google.com@20190314T073000Z",
    ]
    assert times(montessori[1]) == (utc(2019, 3, 14, 7, 30), utc(2019, 3, 14, 13, 30))
    # Its only ATTENDEE (Google's own group calendar) is taken as the patient: there is no
    # ORGANIZER to tell them apart.
    patient = record(montessori[0]).patient
    address = "j68lhv614hbv3u4ttbrs6glhpg@group.calendar.google.com"
    assert (patient.external_id, patient.source, patient.email, patient.name) == (
        address,
        "ics",
        address,
        None,
    )


def test_edited_occurrences_keep_their_planned_id_and_take_their_new_time() -> None:
    # "mB-onTour: repairCafé": 3rd Saturday 11:00 Berlin from 2018-11-17 until 2019-03-15;
    # the 2018-12-15, 2019-01-19 and 2019-02-16 sessions were moved (RECURRENCE-ID).
    path = shared_file("icalendar", "recurring_ical_events", "daylight_saving_time.ics")
    rows = rows_of(path, utc(2018, 11, 1), utc(2019, 4, 1), patient_from="summary")
    repair = of_uid(rows, "ome5r9735mpdoo3n6lpf8oi0c4@google.com")

    uid = "ome5r9735mpdoo3n6lpf8oi0c4@google.com"
    assert [(r.external_id, times(r)[0]) for r in repair] == [
        (f"{uid}@20181117T100000Z", utc(2018, 11, 17, 10)),
        (f"{uid}@20181215T100000Z", utc(2018, 12, 8, 10)),
        (f"{uid}@20190119T100000Z", utc(2019, 1, 27, 10)),
        (f"{uid}@20190216T100000Z", utc(2019, 2, 24, 10)),
    ]  # 2019-03-16 is after UNTIL
    moved = record(repair[1])
    assert moved.location is not None
    assert moved.location.name.startswith("Stadt- u. Landesbibliothek Potsdam")
    edited = record(repair[2])
    assert edited.location is not None
    assert edited.location.name.startswith("Treffpunkt Freizeit")


def test_an_occurrence_moved_into_the_window_is_found_by_its_new_time() -> None:
    path = shared_file("icalendar", "recurring_ical_events", "daylight_saving_time.ics")
    rows = rows_of(path, utc(2019, 1, 20), utc(2019, 1, 31), patient_from="summary")

    repair = of_uid(rows, "ome5r9735mpdoo3n6lpf8oi0c4@google.com")
    assert [r.external_id for r in repair] == [
        "ome5r9735mpdoo3n6lpf8oi0c4@google.com@20190119T100000Z"
    ]


def test_all_day_events_of_a_real_calendar_are_rejected() -> None:
    # "34c3 in der machBar" is the one event on 2017-12-27, all day (DTSTART;VALUE=DATE).
    path = shared_file("icalendar", "recurring_ical_events", "daylight_saving_time.ics")
    rows = rows_of(path, utc(2017, 12, 27, 5), utc(2017, 12, 28), patient_from="summary")

    assert [(r.external_id, r.ok, r.errors) for r in rows] == [
        (
            "27sgrcdu4099mtq830biaal87d@google.com",
            False,
            [FieldError("DTSTART", "all-day event: not an appointment")],
        )
    ]


def test_rdate_and_exdate_as_a_date() -> None:
    # Daily at 03:00Z from 2024-06-09, COUNT=4, EXDATE;VALUE=DATE:20240611 removes the third.
    # The file has neither SUMMARY nor ATTENDEE, so every occurrence is rejected for that.
    rows = rows_of(shared_file("icalendar", "ical_js", "rdate_exdate.ics"), patient_from="summary")

    assert [r.external_id for r in rows] == [
        "123@20240609T030000Z",
        "123@20240610T030000Z",
        "123@20240612T030000Z",
    ]
    assert {e.message for r in rows for e in r.errors} == {
        "the event has no SUMMARY to identify the patient"
    }
    assert rows[0].reference == "rdate_exdate.ics UID 123 @ 2024-06-09T03:00:00+00:00"


def test_weekly_series_with_one_deleted_week_and_a_dst_change() -> None:
    # Mondays 00:30-01:00 Berlin from 2019-03-04, COUNT=8; EXDATE 20190310T233000Z is the
    # second one (2019-03-11 00:30 CET). After 2019-03-31 00:30 Berlin is 22:30Z the day before.
    rows = rows_of(
        shared_file("icalendar", "recurring_ical_events", "each_week_but_one_deleted.ics"),
        patient_from="summary",
    )

    assert [times(r) for r in rows] == [
        (utc(2019, 3, 3, 23, 30), utc(2019, 3, 4, 0)),
        (utc(2019, 3, 17, 23, 30), utc(2019, 3, 18, 0)),
        (utc(2019, 3, 24, 23, 30), utc(2019, 3, 25, 0)),
        (utc(2019, 3, 31, 22, 30), utc(2019, 3, 31, 23)),
        (utc(2019, 4, 7, 22, 30), utc(2019, 4, 7, 23)),
        (utc(2019, 4, 14, 22, 30), utc(2019, 4, 14, 23)),
        (utc(2019, 4, 21, 22, 30), utc(2019, 4, 21, 23)),
    ]
    assert "SX2CURHKFTKKFFU3VUD7K@20190310T233000Z" not in {r.external_id for r in rows}
    assert {record(r).patient.name for r in rows} == {"test6"}


def test_custom_vtimezone_is_used_for_the_wall_time() -> None:
    # TZID custom_America/New_York is defined in the file; 2014-08-29 08:00 is EDT (-04:00).
    rows = rows_of(
        shared_file("icalendar", "collective_icalendar", "america_new_york.ics"),
        patient_from="summary",
    )

    assert [(r.external_id, times(r)) for r in rows] == [
        ("noend123", (utc(2014, 8, 29, 12), utc(2014, 8, 29, 14)))
    ]
    assert record(rows[0]).patient.name == "an event with a custom tz name"


def test_duration_instead_of_dtend() -> None:
    # 2012-06-30 06:00 America/Los_Angeles (PDT) with DURATION:P1D.
    rows = rows_of(
        shared_file("icalendar", "ical_js", "duration_instead_of_dtend.ics"), patient_from="summary"
    )

    assert [(r.external_id, times(r)) for r in rows] == [
        ("dn4vrfmfn5p05roahsopg57h48@example.com", (utc(2012, 6, 30, 13), utc(2012, 7, 1, 13)))
    ]
    assert record(rows[0]).location is None  # LOCATION is empty


def test_attendee_who_is_not_the_organizer_with_rdates_across_a_dst_end() -> None:
    # First Tuesday of the month 10:00-10:30 Los Angeles from 2012-10-02 until 2012-12-31, plus
    # RDATEs 2012-11-05 and 2012-11-10: Oct 2 (PDT), Nov 5, 6, 10 and Dec 4 (PST).
    rows = rows_of(shared_file("icalendar", "ical_js", "recur_instances_finite.ics"))

    uid = "623c13c0-6c2b-45d6-a12b-c33ad61c4868"
    assert [(r.external_id, times(r)) for r in rows] == [
        (f"{uid}@20121002T170000Z", (utc(2012, 10, 2, 17), utc(2012, 10, 2, 17, 30))),
        (f"{uid}@20121105T180000Z", (utc(2012, 11, 5, 18), utc(2012, 11, 5, 18, 30))),
        (f"{uid}@20121106T180000Z", (utc(2012, 11, 6, 18), utc(2012, 11, 6, 18, 30))),
        (f"{uid}@20121110T180000Z", (utc(2012, 11, 10, 18), utc(2012, 11, 10, 18, 30))),
        (f"{uid}@20121204T180000Z", (utc(2012, 12, 4, 18), utc(2012, 12, 4, 18, 30))),
    ]
    appointment = record(rows[0])
    assert appointment.patient.external_id == "calmozilla1@gmail.com"
    assert appointment.patient.name == "Sahaja Lal"
    assert appointment.patient.email == "calmozilla1@gmail.com"
    assert appointment.location is not None and appointment.location.name == "PLACE"
    # DESCRIPTION:IAM FOO never reaches the record.
    assert "IAM FOO" not in appointment.model_dump_json()


def test_two_rrules_are_both_expanded() -> None:
    # Weekly on Mondays and monthly on every Sunday, both from 2012-03-26 11:00 Los Angeles
    # until 2012-07-29 23:59:59 local: 18 Mondays (Mar 26 … Jul 23) and 18 Sundays (Apr 1 …
    # Jul 29). The patient is the attendee James Lal; Faramarz Rashed organizes.
    rows = rows_of(shared_file("icalendar", "ical_js", "multiple_rrules.ics"))

    assert len(rows) == 36
    assert all(r.ok for r in rows)
    starts = [times(r)[0] for r in rows]
    assert starts[0] == utc(2012, 3, 26, 18)
    assert starts[-1] == utc(2012, 7, 29, 18)
    assert {s.weekday() for s in starts} == {0, 6}
    assert sum(1 for s in starts if s.weekday() == 0) == 18
    assert {(record(r).patient.external_id, record(r).patient.name) for r in rows} == {
        ("jlal@mozilla.com", "James Lal")
    }


def test_a_broken_event_is_rejected_and_the_others_still_read() -> None:
    # Two all-day daily series from 2008-03-03 until 2008-03-23 without UIDs; the second has an
    # empty EXDATE that icalendar cannot parse. The first gives 21 days minus EXDATE 03-11.
    rows = rows_of(shared_file("icalendar", "collective_icalendar", "parsing_error.ics"))

    broken = [r for r in rows if any(e.loc == "EXDATE" for e in r.errors)]
    assert len(broken) == 1
    assert broken[0].reference == "parsing_error.ics UID (none) @ 2008-03-03"
    # The broken event is kept for replay (its empty EXDATE included), its DESCRIPTION is not.
    assert "EXDATE;VALUE=DATE:\r\n" in broken[0].raw
    assert "Wrong event" not in broken[0].raw
    daily = [r for r in rows if r not in broken]
    assert len(daily) == 20
    assert {e.message for r in daily for e in r.errors} == {"all-day event: not an appointment"}
    assert not any("@ 2008-03-11" in r.reference for r in daily)


# --- the rules, on small calendars ----------------------------------------------------------


def test_patient_is_the_first_attendee_who_is_not_the_organizer(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
UID:a1
DTSTART:20240305T150000Z
DTEND:20240305T155000Z
ORGANIZER;CN=Dr Rao:mailto:rao@practice.example
ATTENDEE;CN=Dr Rao:MAILTO:Rao@Practice.example
ATTENDEE;CUTYPE=ROOM;CN=Room 2:mailto:room2@practice.example
ATTENDEE;CN=Ann Lee:mailto:Ann.Lee@Example.com
ATTENDEE;CN=Bob:mailto:bob@example.com
""",
    )
    [row] = rows_of(path)

    patient = record(row).patient
    assert (patient.external_id, patient.name, patient.email, patient.source) == (
        "ann.lee@example.com",
        "Ann Lee",
        "ann.lee@example.com",
        "ics",
    )
    assert row.external_id == "a1"  # not recurring: the UID alone
    assert times(row) == (utc(2024, 3, 5, 15), utc(2024, 3, 5, 15, 50))


def test_an_event_without_attendee_is_rejected_unless_the_summary_names_the_patient(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        "UID:a1\nSUMMARY:Ann Lee\nDTSTART:20240305T150000Z\nDTEND:20240305T155000Z",
        "UID:a2\nSUMMARY:ANN LEE \nDTSTART:20240312T150000Z\nDTEND:20240312T155000Z",
        "UID:a3\nSUMMARY:Bob Stone\nDTSTART:20240319T150000Z\nDTEND:20240319T155000Z",
        "UID:a4\nORGANIZER:mailto:rao@practice.example\nATTENDEE:mailto:rao@practice.example\n"
        "SUMMARY:x\nDTSTART:20240319T150000Z",
    )

    by_attendee = rows_of(path)
    assert [e for r in by_attendee for e in r.errors] == 4 * [
        FieldError(
            "ATTENDEE",
            "event has no attendee to identify the patient (use --patient-from summary)",
        )
    ]

    by_summary = [record(r).patient for r in rows_of(path, patient_from="summary")]
    ann = "summary:" + hashlib.sha256(b"ann lee").hexdigest()[:16]
    assert [p.external_id for p in by_summary[:3]] == [
        ann,
        ann,
        "summary:" + hashlib.sha256(b"bob stone").hexdigest()[:16],
    ]
    assert [p.name for p in by_summary[:3]] == ["Ann Lee", "ANN LEE", "Bob Stone"]
    assert by_summary[0].email is None


def test_all_day_event_is_not_an_appointment(tmp_path: Path) -> None:
    path = write(tmp_path, f"UID:d1\nDTSTART;VALUE=DATE:20240305\nDTEND;VALUE=DATE:20240306\n{ANN}")

    [row] = rows_of(path)
    assert not row.ok
    assert row.record is None
    assert row.errors == [FieldError("DTSTART", "all-day event: not an appointment")]
    assert row.external_id == "d1"
    assert row.reference == "calendar.ics UID d1 @ 2024-03-05"


@pytest.mark.parametrize(
    ("status_line", "expected"),
    [
        ("STATUS:CANCELLED", "cancelled"),
        ("STATUS:cancelled", "cancelled"),
        ("STATUS:TENTATIVE", "pending"),
        ("STATUS:CONFIRMED", "booked"),
        ("", "booked"),
    ],
)
def test_status(tmp_path: Path, status_line: str, expected: str) -> None:
    path = write(tmp_path, f"UID:s1\nDTSTART:20240305T150000Z\n{status_line}\n{ANN}")

    [row] = rows_of(path)
    assert record(row).status == expected


def test_floating_time_is_a_wall_time_in_the_default_zone(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"UID:f1\nDTSTART:20240305T150000\nDTEND:20240305T155000\n{ANN}",  # EST, -05:00
        f"UID:f2\nDTSTART:20240702T090000\nDURATION:PT45M\n{ANN}",  # EDT, -04:00
        f"UID:f3\nDTSTART:20240308T090000\nRRULE:FREQ=DAILY;COUNT=3\nDURATION:PT1H\n{ANN}",
    )

    rows = rows_of(path)
    assert [(r.external_id, times(r)) for r in rows] == [
        ("f1", (utc(2024, 3, 5, 20), utc(2024, 3, 5, 20, 50))),
        ("f2", (utc(2024, 7, 2, 13), utc(2024, 7, 2, 13, 45))),
        # Recurring floating occurrences keep wall-clock ids (no Z): they must not change if
        # the practice's default zone does. 2024-03-10 is the US spring-forward day.
        ("f3@20240308T090000", (utc(2024, 3, 8, 14), utc(2024, 3, 8, 15))),
        ("f3@20240309T090000", (utc(2024, 3, 9, 14), utc(2024, 3, 9, 15))),
        ("f3@20240310T090000", (utc(2024, 3, 10, 13), utc(2024, 3, 10, 14))),
    ]
    # In Chicago the same file means other instants.
    chicago = rows_of(path, context={**US, "default_timezone": "America/Chicago"})
    assert times(chicago[0])[0] == utc(2024, 3, 5, 21)


def test_floating_time_without_a_default_zone_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, f"UID:f1\nDTSTART:20240305T150000\n{ANN}")

    [row] = rows_of(path, context={"default_region": "US"})
    assert not row.ok
    assert [e.loc for e in row.errors] == ["DTSTART"]
    assert row.errors[0].message.startswith("no UTC offset")


def test_floating_time_skipped_by_daylight_saving_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, f"UID:f1\nDTSTART:20240310T023000\n{ANN}")

    [row] = rows_of(path)
    assert not row.ok
    assert row.errors[0].loc == "DTSTART"
    assert "does not exist in America/New_York" in row.errors[0].message


def test_event_without_end_or_duration_gets_the_practice_session_length(tmp_path: Path) -> None:
    path = write(tmp_path, f"UID:n1\nDTSTART:20240305T150000Z\n{ANN}")

    [row] = rows_of(path)
    assert times(row) == (utc(2024, 3, 5, 15), None)
    assert record(row).resolved_end(50) == utc(2024, 3, 5, 15, 50)


@pytest.mark.parametrize(
    ("lines", "location", "telehealth_url"),
    [
        ("LOCATION:Office 3\\, 12 Main St", "Office 3, 12 Main St", None),
        ("LOCATION:https://zoom.us/j/123?pwd=x", None, "https://zoom.us/j/123?pwd=x"),
        ("LOCATION:Video: https://meet.example/abc.", None, "https://meet.example/abc"),
        ("LOCATION:Office 3\nURL:https://meet.example/abc", "Office 3", "https://meet.example/abc"),
        ("URL:https://meet.example/abc", None, "https://meet.example/abc"),
        ("URL:http://meet.example/abc", None, None),  # not https: not offered to patients
        ("LOCATION:" + "x" * 250, "x" * 200, None),
        ("", None, None),
    ],
)
def test_location_or_telehealth_url(
    tmp_path: Path, lines: str, location: str | None, telehealth_url: str | None
) -> None:
    path = write(tmp_path, f"UID:l1\nDTSTART:20240305T150000Z\n{lines}\n{ANN}")

    appointment = record(rows_of(path)[0])
    assert (appointment.location.name if appointment.location else None) == location
    assert appointment.telehealth_url == telehealth_url
    # Sent even when empty, so that a location removed from the calendar is removed here too.
    assert {"location", "telehealth_url"} <= appointment.model_fields_set


def test_free_text_never_reaches_the_record(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
UID:p1
SUMMARY:Session
DESCRIPTION:Discussed panic attacks\\, medication change
COMMENT:Private note about trauma
X-ALT-DESC;FMTTYPE=text/html:<p>Discussed panic attacks</p>
CATEGORIES:Anxiety
DTSTART:20240305T150000Z
DTEND:20240305T155000Z
{ANN}
""",
    )

    for patient_from in ("attendee", "summary"):
        [row] = rows_of(path, patient_from=patient_from)
        dumped = record(row).model_dump_json()
        for secret in ("panic", "medication", "trauma", "Anxiety"):
            assert secret not in dumped


def test_recurring_external_ids_are_unique_after_a_this_and_future_edit(tmp_path: Path) -> None:
    # From 2024-03-15 on, the weekly 10:00 session moved to 12:00 (RANGE=THISANDFUTURE).
    path = write(
        tmp_path,
        f"""
UID:r1
DTSTART;TZID=America/New_York:20240301T100000
DTEND;TZID=America/New_York:20240301T110000
RRULE:FREQ=WEEKLY;COUNT=5
{ANN}
""",
        f"""
UID:r1
RECURRENCE-ID;RANGE=THISANDFUTURE;TZID=America/New_York:20240315T100000
DTSTART;TZID=America/New_York:20240315T120000
DTEND;TZID=America/New_York:20240315T130000
{ANN}
""",
    )

    rows = rows_of(path)
    assert [(r.external_id, times(r)[0]) for r in rows] == [
        ("r1@20240301T150000Z", utc(2024, 3, 1, 15)),  # EST
        ("r1@20240308T150000Z", utc(2024, 3, 8, 15)),
        ("r1@20240315T140000Z", utc(2024, 3, 15, 16)),  # EDT from 2024-03-10
        ("r1@20240322T140000Z", utc(2024, 3, 22, 16)),
        ("r1@20240329T140000Z", utc(2024, 3, 29, 16)),
    ]


def test_window_is_by_start_half_open(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"UID:w1\nDTSTART:20240305T090000Z\nDTEND:20240305T100000Z\n{ANN}",  # on the start
        f"UID:w2\nDTSTART:20240305T083000Z\nDTEND:20240305T093000Z\n{ANN}",  # overlaps only
        f"UID:w3\nDTSTART:20240306T090000Z\nDTEND:20240306T100000Z\n{ANN}",  # on the end
        f"UID:w4\nDTSTART:20240305T235959Z\nDTEND:20240306T003000Z\n{ANN}",
    )

    rows = rows_of(path, utc(2024, 3, 5, 9), utc(2024, 3, 6, 9))
    assert [r.external_id for r in rows] == ["w1", "w4"]
    # Windows in another zone mean the same instants.
    eastern = utc(2024, 3, 5, 9).astimezone(ZoneInfo("America/New_York"))
    assert [r.external_id for r in rows_of(path, eastern, eastern + timedelta(days=1))] == [
        "w1",
        "w4",
    ]


def test_long_uid_is_shortened_stably(tmp_path: Path) -> None:
    uid = "https://calendar.example.org/events/" + "a" * 300
    path = write(
        tmp_path,
        f"UID:{uid}\nDTSTART:20240305T150000Z\nRRULE:FREQ=DAILY;COUNT=2\n{ANN}",
    )

    rows = rows_of(path)
    expected = [
        "sha256:" + hashlib.sha256(f"{uid}@{day}".encode()).hexdigest()
        for day in ("20240305T150000Z", "20240306T150000Z")
    ]
    assert [r.external_id for r in rows] == expected
    assert all(len(r.external_id) <= 200 for r in rows)
    assert [r.external_id for r in rows_of(path)] == expected


def test_event_without_uid_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, f"DTSTART:20240305T150000Z\n{ANN}")

    [row] = rows_of(path)
    assert [e.loc for e in row.errors] == ["UID"]


def test_one_broken_event_does_not_stop_the_others(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"UID:bad1\nDTSTART:20240305T150000Z\nRRULE:FREQ=WEEKLY;BYDAY=XX\n{ANN}",
        f"UID:bad2\nDTSTART:2024-03-05 garbage\n{ANN}",
        f"UID:bad3\nDTEND:20240305T150000Z\n{ANN}",
        f"UID:bad4\nDTSTART:20240305T150000Z\nDTSTART:20240305T160000Z\n{ANN}",
        f"UID:good\nDTSTART:20240305T150000Z\n{ANN}",
        f"UID:late\nDTSTART:20240305T150000Z\nDTEND:20240305T140000Z\n{ANN}",
    )

    rows = rows_of(path)
    assert [(r.external_id, r.ok) for r in rows] == [
        ("bad1", False),
        ("bad2", False),
        ("bad3", False),
        ("bad4", False),
        ("good", True),
        ("late", False),
    ]
    assert [e.loc for e in rows[0].errors] == ["RRULE"]
    assert [e.loc for e in rows[1].errors] == ["DTSTART"]
    assert rows[2].errors == [FieldError("DTSTART", "the event has no start")]
    assert rows[3].errors == [FieldError("DTSTART", "appears more than once")]
    assert rows[5].errors == [FieldError("DTEND", "is before DTSTART")]


def test_raw_is_the_occurrence_text_and_bounded(tmp_path: Path) -> None:
    path = write(tmp_path, f"UID:big\nDTSTART:20240305T150000Z\nX-BLOB:{'z' * 30000}\n{ANN}")

    [row] = rows_of(path)
    assert row.raw.startswith("BEGIN:VEVENT")
    assert len(row.raw) == 20_000


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "not an iCalendar file"),
        (b"this is not a calendar\r\n", "not an iCalendar file"),
        (b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:1\r\n", "not an iCalendar file"),
        (b"BEGIN:VEVENT\r\nUID:1\r\nEND:VEVENT\r\n", "it has no VCALENDAR"),
        (
            b"BEGIN:VCALENDAR\r\nX-WR-TIMEZONE:Mars/Olympus\r\nEND:VCALENDAR\r\n",
            "X-WR-TIMEZONE 'Mars/Olympus' is not a known zone",
        ),
    ],
)
def test_unreadable_file_raises_before_any_row(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "broken.ics"
    path.write_bytes(content)

    with pytest.raises(ValidationFailed) as caught:
        rows_of(path)
    [error] = caught.value.errors
    assert error.loc == str(path)
    assert reason in error.message


def test_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(ValidationFailed) as caught:
        rows_of(tmp_path / "absent.ics")
    assert caught.value.errors[0].loc == str(tmp_path / "absent.ics")


def test_bad_arguments(tmp_path: Path) -> None:
    path = write(tmp_path, f"UID:a\nDTSTART:20240305T150000Z\n{ANN}")
    with pytest.raises(ValidationFailed):
        rows_of(path, patient_from="description")
    with pytest.raises(ValueError, match="UTC offset"):
        rows_of(path, datetime(2024, 1, 1), datetime(2025, 1, 1))  # noqa: DTZ001


def test_google_x_wr_timezone_calendar(tmp_path: Path) -> None:
    # Google writes UTC times and names the calendar's zone in X-WR-TIMEZONE; the weekly series
    # then follows Berlin wall-clock time across the 2019-03-31 change.
    path = write(
        tmp_path,
        f"UID:g1\nDTSTART:20190321T090000Z\nDTEND:20190321T100000Z\nRRULE:FREQ=WEEKLY;COUNT=3\n{ANN}",
        calendar_lines="X-WR-TIMEZONE:Europe/Berlin",
    )

    rows = rows_of(path)
    assert [(r.external_id, times(r)[0]) for r in rows] == [
        ("g1@20190321T090000Z", utc(2019, 3, 21, 9)),
        ("g1@20190328T090000Z", utc(2019, 3, 28, 9)),
        ("g1@20190404T080000Z", utc(2019, 4, 4, 8)),
    ]
