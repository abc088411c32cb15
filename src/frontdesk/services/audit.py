"""Audit trail: who changed what. Details carry ids, field names and codes, never PHI."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from frontdesk.adapters.db.models import AuditEvent


def record(
    session: Session,
    *,
    practice_id: int,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: int | None,
    details: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditEvent(
            practice_id=practice_id,
            actor=actor,
            action=action,
            entity_type=entity_type,
            entity_id=entity_id,
            details=details or {},
        )
    )
