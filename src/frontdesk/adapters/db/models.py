"""The database schema (SQLAlchemy 2, typed). Every row belongs to a practice.

Later issues add tables (reminders, handoffs, action runs) beside these; the columns here are
the ones this schema's users read today.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from frontdesk.domain.appointments import AppointmentStatus, Confirmation


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on SQLite and PostgreSQL alike.

    SQLite has no timezone type and hands back naive values; storing naive UTC and re-attaching
    UTC on the way out keeps comparisons and ordering correct on both.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSONType,
    }


class Practice(Base):
    __tablename__ = "practices"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(60), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    locale: Mapped[str] = mapped_column(String(20), default="en-US")
    phone: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(320))
    booking_url: Mapped[str | None] = mapped_column(String(1000))
    # Room for per-practice policy (reminder stages, privacy switches) without a migration each.
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Location(Base):
    __tablename__ = "locations"
    __table_args__ = (UniqueConstraint("practice_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(String(500))
    timezone: Mapped[str | None] = mapped_column(String(64))


class Clinician(Base):
    __tablename__ = "clinicians"
    # Clinicians are matched by the source's id when it has one, else by name.
    __table_args__ = (UniqueConstraint("practice_id", "match_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id", ondelete="CASCADE"))
    match_key: Mapped[str] = mapped_column(String(240))
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    booking_url: Mapped[str | None] = mapped_column(String(1000))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Patient(Base):
    __tablename__ = "patients"
    __table_args__ = (
        UniqueConstraint("practice_id", "source", "external_id"),
        Index("ix_patients_phone_lookup", "practice_id", "phone_lookup"),
        Index("ix_patients_email_lookup", "practice_id", "email_lookup"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(40))
    external_id: Mapped[str] = mapped_column(String(200))
    name: Mapped[str | None] = mapped_column(String(200))
    preferred_name: Mapped[str | None] = mapped_column(String(200))
    # Contact data and date of birth are sealed (see adapters/crypto.py); *_lookup are keyed
    # hashes of the normalised values for finding a patient from an inbound message.
    date_of_birth_sealed: Mapped[str | None] = mapped_column(Text)
    phone_sealed: Mapped[str | None] = mapped_column(Text)
    phone_lookup: Mapped[str | None] = mapped_column(String(40))
    email_sealed: Mapped[str | None] = mapped_column(Text)
    email_lookup: Mapped[str | None] = mapped_column(String(40))
    # The patient's own choice; None means "whatever their contact data allows".
    preferred_channel: Mapped[str | None] = mapped_column(String(20))
    language: Mapped[str] = mapped_column(String(20), default="en")
    timezone: Mapped[str | None] = mapped_column(String(64))
    reminders_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    consents: Mapped[list[PatientConsent]] = relationship(
        back_populates="patient", cascade="all, delete-orphan", lazy="selectin"
    )


class PatientConsent(Base):
    """The current consent per channel; its history is in audit_events."""

    __tablename__ = "patient_consents"
    __table_args__ = (UniqueConstraint("patient_id", "channel"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id", ondelete="CASCADE"))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(60))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    patient: Mapped[Patient] = relationship(back_populates="consents")


class Appointment(Base):
    __tablename__ = "appointments"
    __table_args__ = (
        UniqueConstraint("practice_id", "source", "external_id"),
        Index("ix_appointments_practice_start", "practice_id", "start_at"),
        Index("ix_appointments_patient", "patient_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(40))
    external_id: Mapped[str] = mapped_column(String(200))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="RESTRICT"))
    clinician_id: Mapped[int | None] = mapped_column(
        ForeignKey("clinicians.id", ondelete="SET NULL")
    )
    location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id", ondelete="SET NULL"))
    telehealth_url: Mapped[str | None] = mapped_column(String(1000))
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(20), default=AppointmentStatus.BOOKED.value)
    confirmation: Mapped[str] = mapped_column(String(30), default=Confirmation.UNCONFIRMED.value)
    # Bumped on every change: later issues key re-planning and webhooks on it.
    version: Mapped[int] = mapped_column(Integer, default=1)
    # When the current start time, and the current status, were set: reminder planning counts
    # its late-booking rule and edit grace from them.
    time_set_at: Mapped[datetime] = mapped_column(default=utcnow)
    status_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    patient: Mapped[Patient] = relationship()
    clinician: Mapped[Clinician | None] = relationship()
    location: Mapped[Location | None] = relationship()


class Reminder(Base):
    """One message planned for one appointment time: the single source of truth for sending.

    The unique key (appointment, stage, planned start) is what makes a second send of the same
    reminder impossible; moving the appointment plans fresh rows for the new time.
    """

    __tablename__ = "reminders"
    __table_args__ = (
        UniqueConstraint("appointment_id", "stage", "planned_start"),
        Index("ix_reminders_due", "state", "due_at"),
        Index("ix_reminders_patient_sent", "patient_id", "sent_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id", ondelete="CASCADE"))
    appointment_id: Mapped[int] = mapped_column(ForeignKey("appointments.id", ondelete="CASCADE"))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(30))
    stage: Mapped[str] = mapped_column(String(40))
    planned_start: Mapped[datetime]
    channel: Mapped[str | None] = mapped_column(String(20))
    due_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(String(300))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Channels that failed permanently for this reminder ("sms,whatsapp"): the next try uses
    # the patient's next usable channel.
    failed_channels: Mapped[str | None] = mapped_column(String(100))
    claimed_by: Mapped[str | None] = mapped_column(String(80))
    claim_expires_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    provider_message_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    appointment: Mapped[Appointment] = relationship()
    patient: Mapped[Patient] = relationship()


class ReviewItem(Base):
    """Something a person at the front desk should look at (a missed session, …)."""

    __tablename__ = "review_items"
    __table_args__ = (
        UniqueConstraint("appointment_id", "kind"),
        Index("ix_review_items_open", "practice_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id", ondelete="CASCADE"))
    appointment_id: Mapped[int | None] = mapped_column(
        ForeignKey("appointments.id", ondelete="CASCADE")
    )
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))
    state: Mapped[str] = mapped_column(String(20), default="open")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None]


class OutboxMessage(Base):
    """What the local outbox channel 'sent': a stand-in for a provider, viewable at /outbox.

    The unique idempotency key is the outbox's version of a provider's duplicate protection.
    """

    __tablename__ = "outbox_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id", ondelete="CASCADE"))
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id", ondelete="SET NULL"))
    channel: Mapped[str] = mapped_column(String(20))
    to_sealed: Mapped[str] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    # How many times a sender handed us this message: above 1 means a retry that the
    # idempotency key turned into the same single message.
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (
        Index("ix_conversations_practice_last", "practice_id", "last_message_at"),
        Index("ix_conversations_patient_channel", "patient_id", "channel"),
        # One thread per patient and channel: senders upsert it (INSERT … ON CONFLICT).
        Index("ux_conversations_thread", "practice_id", "patient_id", "channel", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id", ondelete="CASCADE"))
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id", ondelete="SET NULL"))
    channel: Mapped[str] = mapped_column(String(20))
    # open (ours to answer), pending (waiting on the patient), resolved
    status: Mapped[str] = mapped_column(String(20), default="open")
    # A person should read it: free text the agent could not handle, a handoff, a request.
    needs_attention: Mapped[bool] = mapped_column(Boolean, default=False)
    # The staff member it is assigned to (a staff account id as text), if any.
    assigned_to: Mapped[str | None] = mapped_column(String(200))
    # Who answers: the agent, or staff after a handoff (the agent is silent until handed back).
    owner: Mapped[str] = mapped_column(String(10), default="agent")
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    escalated_at: Mapped[datetime | None]
    acknowledged_at: Mapped[datetime | None]
    # A sender we could not match to a patient: their address, sealed, so staff can answer.
    address_sealed: Mapped[str | None] = mapped_column(Text)
    address_lookup: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_message_at: Mapped[datetime] = mapped_column(default=utcnow)
    # WhatsApp allows free-form messages only within 24 h of the patient's last message.
    last_inbound_at: Mapped[datetime | None]


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        # A provider that re-delivers a webhook gives the same id: stored once.
        UniqueConstraint("practice_id", "channel", "provider_message_id"),
        Index("ix_messages_conversation", "conversation_id", "created_at"),
        Index("ix_messages_pending", "delivery_status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id", ondelete="CASCADE"))
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    appointment_id: Mapped[int | None] = mapped_column(
        ForeignKey("appointments.id", ondelete="SET NULL")
    )
    channel: Mapped[str] = mapped_column(String(20))
    direction: Mapped[str] = mapped_column(String(10))
    body: Mapped[str] = mapped_column(Text)
    provider_message_id: Mapped[str | None] = mapped_column(String(200))
    # Outbound: pending (ours to send) → queued / sent → delivered / read, or undelivered /
    # failed. Inbound: received.
    delivery_status: Mapped[str | None] = mapped_column(String(20))
    # What the message is for (a template purpose: receipt_confirm, opt_out, staff_reply, …).
    purpose: Mapped[str | None] = mapped_column(String(40))
    subject: Mapped[str | None] = mapped_column(String(300))
    html_body: Mapped[str | None] = mapped_column(Text)
    # Email threading: the provider id (Message-ID) this message answers.
    in_reply_to: Mapped[str | None] = mapped_column(String(300))
    # Sending a pending message: claimed under a lease like reminders, retried with backoff.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(80))
    claim_expires_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(String(300))
    sent_at: Mapped[datetime | None]
    status_updated_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    conversation: Mapped[Conversation] = relationship()


class AuditEvent(Base):
    """Who changed what, when. ``details`` never holds PHI: ids, field names and codes only."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_practice_at", "practice_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(80))
    entity_type: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[int | None] = mapped_column(Integer)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(120))
    prefix: Mapped[str] = mapped_column(String(24), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    can_write: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class IntakeRejection(Base):
    """Input we could not accept, kept with its reasons so it can be fixed and replayed."""

    __tablename__ = "intake_rejections"
    __table_args__ = (Index("ix_intake_rejections_practice_at", "practice_id", "received_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id", ondelete="CASCADE"))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    channel: Mapped[str] = mapped_column(String(40))  # api.appointment, import.csv, …
    reference: Mapped[str] = mapped_column(String(300))  # path, file name + line, …
    # The payload as received, sealed like contact data: rejected input is full of it.
    raw_sealed: Mapped[str] = mapped_column(Text)
    errors: Mapped[dict[str, Any]] = mapped_column(default=dict)


class InboundWebhook(Base):
    """Every request a provider or scheduling system sends us, stored before anything reads it.

    ``dedupe_key`` is the sender's own id for the event (Twilio's MessageSid plus status, Meta's
    message id, Calendly's event uri, …): a redelivery finds the first row and is not processed
    again. The payload is sealed like contact data, because it is full of it; ``error`` never
    holds PHI, only what went wrong.
    """

    __tablename__ = "inbound_webhooks"
    __table_args__ = (
        UniqueConstraint("practice_id", "provider", "dedupe_key"),
        Index("ix_inbound_webhooks_state", "state", "received_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(40))  # twilio, whatsapp, sendgrid, calendly, …
    kind: Mapped[str] = mapped_column(String(40))  # message, status, booking, …
    dedupe_key: Mapped[str] = mapped_column(String(300))
    content_type: Mapped[str | None] = mapped_column(String(200))
    raw_sealed: Mapped[str] = mapped_column(Text)
    # received → processed | failed (retryable, visible) | ignored (verified but not for us)
    state: Mapped[str] = mapped_column(String(20), default="received")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(500))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None]


__all__ = [
    "ApiKey",
    "Appointment",
    "AuditEvent",
    "Base",
    "Clinician",
    "Conversation",
    "InboundWebhook",
    "IntakeRejection",
    "Location",
    "Message",
    "OutboxMessage",
    "Patient",
    "PatientConsent",
    "Practice",
    "Reminder",
    "ReviewItem",
]

# Tables owned by other modules register on ``Base`` when imported; importing them here means
# anything that loads the schema (migrations' drift test, test truncation) sees every table.
from frontdesk.adapters.db import (  # noqa: E402, F401
    action_models,
    channel_models,
    handoff_models,
    knowledge_models,
    llm_models,
    scheduler_models,
    staff_models,
    webhook_models,
)
