"""Reminder planning (issue 3): ``frontdesk.domain.reminders`` as tables of cases.

No database and no real clock: ``now`` is a plain aware datetime handed to ``plan``. Every
expected instant below was worked out by hand from the rules, with these offsets (2026):
- America/New_York: EST -05:00 until 2026-03-08 07:00 UTC (02:00 -> 03:00 EDT -04:00); back to
  EST at 2026-11-01 06:00 UTC, when 01:00-01:59 happens twice.
- America/Los_Angeles: PST -08:00 until 2026-03-08 10:00 UTC, then PDT -07:00.
- Europe/London: GMT +00:00 until 2026-03-29 01:00 UTC, then BST +01:00; back to GMT at
  2026-10-25 01:00 UTC.
- Europe/Berlin: CET +01:00 until 2026-03-29 01:00 UTC, then CEST +02:00; back to CET at
  2026-10-25 01:00 UTC.
- Asia/Tokyo: JST +09:00 all year.
- Australia/Sydney: AEDT +11:00 until 2026-04-04 16:00 UTC (03:00 -> 02:00), then AEST +10:00.
Default policy: stages -72h, -24h, -2h (unconfirmed_only); quiet hours 08:00-21:00 on the
patient's wall clock for SMS and WhatsApp; edit grace 3 min; missed follow-up at start + 15 min.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from frontdesk.domain.appointments import AppointmentStatus, Confirmation
from frontdesk.domain.channels import Channel, ConsentStatus
from frontdesk.domain.reminders import (
    AppointmentFacts,
    Condition,
    PatientFacts,
    PlannedReminder,
    ReminderKind,
    ReminderPolicy,
    StagePolicy,
    next_allowed,
    parse_offset,
    plan,
    usable_channels,
)

NEW_YORK = ZoneInfo("America/New_York")

SMS, EMAIL, WHATSAPP, WEBCHAT = Channel.SMS, Channel.EMAIL, Channel.WHATSAPP, Channel.WEBCHAT
GRANTED, REVOKED = ConsentStatus.GRANTED, ConsentStatus.REVOKED
BOOKED = AppointmentStatus.BOOKED

# Outcomes in the tables: a send is its due instant in UTC; a skip is one of these.
SKIPPED = "skipped"  # does not apply: no row
RECORDED = "skipped (recorded)"  # worth a row: the patient was not reached

# An ordinary summer session: 2026-06-10 10:00 EDT.
SESSION = datetime(2026, 6, 10, 14, 0, tzinfo=UTC)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def appointment(
    start: datetime,
    *,
    status: AppointmentStatus = BOOKED,
    confirmation: Confirmation = Confirmation.UNCONFIRMED,
    time_set_at: datetime | None = None,
    status_changed_at: datetime | None = None,
) -> AppointmentFacts:
    """A session; by default booked 40 days ahead and not touched since."""
    time_set_at = time_set_at or start - timedelta(days=40)
    return AppointmentFacts(
        start=start,
        status=status,
        confirmation=confirmation,
        time_set_at=time_set_at,
        status_changed_at=status_changed_at or time_set_at,
    )


def patient(
    timezone: str = "America/New_York",
    *,
    reminders_enabled: bool = True,
    preferred: Channel | None = None,
    phone: bool = True,
    email: bool = True,
    consent: dict[Channel, ConsentStatus] | None = None,
) -> PatientFacts:
    return PatientFacts(
        timezone=timezone,
        reminders_enabled=reminders_enabled,
        preferred_channel=preferred,
        has_phone=phone,
        has_email=email,
        consent=consent or {},
    )


def policy(**changes: Any) -> ReminderPolicy:
    return ReminderPolicy(**changes)


def planned_at_booking(
    facts: AppointmentFacts, who: PatientFacts, rules: ReminderPolicy | None = None, **kw: Any
) -> list[PlannedReminder]:
    """Plan as the service does in the transaction that set the time: ``now`` is that moment."""
    return plan(facts, who, rules or policy(), facts.time_set_at, **kw)


def outcome(item: PlannedReminder) -> datetime | str:
    if item.action == "send":
        return item.due_at.astimezone(UTC)
    return RECORDED if item.record else SKIPPED


def stages(items: list[PlannedReminder]) -> tuple[datetime | str, ...]:
    """The stage outcomes in policy order (-72h, -24h, -2h by default)."""
    return tuple(outcome(i) for i in items if i.kind == ReminderKind.STAGE)


def only(items: list[PlannedReminder], kind: ReminderKind) -> PlannedReminder:
    found = [i for i in items if i.kind == kind]
    assert len(found) == 1, found
    return found[0]


def kinds(items: list[PlannedReminder]) -> set[ReminderKind]:
    return {i.kind for i in items}


# --- parse_offset and policy validation ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("-72h", timedelta(hours=-72)),
        ("-90m", timedelta(minutes=-90)),
        ("-1d", timedelta(days=-1)),
        ("-1.5h", timedelta(minutes=-90)),
        ("  -2h ", timedelta(hours=-2)),
    ],
)
def test_parse_offset_reads_hours_minutes_and_days(text: str, expected: timedelta) -> None:
    assert parse_offset(text) == expected


@pytest.mark.parametrize("text", ["", "-72", "-72 h", "-72hours", "-1w"])
def test_parse_offset_refuses_other_formats(text: str) -> None:
    with pytest.raises(ValueError, match="must look like"):
        parse_offset(text)


@pytest.mark.parametrize("offset", ["2h", "0m", "-0h"])
def test_stage_offset_at_or_after_the_start_is_refused(offset: str) -> None:
    with pytest.raises(ValidationError, match="before the appointment"):
        StagePolicy(offset=offset)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"stages": (StagePolicy(offset="-24h"), StagePolicy(offset="-24h"))},
            "stage names must be unique",
        ),
        (
            # A name is the stage's id: naming -1d "-24h" clashes with the real -24h stage.
            {"stages": (StagePolicy(offset="-24h"), StagePolicy(offset="-1d", name="-24h"))},
            "stage names must be unique",
        ),
        ({"quiet_hours_start": time(21, 0), "quiet_hours_end": time(21, 0)}, "quiet_hours_start"),
        ({"quiet_hours_start": time(22, 0), "quiet_hours_end": time(7, 0)}, "quiet_hours_start"),
        ({"max_per_day": 4, "max_per_week": 3}, "max_per_week"),
        ({"stages": ({"offset": "+2h"},)}, "offset"),
    ],
)
def test_reminder_policy_refuses_inconsistent_settings(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        ReminderPolicy(**changes)


def test_reminder_policy_defaults_are_the_documented_ones() -> None:
    rules = ReminderPolicy()
    assert [s.key for s in rules.stages] == ["-72h", "-24h", "-2h"]
    assert {s.condition for s in rules.stages} == {Condition.UNCONFIRMED_ONLY}
    assert (rules.quiet_hours_start, rules.quiet_hours_end) == (time(8, 0), time(21, 0))
    assert rules.quiet_hours_channels == {SMS, WHATSAPP}
    assert (rules.edit_grace_minutes, rules.missed_grace_minutes) == (3, 15)
    assert rules.booking_confirmation and rules.missed_followup
    assert not rules.cancellation_followup


# --- channels --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "rules", "expected"),
    [
        # WhatsApp only with the patient's opt-in (Meta's rule).
        (patient(), policy(), [SMS, EMAIL]),
        (patient(consent={WHATSAPP: GRANTED}), policy(), [SMS, WHATSAPP, EMAIL]),
        (patient(preferred=EMAIL), policy(), [EMAIL, SMS]),
        (patient(preferred=WHATSAPP, phone=False), policy(), [EMAIL]),
        (patient(phone=False, email=False), policy(), []),
        (
            patient(preferred=SMS, consent={SMS: REVOKED, WHATSAPP: GRANTED}),
            policy(),
            [WHATSAPP, EMAIL],
        ),
        (patient(preferred=SMS, consent={SMS: REVOKED}), policy(), [EMAIL]),
        # Web chat only reaches a patient on the page: never for a message we start.
        (patient(preferred=WEBCHAT), policy(), [SMS, EMAIL]),
        (patient(), policy(channel_order=(WEBCHAT, EMAIL, SMS)), [EMAIL, SMS]),
        # The patient's own choice comes first even when the practice does not list it.
        (
            patient(preferred=WHATSAPP, consent={WHATSAPP: GRANTED}),
            policy(channel_order=(EMAIL, SMS)),
            [WHATSAPP, EMAIL, SMS],
        ),
        (patient(preferred=WHATSAPP), policy(channel_order=(EMAIL, SMS)), [EMAIL, SMS]),
        # Explicit consent required: only channels with consent granted, still in order.
        (
            patient(preferred=WHATSAPP, consent={SMS: GRANTED, EMAIL: GRANTED}),
            policy(require_explicit_consent=True),
            [SMS, EMAIL],
        ),
        (patient(), policy(require_explicit_consent=True), []),
    ],
)
def test_usable_channels_preferred_first_then_practice_order_skipping_unreachable(
    who: PatientFacts, rules: ReminderPolicy, expected: list[Channel]
) -> None:
    assert usable_channels(who, rules) == expected


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        (patient(preferred=EMAIL), EMAIL),
        (patient(consent={SMS: REVOKED, WHATSAPP: GRANTED}), WHATSAPP),
        (patient(consent={SMS: REVOKED}), EMAIL),
        (patient(preferred=WEBCHAT, phone=False), EMAIL),
    ],
)
def test_plan_uses_the_first_usable_channel_for_every_message(
    who: PatientFacts, expected: Channel
) -> None:
    items = planned_at_booking(appointment(SESSION), who)
    assert {i.channel for i in items} == {expected}


@pytest.mark.parametrize(
    "who",
    [
        patient(reminders_enabled=False),
        patient(phone=False, email=False),
        patient(consent={SMS: REVOKED, WHATSAPP: REVOKED, EMAIL: REVOKED}),
    ],
    ids=["reminders-off", "no-address", "all-consent-revoked"],
)
def test_unreachable_patient_gets_every_message_skipped_with_a_recorded_reason(
    who: PatientFacts,
) -> None:
    # The missed follow-up is left out on purpose: the planner keeps it so the dispatcher can
    # open the front desk's review item, and the dispatcher decides whether to message.
    items = planned_at_booking(appointment(SESSION), who)
    patient_messages = [i for i in items if i.kind != ReminderKind.MISSED_FOLLOWUP]
    assert [(i.stage, outcome(i)) for i in patient_messages] == [
        ("-72h", RECORDED),
        ("-24h", RECORDED),
        ("-2h", RECORDED),
        ("booked", RECORDED),
    ]


def test_reminders_off_also_skips_the_cancellation_followup() -> None:
    facts = appointment(
        SESSION, status=AppointmentStatus.CANCELLED, status_changed_at=utc(2026, 6, 8, 15, 0)
    )
    who = patient(reminders_enabled=False)
    items = plan(facts, who, policy(cancellation_followup=True), utc(2026, 6, 8, 15, 0))
    assert {i.action for i in items} == {"skip"}
    assert outcome(only(items, ReminderKind.CANCELLATION_FOLLOWUP)) == RECORDED


# --- next_allowed ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone_name", "moment", "expected"),
    [
        # New York, spring forward (2026-03-08): 08:00 EDT is 12:00 UTC, not 13:00.
        ("America/New_York", utc(2026, 3, 8, 4, 0), utc(2026, 3, 8, 12, 0)),  # 23:00 EST 7th
        ("America/New_York", utc(2026, 3, 8, 6, 30), utc(2026, 3, 8, 12, 0)),  # 01:30 EST
        ("America/New_York", utc(2026, 3, 8, 12, 0), utc(2026, 3, 8, 12, 0)),  # 08:00 allowed
        ("America/New_York", utc(2026, 3, 9, 0, 59), utc(2026, 3, 9, 0, 59)),  # 20:59 allowed
        ("America/New_York", utc(2026, 3, 9, 1, 0), utc(2026, 3, 9, 12, 0)),  # 21:00 is quiet
        # New York, fall back (2026-11-01): 08:00 EST is 13:00 UTC.
        ("America/New_York", utc(2026, 11, 1, 2, 0), utc(2026, 11, 1, 13, 0)),  # 22:00 EDT 31st
        ("America/New_York", utc(2026, 11, 1, 6, 30), utc(2026, 11, 1, 13, 0)),  # 2nd 01:30 EST
        # The EU switches.
        ("Europe/London", utc(2026, 3, 28, 23, 30), utc(2026, 3, 29, 7, 0)),  # -> 08:00 BST
        ("Europe/Berlin", utc(2026, 10, 25, 4, 0), utc(2026, 10, 25, 7, 0)),  # 05:00 CET
        # Sydney leaves daylight time on 2026-04-05: 22:00 AEDT -> 08:00 AEST.
        ("Australia/Sydney", utc(2026, 4, 4, 11, 0), utc(2026, 4, 4, 22, 0)),
    ],
)
def test_next_allowed_is_the_next_wall_clock_morning_across_dst(
    zone_name: str, moment: datetime, expected: datetime
) -> None:
    assert next_allowed(moment, zone_name, time(8, 0), time(21, 0)) == expected


def test_next_allowed_with_a_custom_window_and_a_moment_in_another_zone() -> None:
    # 17:00 JST on 1 June (the window end) -> 09:00 JST on 2 June = 00:00 UTC.
    moment = datetime(2026, 6, 1, 4, 0, tzinfo=NEW_YORK)  # = 08:00 UTC = 17:00 JST
    assert next_allowed(moment, "Asia/Tokyo", time(9, 0), time(17, 0)) == utc(2026, 6, 2, 0, 0)


# --- stage timing across DST and timezones ---------------------------------------------------
# Expected tuples are the (-72h, -24h, -2h) outcomes.


@pytest.mark.parametrize(
    ("zone_name", "preferred", "start", "expected"),
    [
        pytest.param(
            # 10:00 EDT on the spring-forward day: -24h is 09:00 EST (a wall-clock day earlier
            # would be 10:00 EST = 15:00 UTC); -2h is 08:00 EDT, the first allowed minute.
            "America/New_York",
            SMS,
            utc(2026, 3, 8, 14, 0),
            (utc(2026, 3, 5, 14, 0), utc(2026, 3, 7, 14, 0), utc(2026, 3, 8, 12, 0)),
            id="us-spring-10:00",
        ),
        pytest.param(
            # 08:30 EDT: -2h is 06:30 EDT -> 08:00 EDT = 12:00 UTC, before the start (08:00 EST
            # would be 13:00 UTC, after it). -72h and -24h are 07:30 EST -> 08:00 EST.
            "America/New_York",
            SMS,
            utc(2026, 3, 8, 12, 30),
            (utc(2026, 3, 5, 13, 0), utc(2026, 3, 7, 13, 0), utc(2026, 3, 8, 12, 0)),
            id="us-spring-08:30-deferred",
        ),
        pytest.param(
            # 09:00 EST on the fall-back day: -2h 07:00 EST -> 08:00 EST = 13:00 UTC;
            # -24h is 10:00 EDT the day before.
            "America/New_York",
            SMS,
            utc(2026, 11, 1, 14, 0),
            (utc(2026, 10, 29, 14, 0), utc(2026, 10, 31, 14, 0), utc(2026, 11, 1, 13, 0)),
            id="us-fall-09:00",
        ),
        pytest.param(
            # 08:30 EST the day after: -24h is 08:30 EST on the switch day; -72h 09:30 EDT;
            # -2h 06:30 EST -> 08:00 EST.
            "America/New_York",
            SMS,
            utc(2026, 11, 2, 13, 30),
            (utc(2026, 10, 30, 13, 30), utc(2026, 11, 1, 13, 30), utc(2026, 11, 2, 13, 0)),
            id="us-fall-next-day-08:30",
        ),
        pytest.param(
            # 09:00 CEST on the EU spring day: -2h 07:00 CEST -> 08:00 CEST = 06:00 UTC;
            # -24h is 08:00 CET.
            "Europe/Berlin",
            SMS,
            utc(2026, 3, 29, 7, 0),
            (utc(2026, 3, 26, 7, 0), utc(2026, 3, 28, 7, 0), utc(2026, 3, 29, 6, 0)),
            id="eu-spring-berlin",
        ),
        pytest.param(
            # 08:30 BST the day after: -24h 08:30 BST on the switch day; -2h 06:30 -> 08:00 BST;
            # -72h 07:30 GMT -> 08:00 GMT.
            "Europe/London",
            SMS,
            utc(2026, 3, 30, 7, 30),
            (utc(2026, 3, 27, 8, 0), utc(2026, 3, 29, 7, 30), utc(2026, 3, 30, 7, 0)),
            id="eu-spring-london",
        ),
        pytest.param(
            # 09:00 GMT on the EU fall day, by WhatsApp: -2h 07:00 GMT -> 08:00; -24h 10:00 BST.
            "Europe/London",
            WHATSAPP,
            utc(2026, 10, 25, 9, 0),
            (utc(2026, 10, 22, 9, 0), utc(2026, 10, 24, 9, 0), utc(2026, 10, 25, 8, 0)),
            id="eu-fall-london-whatsapp",
        ),
        pytest.param(
            # 08:30 CET the day after: -24h 08:30 CET; -2h 06:30 -> 08:00 CET = 07:00 UTC.
            "Europe/Berlin",
            SMS,
            utc(2026, 10, 26, 7, 30),
            (utc(2026, 10, 23, 7, 30), utc(2026, 10, 25, 7, 30), utc(2026, 10, 26, 7, 0)),
            id="eu-fall-berlin",
        ),
    ],
)
def test_stages_are_real_hours_before_start_with_quiet_hours_on_the_local_clock(
    zone_name: str, preferred: Channel, start: datetime, expected: tuple[Any, ...]
) -> None:
    items = planned_at_booking(appointment(start), patient(zone_name, preferred=preferred))
    assert stages(items) == expected


@pytest.mark.parametrize(
    ("zone_name", "start", "expected"),
    [
        pytest.param(
            # A New York practice's 09:00 EDT session (13:00 UTC) is 06:00 PDT for a patient in
            # Los Angeles: -72h 05:00 PST -> 08:00 PST; -24h 06:00 PDT -> 08:00 PDT; -2h
            # 04:00 PDT -> 08:00 PDT = 15:00 UTC, after the start.
            "America/Los_Angeles",
            utc(2026, 3, 9, 13, 0),
            (utc(2026, 3, 6, 16, 0), utc(2026, 3, 8, 15, 0), RECORDED),
            id="practice-new-york-patient-los-angeles",
        ),
        pytest.param(
            # 18:00 EDT in New York is 22:00 GMT in London: -24h and -72h land at 22:00 GMT,
            # quiet for the patient (not for the practice) -> 08:00 GMT the next morning.
            "Europe/London",
            utc(2026, 3, 9, 22, 0),
            (utc(2026, 3, 7, 8, 0), utc(2026, 3, 9, 8, 0), utc(2026, 3, 9, 20, 0)),
            id="practice-new-york-patient-london",
        ),
        pytest.param(
            # 19:00 EDT (23:00 UTC) is 08:00 JST next day: -2h 06:00 JST -> 08:00 JST is the
            # start itself, which is too late.
            "Asia/Tokyo",
            utc(2026, 3, 8, 23, 0),
            (utc(2026, 3, 5, 23, 0), utc(2026, 3, 7, 23, 0), RECORDED),
            id="practice-new-york-patient-tokyo",
        ),
    ],
)
def test_quiet_hours_use_the_patients_own_timezone(
    zone_name: str, start: datetime, expected: tuple[Any, ...]
) -> None:
    assert stages(planned_at_booking(appointment(start), patient(zone_name))) == expected


@pytest.mark.parametrize(
    ("zone_name", "start", "by_sms", "by_email"),
    [
        pytest.param(
            # 00:30 EDT: -2h is 22:30 EDT the evening before -> 08:00 is after the start.
            "America/New_York",
            utc(2026, 6, 10, 4, 30),
            (utc(2026, 6, 7, 12, 0), utc(2026, 6, 9, 12, 0), RECORDED),
            (utc(2026, 6, 7, 4, 30), utc(2026, 6, 9, 4, 30), utc(2026, 6, 10, 2, 30)),
            id="new-york-summer",
        ),
        pytest.param(
            # 00:30 EDT the night after spring forward: -24h is 23:30 EST on the 7th -> 08:00
            # EDT on the 8th = 12:00 UTC; -72h 23:30 EST -> 08:00 EST = 13:00 UTC.
            "America/New_York",
            utc(2026, 3, 9, 4, 30),
            (utc(2026, 3, 6, 13, 0), utc(2026, 3, 8, 12, 0), RECORDED),
            (utc(2026, 3, 6, 4, 30), utc(2026, 3, 8, 4, 30), utc(2026, 3, 9, 2, 30)),
            id="new-york-after-spring-forward",
        ),
        pytest.param(
            # 00:30 EST the night after fall back: -24h is 01:30 EDT (the first one) -> 08:00
            # EST = 13:00 UTC; -72h 01:30 EDT -> 08:00 EDT = 12:00 UTC.
            "America/New_York",
            utc(2026, 11, 2, 5, 30),
            (utc(2026, 10, 30, 12, 0), utc(2026, 11, 1, 13, 0), RECORDED),
            (utc(2026, 10, 30, 5, 30), utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 3, 30)),
            id="new-york-after-fall-back",
        ),
        pytest.param(
            # 00:30 CEST on the EU fall-back day (22:30 UTC the day before).
            "Europe/Berlin",
            utc(2026, 10, 24, 22, 30),
            (utc(2026, 10, 22, 6, 0), utc(2026, 10, 24, 6, 0), RECORDED),
            (utc(2026, 10, 21, 22, 30), utc(2026, 10, 23, 22, 30), utc(2026, 10, 24, 20, 30)),
            id="berlin-fall-back",
        ),
    ],
)
def test_session_just_after_midnight_sms_waits_or_skips_while_email_goes_at_night(
    zone_name: str, start: datetime, by_sms: tuple[Any, ...], by_email: tuple[Any, ...]
) -> None:
    facts = appointment(start)
    assert stages(planned_at_booking(facts, patient(zone_name, preferred=SMS))) == by_sms
    assert stages(planned_at_booking(facts, patient(zone_name, preferred=EMAIL))) == by_email


def test_quiet_hours_skip_after_start_is_recorded_with_its_reason() -> None:
    items = planned_at_booking(appointment(utc(2026, 6, 10, 4, 30)), patient())
    skipped = next(i for i in items if i.stage == "-2h")
    assert (skipped.action, skipped.record, skipped.channel) == ("skip", True, SMS)
    assert skipped.reason is not None and "quiet hours" in skipped.reason


def test_minus_24h_is_24_real_hours_even_when_start_carries_the_practice_zone() -> None:
    # The same instant as 2026-03-08 14:00 UTC, written in New York time: -24h must still be
    # 2026-03-07 14:00 UTC (09:00 EST), not 10:00 EST the day before (15:00 UTC, 23 h earlier).
    start = datetime(2026, 3, 8, 10, 0, tzinfo=NEW_YORK)
    items = planned_at_booking(appointment(start), patient())
    assert stages(items)[1] == utc(2026, 3, 7, 14, 0)


# --- quiet-hours settings --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "rules", "start", "expected_2h"),
    [
        # Email ignores quiet hours by default: 22:30 EDT stays 22:30.
        (patient(preferred=EMAIL), policy(), utc(2026, 6, 10, 4, 30), utc(2026, 6, 10, 2, 30)),
        # ...unless the practice lists email among the quiet channels.
        (
            patient(preferred=EMAIL),
            policy(quiet_hours_channels=frozenset({SMS, WHATSAPP, EMAIL})),
            utc(2026, 6, 10, 4, 30),
            RECORDED,
        ),
        # No quiet channels at all: SMS goes at 22:30 EDT.
        (
            patient(),
            policy(quiet_hours_channels=frozenset()),
            utc(2026, 6, 10, 4, 30),
            utc(2026, 6, 10, 2, 30),
        ),
        # A 09:00-20:00 window: -2h of a 10:00 EDT session is 08:00 -> 09:00 EDT.
        (
            patient(),
            policy(quiet_hours_start=time(9, 0), quiet_hours_end=time(20, 0)),
            SESSION,
            utc(2026, 6, 10, 13, 0),
        ),
        # Deferred exactly to the start (08:00 EDT session, -2h at 06:00): too late, skipped.
        (patient(), policy(), utc(2026, 6, 10, 12, 0), RECORDED),
    ],
)
def test_quiet_hours_follow_the_policy_channels_and_window(
    who: PatientFacts, rules: ReminderPolicy, start: datetime, expected_2h: Any
) -> None:
    assert stages(planned_at_booking(appointment(start), who, rules))[2] == expected_2h


# --- conditions and status -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("confirmation", "condition", "expected"),
    [
        (Confirmation.UNCONFIRMED, Condition.UNCONFIRMED_ONLY, utc(2026, 6, 9, 14, 0)),
        (Confirmation.CONFIRMED, Condition.UNCONFIRMED_ONLY, SKIPPED),
        (Confirmation.DECLINED, Condition.UNCONFIRMED_ONLY, SKIPPED),
        (Confirmation.RESCHEDULE_REQUESTED, Condition.UNCONFIRMED_ONLY, SKIPPED),
        (Confirmation.CONFIRMED, Condition.ALWAYS, utc(2026, 6, 9, 14, 0)),
    ],
)
def test_unconfirmed_only_stages_stop_once_the_patient_answered(
    confirmation: Confirmation, condition: Condition, expected: Any
) -> None:
    rules = policy(stages=(StagePolicy(offset="-24h", condition=condition),))
    items = planned_at_booking(appointment(SESSION, confirmation=confirmation), patient(), rules)
    assert stages(items) == (expected,)


@pytest.mark.parametrize(
    "status",
    [AppointmentStatus.CANCELLED, AppointmentStatus.PENDING, AppointmentStatus.NOSHOW],
)
def test_stages_only_go_to_booked_appointments(status: AppointmentStatus) -> None:
    items = planned_at_booking(appointment(SESSION, status=status), patient())
    assert stages(items) == (SKIPPED, SKIPPED, SKIPPED)


# --- late booking and edit grace -------------------------------------------------------------


@pytest.mark.parametrize(
    ("booked_at", "expected"),
    [
        # One hour ahead (09:00 EDT for 10:00): every stage had already passed.
        (utc(2026, 6, 10, 13, 0), (SKIPPED, SKIPPED, SKIPPED)),
        # 22:00 EDT the evening before: only -2h (08:00 EDT) is still ahead.
        (utc(2026, 6, 10, 2, 0), (SKIPPED, SKIPPED, utc(2026, 6, 10, 12, 0))),
        # 25 hours ahead: -72h passed; -24h and -2h at their own moments.
        (utc(2026, 6, 9, 13, 0), (SKIPPED, utc(2026, 6, 9, 14, 0), utc(2026, 6, 10, 12, 0))),
        # 24 h 01 min ahead: -24h is one minute away, so it waits for the 3-minute grace.
        (utc(2026, 6, 9, 13, 59), (SKIPPED, utc(2026, 6, 9, 14, 2), utc(2026, 6, 10, 12, 0))),
        # Exactly 2 h ahead: the -2h moment had not passed (it is now) -> after the grace.
        (utc(2026, 6, 10, 12, 0), (SKIPPED, SKIPPED, utc(2026, 6, 10, 12, 3))),
        # 1 h 59 min ahead: -2h passed a minute before the booking.
        (utc(2026, 6, 10, 12, 1), (SKIPPED, SKIPPED, SKIPPED)),
    ],
)
def test_late_booking_skips_stages_that_passed_before_the_time_was_set(
    booked_at: datetime, expected: tuple[Any, ...]
) -> None:
    items = planned_at_booking(appointment(SESSION, time_set_at=booked_at), patient())
    assert stages(items) == expected


def test_late_booking_is_covered_by_the_booking_confirmation() -> None:
    items = planned_at_booking(appointment(SESSION, time_set_at=utc(2026, 6, 10, 13, 0)), patient())
    assert outcome(only(items, ReminderKind.BOOKING_CONFIRMATION)) == utc(2026, 6, 10, 13, 3)


def test_becoming_booked_late_does_not_fire_a_burst_of_stale_stages() -> None:
    # Created "pending" weeks ago, made "booked" one hour before the session: the -72h, -24h
    # and -2h moments are long gone, so none of them should now go out together.
    facts = appointment(
        SESSION,
        time_set_at=utc(2026, 5, 1, 14, 0),
        status_changed_at=utc(2026, 6, 10, 13, 0),
    )
    items = plan(facts, patient(), policy(), utc(2026, 6, 10, 13, 0))
    assert stages(items) == (SKIPPED, SKIPPED, SKIPPED)


@pytest.mark.parametrize(
    ("rules", "time_set_at", "status_changed_at", "now", "expected_last"),
    [
        # Moved to this time at 07:59 EDT: -2h (08:00) waits for the grace -> 08:02.
        (policy(), utc(2026, 6, 10, 11, 59), None, None, utc(2026, 6, 10, 12, 2)),
        # No grace: exactly at 08:00 EDT.
        (
            policy(edit_grace_minutes=0),
            utc(2026, 6, 10, 11, 59),
            None,
            None,
            SESSION - timedelta(hours=2),
        ),
        # A 10-minute grace from an edit at 07:55 EDT -> 08:05.
        (
            policy(edit_grace_minutes=10),
            utc(2026, 6, 10, 11, 55),
            None,
            None,
            utc(2026, 6, 10, 12, 5),
        ),
        # The grace also counts from the last status edit (one -2h stage).
        (
            policy(stages=(StagePolicy(offset="-2h"),)),
            utc(2026, 5, 1, 14, 0),
            utc(2026, 6, 10, 11, 59),
            utc(2026, 6, 10, 11, 59),
            utc(2026, 6, 10, 12, 2),
        ),
        # Planned again after its moment (a later re-plan): due now, never in the past.
        (
            policy(stages=(StagePolicy(offset="-2h"),)),
            utc(2026, 5, 1, 14, 0),
            None,
            utc(2026, 6, 10, 12, 30),
            utc(2026, 6, 10, 12, 30),
        ),
        # The grace would push a -2m stage to the start itself: too close, skipped without a row.
        (
            policy(stages=(StagePolicy(offset="-2m"),)),
            utc(2026, 6, 10, 13, 58),
            None,
            None,
            SKIPPED,
        ),
    ],
)
def test_nothing_is_due_within_the_edit_grace_or_in_the_past(
    rules: ReminderPolicy,
    time_set_at: datetime,
    status_changed_at: datetime | None,
    now: datetime | None,
    expected_last: Any,
) -> None:
    facts = appointment(SESSION, time_set_at=time_set_at, status_changed_at=status_changed_at)
    assert stages(plan(facts, patient(), rules, now or time_set_at))[-1] == expected_last


# --- booking confirmation --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "booked_at", "expected"),
    [
        # Booked 10:00 EDT the day before -> 10:03 EDT.
        (patient(), utc(2026, 6, 9, 14, 0), utc(2026, 6, 9, 14, 3)),
        # Booked 21:00 EDT -> 21:03 is quiet -> 08:00 EDT next morning.
        (patient(), utc(2026, 6, 10, 1, 0), utc(2026, 6, 10, 12, 0)),
        # By email at 23:00 EDT: no quiet hours -> 23:03 EDT.
        (patient(preferred=EMAIL), utc(2026, 6, 10, 3, 0), utc(2026, 6, 10, 3, 3)),
        # Booked 2 minutes before the start: the grace runs past it.
        (patient(), utc(2026, 6, 10, 13, 58), SKIPPED),
    ],
)
def test_booking_confirmation_goes_after_the_edit_grace_outside_quiet_hours(
    who: PatientFacts, booked_at: datetime, expected: Any
) -> None:
    items = planned_at_booking(appointment(SESSION, time_set_at=booked_at), who)
    assert outcome(only(items, ReminderKind.BOOKING_CONFIRMATION)) == expected


def test_booking_confirmation_pushed_past_the_start_by_quiet_hours_is_recorded() -> None:
    # Booked 22:00 EDT for 07:00 EDT next morning: 22:03 -> 08:00 EDT, after the start.
    facts = appointment(utc(2026, 6, 10, 11, 0), time_set_at=utc(2026, 6, 10, 2, 0))
    item = only(planned_at_booking(facts, patient()), ReminderKind.BOOKING_CONFIRMATION)
    assert outcome(item) == RECORDED


@pytest.mark.parametrize(
    ("rules", "status", "announce", "expected"),
    [
        (policy(), BOOKED, False, None),  # bulk import of an existing schedule
        (policy(booking_confirmation=False), BOOKED, True, None),
        (policy(), AppointmentStatus.PENDING, True, SKIPPED),
    ],
)
def test_booking_confirmation_only_when_announced_enabled_and_booked(
    rules: ReminderPolicy, status: AppointmentStatus, announce: bool, expected: str | None
) -> None:
    facts = appointment(SESSION, status=status, time_set_at=utc(2026, 6, 9, 14, 0))
    items = planned_at_booking(facts, patient(), rules, announce=announce)
    found = [outcome(i) for i in items if i.kind == ReminderKind.BOOKING_CONFIRMATION]
    assert found == ([expected] if expected else [])


# --- missed-session and cancellation follow-ups ----------------------------------------------


@pytest.mark.parametrize(
    ("who", "rules", "start", "status", "changed_at", "expected"),
    [
        # Still booked: start + 15 min.
        (patient(), policy(), SESSION, BOOKED, None, utc(2026, 6, 10, 14, 15)),
        # Marked no-show 20 min in: the edit grace -> 14:23.
        (
            patient(),
            policy(),
            SESSION,
            AppointmentStatus.NOSHOW,
            utc(2026, 6, 10, 14, 20),
            utc(2026, 6, 10, 14, 23),
        ),
        # A 30-minute grace.
        (
            patient(),
            policy(missed_grace_minutes=30),
            SESSION,
            BOOKED,
            None,
            utc(2026, 6, 10, 14, 30),
        ),
        # Session 20:50 EDT: 21:05 is quiet for SMS -> 08:00 EDT next morning; email goes.
        (patient(), policy(), utc(2026, 6, 11, 0, 50), BOOKED, None, utc(2026, 6, 11, 12, 0)),
        (
            patient(preferred=EMAIL),
            policy(),
            utc(2026, 6, 11, 0, 50),
            BOOKED,
            None,
            utc(2026, 6, 11, 1, 5),
        ),
        # The session happened, or was cancelled: nothing to follow up.
        (patient(), policy(), SESSION, AppointmentStatus.FULFILLED, None, SKIPPED),
        (patient(), policy(), SESSION, AppointmentStatus.CANCELLED, None, SKIPPED),
    ],
)
def test_missed_followup_at_start_plus_grace_while_booked_or_noshow(
    who: PatientFacts,
    rules: ReminderPolicy,
    start: datetime,
    status: AppointmentStatus,
    changed_at: datetime | None,
    expected: Any,
) -> None:
    facts = appointment(start, status=status, status_changed_at=changed_at)
    items = plan(facts, who, rules, changed_at or facts.time_set_at)
    assert outcome(only(items, ReminderKind.MISSED_FOLLOWUP)) == expected


def test_missed_followup_is_never_due_in_the_past() -> None:
    # Planned again an hour after the start (11:00 EDT), nobody marked the session.
    items = plan(appointment(SESSION), patient(), policy(), utc(2026, 6, 10, 15, 0))
    assert outcome(only(items, ReminderKind.MISSED_FOLLOWUP)) == utc(2026, 6, 10, 15, 0)


def test_missed_followup_says_nothing_about_a_session_learnt_of_afterwards() -> None:
    facts = appointment(SESSION, time_set_at=utc(2026, 6, 10, 15, 0))  # imported an hour later
    items = planned_at_booking(facts, patient(), announce=False)
    assert outcome(only(items, ReminderKind.MISSED_FOLLOWUP)) == SKIPPED


def test_missed_followup_can_be_turned_off() -> None:
    items = planned_at_booking(appointment(SESSION), patient(), policy(missed_followup=False))
    assert ReminderKind.MISSED_FOLLOWUP not in kinds(items)


@pytest.mark.parametrize(
    ("cancelled_at", "expected"),
    [
        (utc(2026, 6, 8, 15, 0), utc(2026, 6, 8, 15, 3)),  # 11:00 EDT -> 11:03
        (utc(2026, 6, 9, 2, 0), utc(2026, 6, 9, 12, 0)),  # 22:00 EDT -> 08:00 EDT
    ],
)
def test_cancellation_followup_after_the_grace_outside_quiet_hours(
    cancelled_at: datetime, expected: datetime
) -> None:
    facts = appointment(SESSION, status=AppointmentStatus.CANCELLED, status_changed_at=cancelled_at)
    items = plan(facts, patient(), policy(cancellation_followup=True), cancelled_at)
    assert outcome(only(items, ReminderKind.CANCELLATION_FOLLOWUP)) == expected


@pytest.mark.parametrize(
    ("rules", "status", "announce"),
    [
        (policy(), AppointmentStatus.CANCELLED, True),  # off by default
        (policy(cancellation_followup=True), AppointmentStatus.CANCELLED, False),
        (policy(cancellation_followup=True), BOOKED, True),
    ],
)
def test_cancellation_followup_only_when_enabled_announced_and_cancelled(
    rules: ReminderPolicy, status: AppointmentStatus, announce: bool
) -> None:
    facts = appointment(SESSION, status=status)
    items = planned_at_booking(facts, patient(), rules, announce=announce)
    assert ReminderKind.CANCELLATION_FOLLOWUP not in kinds(items)


# --- the edit grace and "not in the past" for the one-off messages ----------------------------


@pytest.mark.parametrize(
    ("facts", "now", "kind", "expected"),
    [
        pytest.param(
            # Created "pending" at 10:00 EDT, made "booked" at 12:00 EDT: the confirmation may
            # not go before 12:03 (grace after the last status edit), nor at 10:03 (the past).
            appointment(
                SESSION,
                time_set_at=utc(2026, 6, 8, 14, 0),
                status_changed_at=utc(2026, 6, 8, 16, 0),
            ),
            utc(2026, 6, 8, 16, 0),
            ReminderKind.BOOKING_CONFIRMATION,
            utc(2026, 6, 8, 16, 3),
            id="booking-confirmation-after-status-edit",
        ),
        pytest.param(
            # Booked 10:00 EDT, planned again at 11:00 EDT (e.g. the patient's phone was added).
            appointment(SESSION, time_set_at=utc(2026, 6, 8, 14, 0)),
            utc(2026, 6, 8, 15, 0),
            ReminderKind.BOOKING_CONFIRMATION,
            utc(2026, 6, 8, 15, 0),
            id="booking-confirmation-replanned-later",
        ),
        pytest.param(
            # Cancelled 11:00 EDT, planned again at 13:00 EDT.
            appointment(
                SESSION,
                status=AppointmentStatus.CANCELLED,
                status_changed_at=utc(2026, 6, 8, 15, 0),
            ),
            utc(2026, 6, 8, 17, 0),
            ReminderKind.CANCELLATION_FOLLOWUP,
            utc(2026, 6, 8, 17, 0),
            id="cancellation-followup-replanned-later",
        ),
    ],
)
def test_one_off_messages_respect_the_edit_grace_and_are_never_due_in_the_past(
    facts: AppointmentFacts, now: datetime, kind: ReminderKind, expected: datetime
) -> None:
    items = plan(facts, patient(), policy(cancellation_followup=True), now)
    assert outcome(only(items, kind)) == expected
