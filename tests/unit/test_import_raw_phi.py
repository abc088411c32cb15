"""Rejected rows are kept for replay, but never with the free text a clinician wrote."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from frontdesk.adapters.importers.ics_file import read_ics

CALENDAR = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//EN
BEGIN:VEVENT
UID:no-attendee-1
DTSTART:20261203T150000Z
DTEND:20261203T155000Z
SUMMARY:Session
DESCRIPTION:Discussed relapse plan and medication change
COMMENT:Patient mentioned panic attacks
BEGIN:VALARM
ACTION:DISPLAY
DESCRIPTION:Alarm text about the medication
TRIGGER:-PT15M
END:VALARM
END:VEVENT
END:VCALENDAR
"""


def test_rejected_ics_row_keeps_the_event_but_not_its_notes(tmp_path: Path) -> None:
    path = tmp_path / "cal.ics"
    path.write_text(CALENDAR)
    rows = list(
        read_ics(
            path,
            source="ics",
            context={"default_region": "US", "default_timezone": "America/New_York"},
            window_start=datetime(2026, 12, 1, tzinfo=UTC),
            window_end=datetime(2026, 12, 31, tzinfo=UTC),
        )
    )
    assert len(rows) == 1
    row = rows[0]
    assert not row.ok  # no attendee: the patient is unknown
    assert "UID:no-attendee-1" in row.raw
    assert "DTSTART:20261203T150000Z" in row.raw
    for note in ("relapse", "panic", "medication"):
        assert note not in row.raw
