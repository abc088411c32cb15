"""The dispatcher: claim due reminders, re-check them, send outside any transaction, record.

Exactly once, in the terms we can keep:
- A reminder row exists once per (appointment, stage, start time) — a unique key.
- Claiming is a short transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so any number of
  workers share the table; SQLite has one writer). A claim is a lease: a worker that dies after
  claiming loses nothing, because the lease expires and another worker takes the row.
- The residual window is between a provider accepting a message and our recording it: a worker
  killed there leaves a claimed, unrecorded row that is sent again after the lease expires.
  Every attempt carries the same idempotency key (``reminder-<id>``); the outbox and providers
  that honour keys deliver it once, so the patient gets one message. For a provider without
  keys the window is the few milliseconds between its answer and our commit.
- Every send is re-checked at send time: appointment status and time, the patient's answer,
  consent and channel, quiet hours, and the per-patient caps.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update

from frontdesk.adapters.channels.base import ChannelSender, OutboundMessage, SendResult
from frontdesk.adapters.db.models import (
    Practice,
    Reminder,
)
from frontdesk.adapters.metrics import DispatchMetrics
from frontdesk.bootstrap import Runtime
from frontdesk.domain.channels import Channel
from frontdesk.domain.errors import PermanentError, TransientError
from frontdesk.domain.messages import render
from frontdesk.domain.reminders import (
    ReminderKind,
    ReminderState,
    usable_channels,
)
from frontdesk.domain.times import now_utc
from frontdesk.services.outcomes import log_outbound, open_missed_session_review
from frontdesk.services.patients import contact_of
from frontdesk.services.reminders import patient_facts, policy_for
from frontdesk.services.send_time import later_moment, no_longer_wanted, still_missed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DispatchSettings:
    batch_size: int = 200
    lease: timedelta = timedelta(minutes=5)
    concurrency: int = 8
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
        senders: Mapping[Channel, ChannelSender],
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

    # --- claiming --------------------------------------------------------------------------

    def claim(self) -> list[int]:
        """Take up to ``batch_size`` due reminders (and expired claims) for this worker."""
        return [reminder_id for reminder_id, _patient in self._claim()]

    def _claim(self) -> list[tuple[int, int]]:
        now = self.clock()
        with self.runtime.transaction() as session:
            claimed: list[tuple[int, int]] = [
                (row[0], row[1])
                for row in session.execute(
                    select(Reminder.id, Reminder.patient_id)
                    .where(
                        or_(
                            (Reminder.state == ReminderState.SCHEDULED.value)
                            & (Reminder.due_at <= now),
                            (Reminder.state == ReminderState.CLAIMED.value)
                            & (Reminder.claim_expires_at < now),
                        )
                    )
                    .order_by(Reminder.due_at)
                    .limit(self.settings.batch_size)
                    .with_for_update(skip_locked=True)
                )
            ]
            ids = [reminder_id for reminder_id, _patient in claimed]
            if ids:
                session.execute(
                    update(Reminder)
                    .where(Reminder.id.in_(ids))
                    .values(
                        state=ReminderState.CLAIMED.value,
                        claimed_by=self.worker_id,
                        claim_expires_at=now + self.settings.lease,
                        attempts=Reminder.attempts + 1,
                    )
                    .execution_options(synchronize_session=False)
                )
        return claimed

    def dispatch_due(self) -> DispatchReport:
        """Claim one batch and process it: patients concurrently, each patient's reminders one
        after another, so the per-patient caps see the previous send. (Two workers holding
        reminders of the same patient at the same moment can still both pass the caps; the
        dispatcher then sends one message more than the cap, never a duplicate.)"""
        report = DispatchReport()
        claimed = self._claim()
        report.claimed = len(claimed)
        if not claimed:
            return report
        by_patient: dict[int, list[int]] = {}
        for reminder_id, patient_id in claimed:
            by_patient.setdefault(patient_id, []).append(reminder_id)
        with ThreadPoolExecutor(max_workers=self.settings.concurrency) as pool:
            for outcomes in pool.map(self._process_in_turn, by_patient.values()):
                for outcome in outcomes:
                    report.add(outcome)
        return report

    def _process_in_turn(self, reminder_ids: list[int]) -> list[str]:
        return [self.process(reminder_id) for reminder_id in reminder_ids]

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

    # --- one reminder ----------------------------------------------------------------------

    def process(self, reminder_id: int) -> str:
        """Re-check, send and record one claimed reminder; returns the outcome's name."""
        outcome = self._process(reminder_id)
        if self.metrics is not None:
            self.metrics.outcomes.labels(outcome).inc()
        return outcome

    def _process(self, reminder_id: int) -> str:
        decision = self._prepare(reminder_id)
        if isinstance(decision, str):
            return decision
        channel = decision.message.channel
        sender = self.senders.get(channel)
        started = time.perf_counter()
        try:
            if sender is None:
                raise PermanentError(f"no sender configured for {channel.value}")
            self.limiter.wait(channel)
            result = sender.send(decision.message)
        except PermanentError as exc:
            self._count_retry(channel)
            log.warning(
                "permanent send failure",
                extra={"reminder_id": reminder_id, "channel": channel.value},
            )
            return self._permanent_failure(decision, str(exc))
        except TransientError as exc:
            self._count_retry(channel)
            return self._transient_failure(decision, str(exc))
        except Exception as exc:  # an adapter bug must not lose the reminder: retry it
            self._count_retry(channel)
            log.exception("send raised", extra={"reminder_id": reminder_id})
            return self._transient_failure(decision, f"unexpected {type(exc).__name__}")
        elapsed = time.perf_counter() - started
        if self.metrics is not None:
            self.metrics.send_seconds.labels(channel.value).observe(elapsed)
        log.info(
            "reminder sent",
            extra={
                "reminder_id": reminder_id,
                "channel": channel.value,
                "ms": round(elapsed * 1000),
            },
        )
        return self._record_sent(decision, result)

    def _count_retry(self, channel: Channel) -> None:
        if self.metrics is not None:
            self.metrics.retries.labels(channel.value).inc()

    def _prepare(self, reminder_id: int) -> _Send | str:
        now = self.clock()
        with self.runtime.transaction() as session:
            reminder = session.get(Reminder, reminder_id)
            if (
                reminder is None
                or reminder.state != ReminderState.CLAIMED.value
                or reminder.claimed_by != self.worker_id
            ):
                return "lost_claims"  # another worker took it over after our lease expired
            appointment = reminder.appointment
            practice = session.get(Practice, reminder.practice_id)
            assert practice is not None
            policy = policy_for(practice, self.runtime.settings.reminder_policy)
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
            reminder.channel = channel.value
            wait = later_moment(session, reminder, channel, facts.timezone, policy, now)
            if wait is not None:
                later, why = wait
                if kind == ReminderKind.STAGE and later >= appointment.start_at:
                    return _finish(
                        reminder, ReminderState.SKIPPED, f"{why}, until after the session"
                    )
                reminder.state = ReminderState.SCHEDULED.value
                reminder.due_at = later
                reminder.reason = f"waiting: {why}"
                reminder.attempts -= 1  # waiting is not an attempt
                reminder.claimed_by = None
                return "deferred"
            contact = contact_of(patient, self.runtime.cipher)
            to = contact.email if channel == Channel.EMAIL else contact.phone
            assert to is not None  # usable_channels checked the address
            stage = next((s for s in policy.stages if s.key == reminder.stage), None)
            body = render(
                kind,
                language=patient.language,
                practice_name=practice.name,
                start=appointment.start_at,
                tz_name=facts.timezone,
                booking_url=practice.booking_url,
                custom_text=stage.text if stage and kind == ReminderKind.STAGE else None,
            )
            message = OutboundMessage(
                practice_id=practice.id,
                patient_id=patient.id,
                channel=channel,
                to=to,
                body=body,
                idempotency_key=f"reminder-{reminder.id}",
                subject=f"{practice.name}: your appointment" if channel == Channel.EMAIL else None,
            )
            return _Send(reminder.id, message, appointment.id)

    # --- recording outcomes ----------------------------------------------------------------

    def _record_sent(self, send: _Send, result: SendResult) -> str:
        now = self.clock()
        with self.runtime.transaction() as session:
            reminder = session.get(Reminder, send.reminder_id)
            assert reminder is not None
            if reminder.state in (ReminderState.SENT.value, ReminderState.DELIVERED.value):
                return "sent"  # a twin attempt recorded it first; the key made it one message
            reminder.state = (
                ReminderState.DELIVERED.value
                if result.status == "delivered"
                else ReminderState.SENT.value
            )
            reminder.sent_at = now
            reminder.provider_message_id = result.provider_message_id
            reminder.reason = None
            reminder.claimed_by = None
            log_outbound(session, send.message, send.appointment_id, result, now)
        return "sent"

    def _transient_failure(self, send: _Send, reason: str) -> str:
        now = self.clock()
        with self.runtime.transaction() as session:
            reminder = session.get(Reminder, send.reminder_id)
            assert reminder is not None
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

    def _permanent_failure(self, send: _Send, reason: str) -> str:
        with self.runtime.transaction() as session:
            reminder = session.get(Reminder, send.reminder_id)
            assert reminder is not None
            if reminder.state != ReminderState.CLAIMED.value:
                return "lost_claims"
            failed = set((reminder.failed_channels or "").split(",")) - {""}
            failed.add(send.message.channel.value)
            reminder.failed_channels = ",".join(sorted(failed))
            # Straight back in line: the next attempt picks the patient's next usable channel,
            # or records that none is left.
            reminder.state = ReminderState.SCHEDULED.value
            reminder.channel = None
            reminder.reason = f"{send.message.channel.value} failed: {reason}"
            reminder.claimed_by = None
            reminder.attempts -= 1
        return "retried"

    def _backoff(self, attempts: int) -> timedelta:
        """Exponential backoff with full jitter (so retries of a burst do not align)."""
        ceiling = min(
            self.settings.backoff_max, self.settings.backoff_base * (2 ** max(attempts - 1, 0))
        )
        return timedelta(seconds=self.rng.uniform(0.5, 1.0) * ceiling.total_seconds())


def _finish(reminder: Reminder, state: ReminderState, reason: str) -> str:
    reminder.state = state.value
    reminder.reason = reason
    reminder.claimed_by = None
    return {
        ReminderState.CANCELLED: "cancelled",
        ReminderState.SKIPPED: "skipped",
        ReminderState.FAILED: "failed",
    }.get(state, state.value)
