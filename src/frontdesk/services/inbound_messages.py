"""Patient messages arriving from any channel: stored raw, then understood and acted on once,
then the answers sent right after commit.

Each provider registers a parser that turns its stored payload into ``Inbound`` messages (and
delivery-status updates); the same parser serves the first processing and every retry of a
webhook that failed, so a payload kept for replay is always read the same way.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from frontdesk.adapters.channels.base import StatusUpdate
from frontdesk.adapters.db.models import (
    Conversation,
    InboundWebhook,
    Message,
    Patient,
    Practice,
    Reminder,
    ReviewItem,
)
from frontdesk.agent.understand import ready, understand
from frontdesk.bootstrap import Runtime
from frontdesk.domain.channels import Channel, ConsentStatus, Direction
from frontdesk.domain.errors import FieldError, NotFound, ValidationFailed
from frontdesk.domain.intents import Intent
from frontdesk.domain.reminders import ReminderState
from frontdesk.domain.times import now_utc
from frontdesk.services import consent, inbound, knowledge
from frontdesk.services.handoff import AlertSender
from frontdesk.services.llm_usage import BufferedMeter, language_model, monthly_used
from frontdesk.services.outgoing import PENDING, MessageSender
from frontdesk.services.patients import contact_of, effective_channel
from frontdesk.services.reminders import Planning
from frontdesk.services.replies import (
    Inbound,
    Interpretation,
    Interpreter,
    ReplyContext,
    ReplyOutcome,
    answer_body,
    receive,
)

log = logging.getLogger(__name__)


@dataclass
class Parsed:
    messages: list[Inbound] = field(default_factory=list)
    statuses: list[StatusUpdate] = field(default_factory=list)


Parser = Callable[[str], Parsed]
_PARSERS: dict[str, Parser] = {}
_CHANNEL_OF: dict[str, Channel] = {}

# Statuses only ever move forward: a late "sent" callback never undoes "delivered".
_RANK = {
    "pending": 0,
    "sending": 1,
    "queued": 2,
    "accepted": 2,
    "sent": 3,
    "delivered": 4,
    "read": 5,
    "undelivered": 6,
    "failed": 6,
}


def register(provider: str, channel: Channel, parser: Parser) -> None:
    _PARSERS[provider] = parser
    _CHANNEL_OF[provider] = channel


def interpreter_for(runtime: Runtime) -> Interpreter:
    """The agent's understanding of every message (keywords, the safety screen, the rest)."""
    cancel_is_opt_out = runtime.settings.sms_cancel_is_opt_out
    crisis_screen = runtime.settings.crisis_screen

    def interpret(text: str, channel: Channel) -> Interpretation:
        # A bare CANCEL is a carrier opt-out word on SMS only.
        found = understand(
            text,
            bare_cancel_is_opt_out=cancel_is_opt_out and channel == Channel.SMS,
            crisis_screen=crisis_screen,
        )
        return Interpretation(
            intent=found.intent.value,
            carrier_cancel=found.carrier_cancel,
            carrier_opt_in=found.carrier_opt_in,
            language=found.language,
            asks_for_person=found.asks_for_person,
            asks_if_bot=found.asks_if_bot,
            also_opts_out=found.intent is not Intent.OPT_OUT
            and any(e.intent is Intent.OPT_OUT for e in found.evidence),
        )

    return interpret


def reply_context(runtime: Runtime, now: datetime) -> ReplyContext:
    return ReplyContext(
        cipher=runtime.cipher,
        planning=Planning(runtime.settings.reminder_policy, now),
        interpret=interpreter_for(runtime),
        public_url=runtime.settings.public_url,
        actions=lambda: _runner_for(runtime, now),
        model=language_model(runtime.settings),
        llm_budget=runtime.settings.llm_monthly_token_budget,
        phrase_hold_seconds=runtime.settings.llm_timeout_seconds + 5.0,
        kb_embeddings=runtime.settings.kb_embeddings,
        llm_answers_unmatched=runtime.settings.llm_answers_unmatched,
    )


