"""The dispatcher: claim due reminders, re-check them, send outside any transaction, record.

Exactly once, in the terms we can keep:
- A reminder row exists once per (appointment, stage, start time) — a unique key.
- Claiming is a short transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so any number of
  workers share the table; SQLite has one writer). A claim is a lease: a worker that dies after
  claiming loses nothing, because the lease expires and another worker takes the row.
- The claimed batch is re-checked in one transaction (appointment status and time, the
  patient's answer, consent and channel, quiet hours, caps), messages are rendered then. The
  batch is read as plain rows (services/claimed.py), not ORM objects.
- Sends go out ``concurrency`` at a time, outside any transaction; what has come back is
  recorded in one transaction per group (one guarded ``UPDATE … RETURNING`` and two upserts,
  whatever the group's size; on PostgreSQL the three are one statement). At most
  ``max_unrecorded`` messages are ever sent and not yet recorded. The residual window is
  between a provider accepting a message and our recording its group: a worker killed there
  leaves those reminders claimed, and they are sent again after the lease expires — at most
  ``max_unrecorded`` per killed worker. Every attempt carries the same idempotency key
  (``reminder-<id>``); the outbox and providers that honour keys deliver it once.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Integer, String, bindparam, case, select, text, update
from sqlalchemy.orm import Session

from frontdesk.adapters.channels.base import (
    ChannelSender,
    OutboundMessage,
    SendResult,
    WhatsAppTemplate,
)
from frontdesk.adapters.crypto import FieldCipher
from frontdesk.adapters.db.bulk import is_postgres
from frontdesk.adapters.db.models import (
    Practice,
    Reminder,
    UTCDateTime,
)
from frontdesk.adapters.metrics import DispatchMetrics
from frontdesk.bootstrap import Runtime
from frontdesk.domain.channels import Channel
from frontdesk.domain.errors import PermanentError, TransientError
from frontdesk.domain.messages import language_of, render
from frontdesk.domain.reminders import (
    ReminderKind,
    ReminderPolicy,
    ReminderState,
    usable_channels,
)
from frontdesk.domain.templates import Purpose
from frontdesk.domain.times import now_utc
from frontdesk.services.claimed import (
    ClaimedAppointment,
    ClaimedPatient,
    ClaimedReminder,
    load_claimed,
    write_back,
)
from frontdesk.services.links import LinkBatch
from frontdesk.services.outcomes import (
    SentMessage,
    SentReminder,
    log_sent,
    open_missed_session_review,
    record_sent_postgres,
)
from frontdesk.services.outgoing import SenderLookup, status_callback_url
from frontdesk.services.rebooking import tracked_url
from frontdesk.services.reminders import patient_facts, policy_for
from frontdesk.services.send_time import (
    SendContext,
    later_moment,
    no_longer_wanted,
    still_missed,
)
from frontdesk.services.templates import Rendered, TemplateBook, context_for
from frontdesk.services.templates import render as render_template

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DispatchSettings:
    batch_size: int = 200
    lease: timedelta = timedelta(minutes=5)
    concurrency: int = 8
    # Messages sent but not yet recorded, at most (what a crash can re-send; see
    # _send_and_record).
    max_unrecorded: int = 64
    rate_per_second: float = 50.0
    max_attempts: int = 5
    backoff_base: timedelta = timedelta(seconds=30)
    backoff_max: timedelta = timedelta(hours=1)


@dataclass
class DispatchReport:
    claimed: int = 0
    sent: int = 0
    skipped: int = 0
    cancelled: int = 0
    deferred: int = 0
    retried: int = 0
    failed: int = 0
    lost_claims: int = 0

    def add(self, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)


@dataclass(frozen=True)
class _Send:
    """A re-checked reminder, ready to go out."""

    reminder_id: int
    message: OutboundMessage
    appointment_id: int


@dataclass(frozen=True)
class _Result:
    """What a channel said: a result, or a permanent or transient failure with its reason."""

    send: _Send
    result: SendResult | None
    permanent: str | None = None
    transient: str | None = None


@dataclass
class RateLimiter:
    """At most ``per_second`` sends a second per channel, shared by the worker's threads."""

    per_second: float
    clock: Callable[[], float] = time.monotonic
    _next: dict[Channel, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wait(self, channel: Channel) -> None:
        with self._lock:
            now = self.clock()
            slot = max(now, self._next.get(channel, now))
            self._next[channel] = slot + 1.0 / self.per_second
        if slot > now:
            time.sleep(slot - now)


class Dispatcher:
    def __init__(
        self,
        runtime: Runtime,
        senders: Mapping[Channel, ChannelSender] | SenderLookup,
        *,
        worker_id: str,
        settings: DispatchSettings | None = None,
        clock: Callable[[], datetime] = now_utc,
        rng: random.Random | None = None,
        metrics: DispatchMetrics | None = None,
    ) -> None:
        self.runtime = runtime
        self.senders = senders
        self.worker_id = worker_id
        self.settings = settings or DispatchSettings()
        self.clock = clock
        self.rng = rng or random.Random()
        self.limiter = RateLimiter(self.settings.rate_per_second)
        self.metrics = metrics
        # Each practice's templates, re-read every 30 s so an edit takes effect soon.
        self._books: dict[int, tuple[float, TemplateBook]] = {}

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        """A transaction whose statements PostgreSQL plans for the tables as they are now.

        PostgreSQL re-uses a generic plan for a statement it has run a few times (psycopg
        prepares repeated statements; foreign-key checks are such statements too) and keeps
        it until the table's statistics change. A plan made while ``conversations`` was nearly
        empty scans it, and keeps scanning it as it grows, on every message logged, when
        nothing refreshes the statistics (no autovacuum, no ANALYZE after a large import).
        ``DISCARD PLANS`` at the start of each transaction drops the backend's cached plans, so
        each is made again for the current table sizes (estimated from their pages, statistics
        or not) and then re-used within the transaction — a group's foreign-key checks are
        planned once per group, not once per message as with ``plan_cache_mode =
        force_custom_plan`` (which this replaced: it cost the server about a fifth of its CPU
        per reminder)."""
        with self.runtime.transaction() as session:
            if is_postgres(session):
                session.execute(text("DISCARD PLANS"))
            yield session

    # --- claiming --------------------------------------------------------------------------

    def claim(self) -> list[int]:
        """Take up to ``batch_size`` due reminders (and expired claims) for this worker."""
        return [reminder_id for reminder_id, _patient in self._claim()]

    def _claim(self) -> list[tuple[int, int]]:
        """``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED LIMIT n) RETURNING``, first
        for claims whose lease expired, then for due rows in due order (SQLite, with one
        writer, needs no row locks and ignores FOR UPDATE). Two statements rather than one with
        an OR: each then reads the (state, due_at) index in order, as the bare-SQL floor does,
        instead of sorting every candidate row."""
        now = self.clock()
        expired = (
            (Reminder.state == ReminderState.CLAIMED.value) & (Reminder.claim_expires_at < now),
        )
        due = ((Reminder.state == ReminderState.SCHEDULED.value) & (Reminder.due_at <= now),)
        claimed: list[tuple[int, int]] = []
        with self._transaction() as session:
            for condition in (expired, due):
                room = self.settings.batch_size - len(claimed)
                if room <= 0:
                    break
                rows = (
                    select(Reminder.id)
                    .where(*condition)
                    .order_by(Reminder.due_at)
                    .limit(room)
                    .with_for_update(skip_locked=True)
                )
                claimed += [
                    (row[0], row[1])
                    for row in session.connection().execute(
                        update(Reminder)
                        .where(Reminder.id.in_(rows.scalar_subquery()))
                        .values(
                            state=ReminderState.CLAIMED.value,
                            claimed_by=self.worker_id,
                            claim_expires_at=now + self.settings.lease,
                            attempts=Reminder.attempts + 1,
                        )
                        .returning(Reminder.id, Reminder.patient_id)
                    )
                ]
        return sorted(claimed)

    def dispatch_due(self) -> DispatchReport:
        """Claim one batch and process it: one transaction re-checks the whole batch, then sends
        run concurrently outside it, recorded a group at a time."""
        report = DispatchReport()
        ids = self.claim()
        report.claimed = len(ids)
        for outcome in self.process_batch(ids):
            report.add(outcome)
        return report

    def run(self, stop: threading.Event, poll_interval: float = 2.0) -> None:
        """Dispatch until ``stop`` is set; poll only when there was nothing to do."""
        while not stop.is_set():
            try:
                report = self.dispatch_due()
            except Exception:
                log.exception("dispatch round failed; retrying after the poll interval")
                report = DispatchReport()
            if report.claimed == 0:
                stop.wait(poll_interval)

    def process(self, reminder_id: int) -> str:
        """Re-check, send and record one claimed reminder; returns the outcome's name."""
        [outcome] = self.process_batch([reminder_id])
        return outcome

    def process_batch(self, ids: list[int]) -> list[str]:
        if not ids:
            return []
        sends, outcomes = self.prepare(ids)
        outcomes += self._send_and_record(sends)
        if self.metrics is not None:
            for outcome in outcomes:
                self.metrics.outcomes.labels(outcome).inc()
        return outcomes

    # --- re-checking -----------------------------------------------------------------------

    def prepare(self, ids: list[int]) -> tuple[list[_Send], list[str]]:
        """Re-check claimed reminders in one transaction. Returns the messages to send, and
        the outcomes of those settled here (cancelled, skipped, deferred, lost claims)."""
        now = self.clock()
        sends: list[_Send] = []
        outcomes: list[str] = []
        with self._transaction() as session:
            reminders = load_claimed(session, ids)
            outcomes += ["lost_claims"] * (len(ids) - len(reminders))
            practices = {
                practice.id: practice
                for practice in session.scalars(
                    select(Practice).where(Practice.id.in_({r.practice_id for r in reminders}))
                )
            }
            policies = {
                practice_id: policy_for(practice, self.runtime.settings.reminder_policy)
                for practice_id, practice in practices.items()
            }
            context = SendContext.load(session, reminders, now)
            batch = _Batch(LinkBatch(self.runtime.settings.public_url))
            for reminder in reminders:
                decision = self._decide(session, reminder, practices, policies, context, now, batch)
                if isinstance(decision, _Send):
                    sends.append(decision)
                    if reminder.kind == ReminderKind.STAGE:
                        # Counts toward the caps for the rest of this batch.
                        context.sent_to_patient.setdefault(reminder.patient_id, []).append(now)
                else:
                    outcomes.append(decision)
            write_back(session, reminders)
            batch.links.insert(session)
        return sends, outcomes

    def _decide(
        self,
        session: Session,
        reminder: ClaimedReminder,
        practices: dict[int, Practice],
        policies: dict[int, ReminderPolicy],
        context: SendContext,
        now: datetime,
        batch: _Batch,
    ) -> _Send | str:
        if reminder.state != ReminderState.CLAIMED or reminder.claimed_by != self.worker_id:
            return "lost_claims"  # another worker took it over after our lease expired
        appointment = reminder.appointment
        practice = practices[reminder.practice_id]
        policy = policies[reminder.practice_id]
        kind = ReminderKind(reminder.kind)
        if kind == ReminderKind.MISSED_FOLLOWUP and still_missed(appointment):
            open_missed_session_review(session, appointment)
        reason = no_longer_wanted(reminder, appointment, policy)
        if reason:
            return _finish(reminder, ReminderState.CANCELLED, reason)
        patient = appointment.patient
        facts = patient_facts(patient, practice)
        if not facts.reminders_enabled:
            return _finish(reminder, ReminderState.SKIPPED, "the patient has reminders off")
        failed = set((reminder.failed_channels or "").split(",")) - {""}
        channels = [c for c in usable_channels(facts, policy) if c.value not in failed]
        if not channels:
            return _finish(
                reminder, ReminderState.SKIPPED, "no usable channel (address or consent)"
            )
        channel = Channel(reminder.channel) if reminder.channel else channels[0]
        if channel not in channels:
            channel = channels[0]
        reminder.channel = channel.value  # (written back only when it changed)
        if kind == ReminderKind.STAGE and now >= appointment.start_at:
            # The worker was down, or the send waited: a reminder of a session that has begun
            # helps no one (the missed-session follow-up is its own kind).
            return _finish(reminder, ReminderState.SKIPPED, "the session had already started")
        wait = later_moment(reminder, channel, facts.timezone, policy, now, context)
        if wait is not None:
            later, why = wait
            if kind == ReminderKind.STAGE and later >= appointment.start_at:
                return _finish(reminder, ReminderState.SKIPPED, f"{why}, until after the session")
            reminder.state = ReminderState.SCHEDULED.value
            reminder.due_at = later
            reminder.reason = f"waiting: {why}"
            reminder.attempts -= 1  # waiting is not an attempt
            reminder.claimed_by = None
            return "deferred"
        to = batch.address(patient, channel, self.runtime.cipher)
        assert to is not None  # usable_channels checked the address
        stage = next((s for s in policy.stages if s.key == reminder.stage), None)
        rendered = self._render(
            session,
            kind,
            reminder.stage,
            stage.text if stage and kind == ReminderKind.STAGE else None,
            practice,
            appointment,
            channel,
            facts.timezone,
            now,
            batch,
        )
        message = OutboundMessage(
            practice_id=practice.id,
            patient_id=patient.id,
            channel=channel,
            to=to,
            body=rendered.body,
            idempotency_key=f"reminder-{reminder.id}",
            subject=rendered.subject if channel == Channel.EMAIL else None,
            html_body=rendered.html if channel == Channel.EMAIL else None,
            status_callback_url=status_callback_url(
                self.runtime.settings.public_url, practice.slug, channel
            ),
            # We write first, so on WhatsApp this is always an approved template.
            whatsapp_template=WhatsAppTemplate(
                name=rendered.whatsapp_template,
                language=language_of(patient.language),
                body_parameters=rendered.whatsapp_parameters,
                button_payloads=("C", "R", "N") if kind == ReminderKind.STAGE else (),
            )
            if channel == Channel.WHATSAPP and rendered.whatsapp_template
            else None,
        )
        return _Send(reminder.id, message, appointment.id)

    def _render(
        self,
        session: Session,
        kind: ReminderKind,
        stage_key: str,
        legacy_text: str | None,
        practice: Practice,
        appointment: ClaimedAppointment,
        channel: Channel,
        tz_name: str,
        now: datetime,
        batch: _Batch,
    ) -> Rendered:
        """The reminder's words: the practice's template for this purpose, stage, channel and
        language (or ours), in the patient's timezone; email carries one-click links."""
        patient = appointment.patient
        if legacy_text:
            # A stage text set in the reminder policy (``{practice}``, ``{when}``) still wins.
            return Rendered(
                body=render(
                    kind,
                    language=patient.language,
                    practice_name=practice.name,
                    start=appointment.start_at,
                    tz_name=tz_name,
                    booking_url=practice.booking_url,
                    custom_text=legacy_text,
                )
            )
        cached = self._books.get(practice.id)
        if cached is None or time.monotonic() - cached[0] > 30:
            cached = (time.monotonic(), TemplateBook.load(session, practice.id))
            self._books[practice.id] = cached
        book = cached[1]
        text = book.text_for(
            _PURPOSE[kind],
            channel.value,
            patient.language,
            stage=stage_key if kind == ReminderKind.STAGE else None,
        )
        asks_answer = kind in (ReminderKind.STAGE, ReminderKind.BOOKING_CONFIRMATION)
        links = (
            batch.links.issue_all(appointment, now=now)
            if channel == Channel.EMAIL and asks_answer
            else {}
        )
        booking_url = (
            appointment.clinician.booking_url if appointment.clinician else None
        ) or practice.booking_url
        if booking_url and not asks_answer:
            links["rebook_link"] = tracked_url(
                session,
                practice,
                patient,
                booking_url,
                purpose=kind.value,
                appointment_id=appointment.id,
                cipher=self.runtime.cipher,
                now=now,
            )
        values = context_for(
            practice=practice,
            channel=channel.value,
            language=patient.language,
            patient_name=patient.name,
            patient_preferred_name=patient.preferred_name,
            tz_name=tz_name,
            appointment=appointment,
            links=links,
        )
        return render_template(text, values)

    # --- sending ---------------------------------------------------------------------------

    def _send_and_record(self, sends: list[_Send]) -> list[str]:
        """Send ``concurrency`` at a time and record what has come back, in groups.

        At most ``max_unrecorded`` messages are ever out (sent or being sent) and not yet
        recorded: that bounds what a crash can re-send. Recording waits for ``concurrency``
        results (or for the last ones out), and takes everything that has come back by then, so
        groups stay small when the provider is slow — each result is recorded about as soon as
        it arrives — and grow up to ``max_unrecorded`` only when recording is what holds the
        worker back (a fast provider, a burst): fewer, larger transactions exactly then.
        """
        step = self.settings.concurrency
        limit = max(step, self.settings.max_unrecorded)
        outcomes: list[str] = []
        waiting = iter(sends)
        pool = ThreadPoolExecutor(max_workers=step)
        try:
            out: set[Future[_Result]] = set()
            while True:
                while len(out) < limit and (send := next(waiting, None)) is not None:
                    out.add(pool.submit(self._send, send))
                if not out:
                    break
                back: list[Future[_Result]] = []
                while out and len(back) < step:
                    done, out = wait(out, return_when=FIRST_COMPLETED)
                    back += done
                outcomes += self._record([future.result() for future in back])
        finally:
            # When recording fails, what has not started is not sent at all.
            pool.shutdown(wait=True, cancel_futures=True)
        return outcomes

    def _send(self, send: _Send) -> _Result:
        channel = send.message.channel
        senders = self.senders
        sender = (
            senders.get(channel)
            if isinstance(senders, Mapping)
            else senders(send.message.practice_id, channel)
        )
        started = time.perf_counter()
        try:
            if sender is None:
                raise PermanentError(f"no sender configured for {channel.value}")
            self.limiter.wait(channel)
            result = sender.send(send.message)
        except PermanentError as exc:
            self._count_retry(channel)
            log.warning(
                "permanent send failure",
                extra={"reminder_id": send.reminder_id, "channel": channel.value},
            )
            return _Result(send, None, permanent=str(exc))
        except TransientError as exc:
            self._count_retry(channel)
            return _Result(send, None, transient=str(exc))
        except Exception as exc:  # an adapter bug must not lose the reminder: retry it
            self._count_retry(channel)
            log.exception("send raised", extra={"reminder_id": send.reminder_id})
            return _Result(send, None, transient=f"unexpected {type(exc).__name__}")
        elapsed = time.perf_counter() - started
        if self.metrics is not None:
            self.metrics.send_seconds.labels(channel.value).observe(elapsed)
        log.info(
            "reminder sent",
            extra={
                "reminder_id": send.reminder_id,
                "channel": channel.value,
                "ms": round(elapsed * 1000),
            },
        )
        return _Result(send, result)

    def _count_retry(self, channel: Channel) -> None:
        if self.metrics is not None:
            self.metrics.retries.labels(channel.value).inc()

    # --- recording outcomes ----------------------------------------------------------------

    def _record(self, results: list[_Result]) -> list[str]:
        """Record every send's outcome in one transaction.

        Sent reminders are marked with one guarded ``UPDATE … RETURNING``: only rows not yet
        marked sent change, and only those get a message in the thread — a twin attempt (a
        lease that expired while we sent) that recorded it first wins, and the key made it
        one message. The rare failures go through the ORM, one row at a time.
        """
        if not results:
            return []
        now = self.clock()
        sent = [item for item in results if item.result is not None]
        failed = [item for item in results if item.result is None]
        outcomes = ["sent"] * len(sent)
        with self._transaction() as session:
            if sent:
                self._mark_sent(session, sent, now)
            if failed:
                rows = {
                    r.id: r
                    for r in session.scalars(
                        select(Reminder).where(
                            Reminder.id.in_([x.send.reminder_id for x in failed])
                        )
                    )
                }
                for item in failed:
                    reminder = rows[item.send.reminder_id]
                    if item.permanent is not None:
                        outcomes.append(self._permanent_failure(reminder, item))
                    else:
                        outcomes.append(
                            self._transient_failure(reminder, item.transient or "", now)
                        )
        return outcomes

    def _mark_sent(self, session: Session, sent: list[_Result], now: datetime) -> None:
        by_id = {item.send.reminder_id: item for item in sent}
        ids = sorted(by_id)
        states, provider_ids = [], []
        for reminder_id in ids:
            result = by_id[reminder_id].result
            assert result is not None
            delivered = result.status == "delivered"
            states.append((ReminderState.DELIVERED if delivered else ReminderState.SENT).value)
            provider_ids.append(result.provider_message_id)
        if is_postgres(session):
            record_sent_postgres(
                session,
                [
                    SentReminder(
                        reminder_id,
                        state,
                        SentMessage(item.send.message, item.send.appointment_id, item.result),
                    )
                    for reminder_id, state in zip(ids, states, strict=True)
                    if (item := by_id[reminder_id]).result is not None
                ],
                now,
            )
            return
        statement = _mark_sent_statement(len(ids))
        params: dict[str, Any] = {f"i{n}": reminder_id for n, reminder_id in enumerate(ids)}
        params.update({f"s{n}": state for n, state in enumerate(states)})
        params.update({f"p{n}": pid for n, pid in enumerate(provider_ids)})
        params["now"] = now
        changed = set(session.connection().scalars(statement, params))
        log_sent(
            session,
            [
                SentMessage(item.send.message, item.send.appointment_id, item.result)
                for reminder_id in ids
                if reminder_id in changed and (item := by_id[reminder_id]).result is not None
            ],
            now,
        )

    def _transient_failure(self, reminder: Reminder, reason: str, now: datetime) -> str:
        if reminder.state != ReminderState.CLAIMED.value:
            return "lost_claims"
        if reminder.attempts >= self.settings.max_attempts:
            _finish(reminder, ReminderState.FAILED, f"gave up after retries: {reason}")
            return "failed"
        reminder.state = ReminderState.SCHEDULED.value
        reminder.due_at = now + self._backoff(reminder.attempts)
        reminder.reason = f"retrying: {reason}"
        reminder.claimed_by = None
        return "retried"

    def _permanent_failure(self, reminder: Reminder, item: _Result) -> str:
        if reminder.state != ReminderState.CLAIMED.value:
            return "lost_claims"
        channel = item.send.message.channel.value
        failed = set((reminder.failed_channels or "").split(",")) - {""}
        failed.add(channel)
        reminder.failed_channels = ",".join(sorted(failed))
        # Straight back in line: the next attempt picks the patient's next usable channel,
        # or records that none is left.
        reminder.state = ReminderState.SCHEDULED.value
        reminder.channel = None
        reminder.reason = f"{channel} failed: {item.permanent}"
        reminder.claimed_by = None
        reminder.attempts -= 1
        return "retried"

    def _backoff(self, attempts: int) -> timedelta:
        """Exponential backoff with full jitter (so retries of a burst do not align)."""
        ceiling = min(
            self.settings.backoff_max, self.settings.backoff_base * (2 ** max(attempts - 1, 0))
        )
        return timedelta(seconds=self.rng.uniform(0.5, 1.0) * ceiling.total_seconds())


@dataclass
class _Batch:
    """What one batch's decisions share: the email links to insert with the batch, and each
    patient's addresses, decrypted once."""

    links: LinkBatch
    addresses: dict[tuple[int, Channel], str | None] = field(default_factory=dict)

    def address(self, patient: ClaimedPatient, channel: Channel, cipher: FieldCipher) -> str | None:
        key = (patient.id, channel)
        if key not in self.addresses:
            sealed = patient.email_sealed if channel == Channel.EMAIL else patient.phone_sealed
            self.addresses[key] = cipher.open(sealed)
        return self.addresses[key]


_PURPOSE = {
    ReminderKind.STAGE: Purpose.REMINDER,
    ReminderKind.BOOKING_CONFIRMATION: Purpose.BOOKING_CONFIRMATION,
    ReminderKind.MISSED_FOLLOWUP: Purpose.MISSED_FOLLOWUP,
    ReminderKind.CANCELLATION_FOLLOWUP: Purpose.CANCELLATION_FOLLOWUP,
}


@lru_cache(maxsize=128)
def _mark_sent_statement(size: int) -> Any:
    """SQLite: ``UPDATE reminders SET state = CASE WHEN id = :i0 THEN :s0 …, provider_message_id
    = … WHERE id IN (:i0, …) AND state NOT IN ('sent', 'delivered') RETURNING id`` for ``size``
    rows, built once per size (each group then costs SQLAlchemy a cache look-up, not a build)."""
    ids = [bindparam(f"i{n}", type_=Integer) for n in range(size)]
    return (
        update(Reminder)
        .where(
            Reminder.id.in_(ids),
            Reminder.state.notin_([ReminderState.SENT.value, ReminderState.DELIVERED.value]),
        )
        .values(
            state=case(
                *[(Reminder.id == ids[n], bindparam(f"s{n}", type_=String)) for n in range(size)]
            ),
            provider_message_id=case(
                *[(Reminder.id == ids[n], bindparam(f"p{n}", type_=String)) for n in range(size)]
            ),
            sent_at=bindparam("now", type_=UTCDateTime()),
            updated_at=bindparam("now", type_=UTCDateTime()),
            reason=None,
            claimed_by=None,
        )
        .returning(Reminder.id)
    )


def _finish(reminder: Reminder | ClaimedReminder, state: ReminderState, reason: str) -> str:
    reminder.state = state.value
    reminder.reason = reason
    reminder.claimed_by = None
    return {
        ReminderState.CANCELLED: "cancelled",
        ReminderState.SKIPPED: "skipped",
        ReminderState.FAILED: "failed",
    }.get(state, state.value)
