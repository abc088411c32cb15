"""Handoffs to staff, and the alerts that tell the on-call people about urgent ones."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from frontdesk.adapters.db.models import Base, utcnow


class Handoff(Base):
    """A conversation handed to people: why, how urgent, and who acknowledged it when."""

    __tablename__ = "handoffs"
    __table_args__ = (
        Index("ix_handoffs_open", "practice_id", "acknowledged_at", "created_at"),
        Index("ix_handoffs_conversation", "conversation_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id", ondelete="CASCADE"))
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    # The message that caused it, when one did.
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    # crisis, clinical_concern, asked_for_person, unanswered, action, staff
    reason: Mapped[str] = mapped_column(String(40))
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(200))


class StaffAlert(Base):
    """An alert to one on-call person about an urgent handoff. It names no patient and nothing
    clinical: only that a thread needs a person now, and where to open it."""

    __tablename__ = "staff_alerts"
    __table_args__ = (Index("ix_staff_alerts_pending", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id", ondelete="CASCADE"))
    handoff_id: Mapped[int] = mapped_column(ForeignKey("handoffs.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(20))  # sms | email
    address_sealed: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    # pending → sending → sent | failed
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(80))
    claim_expires_at: Mapped[datetime | None]
    provider_message_id: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]


class ConversationNote(Base):
    """A private note by staff on a thread: never sent to the patient."""

    __tablename__ = "conversation_notes"
    __table_args__ = (Index("ix_conversation_notes_conversation", "conversation_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id", ondelete="CASCADE"))
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    author: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RebookingLink(Base):
    """A booking link we sent (in a missed-session or cancellation follow-up, or a receipt),
    with its tracking token, and the booking it led to once one arrives."""

    __tablename__ = "rebooking_links"
    __table_args__ = (Index("ix_rebooking_links_patient", "patient_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id", ondelete="CASCADE"))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    # The appointment that was missed or cancelled.
    appointment_id: Mapped[int | None] = mapped_column(
        ForeignKey("appointments.id", ondelete="SET NULL")
    )
    purpose: Mapped[str] = mapped_column(String(40))
    token: Mapped[str] = mapped_column(String(40), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    booked_appointment_id: Mapped[int | None] = mapped_column(
        ForeignKey("appointments.id", ondelete="SET NULL")
    )
    booked_at: Mapped[datetime | None]
