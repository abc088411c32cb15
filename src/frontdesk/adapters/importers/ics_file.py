"""iCalendar (.ics) appointments: every occurrence of every event that starts inside a window.

Recurrence (RRULE, RDATE, EXDATE, edited occurrences) and time zones (VTIMEZONE, X-WR-TIMEZONE)
are expanded by ``recurring_ical_events``; this module only says what an occurrence means to the
practice. Free text (DESCRIPTION, COMMENT, attachments) never reaches the record: a calendar
note is often a clinical note, and reminders need none of it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

import recurring_ical_events
from icalendar import Calendar, Component

from frontdesk.adapters.importers.base import ImportRow, build_row, rejected
from frontdesk.domain.errors import FieldError, ValidationFailed
from frontdesk.domain.times import is_valid_zone, zone

PATIENT_FROM = ("attendee", "summary")
MAX_ID = 200
MAX_NAME = 200
MAX_RAW = 20_000
# Floating times are placed in the practice's zone only after the library has expanded them, so
# the library is asked for a wider span and occurrences are then kept by their real start.
_MARGIN = timedelta(days=1)
# A parse error in one of these changes when the event happens or whom it is for; errors in other
# properties (X-*, DESCRIPTION, DTSTAMP) do not matter to an appointment.
_PROPERTIES_WE_USE = frozenset(
    {
        "UID",
        "DTSTART",
        "DTEND",
        "DURATION",
        "RRULE",
        "RDATE",
        "EXDATE",
        "RECURRENCE-ID",
        "STATUS",
        "ATTENDEE",
        "ORGANIZER",
        "SUMMARY",
        "LOCATION",
        "URL",
    }
)
_SINGLE = ("UID", "DTSTART", "DTEND", "DURATION", "RECURRENCE-ID")
_NOT_PEOPLE = frozenset({"ROOM", "RESOURCE"})
_HTTPS_URL = re.compile(r"https://[^\s<>\"']+", re.IGNORECASE)
_STATUS = {"CANCELLED": "cancelled", "TENTATIVE": "pending"}


@dataclass(frozen=True)
class _Import:
    """What every row of one file needs to know."""

    file_name: str
    source: str
    context: dict[str, Any]
    window_start: datetime
    window_end: datetime
    floating_zone: tzinfo
    patient_from: str


def read_ics(
    path: Path,
    *,
    source: str,
    context: dict[str, Any],
    window_start: datetime,
    window_end: datetime,
    patient_from: str = "attendee",
) -> Iterator[ImportRow]:
    """Appointment rows for the occurrences of ``path`` starting in [window_start, window_end).

    A file icalendar cannot read raises ``ValidationFailed`` before any row; an event that is
    broken on its own becomes a rejected row and the others still import.
    """
    if patient_from not in PATIENT_FROM:
        raise ValidationFailed(
            [FieldError("patient_from", f"must be one of {', '.join(PATIENT_FROM)}")]
        )
    if window_start.tzinfo is None or window_end.tzinfo is None:
        raise ValueError("window_start and window_end must carry a UTC offset")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValidationFailed([FieldError(str(path), exc.strerror or str(exc))]) from exc
    yield from read_ics_bytes(
        data,
        label=str(path),
        file_name=path.name,
        source=source,
        context=context,
        window_start=window_start,
        window_end=window_end,
        patient_from=patient_from,
    )


def read_ics_bytes(
    data: bytes,
    *,
    label: str,
    file_name: str,
    source: str,
    context: dict[str, Any],
    window_start: datetime,
    window_end: datetime,
    patient_from: str = "attendee",
) -> Iterator[ImportRow]:
    """``read_ics`` for a calendar already in memory (an iCalendar feed): ``label`` locates
    errors about the whole calendar, ``file_name`` names it in messages and row references."""
    if patient_from not in PATIENT_FROM:
        raise ValidationFailed(
            [FieldError("patient_from", f"must be one of {', '.join(PATIENT_FROM)}")]
        )
    if window_start.tzinfo is None or window_end.tzinfo is None:
        raise ValueError("window_start and window_end must carry a UTC offset")
    calendars = _parse(data, label, file_name)
    default_zone = context.get("default_timezone")
    job = _Import(
        file_name=file_name,
        source=source,
        context=context,
        window_start=window_start.astimezone(UTC),
        window_end=window_end.astimezone(UTC),
        floating_zone=zone(default_zone) if default_zone and is_valid_zone(default_zone) else UTC,
        patient_from=patient_from,
    )
    for calendar in calendars:
        for series in _series_of(calendar):
            yield from _series_rows(job, calendar, series)


def _parse(data: bytes, label: str, name: str) -> list[Calendar]:
    try:
        components = Calendar.from_ical(data, multiple=True)
    except ValueError as exc:
        raise ValidationFailed(
            [FieldError(label, f"not an iCalendar file: {exc}")],
            message=f"{name} cannot be read.",
        ) from exc
    calendars = [c for c in components if isinstance(c, Calendar) and c.name == "VCALENDAR"]
    if not calendars:
        raise ValidationFailed(
            [FieldError(label, "not an iCalendar file: it has no VCALENDAR")],
            message=f"{name} cannot be read.",
        )
    for calendar in calendars:
        # The library would fail on every event of such a calendar; one clear error is better.
        wr_zone = calendar.get("X-WR-TIMEZONE")
        if wr_zone is not None and not is_valid_zone(str(wr_zone)):
            raise ValidationFailed(
                [FieldError(label, f"X-WR-TIMEZONE {str(wr_zone)!r} is not a known zone")],
                message=f"{name} cannot be read.",
            )
    return calendars


def _series_of(calendar: Calendar) -> Iterator[list[Component]]:
    """The events of ``calendar`` grouped by UID: a series and its edited occurrences."""
    by_uid: dict[str, list[Component]] = {}
    for component in calendar.subcomponents:
        if component.name != "VEVENT":
            continue
        uid = _text(component.get("UID"))
        if uid is None:
            yield [component]  # nothing ties it to another event
        else:
            by_uid.setdefault(uid, []).append(component)
    yield from by_uid.values()


def _series_rows(job: _Import, calendar: Calendar, events: list[Component]) -> Iterator[ImportRow]:
    uid = _text(events[0].get("UID")) or ""
    problems = [
        FieldError(name or "event", message)
        for event in events
        for name, message in event.errors
        if name is None or name.upper() in _PROPERTIES_WE_USE
    ]
    for event in events:
        if "DTSTART" not in event:
            problems.append(FieldError("DTSTART", "the event has no start"))
        problems += [
            FieldError(name, "appears more than once")
            for name in _SINGLE
            if isinstance(event.get(name), list)
        ]
        if _ends_before_it_starts(event):
            # The library would swap the two; a session moved by a guess is worse than an error.
            problems.append(FieldError("DTEND", "is before DTSTART"))
    if problems:
        yield _broken(job, uid, events, problems)
        return
    # Each series is expanded alone, so one the library cannot read costs only its own rows.
    single = Calendar()
    for name, value in calendar.items():
        single[name] = value
    for event in events:
        single.add_component(event)
    try:
        occurrences = recurring_ical_events.of(single).between(
            job.window_start - _MARGIN, job.window_end + _MARGIN
        )
    except Exception as exc:  # the library's input errors share no base class
        yield _broken(job, uid, events, [FieldError("event", f"cannot be expanded: {exc}")])
        return
    recurring = any(k in e for e in events for k in ("RRULE", "RDATE", "RECURRENCE-ID"))
    timed: list[tuple[datetime, date | datetime, Component]] = []
    for component in occurrences:
        start = _moment(component, "DTSTART")
        if start is not None:  # the library gives every occurrence one
            timed.append((_instant(start, job.floating_zone), start, component))
    for instant, start, component in sorted(timed, key=lambda item: item[0]):
        if job.window_start <= instant < job.window_end:
            yield _occurrence_row(job, uid, start, component, events if recurring else None)


def _occurrence_row(
    job: _Import,
    uid: str,
    start: date | datetime,
    component: Component,
    series: list[Component] | None,
) -> ImportRow:
    """One occurrence as a row; ``series`` (the events sharing its UID) when it recurs."""
    external_id = uid
    if series is not None:
        external_id = f"{uid}@{_stamp(_original_start(start, component, series))}"
    external_id = _bounded(external_id)
    reference = f"{job.file_name} UID {uid or '(none)'} @ {start.isoformat()}"
    raw = _raw_text(component)

    def refuse(loc: str, message: str) -> ImportRow:
        return rejected(
            reference, raw, "appointment", job.source, external_id, FieldError(loc, message)
        )

    if not isinstance(start, datetime):
        return refuse("DTSTART", "all-day event: not an appointment")
    if not uid:
        return refuse("UID", "the event has no UID, so a later import could not find it again")
    patient = _patient(job, component)
    if isinstance(patient, FieldError):
        return rejected(reference, raw, "appointment", job.source, external_id, patient)
    location, telehealth_url = _place(component)
    status = _text(component.get("STATUS")) or ""
    # An .ics event is the whole truth about its occurrence, so an absent location is sent as
    # None and clears one an earlier import stored.
    payload: dict[str, Any] = {
        "patient": patient,
        "start": _utc_if_aware(start),
        "status": _STATUS.get(status.upper(), "booked"),
        "location": location,
        "telehealth_url": telehealth_url,
    }
    end = _moment(component, "DTEND")
    # Without DTEND or DURATION an event lasts no time at all (RFC 5545 3.6.1); leaving the end
    # out lets the practice's usual session length apply instead.
    if end is not None and end != start:
        payload["end"] = _utc_if_aware(end) if isinstance(end, datetime) else end
    row = build_row(
        reference=reference,
        raw=raw,
        kind="appointment",
        source=job.source,
        external_id=external_id,
        payload=payload,
        context=job.context,
    )
    # Name the property a person would fix in their calendar, not our field.
    row.errors = [FieldError(_property_for(e, job.patient_from), e.message) for e in row.errors]
    return row


_PROPERTY_OF_FIELD = {
    "start": "DTSTART",
    "end": "DTEND",
    "status": "STATUS",
    "location": "LOCATION",
    "telehealth_url": "URL",
}


def _property_for(error: FieldError, patient_from: str) -> str:
    head = error.loc.split(".", 1)[0]
    if head != "patient" and head not in _PROPERTY_OF_FIELD:
        # A rule across fields is located at the whole record; its message names the field.
        head = error.message.split(" ", 1)[0].rstrip(":")
    if head == "patient":
        return "SUMMARY" if patient_from == "summary" else "ATTENDEE"
    return _PROPERTY_OF_FIELD.get(head, "event")


def _broken(job: _Import, uid: str, events: list[Component], errors: list[FieldError]) -> ImportRow:
    start = _moment(events[0], "DTSTART")
    when = start.isoformat() if start is not None else "(no start)"
    raw = "".join(_raw_text(e) for e in events)[:MAX_RAW]
    return rejected(
        f"{job.file_name} UID {uid or '(none)'} @ {when}",
        raw,
        "appointment",
        job.source,
        _bounded(uid),
        *errors,
    )


def _patient(job: _Import, component: Component) -> dict[str, Any] | FieldError:
    if job.patient_from == "summary":
        summary = _text(component.get("SUMMARY"))
        if summary is None:
            return FieldError("SUMMARY", "the event has no SUMMARY to identify the patient")
        digest = hashlib.sha256(summary.casefold().encode()).hexdigest()[:16]
        return {
            "external_id": f"summary:{digest}",
            "source": job.source,
            "name": summary[:MAX_NAME],
        }
    organizer = _address(component.get("ORGANIZER"))
    attendees = component.get("ATTENDEE")
    for attendee in attendees if isinstance(attendees, list) else [attendees]:
        if attendee is None:
            continue
        cutype = str(getattr(attendee, "params", {}).get("CUTYPE", "")).upper()
        address = _address(attendee)
        if address is None or address == organizer or cutype in _NOT_PEOPLE:
            continue
        patient: dict[str, Any] = {"external_id": address, "source": job.source, "email": address}
        name = _text(getattr(attendee, "params", {}).get("CN"))
        if name:
            patient["name"] = name[:MAX_NAME]
        return patient
    return FieldError(
        "ATTENDEE", "event has no attendee to identify the patient (use --patient-from summary)"
    )


def _address(value: Any) -> str | None:
    """The e-mail address of a calendar user (``mailto:Ann@Example.org`` → ``ann@example.org``)."""
    text = _text(value)
    if text is None:
        return None
    if text.lower().startswith("mailto:"):
        text = text[len("mailto:") :].strip()
    return text.lower() if "@" in text and not any(c.isspace() for c in text) else None


def _place(component: Component) -> tuple[str | None, str | None]:
    """(location name, telehealth URL): a video link is where the session happens, not a room."""
    location = _text(component.get("LOCATION"))
    found = _HTTPS_URL.search(location) if location is not None else None
    if found:
        return None, found.group(0).rstrip(".,;:)]")
    url = _text(component.get("URL"))
    telehealth_url = url if url is not None and url.lower().startswith("https://") else None
    return (location[:MAX_NAME] if location else None), telehealth_url


def _original_start(
    start: date | datetime, occurrence: Component, series: list[Component]
) -> date | datetime:
    """When this occurrence was planned before any edit: what its id is made of."""
    recurrence_id = _moment(occurrence, "RECURRENCE-ID")
    if recurrence_id is None:
        return start
    range_ = occurrence["RECURRENCE-ID"].params.get("RANGE", "")
    if str(range_).upper() != "THISANDFUTURE":
        return recurrence_id
    # After a THISANDFUTURE edit the library stamps every later occurrence with that edit's one
    # RECURRENCE-ID; undoing the edit's shift gives each its own, or they would share one id.
    for event in series:
        edit_start = _moment(event, "DTSTART")
        if _moment(event, "RECURRENCE-ID") == recurrence_id and edit_start is not None:
            try:
                return start - (edit_start - recurrence_id)
            except TypeError:  # a DATE edit of a DATE-TIME series: keep the edit's id
                return recurrence_id
    return recurrence_id


def _moment(component: Component, name: str) -> date | datetime | None:
    """The date or date-time of property ``name``; None when absent or of another kind."""
    try:
        value = getattr(component.get(name), "dt", None)
    except ValueError:  # icalendar keeps an unparsable value and refuses to read it
        return None
    return value if isinstance(value, date) else None


def _ends_before_it_starts(event: Component) -> bool:
    start, end = _moment(event, "DTSTART"), _moment(event, "DTEND")
    if start is None or end is None:
        return False
    try:
        return end < start
    except TypeError:  # a DATE against a DATE-TIME, or floating against zoned: not comparable
        return False


def _stamp(value: date | datetime) -> str:
    """``20240305T150000Z``. Floating times stay wall-clock (``20240305T150000``), as in RFC 5545:
    an id must not change when the practice changes its default zone."""
    if not isinstance(value, datetime):
        return value.strftime("%Y%m%d")
    if value.tzinfo is None:
        return value.strftime("%Y%m%dT%H%M%S")
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _bounded(external_id: str) -> str:
    if len(external_id) <= MAX_ID:
        return external_id
    # Some systems send UIDs longer than the column (a URL plus a GUID); their SHA-256 is still
    # stable across imports and unique, though no longer readable.
    return "sha256:" + hashlib.sha256(external_id.encode()).hexdigest()


def _instant(value: date | datetime, floating_zone: tzinfo) -> datetime:
    """The moment ``value`` starts, for comparing with the window (never stored)."""
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)  # noqa: DTZ001 - zone set below
    if value.tzinfo is None:
        value = value.replace(tzinfo=floating_zone)
    return value.astimezone(UTC)


def _utc_if_aware(value: datetime) -> datetime:
    # Naive (floating) times stay naive: validation places them in the default zone and refuses
    # a time that daylight saving skips, rather than this module guessing.
    return value if value.tzinfo is None else value.astimezone(UTC)


def _text(value: Any) -> str | None:
    """A property or parameter as stripped text; None when absent or blank."""
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None:
        return None
    text = str(value).strip()
    return text or None


# Free text a clinician may have typed into the calendar; never kept, not even for replay.
_FREE_TEXT = ("DESCRIPTION", "COMMENT", "X-ALT-DESC", "CATEGORIES", "ATTACH")


def _raw_text(component: Any) -> str:
    """The event's text for replay, without its free-text notes (or alarms, which carry their
    own DESCRIPTION and are not needed to replay the appointment)."""
    copy = component.copy()  # a shallow copy: properties only, no sub-components
    for name in _FREE_TEXT:
        while name in copy:
            del copy[name]
    return str(copy.to_ical().decode("utf-8", errors="replace"))[:MAX_RAW]
