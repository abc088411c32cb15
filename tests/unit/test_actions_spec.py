"""Action specs: every error with its line and column; field values read from plain text;
the redaction rules."""

from __future__ import annotations

from datetime import date
from typing import get_args

import pytest

from frontdesk.agent.actions.fields import find_correction, read_channel, read_value
from frontdesk.agent.actions.redaction import redact
from frontdesk.agent.actions.spec import (
    FIELD_KINDS,
    STEP_TYPES,
    TRIGGER_EVENTS,
    FieldSpec,
    Trigger,
    parse_spec,
)
from frontdesk.domain.errors import ValidationFailed
from frontdesk.services.actions import builtin_sources

TODAY = date(2026, 12, 7)


def errors_of(text: str) -> list[tuple[str, str]]:
    with pytest.raises(ValidationFailed) as caught:
        parse_spec(text)
    return [(e.loc, e.message) for e in caught.value.errors]


def test_the_names_the_docs_test_checks_are_the_models_names() -> None:
    assert set(get_args(FieldSpec.model_fields["kind"].annotation)) == set(FIELD_KINDS)
    assert set(get_args(Trigger.model_fields["event"].annotation)) == set(TRIGGER_EVENTS)
    assert len(STEP_TYPES) == 6


def test_the_built_in_specs_are_valid() -> None:
    names = {parse_spec(text).name for text in builtin_sources().values()}
    assert names == {"no_show_reminder", "missed_session_followup"}


def test_structural_errors_carry_line_and_column() -> None:
    text = """name: Bad Name
trigger:
  event: reminder_unconfirmed
fields:
  - name: ch
    kind: chanel
    prompt: {en: "Which?"}
steps:
  - type: webhook
    id: call
    url: ftp://x
    colour: red
  - type: sendd
  - type: if
    when: {field: ch, equals: "x"}
    then:
      - type: handoff
        reason: bogus
"""
    found = errors_of(text)
    locs = [loc for loc, _ in found]
    assert locs == [
        "line 1, column 7: name",
        "line 6, column 11: fields[0].kind",
        "line 11, column 10: steps[0].url",
        "line 12, column 5: steps[0].colour",
        "line 13, column 5: steps[1]",
        "line 18, column 17: steps[2].then[0].reason",
    ]
    messages = dict(found)
    assert messages["line 12, column 5: steps[0].colour"] == "unknown key"
    assert messages["line 13, column 5: steps[1]"].startswith("unknown step type")


def test_a_missing_key_is_reported_at_its_parent() -> None:
    assert errors_of("name: x\nsteps:\n  - type: handoff\n") == [
        ("line 1, column 1: trigger", "Field required")
    ]


def test_cross_reference_errors_carry_line_and_column() -> None:
    text = """name: x
trigger: {event: keyword}
identity: {identifier: nope, date_of_birth: dob}
fields:
  - {name: dob, kind: date_of_birth, prompt: {es: "Fecha?"}}
  - {name: pick, kind: choice, prompt: {en: "Which?"}}
steps:
  - type: send
    text: {en: "Hi {{ first_name"}
  - type: wait_for_reply
    id: w
  - type: wait_for_reply
    id: w
  - type: if
    when: {field: missing, equals: a}
  - type: set_status
    answer_from: nothing
"""
    found = errors_of(text)
    assert ("line 2, column 10: trigger.keywords", "a keyword trigger needs keywords") in found
    assert (
        "line 3, column 24: identity.identifier",
        "must name a collected name, email or phone field",
    ) in found
    assert ("line 5, column 46: fields[0].prompt", "a prompt in English (en) is required") in found
    assert (
        "line 6, column 5: fields[1].choices",
        "a choice field needs a list of choices",
    ) in found
    assert any(loc == "line 9, column 16: steps[0].text.en" for loc, _ in found)
    assert ("line 13, column 9: steps[2].id", "step id 'w' is used twice") in found
    assert ("line 15, column 19: steps[3].when.field", "no field named 'missing'") in found
    assert (
        "line 17, column 18: steps[4].answer_from",
        "must name an earlier wait_for_reply step",
    ) in found


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("name: x\n  bad: [", "line 2"),
        ("name: x\nname: y\n", "line 2, column 1: name"),
        ("", "line 1, column 1"),
        ("- just a list", "line 1, column 1"),
    ],
)
def test_yaml_problems_carry_their_position(text: str, where: str) -> None:
    assert errors_of(text)[0][0].startswith(where)


