"""When and how a patient hears about an appointment: planning as a pure function.

``plan(appointment, patient, policy, now)`` returns every message that should exist for the
appointment's current time, each either to ``send`` at ``due_at`` on ``channel`` or to ``skip``
with a reason. The services store the plan (one row per appointment, stage and start time) in
the same transaction as the change that caused it; the dispatcher re-checks at send time.

Rules (docs/REMINDERS.md tells them to practices):
- Stage reminders go at start + offset (default -72 h, -24 h, -2 h) while the appointment is
  ``booked``; ``unconfirmed_only`` stages stop once the patient confirmed, declined or asked to
  reschedule.
- Late booking: a stage whose moment had already passed when the current start time was set is
  skipped ("booked too late"), so booking an hour ahead does not fire three stale reminders at
  once. The booking confirmation covers such a patient.
- Edit grace: nothing is due sooner than ``edit_grace_minutes`` after the time was set, so an
  edit undone at once sends nothing.
- Quiet hours (SMS and WhatsApp by default): a message due in the patient's night, in the
  patient's own timezone, waits for the morning; a stage reminder that would then arrive after
  the session starts is skipped with that reason.
- Missed session: start + grace (default 15 min) while still ``booked`` (or marked ``noshow``).
- Reminders off for the patient: everything is skipped.
Caps per patient (1 a calendar day, 3 in any 7 days) span appointments, so the dispatcher
applies them at send time (``cap_release``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from frontdesk.domain.appointments import AppointmentStatus, Confirmation
from frontdesk.domain.channels import Channel, ConsentStatus
from frontdesk.domain.times import zone


class ReminderKind(StrEnum):
    STAGE = "stage"
    BOOKING_CONFIRMATION = "booking_confirmation"
    MISSED_FOLLOWUP = "missed_followup"
    CANCELLATION_FOLLOWUP = "cancellation_followup"


class ReminderState(StrEnum):
    SCHEDULED = "scheduled"
    CLAIMED = "claimed"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


# Once a reminder reached one of these, planning never touches it again.
FINAL_STATES = frozenset(
    {ReminderState.SENT, ReminderState.DELIVERED, ReminderState.FAILED, ReminderState.CLAIMED}
)


class Condition(StrEnum):
    UNCONFIRMED_ONLY = "unconfirmed_only"
    ALWAYS = "always"


_OFFSET = re.compile(r"^(-?)(\d+(?:\.\d+)?)(h|m|d)$")
_UNIT_MINUTES = {"m": 1, "h": 60, "d": 1440}


def parse_offset(text: str) -> timedelta:
    """``-72h``, ``-30m``, ``-1d`` → a timedelta (negative means before the start)."""
    match = _OFFSET.match(text.strip())
    if not match:
        raise ValueError(f"offset {text!r} must look like -72h, -90m or -1d")
    sign, amount, unit = match.groups()
    minutes = float(amount) * _UNIT_MINUTES[unit]
    return timedelta(minutes=-minutes if sign else minutes)


class StagePolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    offset: str = Field(description="From the appointment start: -72h, -24h, -90m, -1d")
    condition: Condition = Condition.UNCONFIRMED_ONLY
    name: str | None = Field(default=None, description="Stage id; defaults to the offset")
    text: str | None = Field(default=None, description="Message text; {practice} {when} …")

    @field_validator("offset")
    @classmethod
    def _offset(cls, value: str) -> str:
        if parse_offset(value) >= timedelta(0):
            raise ValueError("a reminder stage must come before the appointment (e.g. -24h)")
        return value.strip()

    @property
    def key(self) -> str:
        return self.name or self.offset

    @property
    def delta(self) -> timedelta:
        return parse_offset(self.offset)


class ReminderPolicy(BaseModel):
    """A practice's reminder rules. Every field has a default that suits a US practice."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stages: tuple[StagePolicy, ...] = (
        StagePolicy(offset="-72h"),
        StagePolicy(offset="-24h"),
        StagePolicy(offset="-2h"),
    )
    channel_order: tuple[Channel, ...] = (Channel.SMS, Channel.WHATSAPP, Channel.EMAIL)
    require_explicit_consent: bool = False
    quiet_hours_start: time = time(8, 0)
    quiet_hours_end: time = time(21, 0)
    quiet_hours_channels: frozenset[Channel] = frozenset({Channel.SMS, Channel.WHATSAPP})
    max_per_day: int = Field(default=1, ge=1)
    max_per_week: int = Field(default=3, ge=1)
    booking_confirmation: bool = True
    missed_followup: bool = True
    missed_grace_minutes: int = Field(default=15, ge=0, le=24 * 60)
    cancellation_followup: bool = False
    edit_grace_minutes: int = Field(default=3, ge=0, le=120)

    @model_validator(mode="after")
    def _checks(self) -> ReminderPolicy:
        keys = [s.key for s in self.stages]
        if len(set(keys)) != len(keys):
            raise ValueError("stage names must be unique")
        if self.quiet_hours_start >= self.quiet_hours_end:
            raise ValueError("quiet_hours_start must be before quiet_hours_end")
        if self.max_per_week < self.max_per_day:
            raise ValueError("max_per_week cannot be below max_per_day")
        return self


