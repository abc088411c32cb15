"""Audit trail: who changed what. Details carry ids, field names and codes, never PHI.

An event about a row that is not flushed yet (a new patient in a bulk import) waits until the
unit of work commits, so thousands of new rows are inserted in one flush instead of one each;
``install`` hooks that into the session factory.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from typing import Any

from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session, sessionmaker

from frontdesk.adapters.db.models import AuditEvent
from frontdesk.domain.times import iso

_PENDING = "frontdesk.audit.pending"
_ORIGIN = "frontdesk.audit.origin"
MAX_EVENTS = 5000


def from_where(session: Session, ip: str) -> None:
    """Every event recorded in this unit of work came from ``ip`` (a staff member's browser):
    it is kept in the event's details as ``ip``."""
    session.info[_ORIGIN] = ip


def record(
    session: Session,
    *,
    practice_id: int,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: int | None = None,
    entity: Any | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Record an event about ``entity_id``, or about the ORM object ``entity``."""
    fields: dict[str, Any] = {
        "practice_id": practice_id,
        "actor": actor,
        "action": action,
        "entity_type": entity_type,
        "details": details or {},
    }
    origin = session.info.get(_ORIGIN)
    if origin and "ip" not in fields["details"]:
        fields["details"] = {**fields["details"], "ip": origin}
    if entity is not None and entity.id is None:
        session.info.setdefault(_PENDING, []).append((fields, entity))
        return
    session.add(AuditEvent(entity_id=entity.id if entity is not None else entity_id, **fields))


def list_events(
    session: Session,
    practice_id: int,
    *,
    actor: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    """A practice's events, newest first: ``actor`` and ``action`` match a part of the name
    (``knowledge`` finds every ``knowledge.*``), ``since``/``until`` bound the time."""
    query = select(AuditEvent).where(AuditEvent.practice_id == practice_id)
    if actor:
        query = query.where(AuditEvent.actor.contains(actor, autoescape=True))
    if action:
        query = query.where(AuditEvent.action.contains(action, autoescape=True))
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    if until is not None:
        query = query.where(AuditEvent.at < until)
    rows = session.scalars(
        query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(min(limit, MAX_EVENTS))
    )
    return [event_view(e) for e in rows]


def event_view(event_: AuditEvent) -> dict[str, Any]:
    details = dict(event_.details or {})
    return {
        "id": event_.id,
        "at": iso(event_.at),
        "actor": event_.actor,
        "action": event_.action,
        "entity_type": event_.entity_type,
        "entity_id": event_.entity_id,
        "ip": details.pop("ip", None),
        "details": details,
    }


CSV_COLUMNS = ("at", "actor", "action", "entity_type", "entity_id", "ip", "details")


def to_csv(events: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for e in events:
        row = [e[c] if c != "details" else json.dumps(e[c], sort_keys=True) for c in CSV_COLUMNS]
        # A cell a spreadsheet would run as a formula is quoted as text.
        writer.writerow(
            ["'" + v if isinstance(v, str) and v[:1] in ("=", "+", "-", "@") else v for v in row]
        )
    return out.getvalue()


def _resolve_pending(session: Session) -> None:
    pending = session.info.pop(_PENDING, [])
    if not pending:
        return
    session.flush()
    for fields, entity in pending:
        # A row undone by a rolled-back savepoint is no longer persistent: nothing happened.
        if inspect(entity).persistent:
            session.add(AuditEvent(entity_id=entity.id, **fields))


def _forget_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)


def install(factory: sessionmaker[Session]) -> None:
    event.listen(factory, "before_commit", _resolve_pending)
    event.listen(factory, "after_rollback", _forget_pending)
