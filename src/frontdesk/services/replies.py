"""What happens when a patient writes to us, on any channel.

``receive`` runs inside the transaction that processes a stored inbound webhook (or an outbox
reply): it files the message in the patient's thread (once per provider message id), works out
what it means, acts — confirm / cannot come / reschedule, opt-out / opt-in / help, a handoff to
staff — and queues the answers, which are sent after commit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from frontdesk.adapters.crypto import FieldCipher
from frontdesk.adapters.db.models import (
    Appointment,
    Conversation,
    Message,
    Patient,
    Practice,
    ReviewItem,
)
from frontdesk.adapters.llm import LanguageModel
from frontdesk.agent.answer import Answer
from frontdesk.domain.channels import Channel, ConsentStatus, Direction
from frontdesk.domain.contact import normalize_email, normalize_phone, region_of_locale
from frontdesk.domain.messages import language_of
from frontdesk.domain.reminders import usable_channels
from frontdesk.domain.reply_keywords import keyword
from frontdesk.domain.templates import Purpose
from frontdesk.services import (
    consent,
    events,
    handoff,
    knowledge,
    outgoing,
    rebooking,
    reminders,
)
from frontdesk.services.appointment_answers import (
    ANSWERABLE,
    CANCEL,
    CONFIRM,
    RESCHEDULE,
    apply_answer,
)
from frontdesk.services.reminders import Planning
from frontdesk.services.templates import TemplateBook, context_for, render


@dataclass(frozen=True)
class Inbound:
    """One patient message, as every channel's parser hands it over."""

    channel: Channel
    from_address: str
    text: str
    provider_message_id: str
    received_at: datetime
    to_address: str | None = None
    in_reply_to: str | None = None
    # A WhatsApp quick-reply button's payload or an email link's action: C, R or N.
    button: str | None = None


@dataclass(frozen=True)
class Interpretation:
    intent: (
        str  # confirm cancel reschedule question clinical_concern crisis opt_out opt_in help other
    )
    carrier_cancel: bool = False
    carrier_opt_in: bool = False  # YES / START on a channel the carrier had blocked
    language: str | None = None
    asks_for_person: bool = False
    asks_if_bot: bool = False
    # A safety intent won over words that also opt out ("stop texting me, I'm done with all
    # of it"): the patient is handed to staff and the opt-out is still honoured.
    also_opts_out: bool = False


Interpreter = Callable[[str, Channel], Interpretation]


@dataclass
class ReplyOutcome:
    duplicate: bool
    message_id: int | None = None
    conversation_id: int | None = None
    intent: str | None = None
    action: str = "none"
    appointment_id: int | None = None
    urgent: bool = False  # an urgent handoff: on-call alerts are waiting to go out
    queued: list[Message] = field(default_factory=list)
    # Answers a language model may re-word once this transaction has committed, and every
    # message held back with them (what follows an answer waits for it, to keep the order).
    phrasing: list[Phrasing] = field(default_factory=list)
    held: list[Message] = field(default_factory=list)

    @property
    def queued_ids(self) -> list[int]:
        return [m.id for m in self.queued if m.id is not None]


@dataclass(frozen=True)
class Phrasing:
    """An extractive answer already queued (held back a little) that a language model may
    re-word after the commit: the model is never called inside a database transaction."""

    message: Message
    practice_id: int
    question: str
    extractive: Answer
    intro: str  # "Automated assistant: " on the agent's first words in a thread, else ""
    # A declined question's review item: resolved if the model's answer is sent instead.
    review: ReviewItem | None = None
    # The decline flagged the thread for a person (it was not flagged before): the flag goes
    # with the review item when the model's answer is sent instead.
    flagged: Conversation | None = None


def answer_body(intro: str, result: Answer) -> str:
    """The patient-facing text of an answer: the words, then where they come from."""
    text = intro + result.answer
    if result.answered and result.citations:
        cited = result.citations[0]
        where = f"{cited.source}, {cited.section}" if cited.section else cited.source
        text = f"{text}\n(From: {where})"
    return text