@dataclass(frozen=True)
class AppointmentFacts:
    start: datetime
    status: AppointmentStatus
    confirmation: Confirmation
    # When the current start time was set (booking or last move): the late-booking rule and
    # the edit grace count from it.
    time_set_at: datetime
    status_changed_at: datetime


@dataclass(frozen=True)
class PatientFacts:
    timezone: str
    reminders_enabled: bool
    preferred_channel: Channel | None
    has_phone: bool
    has_email: bool
    consent: dict[Channel, ConsentStatus]


@dataclass(frozen=True)
class PlannedReminder:
    kind: ReminderKind
    stage: str
    due_at: datetime
    channel: Channel | None
    action: Literal["send", "skip"]
    reason: str | None = None
    # A skip worth a row in the database (the patient could not be reached, or quiet hours
    # pushed it past the session); a stage that simply does not apply is only shown in plans.
    record: bool = False


def usable_channels(patient: PatientFacts, policy: ReminderPolicy) -> list[Channel]:
    """The patient's channels in the order to try them: their own choice first, then the
    practice's order, leaving out any without an address or consent. Web chat only reaches a
    patient who is on the page, so it is never used for a message we start."""
    order = [patient.preferred_channel] if patient.preferred_channel else []
    order += [c for c in policy.channel_order if c not in order]
    usable: list[Channel] = []
    for channel in order:
        if channel is None or channel == Channel.WEBCHAT:
            continue
        if channel in (Channel.SMS, Channel.WHATSAPP) and not patient.has_phone:
            continue
        if channel == Channel.EMAIL and not patient.has_email:
            continue
        consent = patient.consent.get(channel)
        if consent == ConsentStatus.REVOKED:
            continue
        if policy.require_explicit_consent and consent != ConsentStatus.GRANTED:
            continue
        if channel == Channel.WHATSAPP and consent != ConsentStatus.GRANTED:
            # Meta requires the patient's opt-in before a business writes to them on WhatsApp.
            continue
        usable.append(channel)
    return usable


def next_allowed(moment: datetime, tz_name: str, start: time, end: time) -> datetime:
    """``moment``, or the next time at or after it inside [start, end) on the wall clock of
    ``tz_name`` — computed per local day, so it stays right across DST changes."""
    tz = zone(tz_name)
    local = moment.astimezone(tz)
    if start <= local.time() < end:
        return moment
    day = local.date() if local.time() < start else local.date() + timedelta(days=1)
    return datetime.combine(day, start, tzinfo=tz).astimezone(moment.tzinfo)


def cap_release(
    sent: list[datetime], now: datetime, tz_name: str, per_day: int, per_week: int
) -> tuple[datetime, str] | None:
    """When the per-patient caps let another reminder go, if not now, and which cap holds it.

    ``sent`` are the times of stage reminders already sent to the patient (any appointment,
    any channel). A day is the patient's calendar day — so -24 h and -2 h reminders on
    consecutive days both go — and a week is any 7 days in a row.
    """
    tz = zone(tz_name)
    today = now.astimezone(tz).date()
    on_today = [t for t in sent if t.astimezone(tz).date() == today]
    if len(on_today) >= per_day:
        tomorrow = datetime.combine(today + timedelta(days=1), time.min, tzinfo=tz)
        return tomorrow.astimezone(now.tzinfo), f"daily cap of {per_day} reminder(s) per patient"
    in_week = sorted(t for t in sent if now - timedelta(days=7) < t <= now)
    if len(in_week) >= per_week:
        release = in_week[len(in_week) - per_week] + timedelta(days=7)
        return release, f"weekly cap of {per_week} reminder(s) per patient"
    return None


def _quiet(
    due: datetime, channel: Channel, patient: PatientFacts, policy: ReminderPolicy
) -> datetime:
    if channel not in policy.quiet_hours_channels:
        return due
    return next_allowed(due, patient.timezone, policy.quiet_hours_start, policy.quiet_hours_end)


