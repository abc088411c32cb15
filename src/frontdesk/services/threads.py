"""Reading patients' threads: every message, both directions, with its delivery status."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from frontdesk.adapters.db.models import Conversation, Message, Patient, Practice


def message_view(
    message: Message, conversation: Conversation, patient: Patient | None
) -> dict[str, Any]:
    return {
        "id": message.id,
        "conversation_id": conversation.id,
        "patient_id": conversation.patient_id,
        "patient": (patient.preferred_name or patient.name) if patient else None,
        "channel": message.channel,
        "direction": message.direction,
        "purpose": message.purpose,
        "subject": message.subject,
        "body": message.body,
        "status": message.delivery_status,
        "error": message.error,
        "appointment_id": message.appointment_id,
        "provider_message_id": message.provider_message_id,
        "created_at": message.created_at,
        "sent_at": message.sent_at,
    }


def list_messages(
    session: Session,
    practice: Practice,
    *,
    patient_id: int | None = None,
    limit: int = 100,
    newest_first: bool = True,
) -> list[dict[str, Any]]:
    query = (
        select(Message, Conversation, Patient)
        .join(Conversation, Message.conversation_id == Conversation.id)
        .outerjoin(Patient, Conversation.patient_id == Patient.id)
        .where(Message.practice_id == practice.id)
    )
    if patient_id is not None:
        query = query.where(Conversation.patient_id == patient_id)
    order = (
        (Message.created_at.desc(), Message.id.desc())
        if newest_first
        else (
            Message.created_at,
            Message.id,
        )
    )
    rows = session.execute(query.order_by(*order).limit(limit)).all()
    return [message_view(m, c, p) for m, c, p in rows]
