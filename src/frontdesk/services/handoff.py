"""Handing a conversation to people.

A handoff is a state: the conversation becomes staff-owned and the agent stays silent in it
until staff hand it back. Every handoff is recorded (the inbox lists the open ones); an urgent
one — a crisis — also alerts every on-call person at once by SMS or email. Alerts name no
patient and nothing clinical: only that a thread needs a person now, and where to open it.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from frontdesk.adapters.channels.base import OutboundMessage
from frontdesk.adapters.crypto import FieldCipher
from frontdesk.adapters.db.handoff_models import Handoff, StaffAlert
from frontdesk.adapters.db.models import Conversation, Patient, Practice
from frontdesk.bootstrap import Runtime
from frontdesk.domain.channels import Channel
from frontdesk.domain.contact import normalize_email, normalize_phone, region_of_locale
from frontdesk.domain.errors import FieldError, PermanentError, TransientError, ValidationFailed
from frontdesk.domain.times import now_utc
from frontdesk.services import audit, events
from frontdesk.services.outgoing import SenderLookup

log = logging.getLogger(__name__)

ALERT_SUBJECT = "URGENT: a patient message needs a person"
REASONS = frozenset(
    {"crisis", "clinical_concern", "asked_for_person", "unanswered", "action", "staff"}
)


# --- the on-call list --------------------------------------------------------------------------


def set_on_call(
    practice: Practice, cipher: FieldCipher, entries: list[dict[str, Any]]
) -> list[dict[str, str]]:
    """Replace the practice's on-call list: each entry a name and a phone or an email, kept
    sealed in the practice's settings. Returns the list as shown (addresses masked)."""
    errors: list[FieldError] = []
    stored: list[dict[str, str | None]] = []
    for i, entry in enumerate(entries):
        name = str(entry.get("name") or "").strip()
        phone, email = entry.get("phone"), entry.get("email")
        if not name:
            errors.append(FieldError(f"on_call[{i}].name", "a name is required"))
        if not phone and not email:
            errors.append(FieldError(f"on_call[{i}]", "a phone or an email is required"))
        try:
            phone = (
                normalize_phone(str(phone), region_of_locale(practice.locale)) if phone else None
            )
        except ValueError as exc:
            errors.append(FieldError(f"on_call[{i}].phone", str(exc)))
        try:
            email = normalize_email(str(email)) if email else None
        except ValueError as exc:
            errors.append(FieldError(f"on_call[{i}].email", str(exc)))
        stored.append(
            {"name": name, "phone_sealed": cipher.seal(phone), "email_sealed": cipher.seal(email)}
        )
    if errors:
        raise ValidationFailed(errors)
    practice.settings = {**(practice.settings or {}), "on_call": stored}
    return on_call_view(practice, cipher)


def _on_call(practice: Practice, cipher: FieldCipher) -> list[tuple[str, str | None, str | None]]:
    return [
        (e["name"], cipher.open(e.get("phone_sealed")), cipher.open(e.get("email_sealed")))
        for e in (practice.settings or {}).get("on_call", [])
    ]


def on_call_view(practice: Practice, cipher: FieldCipher) -> list[dict[str, str]]:
    def mask(value: str | None) -> str:
        return f"…{value[-4:]}" if value else ""

    return [
        {"name": name, "phone": mask(phone), "email": mask(email)}
        for name, phone, email in _on_call(practice, cipher)
    ]


# --- handing off -------------------------------------------------------------------------------


def hand_off(
    session: Session,
    *,
    practice: Practice,
    conversation: Conversation,
    reason: str,
    urgent: bool,
    now: datetime,
    cipher: FieldCipher,
    public_url: str,
    message_id: int | None = None,
) -> Handoff:
    if reason not in REASONS:
        raise ValueError(f"unknown handoff reason {reason!r}")
    conversation.owner = "staff"
    conversation.status = "open"
    conversation.needs_attention = True
    if urgent:
        conversation.urgent = True
        conversation.acknowledged_at = None
    if urgent or conversation.escalated_at is None:
        conversation.escalated_at = now
    handoff = Handoff(
        practice_id=practice.id,
        conversation_id=conversation.id,
        message_id=message_id,
        reason=reason,
        urgent=urgent,
        created_at=now,
    )
    session.add(handoff)
    session.flush()
    if urgent:
        contacts = _on_call(practice, cipher)
        if not contacts:
            log.warning("urgent handoff with no on-call list", extra={"practice": practice.id})
        link = f"{public_url.rstrip('/')}/inbox/{conversation.id}"
        body = f"{practice.name}: URGENT - a patient's message needs a person now. Open {link}"
        for _name, phone, email in contacts:
            channel, address = (Channel.SMS, phone) if phone else (Channel.EMAIL, email)
            assert address is not None
            session.add(
                StaffAlert(
                    practice_id=practice.id,
                    handoff_id=handoff.id,
                    channel=channel.value,
                    address_sealed=cipher.seal(address) or "",
                    body=body,
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                )
            )
    patient = session.get(Patient, conversation.patient_id) if conversation.patient_id else None
    events.publish(
        session,
        practice.id,
        "conversation.handoff",
        events.handoff_data(
            conversation.id, conversation.channel, patient, reason=reason, urgent=urgent
        ),
    )
    audit.record(
        session,
        practice_id=practice.id,
        actor="agent",
        action="conversation.handoff",
        entity_type="conversation",
        entity_id=conversation.id,
        details={"reason": reason, "urgent": urgent},
    )
    return handoff


