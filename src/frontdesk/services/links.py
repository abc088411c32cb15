"""One-click links in emails: confirm, cancel or reschedule an appointment.

A link carries a random token (only its hash is stored), expires when the appointment starts
(or after ``MAX_AGE``), and works once. Opening it shows a page with a button: mail scanners
that fetch every link in a message must not cancel anyone's session, so only the button's POST
acts.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, insert, select, text
from sqlalchemy.orm import Session

from frontdesk.adapters.crypto import hash_token
from frontdesk.adapters.db.channel_models import ActionLink
from frontdesk.adapters.db.models import Appointment, Practice, UTCDateTime, utcnow
from frontdesk.services.appointment_answers import ANSWERS, apply_answer
from frontdesk.services.claimed import AppointmentRow
from frontdesk.services.reminders import Planning

MAX_AGE = timedelta(days=14)


def issue(
    session: Session, appointment: Appointment, action: str, *, now: datetime, base_url: str
) -> str:
    if action not in ANSWERS:
        raise ValueError(f"unknown action {action!r}")
    token = secrets.token_urlsafe(24)
    session.add(
        ActionLink(
            practice_id=appointment.practice_id,
            appointment_id=appointment.id,
            action=action,
            token_hash=hash_token(token),
            expires_at=min(appointment.start_at, now + MAX_AGE),
        )
    )
    return f"{base_url.rstrip('/')}/a/{token}"


def issue_all(
    session: Session, appointment: Appointment, *, now: datetime, base_url: str
) -> dict[str, str]:
    """The three links of a reminder email, as template variables."""
    return {
        f"{action}_link": issue(session, appointment, action, now=now, base_url=base_url)
        for action in ANSWERS
    }


class LinkBatch:
    """The links of a batch of reminder emails, inserted together with one statement (the ORM
    would flush three objects per email). Same tokens, hashes and expiry as ``issue``."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.rows: list[dict[str, Any]] = []

    def issue_all(self, appointment: AppointmentRow, *, now: datetime) -> dict[str, str]:
        expires_at = min(appointment.start_at, now + MAX_AGE)
        links = {}
        for action in ANSWERS:
            token = secrets.token_urlsafe(24)
            self.rows.append(
                {
                    "practice_id": appointment.practice_id,
                    "appointment_id": appointment.id,
                    "action": action,
                    "token_hash": hash_token(token),
                    "expires_at": expires_at,
                }
            )
            links[f"{action}_link"] = f"{self.base_url}/a/{token}"
        return links

    def insert(self, session: Session) -> None:
        """One statement: on PostgreSQL one JSON parameter for all rows, elsewhere an
        executemany."""
        if not self.rows:
            return
        connection = session.connection()
        if connection.dialect.name == "postgresql":
            rows = [{**row, "expires_at": row["expires_at"].isoformat()} for row in self.rows]
            connection.execute(_INSERT_LINKS_PG, {"rows": json.dumps(rows), "now": utcnow()})
        else:
            connection.execute(insert(ActionLink), self.rows)
        self.rows = []


_INSERT_LINKS_PG = text(
    """
INSERT INTO action_links (practice_id, appointment_id, action, token_hash, expires_at,
    created_at)
SELECT practice_id, appointment_id, action, token_hash, expires_at, :now
FROM json_to_recordset(CAST(:rows AS json)) AS v(practice_id integer, appointment_id integer,
    action text, token_hash text, expires_at timestamptz)
"""
).bindparams(bindparam("now", type_=UTCDateTime()))


@dataclass(frozen=True)
class LinkState:
    status: str  # ready, used, expired, unknown, done, not_answerable
    action: str | None = None
    appointment: Appointment | None = None
    practice: Practice | None = None


def look_up(session: Session, token: str, now: datetime) -> tuple[LinkState, ActionLink | None]:
    link = session.scalar(select(ActionLink).where(ActionLink.token_hash == hash_token(token)))
    if link is None:
        return LinkState("unknown"), None
    appointment = session.get(Appointment, link.appointment_id)
    practice = session.get(Practice, link.practice_id)
    if link.used_at is not None:
        return LinkState("used", link.action, appointment, practice), link
    if link.expires_at <= now:
        return LinkState("expired", link.action, appointment, practice), link
    return LinkState("ready", link.action, appointment, practice), link


def use(session: Session, token: str, planning: Planning) -> LinkState:
    """Act on the link once. The other links of the same email stay usable: a patient who
    confirmed and later cannot come may still press "I can't come"."""
    state, link = look_up(session, token, planning.now)
    if state.status != "ready" or link is None:
        return state
    assert state.appointment is not None and state.practice is not None
    changed = apply_answer(
        session,
        state.practice,
        state.appointment,
        link.action,
        planning,
        actor=f"patient:{state.appointment.patient_id}",
        source="email_link",
    )
    link.used_at = planning.now
    return LinkState(
        "done" if changed else "not_answerable", link.action, state.appointment, state.practice
    )
