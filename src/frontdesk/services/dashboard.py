"""The practice's dashboard: what the front desk did for it over a period, and what it cost.

Every number is counted from stored rows (reminders, messages, appointments, audit events,
handoffs), so it can be re-counted for any period and exported as CSV.
"""

from __future__ import annotations

import csv
import io
import statistics
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from frontdesk.adapters.db.handoff_models import Handoff, RebookingLink
from frontdesk.adapters.db.models import Appointment, AuditEvent, Message, Practice, Reminder
from frontdesk.domain.appointments import AppointmentStatus
from frontdesk.domain.errors import FieldError, ValidationFailed
from frontdesk.domain.reminders import ReminderKind
from frontdesk.domain.templates import sms_length
from frontdesk.domain.times import zone
from frontdesk.services.llm_usage import usage_between

# Pay-as-you-go list prices (USD) used until a practice sets its own: Twilio's US SMS segment,
# Meta's US utility conversation, a transactional email, 1,000 LLM tokens (a small hosted
# model, input and output blended; a practice running its own model sets 0).
DEFAULT_PRICES = {
    "sms_segment": 0.0083,
    "whatsapp_conversation": 0.004,
    "email": 0.001,
    "llm_1k_tokens": 0.0003,
}


def prices_of(practice: Practice) -> dict[str, float]:
    stored = (practice.settings or {}).get("prices", {})
    return {key: float(stored.get(key, value)) for key, value in DEFAULT_PRICES.items()}


def set_prices(practice: Practice, values: dict[str, Any]) -> dict[str, float]:
    errors = []
    clean: dict[str, float] = {}
    for key, value in values.items():
        if key not in DEFAULT_PRICES:
            errors.append(FieldError(key, f"unknown price; one of {sorted(DEFAULT_PRICES)}"))
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            errors.append(FieldError(key, "must be a number"))
            continue
        if number < 0:
            errors.append(FieldError(key, "must not be negative"))
        clean[key] = number
    if errors:
        raise ValidationFailed(errors)
    practice.settings = {**(practice.settings or {}), "prices": {**prices_of(practice), **clean}}
    return prices_of(practice)


@dataclass
class Dashboard:
    start: datetime
    end: datetime
    reminders: dict[str, dict[str, int]] = field(default_factory=dict)  # channel → state → n
    appointments: int = 0
    confirmed: int = 0
    past_appointments: int = 0
    no_shows: int = 0
    answers: dict[str, dict[str, int]] = field(default_factory=dict)  # answer → source → n
    missed_followups_by_day: dict[date, int] = field(default_factory=dict)
    escalations: dict[str, int] = field(default_factory=dict)
    first_response_minutes: list[float] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=dict)
    prices: dict[str, float] = field(default_factory=dict)
    rebooking_links: int = 0  # follow-ups and receipts that carried a booking link
    rebooked: int = 0  # bookings credited to one of them

    @property
    def confirmation_rate(self) -> float | None:
        return self.confirmed / self.appointments if self.appointments else None

    @property
    def no_show_rate(self) -> float | None:
        return self.no_shows / self.past_appointments if self.past_appointments else None

    @property
    def median_first_response(self) -> float | None:
        return (
            statistics.median(self.first_response_minutes) if self.first_response_minutes else None
        )

    @property
    def cost(self) -> dict[str, float]:
        unit = {
            "sms_segments": "sms_segment",
            "whatsapp_conversations": "whatsapp_conversation",
            "emails": "email",
        }
        out = {k: round(self.usage.get(k, 0) * self.prices[v], 4) for k, v in unit.items()}
        out["llm_tokens"] = round(
            self.usage.get("llm_tokens", 0) / 1000 * self.prices["llm_1k_tokens"], 4
        )
        out["total"] = round(sum(out.values()), 4)
        return out


def period(
    practice: Practice, start: date | None, end: date | None, today: date
) -> tuple[datetime, datetime]:
    """[start, end] as whole local days of the practice (default: the last 30 days)."""
    last = end or today
    first = start or last - timedelta(days=29)
    if first > last:
        raise ValidationFailed([FieldError("from", "must not be after 'to'")])
    tz = zone(practice.timezone)
    return (
        datetime(first.year, first.month, first.day, tzinfo=tz),
        datetime(last.year, last.month, last.day, tzinfo=tz) + timedelta(days=1),
    )


