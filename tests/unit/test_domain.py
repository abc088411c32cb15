"""The pure rules of ``frontdesk.domain``: tables of cases, no database, no clock.

Expected values were worked out by hand:
- America/New_York in 2026: EST (-05:00) until 2026-03-08 02:00, when clocks jump to 03:00 EDT
  (-04:00); back to EST on 2026-11-01, when 01:00-01:59 happens twice (first EDT, then EST).
- America/Chicago: CST (-06:00) in winter, CDT (-05:00) in summer.
- Europe/London in 2026: GMT (+00:00) until 2026-03-29 01:00, when clocks jump to 02:00 BST
  (+01:00); back to GMT on 2026-10-25, when 01:00-01:59 happens twice.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from frontdesk.domain.appointments import (
    AppointmentStatus,
    Confirmation,
    confirmation_after_change,
    time_problem,
)
from frontdesk.domain.contact import (
    normalize_email,
    normalize_language,
    normalize_phone,
    region_of_locale,
)
from frontdesk.domain.intake import AppointmentIn, ClinicianIn, LocationIn, PatientIn, field_errors
from frontdesk.domain.times import NonexistentLocalTime, localize

NEW_YORK = ZoneInfo("America/New_York")


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def wall(text: str) -> datetime:
    """A wall-clock time with no zone, as a file or a form gives it."""
    value = datetime.fromisoformat(text)
    assert value.tzinfo is None
    return value


# --- times.localize --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("local", "zone_name", "expected"),
    [
        # New York: an ordinary winter and summer time, and both sides of each DST change.
        (wall("2026-01-15T09:00"), "America/New_York", utc(2026, 1, 15, 14, 0)),
        (wall("2026-07-15T09:00"), "America/New_York", utc(2026, 7, 15, 13, 0)),
        (wall("2026-03-08T01:59"), "America/New_York", utc(2026, 3, 8, 6, 59)),
        (wall("2026-03-08T03:00"), "America/New_York", utc(2026, 3, 8, 7, 0)),
        # The repeated hour means its first occurrence (still EDT, -04:00).
        (wall("2026-11-01T01:30"), "America/New_York", utc(2026, 11, 1, 5, 30)),
        (wall("2026-11-01T00:59"), "America/New_York", utc(2026, 11, 1, 4, 59)),
        (wall("2026-11-01T02:00"), "America/New_York", utc(2026, 11, 1, 7, 0)),
        # Chicago: CST in winter, CDT in summer.
        (wall("2026-01-15T09:00"), "America/Chicago", utc(2026, 1, 15, 15, 0)),
        (wall("2026-07-15T09:00"), "America/Chicago", utc(2026, 7, 15, 14, 0)),
        # London: GMT is UTC in winter, BST an hour ahead in summer.
        (wall("2026-01-15T09:00"), "Europe/London", utc(2026, 1, 15, 9, 0)),
        (wall("2026-03-29T00:59"), "Europe/London", utc(2026, 3, 29, 0, 59)),
        (wall("2026-03-29T02:00"), "Europe/London", utc(2026, 3, 29, 1, 0)),
        (wall("2026-07-15T09:00"), "Europe/London", utc(2026, 7, 15, 8, 0)),
        (wall("2026-10-25T01:30"), "Europe/London", utc(2026, 10, 25, 0, 30)),
        (wall("2026-10-26T09:00"), "Europe/London", utc(2026, 10, 26, 9, 0)),
        # A time that already carries an offset keeps its instant whatever zone is named.
        (datetime(2026, 3, 2, 15, 0, tzinfo=NEW_YORK), "Europe/London", utc(2026, 3, 2, 20, 0)),
    ],
)
def test_localize_returns_the_utc_instant_of_a_wall_clock_time(
    local: datetime, zone_name: str, expected: datetime
) -> None:
    result = localize(local, zone_name)
    assert result == expected
    assert result.tzinfo is UTC


@pytest.mark.parametrize(
    ("local", "zone_name"),
    [
        (wall("2026-03-08T02:30"), "America/New_York"),
        (wall("2026-03-08T02:00"), "America/New_York"),
        (wall("2026-03-08T02:59"), "America/New_York"),
        (wall("2026-03-08T02:30"), "America/Chicago"),
        (wall("2026-03-29T01:30"), "Europe/London"),
    ],
)
def test_localize_refuses_a_time_skipped_by_spring_forward(local: datetime, zone_name: str) -> None:
    with pytest.raises(NonexistentLocalTime, match="does not exist") as caught:
        localize(local, zone_name)
    assert zone_name in str(caught.value)


@pytest.mark.parametrize("zone_name", ["Mars/Olympus", "America/Nowhere", ""])
def test_localize_refuses_an_unknown_zone(zone_name: str) -> None:
    with pytest.raises(ValueError, match="unknown IANA timezone") as caught:
        localize(wall("2026-01-15T09:00"), zone_name)
    assert not isinstance(caught.value, NonexistentLocalTime)


# --- contact ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("(202) 555-0143", "US", "+12025550143"),
        ("202.555.0143", "US", "+12025550143"),
        ("  (202) 555-0143  ", "US", "+12025550143"),
        ("+1 202 555 0143", "US", "+12025550143"),
        # A leading + names its own country: the default region does not matter.
        ("+1 (202) 555-0143", "GB", "+12025550143"),
        ("+44 20 7946 0958", "US", "+442079460958"),
        ("+44 20 7946 0958", "GB", "+442079460958"),
        ("020 7946 0958", "GB", "+442079460958"),
    ],
)
def test_normalize_phone_gives_e164(raw: str, region: str, expected: str) -> None:
    assert normalize_phone(raw, region) == expected


@pytest.mark.parametrize(
    ("raw", "region", "message"),
    [
        ("555-CALL", "US", "not a valid phone number"),
        ("12345", "US", "not a valid phone number"),
        ("not a number", "US", "not a phone number"),
        ("", "US", "empty"),
        ("   ", "US", "empty"),
        # A British national number is not a valid US number, and the other way round.
        ("020 7946 0958", "US", "not a valid phone number"),
        ("(202) 555-0143", "GB", "not a valid phone number"),
    ],
)
def test_normalize_phone_refuses_invalid_numbers(raw: str, region: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        normalize_phone(raw, region)


@pytest.mark.parametrize(
    ("locale", "region"),
    [
        ("en-US", "US"),
        ("en-GB", "GB"),
        ("en_gb", "GB"),
        ("pt-BR", "BR"),
        ("zh-Hant-TW", "TW"),
        ("es", "US"),
        ("es-419", "US"),
    ],
)
def test_region_of_locale(locale: str, region: str) -> None:
    assert region_of_locale(locale) == region


def test_a_national_number_is_read_in_the_region_of_the_practice_locale() -> None:
    assert normalize_phone("020 7946 0958", region_of_locale("en-GB")) == "+442079460958"
    assert normalize_phone("(202) 555-0143", region_of_locale("en-US")) == "+12025550143"
    with pytest.raises(ValueError):
        normalize_phone("(202) 555-0143", region_of_locale("en-GB"))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Ana.Lopez@EXAMPLE.COM", "Ana.Lopez@example.com"),
        ("  jordan.lee@example.com ", "jordan.lee@example.com"),
        ("avery@Example.Org", "avery@example.org"),
    ],
)
def test_normalize_email_lower_cases_the_domain_only(raw: str, expected: str) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    "raw", ["not-an-email", "@example.com", "ana@", "ana@example", "ana@@example.com", ""]
)
def test_normalize_email_refuses_malformed_addresses(raw: str) -> None:
    with pytest.raises(ValueError):
        normalize_email(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ES-mx", "es-MX"),
        ("es", "es"),
        ("EN", "en"),
        ("pt_br", "pt-BR"),
        (" en-us ", "en-US"),
    ],
)
def test_normalize_language(raw: str, expected: str) -> None:
    assert normalize_language(raw) == expected


@pytest.mark.parametrize("raw", ["english", "e", "", "en US", "en--US", "12"])
def test_normalize_language_refuses_what_is_not_a_tag(raw: str) -> None:
    with pytest.raises(ValueError, match="not a language tag"):
        normalize_language(raw)


# --- appointments ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "problem"),
    [
        (utc(2026, 3, 2, 15), utc(2026, 3, 2, 15, 50), None),
        # The same 50 minutes written in two zones.
        (
            datetime(2026, 3, 2, 15, 0, tzinfo=NEW_YORK),
            utc(2026, 3, 2, 20, 50),
            None,
        ),
        (utc(2026, 3, 2, 15), utc(2026, 3, 3, 15), None),  # exactly 24 hours
        (utc(2026, 3, 2, 15), utc(2026, 3, 3, 15, 1), "more than 24 hours"),
        (utc(2026, 3, 2, 15), utc(2026, 3, 2, 15), "end must be after start"),
        (utc(2026, 3, 2, 15), utc(2026, 3, 2, 14), "end must be after start"),
        (datetime(2026, 3, 2, 15, 0, tzinfo=NEW_YORK), utc(2026, 3, 2, 20), "end must be after"),
        (wall("2026-03-02T15:00"), utc(2026, 3, 2, 21), "UTC offset"),
        (utc(2026, 3, 2, 15), wall("2026-03-02T16:00"), "UTC offset"),
    ],
)
def test_time_problem(start: datetime, end: datetime, problem: str | None) -> None:
    result = time_problem(start, end)
    if problem is None:
        assert result is None
    else:
        assert result is not None
        assert problem in result


@pytest.mark.parametrize(
    ("current", "moved", "explicit", "expected"),
    [
        # A move asks the patient again…
        (Confirmation.CONFIRMED, True, None, Confirmation.UNCONFIRMED),
        (Confirmation.DECLINED, True, None, Confirmation.UNCONFIRMED),
        (Confirmation.RESCHEDULE_REQUESTED, True, None, Confirmation.UNCONFIRMED),
        # …an update that does not move it keeps what the patient said…
        (Confirmation.CONFIRMED, False, None, Confirmation.CONFIRMED),
        (Confirmation.DECLINED, False, None, Confirmation.DECLINED),
        (Confirmation.UNCONFIRMED, False, None, Confirmation.UNCONFIRMED),
        # …and an explicit confirmation in the update wins either way.
        (Confirmation.CONFIRMED, True, Confirmation.CONFIRMED, Confirmation.CONFIRMED),
        (Confirmation.UNCONFIRMED, True, Confirmation.CONFIRMED, Confirmation.CONFIRMED),
        (Confirmation.CONFIRMED, False, Confirmation.DECLINED, Confirmation.DECLINED),
    ],
)
def test_confirmation_after_change(
    current: Confirmation, moved: bool, explicit: Confirmation | None, expected: Confirmation
) -> None:
    assert confirmation_after_change(current, moved=moved, explicit=explicit) is expected


# --- intake.AppointmentIn --------------------------------------------------------------------

PATIENT = {"external_id": "pt-1"}


def appointment(context: dict[str, Any] | None = None, **fields: Any) -> AppointmentIn:
    return AppointmentIn.model_validate({"patient": PATIENT, **fields}, context=context)


def errors_of(context: dict[str, Any] | None = None, **fields: Any) -> list[tuple[str, str]]:
    """The field errors of an invalid appointment, located under ``body`` as the API does."""
    with pytest.raises(ValidationError) as caught:
        appointment(context, **fields)
    return [(e.loc, e.message) for e in field_errors(caught.value, "body")]


def test_a_naive_start_without_a_timezone_is_refused_naming_start() -> None:
    assert errors_of(start="2026-03-02T15:00:00") == [
        (
            "body.start",
            "no UTC offset: add one (e.g. 2026-03-02T15:00:00-05:00) "
            "or give the appointment a 'timezone'",
        )
    ]


def test_a_naive_end_without_a_timezone_is_refused_naming_end() -> None:
    errors = errors_of(start="2026-03-02T15:00:00-05:00", end="2026-03-02T15:50:00")
    assert [loc for loc, _ in errors] == ["body.end"]
    assert errors[0][1].startswith("no UTC offset")


@pytest.mark.parametrize(
    ("fields", "context", "start", "end"),
    [
        # The appointment's own zone: 15:00 CST is 21:00 UTC.
        (
            {"start": "2026-03-02T15:00:00", "timezone": "America/Chicago"},
            None,
            utc(2026, 3, 2, 21),
            None,
        ),
        # The import's default zone: London is on GMT in March, on BST in July.
        (
            {"start": "2026-03-02T15:00:00"},
            {"default_timezone": "Europe/London"},
            utc(2026, 3, 2, 15),
            None,
        ),
        (
            {"start": "2026-07-02T15:00:00"},
            {"default_timezone": "Europe/London"},
            utc(2026, 7, 2, 14),
            None,
        ),
        # The appointment's zone beats the import's default.
        (
            {"start": "2026-03-02T15:00:00", "timezone": "America/Chicago"},
            {"default_timezone": "Europe/London"},
            utc(2026, 3, 2, 21),
            None,
        ),
        # An explicit offset is kept whatever zone is named.
        (
            {"start": "2026-03-02T15:00:00-05:00", "timezone": "America/Chicago"},
            None,
            utc(2026, 3, 2, 20),
            None,
        ),
        # Both ends are localised, across the New York spring-forward night.
        (
            {
                "start": "2026-03-07T23:30:00",
                "end": "2026-03-08T03:30:00",
                "timezone": "America/New_York",
            },
            None,
            utc(2026, 3, 8, 4, 30),
            utc(2026, 3, 8, 7, 30),
        ),
    ],
)
def test_wall_clock_times_are_localized(
    fields: dict[str, Any],
    context: dict[str, Any] | None,
    start: datetime,
    end: datetime | None,
) -> None:
    record = appointment(context, **fields)
    assert record.start == start
    assert record.start.tzinfo is UTC
    assert record.end == end


def test_a_start_skipped_by_dst_is_refused_naming_start() -> None:
    [(loc, message)] = errors_of(start="2026-03-08T02:30:00", timezone="America/New_York")
    assert loc == "body.start"
    assert message.startswith("2026-03-08T02:30:00 does not exist in America/New_York")


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        (
            {"start": "2026-03-02T15:00:00-05:00", "end": "2026-03-02T14:00:00-05:00"},
            ("body.end", "end must be after start"),
        ),
        (
            {"start": "2026-03-02T15:00:00-05:00", "end": "2026-03-02T15:00:00-05:00"},
            ("body.end", "end must be after start"),
        ),
        # 15:00 New York is 20:00 UTC, so an end at 15:50 UTC is before it.
        (
            {
                "start": "2026-03-02T15:00:00",
                "end": "2026-03-02T15:50:00+00:00",
                "timezone": "America/New_York",
            },
            ("body.end", "end must be after start"),
        ),
        (
            {"start": "2026-03-02T15:00:00-05:00", "end": "2026-03-03T16:00:00-05:00"},
            ("body.end", "an appointment cannot last more than 24 hours"),
        ),
        # Two fields that contradict each other: the record as a whole is wrong.
        (
            {
                "start": "2026-03-02T15:00:00-05:00",
                "end": "2026-03-02T15:50:00-05:00",
                "duration_minutes": 45,
            },
            ("body", "end and duration_minutes disagree; send only one"),
        ),
    ],
)
def test_inconsistent_times_are_refused(fields: dict[str, Any], error: tuple[str, str]) -> None:
    assert errors_of(**fields) == [error]


def test_end_and_duration_that_agree_are_accepted() -> None:
    record = appointment(
        start="2026-03-02T15:00:00-05:00", end="2026-03-02T15:50:00-05:00", duration_minutes=50
    )
    assert (record.start, record.end) == (utc(2026, 3, 2, 20), utc(2026, 3, 2, 20, 50))


def test_resolved_end_uses_duration_then_the_default_length() -> None:
    start = "2026-03-02T15:00:00-05:00"
    assert appointment(start=start, duration_minutes=30).resolved_end(50) == utc(2026, 3, 2, 20, 30)
    assert appointment(start=start).resolved_end(50) == utc(2026, 3, 2, 20, 50)


def test_status_defaults_to_booked_and_accepts_fhir_codes() -> None:
    start = "2026-03-02T15:00:00-05:00"
    assert appointment(start=start).status is AppointmentStatus.BOOKED
    assert appointment(start=start, status="noshow").status is AppointmentStatus.NOSHOW
    assert (
        appointment(start=start, status="entered-in-error").status
        is AppointmentStatus.ENTERED_IN_ERROR
    )


def test_an_unknown_status_is_refused_at_its_field() -> None:
    [(loc, message)] = errors_of(start="2026-03-02T15:00:00-05:00", status="maybe")
    assert loc == "body.status"
    assert "'booked'" in message and "'cancelled'" in message


def test_clinician_and_location_accept_a_bare_name() -> None:
    record = appointment(
        start="2026-03-02T15:00:00-05:00",
        clinician="Dr. Maya Okafor",
        location="Harbor Street office",
    )
    assert record.clinician == ClinicianIn(name="Dr. Maya Okafor")
    assert record.location == LocationIn(name="Harbor Street office")


def test_clinician_and_location_accept_objects() -> None:
    record = appointment(
        start="2026-03-02T15:00:00-05:00",
        clinician={"name": "Luis Herrera, LCSW", "external_id": "clin-herrera"},
        location={
            "name": "Westside office",
            "address": "88 Elm Ave",
            "timezone": "America/Chicago",
        },
    )
    assert record.clinician == ClinicianIn(name="Luis Herrera, LCSW", external_id="clin-herrera")
    assert record.location == LocationIn(
        name="Westside office", address="88 Elm Ave", timezone="America/Chicago"
    )


def test_extra_fields_are_refused() -> None:
    assert errors_of(start="2026-03-02T15:00:00-05:00", diagnosis="F41.1") == [
        ("body.diagnosis", "Extra inputs are not permitted")
    ]


def test_extra_patient_fields_are_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        AppointmentIn.model_validate(
            {"patient": {"external_id": "pt-1", "ssn": "000-00-0000"}, "start": "2026-03-02T15:00Z"}
        )
    assert [e.loc for e in field_errors(caught.value, "body")] == ["body.patient.ssn"]


@pytest.mark.parametrize(
    ("phone", "context", "expected"),
    [
        ("(202) 555-0143", None, "+12025550143"),  # US when the context says nothing
        ("(202) 555-0143", {"default_region": "US"}, "+12025550143"),
        ("020 7946 0958", {"default_region": "GB"}, "+442079460958"),
        ("+44 20 7946 0958", {"default_region": "US"}, "+442079460958"),
        ("", {"default_region": "US"}, None),
    ],
)
def test_patient_phone_is_read_in_the_context_region(
    phone: str, context: dict[str, Any] | None, expected: str | None
) -> None:
    assert PatientIn.model_validate({"phone": phone}, context=context).phone == expected
    nested = appointment(
        context, patient={"external_id": "pt-1", "phone": phone}, start="2026-03-02T15:00Z"
    )
    assert nested.patient.phone == expected


def test_patient_phone_national_to_another_region_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        PatientIn.model_validate({"phone": "020 7946 0958"}, context={"default_region": "US"})
    assert [(e.loc, e.message) for e in field_errors(caught.value)] == [
        ("phone", "not a valid phone number for its country")
    ]


# --- intake.field_errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "prefix", "expected"),
    [
        (
            {"patient": {"external_id": "pt-1", "phone": "555-CALL"}, "start": "2026-03-02T15:00Z"},
            "body",
            [("body.patient.phone", "not a valid phone number for its country")],
        ),
        (
            {"patient": {"external_id": "pt-1", "phone": "555-CALL"}, "start": "2026-03-02T15:00Z"},
            "",
            [("patient.phone", "not a valid phone number for its country")],
        ),
        (
            {
                "patient": {"external_id": "pt-1", "email": "not-an-email"},
                "start": "2026-03-02T15:00Z",
            },
            "body",
            [("body.patient.email", "An email address must have an @-sign.")],
        ),
        (
            {"patient": {"name": "Avery"}, "start": "2026-03-02T15:00Z"},
            "body",
            [("body.patient.external_id", "Field required")],
        ),
        (
            {"patient": {"external_id": "pt-1"}},
            "body",
            [("body.start", "Field required")],
        ),
        # A rule about the whole record is located at the prefix, or at "record" without one.
        (
            {
                "patient": {"external_id": "pt-1"},
                "start": "2026-03-02T15:00:00Z",
                "end": "2026-03-02T15:50:00Z",
                "duration_minutes": 45,
            },
            "",
            [("record", "end and duration_minutes disagree; send only one")],
        ),
        (
            {"patient": {"external_id": "pt-1"}, "start": "2026-03-02T15:00:00"},
            "",
            [
                (
                    "start",
                    "no UTC offset: add one (e.g. 2026-03-02T15:00:00-05:00) "
                    "or give the appointment a 'timezone'",
                )
            ],
        ),
        (
            {
                "patient": {"external_id": "pt-1", "language": "english"},
                "start": "2026-03-02T15:00Z",
                "timezone": "Mars/Olympus",
            },
            "body",
            [
                (
                    "body.patient.language",
                    "not a language tag: 'english' (use e.g. 'en' or 'es-MX')",
                ),
                (
                    "body.timezone",
                    "unknown IANA timezone 'Mars/Olympus' (use e.g. 'America/Chicago')",
                ),
            ],
        ),
    ],
)
def test_field_errors_locate_each_problem(
    payload: dict[str, Any], prefix: str, expected: list[tuple[str, str]]
) -> None:
    with pytest.raises(ValidationError) as caught:
        AppointmentIn.model_validate(payload)
    assert sorted((e.loc, e.message) for e in field_errors(caught.value, prefix)) == sorted(
        expected
    )


def test_the_same_payload_with_a_valid_phone_is_accepted() -> None:
    # The guard for the table above: its first rows fail only because of the phone.
    record = AppointmentIn.model_validate(
        {
            "patient": {"external_id": "pt-1", "phone": "(202) 555-0143"},
            "start": "2026-03-02T15:00Z",
        }
    )
    assert record.patient.phone == "+12025550143"
    assert record.start == utc(2026, 3, 2, 15)
