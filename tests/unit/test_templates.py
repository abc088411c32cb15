"""Templates: the sandbox holds, every default renders, SMS length is counted right."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from frontdesk.adapters.db.models import Appointment, Clinician, Practice
from frontdesk.domain.errors import ValidationFailed
from frontdesk.domain.templates import (
    LANGUAGES,
    TEMPLATE_CHANNELS,
    VARIABLES,
    Purpose,
    TemplateText,
    default_template,
    sms_length,
)
from frontdesk.services.templates import context_for, render, render_source


def _practice(**settings: object) -> Practice:
    return Practice(
        name="Harbor Light Counseling",
        timezone="America/New_York",
        phone="+1 555 0100",
        booking_url="https://book.example/harbor",
        settings=settings,
    )


def _context(practice: Practice, channel: str = "sms", language: str = "en") -> dict[str, str]:
    appointment = Appointment(
        start_at=datetime(2026, 12, 3, 20, 0, tzinfo=UTC),
        telehealth_url=None,
        clinician=Clinician(name="Dr. Maya Chen", booking_url=None),
    )
    return context_for(
        practice=practice,
        channel=channel,
        language=language,
        patient_name="Jordan Smith",
        tz_name="America/New_York",
        appointment=appointment,
    )


@pytest.mark.parametrize(
    "source",
    [
        "{{ first_name.__class__ }}",
        "{{ first_name.__class__.__mro__[1].__subclasses__() }}",
        "{{ ''.__class__.__base__ }}",
        "{% for i in range(100000000) %}x{% endfor %}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ lipsum.__globals__['os'] }}",
        "{{ first_name.format.__globals__ }}",
        "{{ config }}",
        "{{ no_such_variable }}",
        "{% if %}",
    ],
)
def test_a_template_that_reaches_for_python_fails_with_a_clear_error(source: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        render_source(source, _context(_practice()), field="body")
    (error,) = caught.value.errors
    assert error.loc == "body"
    assert error.message


def test_a_template_cannot_mutate_what_it_is_given() -> None:
    with pytest.raises(ValidationFailed):
        render_source(
            "{{ first_name.upper.__self__ }}{{ [].append(1) }}", {"first_name": "a"}, field="body"
        )


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("channel", TEMPLATE_CHANNELS)
@pytest.mark.parametrize("purpose", list(Purpose))
def test_every_default_renders_without_leftovers(
    purpose: Purpose, channel: str, language: str
) -> None:
    rendered = render(
        default_template(purpose, channel, language), _context(_practice(), channel, language)
    )
    for text in (rendered.body, rendered.subject or "", rendered.html or ""):
        assert "{{" not in text and "{%" not in text and "  " not in text
    assert rendered.body
    if channel == "email":
        assert rendered.subject and rendered.html
    # Reminder texts never ask for CANCEL, which carriers treat as an opt-out.
    assert "CANCEL" not in rendered.body or purpose == Purpose.CARRIER_CANCEL


def test_sms_reminder_fits_in_one_segment_in_english() -> None:
    rendered = render(default_template(Purpose.REMINDER, "sms", "en"), _context(_practice()))
    assert rendered.body == (
        "Harbor Light Counseling: reminder of your appointment Thu, Dec 3 at 3:00 PM. "
        "Reply C to confirm, R to reschedule, or N if you can't come. Reply STOP to opt out."
    )
    assert sms_length(rendered.body).segments == 1


def test_privacy_switches_hide_the_practice_and_the_clinician() -> None:
    shown = _context(_practice(), "email")
    hidden = _context(
        _practice(privacy={"show_practice_name": False, "show_clinician_name": False}), "email"
    )
    assert shown["practice_name"] == "Harbor Light Counseling"
    assert shown["clinician"] == "Dr. Maya Chen"
    assert hidden["practice_name"] == "Your care team"
    assert hidden["clinician"] == ""
    rendered = render(default_template(Purpose.REMINDER, "email", "en"), hidden)
    assert "Harbor Light" not in rendered.body and "Maya" not in rendered.body
    assert "Maya" not in (rendered.html or "")


def test_html_is_escaped_but_text_is_not() -> None:
    context = dict.fromkeys(VARIABLES, "")
    context["first_name"] = "<b>Jo</b>"
    text = TemplateText(body="Hi {{ first_name }}", html="<p>Hi {{ first_name }}</p>")
    rendered = render(text, context)
    assert rendered.body == "Hi <b>Jo</b>"
    assert rendered.html == "<p>Hi &lt;b&gt;Jo&lt;/b&gt;</p>"


def test_spanish_uses_the_patients_language_and_24_hour_clock() -> None:
    rendered = render(
        default_template(Purpose.REMINDER, "sms", "es"), _context(_practice(), "sms", "es")
    )
    assert "jue 3 dic a las 15:00" in rendered.body


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        ("", "GSM-7", 0, 0),
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("€" * 80, "GSM-7", 160, 1),  # extension characters cost two septets
        ("[" * 81, "GSM-7", 162, 2),
        ("í" * 70, "UCS-2", 70, 1),  # í is not in GSM-7 (ì is)
        ("í" * 71, "UCS-2", 71, 2),
        ("👍" * 35, "UCS-2", 70, 1),  # outside the BMP: two UTF-16 units each
        ("ok 👍", "UCS-2", 5, 1),
    ],
)
def test_sms_length(text: str, encoding: str, units: int, segments: int) -> None:
    length = sms_length(text)
    assert (length.encoding, length.units, length.segments) == (encoding, units, segments)
