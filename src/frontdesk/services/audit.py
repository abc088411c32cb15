"""Audit trail: who changed what. Details carry ids, field names and codes, never PHI.

An event about a row that is not flushed yet (a new patient in a bulk import) waits until the
unit of work commits, so thousands of new rows are inserted in one flush instead of one each;
``install`` hooks that into the session factory.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session, sessionmaker

from frontdesk.adapters.db.models import AuditEvent

_PENDING = "frontdesk.audit.pending"


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
    fields = {
        "practice_id": practice_id,
        "actor": actor,
        "action": action,
        "entity_type": entity_type,
        "details": details or {},
    }
    if entity is not None and entity.id is None:
        session.info.setdefault(_PENDING, []).append((fields, entity))
        return
    session.add(AuditEvent(entity_id=entity.id if entity is not None else entity_id, **fields))


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