@pytest.mark.parametrize(
    ("kind", "text", "value"),
    [
        ("channel", "text me please", "sms"),
        ("channel", "WhatsApp", "whatsapp"),
        ("channel", "por correo", "email"),
        ("channel", "email or text", None),
        ("channel", "carrier pigeon", None),
        ("date_of_birth", "03/25/1990", "1990-03-25"),
        ("date_of_birth", "25/03/1990", "1990-03-25"),
        ("date_of_birth", "March 25, 1990", "1990-03-25"),
        ("date_of_birth", "25 de marzo de 1990", "1990-03-25"),
        ("date_of_birth", "2030-01-01", None),
        ("date_of_birth", "02/30/1990", None),
        ("email", "it's Me@Example.com", "me@example.com"),
        ("email", "no at sign", None),
        ("phone", "call (202) 555-0101", "+12025550101"),
        ("phone", "12", None),
        ("name", "Avery Johnson", "Avery Johnson"),
        ("name", "María-José O'Neil", "María-José O'Neil"),
        ("name", "1234", None),
        ("datetime_preference", "tuesday morning", "tuesday morning"),
        ("datetime_preference", "whenever", None),
        ("free_text", "anything", "anything"),
    ],
)
def test_field_values_are_read_and_normalised(kind: str, text: str, value: str | None) -> None:
    assert read_value(kind, text, today=TODAY) == value


def test_choices_by_text_or_number() -> None:
    choices = ["Billing", "Scheduling"]
    assert read_value("choice", "2", today=TODAY, choices=choices) == "Scheduling"
    assert read_value("choice", "it's about billing", today=TODAY, choices=choices) == "Billing"
    assert read_value("choice", "neither", today=TODAY, choices=choices) is None


def test_corrections_need_a_correction_word_and_a_changed_value() -> None:
    kinds = {"channel": "channel", "email": "email"}
    filled = {"channel": "whatsapp", "email": "a@example.com"}
    assert find_correction("actually, text me instead", filled, kinds) == ("channel", "sms")
    assert find_correction("mejor por correo", filled, kinds) == ("channel", "email")
    assert find_correction("text me", filled, kinds) is None
    assert find_correction("actually use b@example.com", filled, kinds) == (
        "email",
        "b@example.com",
    )
    assert read_channel("sms") == "sms"


def test_redaction_removes_secrets_and_phi() -> None:
    logged = redact(
        {
            "headers": {"Authorization": "Bearer x", "X-Frontdesk-Signature": "t=1,v1=ab"},
            "body": {
                "patient": {"name": "Avery", "dob": "1990-03-25", "id": 7},
                "note": "write to avery@example.com or +1 202 555 0101 on 03/25/1990",
                "full": "kept",
            },
            "full": "x",
        },
        extra_keys=frozenset({"full"}),
    )
    assert logged == {
        "headers": {"Authorization": "[secret]", "X-Frontdesk-Signature": "[secret]"},
        "body": {
            "patient": {"name": "[redacted]", "dob": "[redacted]", "id": 7},
            "note": "write to [email] or [phone] on [date]",
            "full": "[redacted]",
        },
        "full": "[redacted]",
    }


def test_signatures_verify_and_refuse_tampering_and_stale_stamps() -> None:
    from datetime import UTC, datetime, timedelta

    from frontdesk.services.actions import sign, verify_signature

    now = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
    header = sign("s3cret", '{"a":1}', int(now.timestamp()))
    assert verify_signature("s3cret", header, '{"a":1}', now=now)
    assert not verify_signature("s3cret", header, '{"a":2}', now=now)
    assert not verify_signature("other", header, '{"a":1}', now=now)
    assert not verify_signature("s3cret", header, '{"a":1}', now=now + timedelta(minutes=6))
    assert not verify_signature("s3cret", "garbage", '{"a":1}', now=now)


def test_an_iso_date_time_is_redacted_as_a_date_not_a_phone_number() -> None:
    logged = redact({"start": "2026-11-29T16:00:00+00:00", "at": "on 2026-11-29, call 2025550101"})
    assert logged == {"start": "[date]T16:00:00+00:00", "at": "on [date], call [phone]"}
