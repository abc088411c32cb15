"""Tables of the channels: practice templates, the consent ledger, one-click links, and each
practice's provider accounts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from frontdesk.adapters.db.models import Base, Patient, utcnow


class MessageTemplate(Base):
    """A practice's own wording for one purpose, channel and language; the shipped default is
    used where there is none."""

    __tablename__ = "message_templates"
    __table_args__ = (UniqueConstraint("practice_id", "purpose", "channel", "language"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(60))
    channel: Mapped[str] = mapped_column(String(20))
    language: Mapped[str] = mapped_column(String(10))
    subject: Mapped[str | None] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    # WhatsApp: the name of the template Meta approved for this purpose (business-initiated
    # messages outside the 24-hour window must use one).
    whatsapp_template: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ConsentEvent(Base):
    """The consent ledger: every grant and revocation, with its source and evidence."""

    __tablename__ = "consent_events"
    __table_args__ = (Index("ix_consent_events_patient", "patient_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id", ondelete="CASCADE"))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(10))  # granted | revoked
    # keyword, api, import, staff, provider (a carrier says the number opted out), link
    source: Mapped[str] = mapped_column(String(60))
    # The message that caused it, when one did.
    evidence_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL")
    )
    detail: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    patient: Mapped[Patient] = relationship()


class ActionLink(Base):
    """A signed, expiring, single-use link in an email: confirm, cancel or reschedule."""

    __tablename__ = "action_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id", ondelete="CASCADE"))
    appointment_id: Mapped[int] = mapped_column(ForeignKey("appointments.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(20))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ChannelAccount(Base):
    """A practice's provider account for one channel. Secrets are sealed and never shown again
    in full; ``settings`` holds only what is safe to show."""

    __tablename__ = "channel_accounts"
    __table_args__ = (UniqueConstraint("practice_id", "channel"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(20))
    provider: Mapped[str] = mapped_column(String(30))  # outbox, smtp, twilio, whatsapp_cloud
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    secrets_sealed: Mapped[str | None] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