@dataclass(frozen=True)
class ReplyContext:
    cipher: FieldCipher
    planning: Planning
    interpret: Interpreter
    public_url: str = "http://127.0.0.1:8000"
    # Custom actions (issue 6): a runner per message, or None where actions are not used.
    actions: Callable[[], Any] | None = None
    # The optional language model that may phrase grounded answers (after the commit, see
    # Phrasing), and each practice's monthly token budget for it (docs/LLM.md).
    model: LanguageModel | None = None
    llm_budget: int | None = None
    # How long an answer waiting for the model is held back from the sender.
    phrase_hold_seconds: float = 0.0
    # Fuse sentence embeddings into retrieval (FRONTDESK_KB_EMBEDDINGS; needs the extra).
    kb_embeddings: bool = True
    # Offer the model questions the extractive answer declined (FRONTDESK_LLM_ANSWERS_UNMATCHED).
    llm_answers_unmatched: bool = False


def receive(
    session: Session, practice: Practice, inbound: Inbound, context: ReplyContext
) -> ReplyOutcome:
    now = context.planning.now
    duplicate = session.scalar(
        select(Message.id).where(
            Message.practice_id == practice.id,
            Message.channel == inbound.channel.value,
            Message.provider_message_id == inbound.provider_message_id,
        )
    )
    if duplicate is not None:
        return ReplyOutcome(duplicate=True, message_id=duplicate)
    patient, address = find_sender(session, context.cipher, practice, inbound)
    conversation = thread_for(session, context.cipher, practice, patient, inbound.channel, address)
    message = Message(
        practice_id=practice.id,
        conversation=conversation,
        channel=inbound.channel.value,
        direction=Direction.INBOUND.value,
        body=inbound.text,
        provider_message_id=inbound.provider_message_id,
        in_reply_to=inbound.in_reply_to,
        delivery_status="received",
        created_at=inbound.received_at,
    )
    session.add(message)
    conversation.last_inbound_at = inbound.received_at
    conversation.last_message_at = max(conversation.last_message_at or now, inbound.received_at)
    session.flush()
    meaning = _meaning(inbound, context)
    outcome = ReplyOutcome(
        duplicate=False,
        message_id=message.id,
        conversation_id=conversation.id,
        intent=meaning.intent,
    )
    _Handler(session, practice, patient, conversation, message, inbound, context, outcome).act(
        meaning
    )
    if outcome.phrasing:
        # Whatever was queued after the answer (an action asking its field again) waits with it.
        first = outcome.queued.index(outcome.phrasing[0].message)
        hold = outcome.phrasing[0].message.next_attempt_at
        for later in outcome.queued[first:]:
            later.next_attempt_at = hold
            outcome.held.append(later)
    return outcome


def _meaning(inbound: Inbound, context: ReplyContext) -> Interpretation:
    if inbound.button:
        button = keyword(inbound.button, channel="button")
        if button is not None:
            return Interpretation(button.intent)
    return context.interpret(inbound.text, inbound.channel)


# --- who wrote, and in which thread -----------------------------------------------------------


def address_key(channel: Channel, raw: str, practice: Practice) -> str | None:
    """The normalised address a patient record would hold, or None when it is not one."""
    text = raw.strip()
    if text.startswith("whatsapp:"):
        text = text[len("whatsapp:") :]
    try:
        if channel == Channel.EMAIL:
            return normalize_email(text).lower()
        if channel in (Channel.SMS, Channel.WHATSAPP):
            digits = text if text.startswith("+") else f"+{text}" if text.isdigit() else text
            return normalize_phone(digits, region_of_locale(practice.locale))
    except ValueError:
        return None
    return text or None