def plan(
    appointment: AppointmentFacts,
    patient: PatientFacts,
    policy: ReminderPolicy,
    now: datetime,
    *,
    announce: bool = True,
) -> list[PlannedReminder]:
    """Every reminder the appointment's current state calls for. ``announce`` is False for bulk
    imports of an existing schedule: patients who booked long ago get no booking message."""
    channels = usable_channels(patient, policy)
    channel = channels[0] if channels else None
    grace = timedelta(minutes=policy.edit_grace_minutes)
    # Nothing is due in the past, nor sooner than the grace after the last edit of the time or
    # status (an edit undone within the grace sends nothing).
    earliest = max(max(appointment.time_set_at, appointment.status_changed_at) + grace, now)
    out: list[PlannedReminder] = []

    def add(kind: ReminderKind, stage: str, due: datetime, reason: str | None) -> None:
        record = False
        if kind == ReminderKind.MISSED_FOLLOWUP and reason is None:
            # Planned even when the patient cannot be messaged: at its time the dispatcher
            # opens the front desk's review item, then sends only if the patient can be reached.
            out.append(PlannedReminder(kind, stage, due, channel, "send"))
            return
        if reason is None and not patient.reminders_enabled:
            reason, record = "the patient has reminders turned off", True
        if reason is None and channel is None:
            reason, record = "no usable channel (no address, or consent revoked)", True
        if reason is not None and reason.startswith("quiet hours"):
            record = True
        action: Literal["send", "skip"] = "skip" if reason else "send"
        out.append(PlannedReminder(kind, stage, due, channel, action, reason, record))

    status = appointment.status
    # In UTC, so an offset is real hours: "-24h" from a zoned start would be wall-clock hours.
    start = appointment.start.astimezone(UTC)
    for stage in policy.stages:
        due = start + stage.delta
        reason = _stage_skip_reason(appointment, stage, due)
        if reason is None:
            due = max(due, earliest)
            if due >= start:
                reason = "too close to the session"
            elif channel is not None:
                due = _quiet(due, channel, patient, policy)
                if due >= start:
                    reason = "quiet hours: the next allowed time is after the session starts"
        add(ReminderKind.STAGE, stage.key, due, reason)

    if policy.booking_confirmation and announce:
        due, reason = earliest, None
        if status != AppointmentStatus.BOOKED:
            reason = f"appointment is {status.value}"
        elif due >= start:
            reason = "the session starts before the confirmation could be sent"
        elif channel is not None:
            due = _quiet(due, channel, patient, policy)
            if due >= start:
                reason = "quiet hours: the next allowed time is after the session starts"
        add(ReminderKind.BOOKING_CONFIRMATION, "booked", due, reason)

    if policy.missed_followup:
        due = start + timedelta(minutes=policy.missed_grace_minutes)
        reason = None
        if status not in (AppointmentStatus.BOOKED, AppointmentStatus.NOSHOW):
            reason = f"appointment is {status.value}"
        elif appointment.time_set_at >= due:
            # Learnt of the session only after it was missed (an import of past sessions):
            # whether the patient came is unknown, so say nothing. (A no-show the scheduling
            # system records afterwards is a change of status, not news of the session.)
            reason = "the session was over before frontdesk knew of it"
        else:
            due = max(due, earliest)
            if channel is not None:
                due = _quiet(due, channel, patient, policy)
        add(ReminderKind.MISSED_FOLLOWUP, "missed", due, reason)

    if policy.cancellation_followup and status == AppointmentStatus.CANCELLED and announce:
        due = earliest
        if channel is not None:
            due = _quiet(due, channel, patient, policy)
        add(ReminderKind.CANCELLATION_FOLLOWUP, "cancelled", due, None)
    return out


def _stage_skip_reason(
    appointment: AppointmentFacts, stage: StagePolicy, due: datetime
) -> str | None:
    if appointment.status != AppointmentStatus.BOOKED:
        return f"appointment is {appointment.status.value}"
    if due >= appointment.start:
        return "the stage falls after the session starts"
    if (
        stage.condition == Condition.UNCONFIRMED_ONLY
        and appointment.confirmation != Confirmation.UNCONFIRMED
    ):
        return f"patient already answered ({appointment.confirmation.value})"
    if due < _known_since(appointment):
        return "booked too late for this reminder"
    return None


def _known_since(appointment: AppointmentFacts) -> datetime:
    """Since when the appointment has had its current time and status: a stage whose moment
    came before that (booked, moved or re-booked late) is not sent."""
    return max(appointment.time_set_at, appointment.status_changed_at)