def _runner_for(runtime: Runtime, now: datetime) -> Any:
    from frontdesk.services.actions import runner_for

    return runner_for(runtime, now)


def _handler(
    runtime: Runtime, results: list[ReplyOutcome], clock: Callable[[], datetime] = now_utc
) -> inbound.Handler:
    # Ready the models before the processing transaction opens: on a cold model cache the
    # first message after a start waits here for the training (seconds), not while holding
    # the database (on SQLite, every other writer). Instant once they are loaded.
    ready(runtime.settings.crisis_screen)

    def handle(session: Session, row: InboundWebhook, payload: str) -> None:
        parser = _PARSERS.get(row.provider)
        if parser is None:
            raise LookupError(f"no parser for provider {row.provider}")
        parsed = parser(payload)
        practice = session.get(Practice, row.practice_id)
        assert practice is not None
        context = reply_context(runtime, clock())
        for message in parsed.messages:
            results.append(receive(session, practice, message, context))
        for status in parsed.statuses:
            apply_status(session, practice.id, _CHANNEL_OF[row.provider], status)
        if not parsed.messages and not parsed.statuses:
            row.state = "ignored"

    return handle


def accept(
    runtime: Runtime,
    sender: MessageSender | None,
    *,
    practice_id: int,
    provider: str,
    kind: str,
    dedupe_key: str,
    payload: str,
    content_type: str | None = None,
    clock: Callable[[], datetime] = now_utc,
) -> list[ReplyOutcome]:
    """Store, process once, and send the answers. A redelivered webhook does nothing more."""
    stored = inbound.store(
        runtime,
        practice_id=practice_id,
        provider=provider,
        kind=kind,
        dedupe_key=dedupe_key,
        payload=payload,
        content_type=content_type,
    )
    results: list[ReplyOutcome] = []
    if stored.duplicate:
        # Processed already, or failed and waiting for its retry: either way not here.
        with runtime.transaction() as session:
            row = session.get(InboundWebhook, stored.webhook_id)
            if row is None or row.state != "received":
                return results
    inbound.process(runtime, stored.webhook_id, _handler(runtime, results, clock))
    _phrase_after_commit(runtime, results, clock)
    _send_after_commit(runtime, sender, results)
    return results


def _phrase_after_commit(
    runtime: Runtime, results: list[ReplyOutcome], clock: Callable[[], datetime] = now_utc
) -> None:
    """Let the language model word the answers just committed, outside any transaction (a
    call may take seconds; SQLite has one writer and PostgreSQL connections are shared). An
    answer it words is kept only when its citations support it (``knowledge.phrase``);
    otherwise, or on any failure, the extractive answer already queued goes out as it is."""
    for outcome in results:
        try:
            _phrase(runtime, outcome, clock)
        except Exception:  # the message is stored and its answer queued: the worker sends it
            log.exception("wording answers after the commit failed; the held answers go as queued")