def find_sender(
    session: Session, cipher: FieldCipher, practice: Practice, inbound: Inbound
) -> tuple[Patient | None, str | None]:
    """The patient whose record holds the sender's address. When several share it (a family
    phone), the one with the soonest upcoming appointment."""
    address = address_key(inbound.channel, inbound.from_address, practice)
    if address is None or inbound.channel == Channel.WEBCHAT:
        return None, address
    lookup = cipher.lookup_key(address)
    column = Patient.email_lookup if inbound.channel == Channel.EMAIL else Patient.phone_lookup
    candidates = list(
        session.scalars(select(Patient).where(Patient.practice_id == practice.id, column == lookup))
    )
    if len(candidates) <= 1:
        return (candidates[0] if candidates else None), address
    soonest = session.execute(
        select(Appointment.patient_id)
        .where(
            Appointment.patient_id.in_([p.id for p in candidates]),
            Appointment.start_at > inbound.received_at,
            Appointment.status.in_(ANSWERABLE),
        )
        .order_by(Appointment.start_at)
        .limit(1)
    ).scalar()
    chosen = next((p for p in candidates if p.id == soonest), candidates[0])
    return chosen, address


def thread_for(
    session: Session,
    cipher: FieldCipher,
    practice: Practice,
    patient: Patient | None,
    channel: Channel,
    address: str | None,
) -> Conversation:
    if patient is not None:
        conversation = session.scalar(
            select(Conversation)
            .where(
                Conversation.practice_id == practice.id,
                Conversation.patient_id == patient.id,
                Conversation.channel == channel.value,
            )
            .order_by(Conversation.id)
            .limit(1)
        )
    else:
        lookup = cipher.lookup_key(address)
        conversation = session.scalar(
            select(Conversation)
            .where(
                Conversation.practice_id == practice.id,
                Conversation.patient_id.is_(None),
                Conversation.channel == channel.value,
                Conversation.address_lookup == lookup,
            )
            .limit(1)
        )
    if conversation is None:
        conversation = Conversation(
            practice_id=practice.id,
            patient_id=patient.id if patient else None,
            channel=channel.value,
            status="open",
            owner="agent",
            urgent=False,
        )
        if patient is None:
            conversation.address_sealed = cipher.seal(address)
            conversation.address_lookup = cipher.lookup_key(address)
        session.add(conversation)
    return conversation


# --- acting on it -----------------------------------------------------------------------------