def build(
    session: Session, practice: Practice, start: datetime, end: datetime, now: datetime
) -> Dashboard:
    board = Dashboard(start=start, end=end, prices=prices_of(practice))
    pid = practice.id

    for channel, state, count in session.execute(
        select(Reminder.channel, Reminder.state, func.count())
        .where(Reminder.practice_id == pid, Reminder.sent_at >= start, Reminder.sent_at < end)
        .group_by(Reminder.channel, Reminder.state)
    ):
        board.reminders.setdefault(channel or "none", {})[state] = count
    for channel, count in session.execute(
        select(Reminder.channel, func.count())
        .where(
            Reminder.practice_id == pid,
            Reminder.state == "failed",
            Reminder.sent_at.is_(None),
            Reminder.updated_at >= start,
            Reminder.updated_at < end,
        )
        .group_by(Reminder.channel)
    ):
        bucket = board.reminders.setdefault(channel or "none", {})
        bucket["failed"] = bucket.get("failed", 0) + count

    in_period = (
        Appointment.practice_id == pid,
        Appointment.start_at >= start,
        Appointment.start_at < end,
        Appointment.status != AppointmentStatus.ENTERED_IN_ERROR.value,
    )
    for confirmation, status, start_at in session.execute(
        select(Appointment.confirmation, Appointment.status, Appointment.start_at).where(*in_period)
    ):
        board.appointments += 1
        if confirmation == "confirmed":
            board.confirmed += 1
        if start_at < now and status != AppointmentStatus.CANCELLED.value:
            board.past_appointments += 1
            if status == AppointmentStatus.NOSHOW.value:
                board.no_shows += 1

    for action, details in session.execute(
        select(AuditEvent.action, AuditEvent.details).where(
            AuditEvent.practice_id == pid,
            AuditEvent.at >= start,
            AuditEvent.at < end,
            AuditEvent.action.in_(
                ("appointment.confirm", "appointment.cancel", "appointment.reschedule")
            ),
        )
    ):
        source = str((details or {}).get("source", "other")).split(":")[0]
        answer = action.split(".", 1)[1]
        board.answers.setdefault(answer, {})[source] = (
            board.answers.get(answer, {}).get(source, 0) + 1
        )

    tz = zone(practice.timezone)
    for (sent_at,) in session.execute(
        select(Reminder.sent_at).where(
            Reminder.practice_id == pid,
            Reminder.kind == ReminderKind.MISSED_FOLLOWUP.value,
            Reminder.sent_at >= start,
            Reminder.sent_at < end,
        )
    ):
        if sent_at is None:
            continue
        day = sent_at.astimezone(tz).date()
        board.missed_followups_by_day[day] = board.missed_followups_by_day.get(day, 0) + 1

    handoffs = session.scalars(
        select(Handoff).where(
            Handoff.practice_id == pid, Handoff.created_at >= start, Handoff.created_at < end
        )
    ).all()
    for handoff in handoffs:
        board.escalations[handoff.reason] = board.escalations.get(handoff.reason, 0) + 1
        first_human = session.scalar(
            select(func.min(Message.created_at)).where(
                Message.conversation_id == handoff.conversation_id,
                Message.purpose == "staff_reply",
                Message.created_at >= handoff.created_at,
            )
        )
        responded = min(
            (t for t in (first_human, handoff.acknowledged_at) if t is not None), default=None
        )
        if responded is not None:
            board.first_response_minutes.append(
                (responded - handoff.created_at).total_seconds() / 60
            )

    board.rebooking_links = (
        session.scalar(
            select(func.count(RebookingLink.id)).where(
                RebookingLink.practice_id == pid,
                RebookingLink.created_at >= start,
                RebookingLink.created_at < end,
            )
        )
        or 0
    )
    board.rebooked = (
        session.scalar(
            select(func.count(RebookingLink.id)).where(
                RebookingLink.practice_id == pid,
                RebookingLink.booked_at >= start,
                RebookingLink.booked_at < end,
            )
        )
        or 0
    )

    segments = 0
    emails = 0
    whatsapp_windows: set[tuple[int, date]] = set()
    for channel, body, conversation_id, created_at in session.execute(
        select(Message.channel, Message.body, Message.conversation_id, Message.created_at).where(
            Message.practice_id == pid,
            Message.direction == "outbound",
            Message.created_at >= start,
            Message.created_at < end,
            Message.delivery_status.not_in(("pending", "sending", "failed")),
        )
    ):
        if channel == "sms":
            segments += sms_length(body).segments
        elif channel == "email":
            emails += 1
        elif channel == "whatsapp":
            # Meta bills per 24-hour conversation; a calendar day per thread approximates it.
            whatsapp_windows.add((conversation_id, created_at.date()))
    board.usage = {
        "sms_segments": segments,
        "whatsapp_conversations": len(whatsapp_windows),
        "emails": emails,
    } | usage_between(session, pid, start, end)
    return board


def to_csv(board: Dashboard) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["metric", "dimension", "value"])
    writer.writerow(["period_start", "", board.start.isoformat()])
    writer.writerow(["period_end", "", board.end.isoformat()])
    for channel, states in sorted(board.reminders.items()):
        for state, count in sorted(states.items()):
            writer.writerow(["reminders", f"{channel}:{state}", count])
    writer.writerow(["appointments", "", board.appointments])
    writer.writerow(["confirmed", "", board.confirmed])
    writer.writerow(["confirmation_rate", "", _fmt(board.confirmation_rate)])
    writer.writerow(["no_shows", "", board.no_shows])
    writer.writerow(["no_show_rate", "", _fmt(board.no_show_rate)])
    for answer, sources in sorted(board.answers.items()):
        for source, count in sorted(sources.items()):
            writer.writerow(["answers", f"{answer}:{source}", count])
    for day, count in sorted(board.missed_followups_by_day.items()):
        writer.writerow(["missed_session_followups", day.isoformat(), count])
    for reason, count in sorted(board.escalations.items()):
        writer.writerow(["escalations", reason, count])
    writer.writerow(["rebooking_links_sent", "", board.rebooking_links])
    writer.writerow(["rebookings_attributed", "", board.rebooked])
    writer.writerow(["median_first_human_response_minutes", "", _fmt(board.median_first_response)])
    for key, value in board.usage.items():
        writer.writerow(["usage", key, value])
    for key, cost in board.cost.items():
        writer.writerow(["estimated_cost_usd", key, cost])
    return out.getvalue()


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"
