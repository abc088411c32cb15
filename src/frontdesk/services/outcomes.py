"""What a sent reminder leaves behind: the message in the patient's thread, and — for a missed
session — the front desk's review item."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from frontdesk.adapters.channels.base import OutboundMessage, SendResult
from frontdesk.adapters.db.models import (
    Appointment,
    Conversation,
    Message,
    ReviewItem,
)
from frontdesk.domain.channels import Direction


def open_missed_session_review(session: Session, appointment: Appointment) -> None:
    exists = session.scalar(
        select(ReviewItem.id).where(
            ReviewItem.appointment_id == appointment.id, ReviewItem.kind == "missed_session"
        )
    )
    if exists is None:
        session.add(
            ReviewItem(
                practice_id=appointment.practice_id,
                appointment_id=appointment.id,
                patient_id=appointment.patient_id,
                kind="missed_session",
                state="open",
            )
        )


def log_outbound(
    session: Session,
    message: OutboundMessage,
    appointment_id: int,
    result: SendResult,
    now: datetime,
) -> None:
    """Every message we send lands in the patient's thread on that channel."""
    exists = session.scalar(
        select(Message.id).where(
            Message.practice_id == message.practice_id,
            Message.channel == message.channel.value,
            Message.provider_message_id == result.provider_message_id,
        )
    )
    if exists is not None:
        return
    conversation = session.scalar(
        select(Conversation).where(
            Conversation.practice_id == message.practice_id,
            Conversation.patient_id == message.patient_id,
            Conversation.channel == message.channel.value,
        )
    )
    if conversation is None:
        conversation = Conversation(
            practice_id=message.practice_id,
            patient_id=message.patient_id,
            channel=message.channel.value,
            status="open",
        )
        session.add(conversation)
    conversation.last_message_at = now
    session.add(
        Message(
            practice_id=message.practice_id,
            conversation=conversation,
            appointment_id=appointment_id,
            channel=message.channel.value,
            direction=Direction.OUTBOUND.value,
            body=message.body,
            provider_message_id=result.provider_message_id,
            delivery_status=result.status,
        )
    )