def _phrase(runtime: Runtime, outcome: ReplyOutcome, clock: Callable[[], datetime]) -> None:
    model = language_model(runtime.settings)
    for item in outcome.phrasing:
        message_id = item.message.id
        if model is None or message_id is None:
            continue
        now = clock()
        meter = BufferedMeter(
            item.practice_id,
            model.model,
            now,
            monthly_budget=runtime.settings.llm_monthly_token_budget,
        )
        body: str | None = None
        try:
            with runtime.transaction() as session:
                index = knowledge.index_for(
                    session, item.practice_id, embeddings=runtime.settings.kb_embeddings
                )
                meter.used = monthly_used(session, item.practice_id, now)
            worded = knowledge.phrase(
                index,
                item.question,
                item.extractive,
                model,
                meter,
                unmatched=runtime.settings.llm_answers_unmatched,
            )
            if worded.reason == "phrased":
                body = answer_body(item.intro, worded)
        except Exception:
            log.exception("wording an answer failed; the extractive answer goes out")
        with runtime.transaction() as session:
            meter.write(session)
            if body is not None:
                # Only while no sender has taken it: a message already sent keeps its words.
                changed = session.execute(
                    update(Message)
                    .where(Message.id == message_id, Message.delivery_status == PENDING)
                    .values(body=body)
                )
                review = item.review
                if review is not None and getattr(changed, "rowcount", 0) == 1:
                    # The patient got an answer from the documents after all.
                    session.execute(
                        update(ReviewItem)
                        .where(ReviewItem.id == review.id, ReviewItem.state == "open")
                        .values(state="resolved", resolved_at=now)
                    )
                    if item.flagged is not None and not _other_open_reviews(
                        session, item.practice_id, review
                    ):
                        session.execute(
                            update(Conversation)
                            .where(Conversation.id == item.flagged.id)
                            .values(needs_attention=False)
                        )
    held = [m.id for m in outcome.held if m.id is not None]
    if held:
        with runtime.transaction() as session:
            session.execute(
                update(Message)
                .where(Message.id.in_(held), Message.delivery_status == PENDING)
                .values(next_attempt_at=clock())
            )


def _other_open_reviews(session: Session, practice_id: int, review: ReviewItem) -> bool:
    """Whether the patient still has another open review item (a person must still look)."""
    if review.patient_id is None:
        return False
    found = session.scalar(
        select(ReviewItem.id)
        .where(
            ReviewItem.practice_id == practice_id,
            ReviewItem.patient_id == review.patient_id,
            ReviewItem.state == "open",
            ReviewItem.id != review.id,
        )
        .limit(1)
    )
    return found is not None


def _send_after_commit(
    runtime: Runtime, sender: MessageSender | None, results: list[ReplyOutcome]
) -> None:
    """Answers and urgent alerts go out now; whatever fails here the worker retries."""
    if sender is None:
        return
    if any(outcome.urgent for outcome in results):
        try:
            AlertSender(runtime, sender.senders, clock=sender.clock).send_due()
        except Exception:
            log.exception("sending urgent alerts failed; the worker will retry")
    sender.send_now([i for outcome in results for i in outcome.queued_ids])


def retry_failed(
    runtime: Runtime, sender: MessageSender | None, *, limit: int = 100, grace: float = 60.0
) -> int:
    """Process again what failed or was never processed (a crash between store and process),
    leaving ``grace`` seconds to the process that stored it."""
    results: list[ReplyOutcome] = []
    handlers = {provider: _handler(runtime, results) for provider in _PARSERS}
    counts = inbound.retry_failed(
        runtime, handlers, limit=limit, stored_before=now_utc() - timedelta(seconds=grace)
    )
    _phrase_after_commit(runtime, results)
    _send_after_commit(runtime, sender, results)
    return sum(counts.values())


def apply_status(
    session: Session, practice_id: int, channel: Channel, change: StatusUpdate
) -> None:
    message = session.scalar(
        select(Message).where(
            Message.practice_id == practice_id,
            Message.channel == channel.value,
            Message.provider_message_id == change.provider_message_id,
        )
    )
    if message is None or message.direction != Direction.OUTBOUND.value:
        return
    # A status the provider sent that we do not know is kept as it came, ranked lowest.
    status = change.status.value if change.status is not None else change.raw_status
    if _RANK.get(status, 0) < _RANK.get(message.delivery_status or "pending", 0):
        return
    if change.recipient_opted_out:
        conversation = message.conversation
        patient = session.get(Patient, conversation.patient_id) if conversation.patient_id else None
        if patient is not None:
            consent.set_consent(
                session,
                patient,
                channel,
                ConsentStatus.REVOKED,
                source="provider",
                actor="system",
                detail=f"provider error {change.error_code}",
            )
    message.delivery_status = status
    message.status_updated_at = now_utc()
    if change.error_code:
        message.error = f"provider error {change.error_code}"[:300]
    if status == "delivered":
        session.execute(
            update(Reminder)
            .where(
                Reminder.practice_id == practice_id,
                Reminder.provider_message_id == change.provider_message_id,
                Reminder.state == ReminderState.SENT.value,
            )
            .values(state=ReminderState.DELIVERED.value)
            .execution_options(synchronize_session=False)
        )
    elif status in ("undelivered", "failed"):
        session.execute(
            update(Reminder)
            .where(
                Reminder.practice_id == practice_id,
                Reminder.provider_message_id == change.provider_message_id,
                Reminder.state.in_((ReminderState.SENT.value, ReminderState.DELIVERED.value)),
            )
            .values(
                state=ReminderState.FAILED.value,
                reason=f"the provider reports {status}"
                + (f" ({change.error_code})" if change.error_code else ""),
            )
            .execution_options(synchronize_session=False)
        )


