"""Identity before details: is the person in this conversation the patient?

A check takes an identifier (a name, email or phone the patient typed) and a date of birth.
When the thread already belongs to a patient (their address is on the record) the answers must
match that patient; otherwise the practice's patients are searched by the identifier's keyed
lookup (email, phone) or by name, and one of them must have that date of birth.

Whatever fails — no such record, wrong date of birth, several people — the patient hears the
same words, so a check never reveals whether a record exists. Failures are counted per
conversation and per identifier (a keyed hash, never the value); past the limits the
conversation is locked and handed to a person. Each failure and lock is in the audit log with
ids and counts only.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from frontdesk.adapters.crypto import FieldCipher
from frontdesk.adapters.db.action_models import IdentityAttempt
from frontdesk.adapters.db.models import Conversation, Patient, Practice
from frontdesk.services import audit
from frontdesk.services.patients import contact_of


@dataclass(frozen=True)
class Limits:
    per_conversation: int = 3  # failures within ``window`` lock the conversation
    per_identifier: int = 5  # failures for one identifier within ``window`` (any conversation)
    window: timedelta = timedelta(hours=24)


@dataclass(frozen=True)
class Check:
    verified: bool
    patient_id: int | None = None
    locked: bool = False


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).split())


def _failures(session: Session, practice_id: int, since: datetime, **where: object) -> int:
    query = select(func.count(IdentityAttempt.id)).where(
        IdentityAttempt.practice_id == practice_id,
        IdentityAttempt.succeeded.is_(False),
        IdentityAttempt.at >= since,
    )
    for column, value in where.items():
        query = query.where(getattr(IdentityAttempt, column) == value)
    return int(session.scalar(query) or 0)


def locked(
    session: Session, practice_id: int, conversation_id: int, now: datetime, limits: Limits
) -> bool:
    since = now - limits.window
    return (
        _failures(session, practice_id, since, conversation_id=conversation_id)
        >= limits.per_conversation
    )


def verify(
    session: Session,
    cipher: FieldCipher,
    practice: Practice,
    conversation: Conversation,
    *,
    identifier_kind: str,
    identifier: str,
    date_of_birth: str,
    now: datetime,
    limits: Limits,
    run_id: int | None = None,
) -> Check:
    lookup = cipher.lookup_key(f"{identifier_kind}:{_fold(identifier)}")
    since = now - limits.window
    if (
        _failures(session, practice.id, since, conversation_id=conversation.id)
        >= limits.per_conversation
        or _failures(session, practice.id, since, identifier_lookup=lookup) >= limits.per_identifier
    ):
        _audit(session, practice.id, conversation.id, run_id, "identity.locked")
        return Check(verified=False, locked=True)
    born = date.fromisoformat(date_of_birth)
    match: int | None = None
    for patient in _candidates(
        session, cipher, practice, conversation, identifier_kind, identifier
    ):
        if contact_of(patient, cipher).date_of_birth == born:
            match = patient.id
            break
    session.add(
        IdentityAttempt(
            practice_id=practice.id,
            conversation_id=conversation.id,
            identifier_lookup=lookup,
            succeeded=match is not None,
            at=now,
        )
    )
    if match is not None:
        _audit(session, practice.id, conversation.id, run_id, "identity.verified")
        return Check(verified=True, patient_id=match)
    session.flush()
    failures = _failures(session, practice.id, since, conversation_id=conversation.id)
    _audit(session, practice.id, conversation.id, run_id, "identity.failed", failures=failures)
    is_locked = failures >= limits.per_conversation or (
        _failures(session, practice.id, since, identifier_lookup=lookup) >= limits.per_identifier
    )
    if is_locked:
        _audit(session, practice.id, conversation.id, run_id, "identity.locked")
    return Check(verified=False, locked=is_locked)


def _candidates(
    session: Session,
    cipher: FieldCipher,
    practice: Practice,
    conversation: Conversation,
    kind: str,
    identifier: str,
) -> list[Patient]:
    if conversation.patient_id is not None:
        patient = session.get(Patient, conversation.patient_id)
        if patient is None:
            return []
        contact = contact_of(patient, cipher)
        same = {
            "name": _fold(identifier)
            in {_fold(patient.name or ""), _fold(patient.preferred_name or "")},
            "email": (contact.email or "").lower() == identifier.lower(),
            "phone": contact.phone == identifier,
        }.get(kind, False)
        return [patient] if same else []
    if kind == "email":
        column, value = Patient.email_lookup, cipher.lookup_key(identifier.lower())
    elif kind == "phone":
        column, value = Patient.phone_lookup, cipher.lookup_key(identifier)
    else:
        rows = session.scalars(
            select(Patient).where(
                Patient.practice_id == practice.id,
                func.lower(Patient.name) == identifier.strip().lower(),
            )
        )
        return list(rows)
    return list(
        session.scalars(select(Patient).where(Patient.practice_id == practice.id, column == value))
    )


def _audit(
    session: Session,
    practice_id: int,
    conversation_id: int,
    run_id: int | None,
    action: str,
    **details: object,
) -> None:
    audit.record(
        session,
        practice_id=practice_id,
        actor="agent",
        action=action,
        entity_type="conversation",
        entity_id=conversation_id,
        details={"run_id": run_id, **details},
    )