@dataclass
class _Handler:
    session: Session
    practice: Practice
    patient: Patient | None
    conversation: Conversation
    message: Message
    inbound: Inbound
    context: ReplyContext
    outcome: ReplyOutcome
    language: str | None = None  # what the message was written in, when known

    @property
    def now(self) -> datetime:
        return self.context.planning.now

    @property
    def channel(self) -> Channel:
        return self.inbound.channel

    def act(self, meaning: Interpretation) -> None:
        intent = meaning.intent
        self.language = meaning.language
        if (
            meaning.carrier_opt_in
            and self.patient is not None
            and consent.current(self.patient, self.channel) == ConsentStatus.REVOKED
        ):
            # The carrier lifted its block on YES / START: so do we, before anything else.
            self.opt_in()
            if intent == "opt_in":
                return
        runner = self.context.actions() if self.context.actions is not None else None
        # A running action gets the message first (slot filling, an inline answer); it stands
        # aside for safety intents (and stops), opt-outs, questions and staff-owned threads.
        if (
            runner is not None
            and not meaning.asks_for_person
            and runner.on_message(self.session, self.conversation, self.inbound.text, meaning)
        ):
            self.outcome.action = "action"
            self.outcome.queued.extend(runner.queued)
            return
        if intent not in ("crisis", "clinical_concern", "opt_out", "opt_in"):
            if meaning.asks_for_person:
                # A patient who asks for a person gets one.
                self.hand_off(urgent=False, reason="asked_for_person")
                self.reply(Purpose.NEEDS_PERSON)
                return
            if meaning.asks_if_bot and intent in ("question", "other", "help"):
                self.reply(Purpose.ASSISTANT)
                self.outcome.action = "disclosed"
                return
        if intent == "crisis":
            self.crisis()
        elif intent == "clinical_concern":
            self.hand_off(urgent=False, reason="clinical_concern")
        if intent in ("crisis", "clinical_concern") and meaning.also_opts_out:
            handed_off = self.outcome.action
            self.opt_out(carrier_cancel=False)
            self.outcome.action = handed_off
        elif intent == "opt_out":
            self.opt_out(carrier_cancel=meaning.carrier_cancel)
        elif intent == "opt_in":
            self.opt_in()
        elif intent == "help":
            self.reply(Purpose.HELP)
            self.outcome.action = "help"
        elif intent in (CONFIRM, CANCEL, RESCHEDULE):
            self.answer(intent)
        elif intent == "question" and self.conversation.owner == "agent":
            self.answer_question()
            if runner is not None:
                # The action paused for the question: ask its pending field again.
                runner.resume(self.session, self.conversation)
                self.outcome.queued.extend(runner.queued)
        else:
            self.needs_person()

    def crisis(self) -> None:
        """Staff take the thread at once, marked urgent, and the patient gets the crisis message."""
        self.hand_off(urgent=True, reason="crisis")
        self.reply(Purpose.CRISIS)

    # Questions: answered only from the practice's documents, with the source.

    def answer_question(self) -> None:
        result = knowledge.answer(
            self.session,
            self.practice.id,
            self.inbound.text,
            self._language(),
            embeddings=self.context.kb_embeddings,
        )
        if result.reason == "crisis":
            # The answerer saw danger the classifier did not: a crisis, whatever it was asked.
            self.crisis()
            return
        if result.reason == "clinical":
            # Advice about care is for the clinician: say so, and hand the thread to staff.
            self.reply_text(result.answer, purpose="answer")
            self.hand_off(urgent=False, reason="clinical_concern")
            return
        intro = self._intro()
        self._queue_reply(answer_body(intro, result), purpose="answer")
        review: ReviewItem | None = None
        flagged: Conversation | None = None
        if result.answered:
            self.outcome.action = "answered"
        else:
            # "I don't have that": a person follows up, as the answer promised.
            self.outcome.action = "unanswered"
            if not self.conversation.needs_attention:
                flagged = self.conversation
            self.conversation.needs_attention = True
            review = ReviewItem(
                practice_id=self.practice.id,
                patient_id=self.patient.id if self.patient else None,
                kind="unanswered_question",
                state="open",
            )
            self.session.add(review)
        worded_later = result.answered or (
            self.context.llm_answers_unmatched and result.reason == "not_found"
        )
        if worded_later and self.context.model is not None and self.outcome.queued:
            # Held back while the model words it after the commit; sent as it is if that fails.
            message = self.outcome.queued[-1]
            message.next_attempt_at = self.context.planning.now + timedelta(
                seconds=self.context.phrase_hold_seconds
            )
            self.outcome.phrasing.append(
                Phrasing(
                    message, self.practice.id, self.inbound.text, result, intro, review, flagged
                )
            )

    # Appointment answers

    def answer(self, answer: str) -> None:
        appointment = self.target_appointment()
        if appointment is None:
            self.outcome.action = "no_appointment"
            self.needs_person()
            return
        self.outcome.appointment_id = appointment.id
        changed = apply_answer(
            self.session,
            self.practice,
            appointment,
            answer,
            self.context.planning,
            actor=f"patient:{appointment.patient_id}",
            source=f"reply:{self.channel.value}",
        )
        self.message.appointment_id = appointment.id
        self.outcome.action = {
            CONFIRM: "confirmed",
            CANCEL: "cancelled",
            RESCHEDULE: "reschedule_requested",
        }[answer]
        if not changed and appointment.status not in ANSWERABLE:
            self.outcome.action = "not_answerable"
            self.needs_person()
            return
        purpose = {
            CONFIRM: Purpose.RECEIPT_CONFIRM,
            CANCEL: Purpose.RECEIPT_CANCEL,
            RESCHEDULE: Purpose.RECEIPT_RESCHEDULE,
        }[answer]
        self.reply(purpose, appointment=appointment)
        if answer == RESCHEDULE:
            self.conversation.needs_attention = True

    def target_appointment(self) -> Appointment | None:
        """The appointment the patient is answering about: the one our latest message in this
        thread was about, if it can still be answered; else their next upcoming one."""
        if self.patient is None:
            return None
        latest = self.session.scalar(
            select(Message.appointment_id)
            .where(
                Message.conversation_id == self.conversation.id,
                Message.direction == Direction.OUTBOUND.value,
                Message.appointment_id.is_not(None),
            )
            .order_by(Message.created_at.desc(), Message.id.desc())
            .limit(1)
        )
        if latest is not None:
            appointment = self.session.get(Appointment, latest)
            if (
                appointment is not None
                and appointment.status in ANSWERABLE
                and appointment.end_at > self.now
            ):
                return appointment
        return self.session.scalar(
            select(Appointment)
            .where(
                Appointment.patient_id == self.patient.id,
                Appointment.status.in_(ANSWERABLE),
                Appointment.end_at > self.now,
            )
            .order_by(Appointment.start_at)
            .limit(1)
        )

    # Consent

    def opt_out(self, *, carrier_cancel: bool) -> None:
        self.outcome.action = "opted_out"
        changed = True
        if self.patient is not None:
            changed = consent.set_consent(
                self.session,
                self.patient,
                self.channel,
                ConsentStatus.REVOKED,
                source="keyword",
                actor=f"patient:{self.patient.id}",
                evidence_message_id=self.message.id,
                detail="bare CANCEL (carrier opt-out word)" if carrier_cancel else None,
            )
            reminders.replan_patient(
                self.session, self.practice, self.patient, self.context.planning
            )
            if changed:
                events.publish(
                    self.session,
                    self.practice.id,
                    "patient.opted_out",
                    events.opted_out_data(self.patient, self.channel.value),
                )
        else:
            self.needs_person(acknowledge=False)
        if not changed:
            return  # one confirmation, then silence: a repeated STOP gets no answer
        self.reply(Purpose.OPT_OUT)
        if carrier_cancel and self.patient is not None:
            self.tell_how_to_cancel()

    def tell_how_to_cancel(self) -> None:
        """A bare CANCEL stopped our texts; if the patient meant their appointment, say how to
        cancel it on another channel they agreed to."""
        appointment = self.target_appointment()
        assert self.patient is not None
        if appointment is None:
            return
        facts = reminders.patient_facts(self.patient, self.practice)
        policy = reminders.policy_for(self.practice, self.context.planning.default_policy)
        others = [c for c in usable_channels(facts, policy) if c not in (Channel.SMS,)]
        if Channel.WHATSAPP in others and not _whatsapp_window_open(
            self.session, self.practice, self.patient, self.now
        ):
            others.remove(Channel.WHATSAPP)
        if not others:
            self.conversation.needs_attention = True
            return
        other = thread_for(
            self.session, self.context.cipher, self.practice, self.patient, others[0], None
        )
        self.reply(Purpose.CARRIER_CANCEL, appointment=appointment, conversation=other)

    def opt_in(self) -> None:
        self.outcome.action = "opted_in"
        if self.patient is None:
            self.needs_person(acknowledge=False)
            return
        consent.set_consent(
            self.session,
            self.patient,
            self.channel,
            ConsentStatus.GRANTED,
            source="keyword",
            actor=f"patient:{self.patient.id}",
            evidence_message_id=self.message.id,
        )
        reminders.replan_patient(self.session, self.practice, self.patient, self.context.planning)
        self.reply(Purpose.OPT_IN)

    # People

    def hand_off(self, *, urgent: bool, reason: str) -> None:
        handoff.hand_off(
            self.session,
            practice=self.practice,
            conversation=self.conversation,
            reason=reason,
            urgent=urgent,
            now=self.now,
            cipher=self.context.cipher,
            public_url=self.context.public_url,
            message_id=self.message.id,
        )
        self.outcome.action = f"handoff:{reason}"
        self.outcome.urgent = self.outcome.urgent or urgent

    def needs_person(self, *, acknowledge: bool = True) -> None:
        first_time = not self.conversation.needs_attention
        self.conversation.needs_attention = True
        self.conversation.status = "open"
        if self.outcome.action == "none":
            self.outcome.action = "needs_person"
        if acknowledge and first_time and self.conversation.owner == "agent":
            self.reply(Purpose.NEEDS_PERSON)

    # Answers go out on the same channel, in the patient's language.

    def _language(self) -> str:
        if self.patient is not None:
            return language_of(self.patient.language)
        return language_of(self.language or self.practice.locale)

    def reply(
        self,
        purpose: Purpose,
        *,
        appointment: Appointment | None = None,
        conversation: Conversation | None = None,
    ) -> None:
        thread = conversation or self.conversation
        channel = thread.channel
        language = self._language()
        book = TemplateBook.load(self.session, self.practice.id)
        text = book.text_for(purpose, channel, language)
        tz_name = (self.patient.timezone if self.patient else None) or self.practice.timezone
        links: dict[str, str] = {}
        booking_url = (
            appointment.clinician.booking_url if appointment and appointment.clinician else None
        ) or self.practice.booking_url
        if purpose in _INVITES_REBOOKING and booking_url and self.patient is not None:
            links["rebook_link"] = rebooking.tracked_url(
                self.session,
                self.practice,
                self.patient,
                booking_url,
                purpose=purpose.value,
                appointment_id=appointment.id if appointment else None,
                cipher=self.context.cipher,
                now=self.now,
            )
        values = context_for(
            practice=self.practice,
            channel=channel,
            language=language,
            patient_name=self.patient.name if self.patient else None,
            patient_preferred_name=self.patient.preferred_name if self.patient else None,
            tz_name=tz_name,
            appointment=appointment,
            links=links,
        )
        rendered = render(text, values)
        self._queue(
            thread,
            purpose.value,
            rendered.body,
            subject=rendered.subject,
            html=rendered.html,
            appointment_id=appointment.id if appointment else None,
        )

    def reply_text(self, text: str, *, purpose: str) -> None:
        """An answer in the agent's own words (from the practice's documents). The first one in
        a thread says it comes from an automated assistant."""
        self._queue_reply(self._intro() + text, purpose=purpose)

    def _intro(self) -> str:
        if self._agent_spoke():
            return ""
        return {"en": "Automated assistant: ", "es": "Asistente automático: "}[self._language()]

    def _queue_reply(self, text: str, *, purpose: str) -> None:
        subject = None
        if self.conversation.channel == Channel.EMAIL.value:
            subject = {"en": "Your question", "es": "Su pregunta"}[self._language()]
        self._queue(self.conversation, purpose, text, subject=subject)

    def _agent_spoke(self) -> bool:
        return (
            self.session.scalar(
                select(Message.id)
                .where(
                    Message.conversation_id == self.conversation.id,
                    Message.purpose.in_(("answer", "assistant", "greeting")),
                )
                .limit(1)
            )
            is not None
        )

    def _queue(
        self,
        thread: Conversation,
        purpose: str,
        body: str,
        *,
        subject: str | None = None,
        html: str | None = None,
        appointment_id: int | None = None,
    ) -> None:
        queued = outgoing.queue_message(
            self.session,
            conversation=thread,
            purpose=purpose,
            body=body,
            subject=subject,
            html=html,
            appointment_id=appointment_id,
            in_reply_to=self.inbound.provider_message_id
            if thread is self.conversation and thread.channel == Channel.EMAIL.value
            else None,
            now=self.now,
        )
        self.outcome.queued.append(queued)


# Receipts that offer a new time carry a tracked booking link.
_INVITES_REBOOKING = frozenset({Purpose.RECEIPT_CANCEL, Purpose.RECEIPT_RESCHEDULE})


def _whatsapp_window_open(
    session: Session, practice: Practice, patient: Patient, now: datetime
) -> bool:
    last = session.scalar(
        select(Conversation.last_inbound_at).where(
            Conversation.practice_id == practice.id,
            Conversation.patient_id == patient.id,
            Conversation.channel == Channel.WHATSAPP.value,
        )
    )
    return last is not None and now - last <= outgoing.WHATSAPP_WINDOW