# --- the local outbox: a patient's reply typed on the /outbox page or the CLI -----------------


def _parse_json(payload: str) -> Parsed:
    data = json.loads(payload)
    return Parsed(
        messages=[
            Inbound(
                channel=Channel(data["channel"]),
                from_address=data["from_address"],
                text=data["text"],
                provider_message_id=data["provider_message_id"],
                received_at=datetime.fromisoformat(data["received_at"]),
                button=data.get("button"),
            )
        ]
    )


# The outbox and the web chat hand us our own JSON shape.
register("outbox", Channel.SMS, _parse_json)
register("webchat", Channel.WEBCHAT, _parse_json)


def outbox_reply(
    runtime: Runtime,
    sender: MessageSender | None,
    *,
    practice_id: int,
    patient_id: int,
    text: str,
    channel: Channel | None = None,
    clock: Callable[[], datetime] = now_utc,
) -> ReplyOutcome:
    """A patient's reply arriving on their channel, as a provider would deliver it."""
    if not text.strip():
        raise ValidationFailed([FieldError("text", "the reply is empty")])
    with runtime.transaction() as session:
        patient = session.get(Patient, patient_id)
        if patient is None or patient.practice_id != practice_id:
            raise NotFound(f"patient {patient_id} not found")
        chosen = channel or _last_channel(session, patient) or effective_channel(patient)
        if chosen is None:
            raise ValidationFailed(
                [FieldError("channel", "the patient has no channel: add a phone or email")]
            )
        contact = contact_of(patient, runtime.cipher)
        address = contact.email if chosen == Channel.EMAIL else contact.phone
        if chosen == Channel.WEBCHAT:
            address = f"webchat-patient-{patient.id}"
        if address is None:
            raise ValidationFailed(
                [FieldError("channel", f"the patient has no {chosen.value} address")]
            )
    message = Inbound(
        channel=chosen,
        from_address=address,
        text=text,
        provider_message_id=f"outbox-in-{uuid.uuid4().hex}",
        received_at=clock(),
    )
    payload = json.dumps(
        {**asdict(message), "channel": chosen.value, "received_at": message.received_at.isoformat()}
    )
    results = accept(
        runtime,
        sender,
        practice_id=practice_id,
        provider="outbox",
        kind="message",
        dedupe_key=message.provider_message_id,
        payload=payload,
        content_type="application/json",
        clock=clock,
    )
    if not results:
        raise RuntimeError("the reply was stored but could not be processed; it will be retried")
    return results[0]


def _last_channel(session: Session, patient: Patient) -> Channel | None:
    from frontdesk.adapters.db.models import Conversation

    row = session.execute(
        select(Message.channel)
        .join(Conversation, Message.conversation_id == Conversation.id)
        .where(
            Conversation.patient_id == patient.id,
            Message.direction == Direction.OUTBOUND.value,
        )
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(1)
    ).scalar()
    return Channel(row) if row else None