def acknowledge(session: Session, conversation: Conversation, who: str, now: datetime) -> int:
    """A person has seen the urgent thread: it stops counting time since escalation."""
    conversation.acknowledged_at = now
    handoffs = session.scalars(
        select(Handoff).where(
            Handoff.conversation_id == conversation.id, Handoff.acknowledged_at.is_(None)
        )
    ).all()
    for handoff in handoffs:
        handoff.acknowledged_at = now
        handoff.acknowledged_by = who
    return len(handoffs)


def hand_back(session: Session, conversation: Conversation, who: str, now: datetime) -> None:
    """Staff return the conversation to the agent, which resumes only now."""
    acknowledge(session, conversation, who, now)
    conversation.owner = "agent"
    conversation.urgent = False
    conversation.needs_attention = False
    audit.record(
        session,
        practice_id=conversation.practice_id,
        actor=who,
        action="conversation.handed_back",
        entity_type="conversation",
        entity_id=conversation.id,
    )


# --- sending alerts ----------------------------------------------------------------------------


class AlertSender:
    """Sends pending staff alerts like queued messages: claimed under a lease, sent outside any
    transaction with the idempotency key ``alert-<id>``, retried quickly (these are urgent)."""

    def __init__(
        self,
        runtime: Runtime,
        senders: SenderLookup,
        *,
        clock: Callable[[], datetime] = now_utc,
        lease: timedelta = timedelta(minutes=1),
        max_attempts: int = 8,
        rng: random.Random | None = None,
    ) -> None:
        self.runtime = runtime
        self.senders = senders
        self.clock = clock
        self.lease = lease
        self.max_attempts = max_attempts
        self.worker_id = f"alerts-{uuid.uuid4().hex[:8]}"
        self.rng = rng or random.Random()

    def send_due(self, limit: int = 20) -> int:
        now = self.clock()
        with self.runtime.transaction() as session:
            ids = list(
                session.scalars(
                    select(StaffAlert.id)
                    .where(
                        or_(
                            (StaffAlert.status == "pending") & (StaffAlert.next_attempt_at <= now),
                            (StaffAlert.status == "sending") & (StaffAlert.claim_expires_at < now),
                        )
                    )
                    .order_by(StaffAlert.next_attempt_at)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            )
            if ids:
                session.execute(
                    update(StaffAlert)
                    .where(StaffAlert.id.in_(ids))
                    .values(
                        status="sending",
                        claimed_by=self.worker_id,
                        claim_expires_at=now + self.lease,
                        attempts=StaffAlert.attempts + 1,
                    )
                    .execution_options(synchronize_session=False)
                )
        for alert_id in ids:
            self._send(alert_id)
        return len(ids)

    def _send(self, alert_id: int) -> None:
        with self.runtime.transaction() as session:
            found = session.execute(
                select(StaffAlert.practice_id, StaffAlert.channel).where(StaffAlert.id == alert_id)
            ).first()
        if found is None:
            return
        sender = self.senders(found[0], Channel(found[1]))  # outside any transaction
        with self.runtime.transaction() as session:
            alert = session.get(StaffAlert, alert_id)
            if alert is None or alert.claimed_by != self.worker_id:
                return
            channel = Channel(alert.channel)
            message = OutboundMessage(
                practice_id=alert.practice_id,
                patient_id=None,
                channel=channel,
                to=self.runtime.cipher.open(alert.address_sealed) or "",
                body=alert.body,
                idempotency_key=f"alert-{alert.id}",
                subject="URGENT: a patient message needs a person"
                if channel == Channel.EMAIL
                else None,
            )
        error: str | None = None
        permanent = False
        result = None
        if sender is None:
            error, permanent = f"no {channel.value} sender is configured", True
        else:
            try:
                result = sender.send(message)
            except TransientError as exc:
                error = str(exc)
            except PermanentError as exc:
                error, permanent = str(exc), True
        now = self.clock()
        with self.runtime.transaction() as session:
            alert = session.get(StaffAlert, alert_id)
            if alert is None:
                return
            alert.claimed_by = None
            alert.claim_expires_at = None
            if result is not None:
                alert.status = "sent"
                alert.provider_message_id = result.provider_message_id
                alert.sent_at = now
                alert.error = None
            elif permanent or alert.attempts >= self.max_attempts:
                alert.status = "failed"
                alert.error = (error or "failed")[:300]
                log.error("an urgent staff alert could not be sent", extra={"alert": alert.id})
            else:
                alert.status = "pending"
                alert.error = (error or "")[:300]
                delay = min(5 * 2 ** (alert.attempts - 1), 300)
                alert.next_attempt_at = now + timedelta(seconds=delay * (0.5 + self.rng.random()))
