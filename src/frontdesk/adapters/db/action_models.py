"""Tables of custom actions: each practice's specs, the runs in conversations, their step logs,
the side effects waiting for the worker, and identity-check attempts (for rate limiting)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from frontdesk.adapters.db.models import Base, utcnow


class ActionSpecRecord(Base):
    """A practice's action: the YAML as written and its checked form."""

    __tablename__ = "action_specs"
    __table_args__ = (UniqueConstraint("practice_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(60))
    description: Mapped[str] = mapped_column(Text, default="")
    trigger_event: Mapped[str] = mapped_column(String(40))
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(Text)
    spec: Mapped[dict[str, Any]] = mapped_column(default=dict)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ActionRun(Base):
    """One action running in one conversation. ``trigger_key`` makes an event start a run once
    (``event:<appointment id>``); collected fields and step results are sealed (they hold PHI)."""

    __tablename__ = "action_runs"
    __table_args__ = (
        UniqueConstraint("practice_id", "action_name", "trigger_key"),
        Index("ix_action_runs_conversation", "conversation_id", "state"),
        Index("ix_action_runs_patient", "patient_id", "state"),
        Index("ix_action_runs_due", "state", "wait_until"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id", ondelete="CASCADE"))
    action_name: Mapped[str] = mapped_column(String(60))
    # The spec as it was when the run started: editing an action never breaks a running one.
    spec: Mapped[dict[str, Any]] = mapped_column(default=dict)
    trigger_key: Mapped[str] = mapped_column(String(120))
    conversation_id: Mapped[int | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="SET NULL")
    )
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id", ondelete="SET NULL"))
    appointment_id: Mapped[int | None] = mapped_column(
        ForeignKey("appointments.id", ondelete="SET NULL")
    )
    # collecting → running → waiting_effect | waiting_reply → done; or handed_off, expired,
    # cancelled, interrupted, failed
    state: Mapped[str] = mapped_column(String(20))
    pc: Mapped[int] = mapped_column(Integer, default=0)
    asking: Mapped[str | None] = mapped_column(String(60))
    asks: Mapped[int] = mapped_column(Integer, default=0)
    language: Mapped[str] = mapped_column(String(10), default="en")
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    signed_link: Mapped[bool] = mapped_column(Boolean, default=False)
    fields_sealed: Mapped[str | None] = mapped_column(Text)
    results_sealed: Mapped[str | None] = mapped_column(Text)
    wait_until: Mapped[datetime | None]
    expires_at: Mapped[datetime]
    outcome: Mapped[str | None] = mapped_column(String(60))
    started_by: Mapped[str] = mapped_column(String(120))
    step_count: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None]


class ActionStepLog(Base):
    """One thing a run did: a question, an answer checked, a webhook attempt, a message queued.
    ``detail`` is redacted before it is written (agent/actions/redaction.py)."""

    __tablename__ = "action_step_logs"
    __table_args__ = (Index("ix_action_step_logs_run", "run_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id", ondelete="CASCADE"))
    run_id: Mapped[int] = mapped_column(ForeignKey("action_runs.id", ondelete="CASCADE"))
    pc: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(30))
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    outcome: Mapped[str] = mapped_column(String(40))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    duration_ms: Mapped[int | None] = mapped_column(Integer)


class ActionEffect(Base):
    """A webhook call a run decided on, made by the worker after commit. The idempotency key is
    stable per run and step, so a retried call is one effect at the practice's end."""

    __tablename__ = "action_effects"
    __table_args__ = (Index("ix_action_effects_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id", ondelete="CASCADE"))
    run_id: Mapped[int] = mapped_column(ForeignKey("action_runs.id", ondelete="CASCADE"))
    pc: Mapped[int] = mapped_column(Integer)
    idempotency_key: Mapped[str] = mapped_column(String(120), unique=True)
    url: Mapped[str] = mapped_column(String(1000))
    body_sealed: Mapped[str] = mapped_column(Text)
    timeout_seconds: Mapped[float]
    max_attempts: Mapped[int] = mapped_column(Integer)
    # pending → sending → done | failed
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(80))
    claim_expires_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class IdentityAttempt(Base):
    """One identity check in a conversation. No PHI: the identifier is a keyed hash."""

    __tablename__ = "identity_attempts"
    __table_args__ = (
        Index("ix_identity_attempts_conversation", "practice_id", "conversation_id", "at"),
        Index("ix_identity_attempts_identifier", "practice_id", "identifier_lookup", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id", ondelete="CASCADE"))
    conversation_id: Mapped[int | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE")
    )
    identifier_lookup: Mapped[str | None] = mapped_column(String(64))
    succeeded: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(default=utcnow)
