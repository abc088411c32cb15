"""Scheduling-system integrations: their configuration and sync state, appointment aliases left
by reschedules, and the durable queue of FHIR write-backs (docs/INTEGRATIONS.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from frontdesk.adapters.db.models import Base, utcnow


class Integration(Base):
    """One scheduling system a practice connected: Calendly, Cal.com, a FHIR server or an
    iCalendar feed. ``source`` is the key its appointments are stored under.

    Secrets (signing keys, tokens) and feed URLs (a private calendar URL is itself a secret) are
    sealed with the runtime cipher; ``endpoint_hint`` (scheme and host only) is what is shown.
    """

    __tablename__ = "integrations"
    __table_args__ = (UniqueConstraint("practice_id", "source"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))  # calendly, calcom, fhir, ics
    source: Mapped[str] = mapped_column(String(40))
    endpoint_sealed: Mapped[str | None] = mapped_column(Text)
    endpoint_hint: Mapped[str | None] = mapped_column(String(300))
    secret_sealed: Mapped[str | None] = mapped_column(Text)
    token_sealed: Mapped[str | None] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    poll_interval_seconds: Mapped[int | None] = mapped_column(Integer)
    next_poll_at: Mapped[datetime | None]
    # FHIR: the highest meta.lastUpdated applied; iCalendar: the feed's validators.
    cursor: Mapped[str | None] = mapped_column(String(100))
    etag: Mapped[str | None] = mapped_column(String(300))
    last_modified: Mapped[str | None] = mapped_column(String(100))
    last_polled_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AppointmentAlias(Base):
    """A scheduling-system key that now means an appointment stored under another key.

    A reschedule in Calendly or Cal.com is a new booking with a new id; frontdesk moves the one
    appointment (one history, one conversation) to the new key and keeps the old key here, so a
    late event about the old booking finds the appointment instead of creating or cancelling.
    """

    __tablename__ = "appointment_aliases"
    __table_args__ = (UniqueConstraint("practice_id", "source", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(40))
    external_id: Mapped[str] = mapped_column(String(200))
    appointment_id: Mapped[int] = mapped_column(
        ForeignKey("appointments.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class FhirWriteback(Base):
    """A change to write to the practice's FHIR server, queued in the transaction that made it.

    pending → sending (leased by one worker) → done | superseded (the EHR changed the resource
    in a way that makes ours wrong: left alone, visible) | failed (gave up after the retry
    budget: visible, retried on request). ``last_error`` never holds PHI.
    """

    __tablename__ = "fhir_writebacks"
    __table_args__ = (
        Index("ix_fhir_writebacks_due", "state", "next_attempt_at"),
        Index("ix_fhir_writebacks_appointment", "appointment_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id", ondelete="CASCADE"))
    integration_id: Mapped[int] = mapped_column(ForeignKey("integrations.id", ondelete="CASCADE"))
    appointment_id: Mapped[int] = mapped_column(ForeignKey("appointments.id", ondelete="CASCADE"))
    change: Mapped[dict[str, Any]] = mapped_column()
    state: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    result: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


__all__ = ["AppointmentAlias", "FhirWriteback", "Integration"]
