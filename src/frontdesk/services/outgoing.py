"""Messages we send that are not reminders: receipts, opt-out confirmations, help, answers,
crisis messages, staff replies.

They are written as ``pending`` rows in the patient's thread inside the transaction that decided
to send them (so a rollback sends nothing, and a crash after commit loses nothing), then sent by
``MessageSender`` outside any transaction — claimed under a lease like reminders, sent with the
idempotency key ``message-<id>``, retried with backoff, and their outcome recorded. The process
that queued them sends them at once after its commit (``send_now``); the worker picks up what
that missed.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from frontdesk.adapters.channels.base import (
    ChannelSender,
    OutboundMessage,
    SendResult,
    WhatsAppTemplate,
)
from frontdesk.adapters.db.models import Appointment, Conversation, Message, Patient, Practice
from frontdesk.bootstrap import Runtime
from frontdesk.domain.channels import Channel, ConsentStatus, Direction
from frontdesk.domain.errors import OutsideServiceWindow, PermanentError, TransientError
from frontdesk.domain.messages import language_of
from frontdesk.domain.templates import Purpose
from frontdesk.domain.times import now_utc
from frontdesk.services import consent
from frontdesk.services.patients import contact_of

log = logging.getLogger(__name__)

PENDING = "pending"
SENDING = "sending"
FAILED = "failed"

# The only messages that may go to a channel the patient opted out of: the one confirmation
# of the opt-out itself, answers to HELP (carriers require both), and the crisis message
# answering a patient's own crisis message (safety first: it is a reply, never outreach; an
# SMS carrier that still blocks the number fails it, and the failure is recorded).
ALLOWED_AFTER_OPT_OUT = frozenset({"opt_out", "help", "crisis"})
WHATSAPP_WINDOW = timedelta(hours=24)

# Senders per practice and channel; None when the practice has no sender for that channel.
SenderLookup = Callable[[int, Channel], ChannelSender | None]


def fixed_senders(senders: Mapping[Channel, ChannelSender]) -> SenderLookup:
    """The same senders for every practice (the outbox, or one deployment-wide account)."""
    return lambda _practice_id, channel: senders.get(channel)


def status_callback_url(public_url: str, practice_slug: str, channel: Channel) -> str | None:
    """Where a provider reports delivery (Twilio's StatusCallback; Meta uses the app webhook)."""
    if channel != Channel.SMS:
        return None
    return f"{public_url.rstrip('/')}/webhooks/twilio/{practice_slug}/status"


def queue_message(
    session: Session,
    *,
    conversation: Conversation,
    purpose: str,
    body: str,
    now: datetime,
    subject: str | None = None,
    html: str | None = None,
    appointment_id: int | None = None,
    in_reply_to: str | None = None,
) -> Message:
    message = Message(
        practice_id=conversation.practice_id,
        conversation=conversation,
        appointment_id=appointment_id,
        channel=conversation.channel,
        direction=Direction.OUTBOUND.value,
        body=body,
        purpose=purpose,
        subject=subject,
        html_body=html,
        in_reply_to=in_reply_to,
        delivery_status=PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(message)
    conversation.last_message_at = now
    return message


@dataclass(frozen=True)
class _Ready:
    message_id: int
    outbound: OutboundMessage
    sender: ChannelSender


class MessageSender:
    def __init__(
        self,
        runtime: Runtime,
        senders: SenderLookup,
        *,
        worker_id: str | None = None,
        clock: Callable[[], datetime] = now_utc,
        lease: timedelta = timedelta(minutes=2),
        max_attempts: int = 6,
        backoff_base: timedelta = timedelta(seconds=15),
        backoff_max: timedelta = timedelta(minutes=30),
        rng: random.Random | None = None,
    ) -> None:
        self.runtime = runtime
        self.senders = senders
        self.worker_id = worker_id or f"messages-{uuid.uuid4().hex[:8]}"
        self.clock = clock
        self.lease = lease
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.rng = rng or random.Random()
        # Messages re-queued on another channel by a fallback: sent in the same pass.
        self._fallbacks: list[int] = []

    def claim(self, ids: list[int] | None = None, limit: int = 50) -> list[int]:
        """Take due pending messages (or those whose sender's lease ran out), or just ``ids``."""
        now = self.clock()
        with self.runtime.transaction() as session:
            query = (
                select(Message.id)
                .where(
                    Message.direction == Direction.OUTBOUND.value,
                    or_(
                        (Message.delivery_status == PENDING) & (Message.next_attempt_at <= now),
                        (Message.delivery_status == SENDING) & (Message.claim_expires_at < now),
                    ),
                )
                .order_by(Message.next_attempt_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            if ids is not None:
                query = query.where(Message.id.in_(ids))
            claimed = list(session.scalars(query))
            if claimed:
                session.execute(
                    update(Message)
                    .where(Message.id.in_(claimed))
                    .values(
                        delivery_status=SENDING,
                        claimed_by=self.worker_id,
                        claim_expires_at=now + self.lease,
                        attempts=Message.attempts + 1,
                    )
                    .execution_options(synchronize_session=False)
                )
        return claimed

    def send_due(self, limit: int = 50) -> int:
        ids = self.claim(limit=limit)
        for message_id in ids:
            self._process(message_id)
        return len(ids)

    def send_now(self, ids: list[int]) -> None:
        """Send messages just queued by this process, right after its commit. Best effort: what
        fails here stays pending for the worker."""
        if not ids:
            return
        try:
            for message_id in self.claim(ids=ids):
                self._process(message_id)
        except Exception:
            log.exception("immediate send failed; the worker will retry")

    def _process(self, message_id: int) -> None:
        self._send_one(message_id)
        while self._fallbacks:
            self.send_now([self._fallbacks.pop()])

    def _send_one(self, message_id: int) -> None:
        ready = self._prepare(message_id)
        if ready is None:
            return
        try:
            result = ready.sender.send(ready.outbound)
        except TransientError as exc:
            self._retry(message_id, str(exc))
            return
        except PermanentError as exc:
            self._fail(
                message_id,
                str(exc),
                opted_out=_opted_out(exc),
                fall_back=isinstance(exc, OutsideServiceWindow),
            )
            return
        self._sent(message_id, result)

    def _prepare(self, message_id: int) -> _Ready | None:
        # The sender is looked up before the transaction: building one may read the practice's
        # provider account, and SQLite allows one writer at a time.
        with self.runtime.transaction() as session:
            found = session.execute(
                select(Message.practice_id, Message.channel).where(Message.id == message_id)
            ).first()
        if found is None:
            return None
        chosen = self.senders(found[0], Channel(found[1]))
        now = self.clock()
        with self.runtime.transaction() as session:
            message = session.get(Message, message_id)
            if message is None or message.claimed_by != self.worker_id:
                return None
            if message.delivery_status != SENDING:
                return None
            conversation = message.conversation
            channel = Channel(message.channel)
            patient = (
                session.get(Patient, conversation.patient_id) if conversation.patient_id else None
            )
            problem, to = self._address(session, message, conversation, patient, channel, now)
            if problem is not None or to is None:
                _finish_failed(message, problem or "no address", now)
                return None
            sender = chosen
            if sender is None:
                _finish_failed(message, f"no {channel.value} sender is configured", now)
                return None
            practice = session.get(Practice, message.practice_id)
            assert practice is not None
            outbound = OutboundMessage(
                practice_id=message.practice_id,
                patient_id=conversation.patient_id,
                channel=channel,
                to=to,
                body=message.body,
                idempotency_key=f"message-{message.id}",
                subject=message.subject if channel == Channel.EMAIL else None,
                html_body=message.html_body if channel == Channel.EMAIL else None,
                in_reply_to=message.in_reply_to,
                references=(message.in_reply_to,) if message.in_reply_to else (),
                status_callback_url=status_callback_url(
                    self.runtime.settings.public_url, practice.slug, channel
                ),
                # WhatsApp takes free-form text only within 24 h of the patient's last message;
                # the channel refuses it otherwise (OutsideServiceWindow, recorded as failed).
                last_inbound_at=conversation.last_inbound_at,
                whatsapp_template=self._template(session, message, patient, practice, now)
                if channel == Channel.WHATSAPP
                else None,
            )
            return _Ready(message.id, outbound, sender)

    def _template(
        self,
        session: Session,
        message: Message,
        patient: Patient | None,
        practice: Practice,
        now: datetime,
    ) -> WhatsAppTemplate | None:
        """Outside WhatsApp's 24-hour window a message whose purpose has an approved template
        goes as that template (first name and date and time as its parameters)."""
        conversation = message.conversation
        window_open = (
            conversation.last_inbound_at is not None
            and now - conversation.last_inbound_at <= WHATSAPP_WINDOW
        )
        if window_open or patient is None or message.purpose is None:
            return None
        try:
            purpose = Purpose(message.purpose)
        except ValueError:
            return None
        from frontdesk.services.templates import TemplateBook, context_for

        text = TemplateBook.load(session, practice.id).text_for(
            purpose, Channel.WHATSAPP.value, patient.language
        )
        if not text.whatsapp_template:
            return None
        appointment = (
            session.get(Appointment, message.appointment_id) if message.appointment_id else None
        )
        values = context_for(
            practice=practice,
            channel=Channel.WHATSAPP.value,
            language=patient.language,
            patient_name=patient.name,
            patient_preferred_name=patient.preferred_name,
            tz_name=patient.timezone or practice.timezone,
            appointment=appointment,
        )
        return WhatsAppTemplate(
            name=text.whatsapp_template,
            language=language_of(patient.language),
            body_parameters=(values["first_name"] or "-", values["when"] or "-"),
        )

    def _address(
        self,
        session: Session,
        message: Message,
        conversation: Conversation,
        patient: Patient | None,
        channel: Channel,
        now: datetime,
    ) -> tuple[str | None, str | None]:
        """The address to send to, or why this message must not go out."""
        if patient is None:
            address = self.runtime.cipher.open(conversation.address_sealed)
            return (None, address) if address else ("the sender is unknown", None)
        if (
            consent.current(patient, channel) == ConsentStatus.REVOKED
            and message.purpose not in ALLOWED_AFTER_OPT_OUT
        ):
            return (f"the patient opted out of {channel.value}", None)
        contact = contact_of(patient, self.runtime.cipher)
        address = contact.email if channel == Channel.EMAIL else contact.phone
        if channel == Channel.WEBCHAT:
            address = f"webchat:{conversation.id}"
        return (None, address) if address else (f"no {channel.value} address", None)

    def _sent(self, message_id: int, result: SendResult) -> None:
        now = self.clock()
        with self.runtime.transaction() as session:
            message = session.get(Message, message_id)
            if message is None:
                return
            message.provider_message_id = result.provider_message_id
            message.delivery_status = result.status
            message.sent_at = now
            message.status_updated_at = now
            message.claimed_by = None
            message.claim_expires_at = None
            message.error = None

    def _retry(self, message_id: int, reason: str) -> None:
        now = self.clock()
        with self.runtime.transaction() as session:
            message = session.get(Message, message_id)
            if message is None:
                return
            if message.attempts >= self.max_attempts:
                _finish_failed(message, f"gave up after {message.attempts} tries: {reason}", now)
                return
            delay = min(self.backoff_base * 2 ** (message.attempts - 1), self.backoff_max)
            message.delivery_status = PENDING
            message.next_attempt_at = now + delay * (0.5 + self.rng.random())
            message.claimed_by = None
            message.claim_expires_at = None
            message.error = reason[:300]

    def _fail(
        self, message_id: int, reason: str, *, opted_out: bool, fall_back: bool = False
    ) -> None:
        now = self.clock()
        with self.runtime.transaction() as session:
            message = session.get(Message, message_id)
            if message is None:
                return
            _finish_failed(message, reason, now)
            if fall_back:
                self._send_elsewhere(session, message, now)
            patient_id = message.conversation.patient_id
            if opted_out and patient_id is not None:
                patient = session.get(Patient, patient_id)
                if patient is not None:
                    consent.set_consent(
                        session,
                        patient,
                        Channel(message.channel),
                        ConsentStatus.REVOKED,
                        source="provider",
                        actor="system",
                        detail="the provider reports the recipient opted out",
                    )

    def _send_elsewhere(self, session: Session, message: Message, now: datetime) -> None:
        """WhatsApp refused free-form text outside its 24-hour window: the same words go on the
        patient's next usable channel, and the refused message says where they went."""
        conversation = message.conversation
        if conversation.patient_id is None:
            return
        patient = session.get(Patient, conversation.patient_id)
        practice = session.get(Practice, message.practice_id)
        if patient is None or practice is None:
            return
        from frontdesk.domain.reminders import usable_channels
        from frontdesk.services.reminders import patient_facts, policy_for
        from frontdesk.services.replies import thread_for

        policy = policy_for(practice, self.runtime.settings.reminder_policy)
        others = [
            c
            for c in usable_channels(patient_facts(patient, practice), policy)
            if c != Channel(message.channel)
        ]
        if not others:
            return
        thread = thread_for(session, self.runtime.cipher, practice, patient, others[0], None)
        copy = queue_message(
            session,
            conversation=thread,
            purpose=message.purpose or "staff_reply",
            body=message.body,
            subject=message.subject,
            appointment_id=message.appointment_id,
            now=now,
        )
        session.flush()
        message.error = f"outside WhatsApp's 24-hour window: sent by {others[0].value} instead"
        self._fallbacks.append(copy.id)


def _finish_failed(message: Message, reason: str, now: datetime) -> None:
    message.delivery_status = FAILED
    message.error = reason[:300]
    message.status_updated_at = now
    message.claimed_by = None
    message.claim_expires_at = None


def _opted_out(exc: PermanentError) -> bool:
    return bool(getattr(exc, "opted_out", False))
