"""Custom actions as use cases: check and store a practice's specs, switch them on and off,
start one from the inbox, show a run step by step, and the worker's chore ``run_due`` that
performs webhooks after commit, times out waits, expires stale runs and starts event-triggered
actions (an unconfirmed appointment inside its window, a missed or cancelled session).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from typing import Any

import httpx
from sqlalchemy import exists, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from frontdesk.adapters.crypto import FieldCipher
from frontdesk.adapters.db.action_models import (
    ActionEffect,
    ActionRun,
    ActionSpecRecord,
    ActionStepLog,
)
from frontdesk.adapters.db.models import Appointment, Conversation, Patient, Practice, Reminder
from frontdesk.agent.actions.identity import Limits
from frontdesk.agent.actions.redaction import personal_fields, redact
from frontdesk.agent.actions.runner import ACTIVE, ActionRunner, start_for_patient
from frontdesk.agent.actions.spec import ActionSpec, parse_spec
from frontdesk.bootstrap import Runtime
from frontdesk.domain.appointments import AppointmentStatus, Confirmation
from frontdesk.domain.errors import FieldError, NotFound, ValidationFailed
from frontdesk.domain.times import now_utc
from frontdesk.services import audit, llm_usage
from frontdesk.services.outgoing import MessageSender
from frontdesk.services.reminders import Planning

log = logging.getLogger(__name__)

BUILTIN_PACKAGE = "frontdesk.agent.actions.builtin"
SIGNATURE_HEADER = "X-Frontdesk-Signature"
DEMO_RECEIVER_URL = "http://127.0.0.1:8765"
EVENT_TRIGGERS = ("reminder_unconfirmed", "appointment_missed", "appointment_cancelled")


# --- specs ---------------------------------------------------------------------------------------


def validate(text: str) -> ActionSpec:
    """The checked spec, or ValidationFailed with ``line L, column C: path`` locations."""
    return parse_spec(text)


def save(
    session: Session, practice: Practice, text: str, *, actor: str, enabled: bool | None = None
) -> ActionSpecRecord:
    spec = parse_spec(text)
    record = session.scalar(
        select(ActionSpecRecord).where(
            ActionSpecRecord.practice_id == practice.id, ActionSpecRecord.name == spec.name
        )
    )
    if record is None:
        record = ActionSpecRecord(
            practice_id=practice.id, name=spec.name, enabled=bool(enabled), version=0
        )
        session.add(record)
    elif enabled is not None:
        record.enabled = enabled
    record.description = spec.description
    record.trigger_event = spec.trigger.event
    record.source = text
    record.spec = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    record.version = (record.version or 0) + 1
    session.flush()
    audit.record(
        session,
        practice_id=practice.id,
        actor=actor,
        action="action.saved",
        entity_type="action_spec",
        entity_id=record.id,
        details={"name": record.name, "version": record.version},
    )
    return record


def set_enabled(
    session: Session, practice: Practice, name: str, enabled: bool, *, actor: str
) -> ActionSpecRecord:
    record = _record(session, practice, name)
    record.enabled = enabled
    audit.record(
        session,
        practice_id=practice.id,
        actor=actor,
        action="action.enabled" if enabled else "action.disabled",
        entity_type="action_spec",
        entity_id=record.id,
        details={"name": name},
    )
    return record


def _record(session: Session, practice: Practice, name: str) -> ActionSpecRecord:
    record = session.scalar(
        select(ActionSpecRecord).where(
            ActionSpecRecord.practice_id == practice.id, ActionSpecRecord.name == name
        )
    )
    if record is None:
        raise NotFound(f"no action named {name!r}")
    return record


def list_actions(session: Session, practice: Practice) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(ActionSpecRecord)
        .where(ActionSpecRecord.practice_id == practice.id)
        .order_by(ActionSpecRecord.name)
    )
    return [view(r) for r in rows]


def view(record: ActionSpecRecord) -> dict[str, Any]:
    return {
        "name": record.name,
        "description": record.description,
        "trigger": record.trigger_event,
        "enabled": record.enabled,
        "version": record.version,
        "steps": len(record.spec.get("steps", [])),
        "fields": [f["name"] for f in record.spec.get("fields", [])],
    }


def builtin_sources() -> dict[str, str]:
    """The example actions shipped in the package, by file name."""
    folder = resources.files(BUILTIN_PACKAGE)
    return {
        item.name: item.read_text(encoding="utf-8")
        for item in sorted(folder.iterdir(), key=lambda i: i.name)
        if item.name.endswith(".yaml")
    }


def install_builtins(
    session: Session, practice: Practice, *, enabled: bool, actor: str
) -> list[ActionSpecRecord]:
    return [
        save(session, practice, text, actor=actor, enabled=enabled)
        for text in builtin_sources().values()
    ]


def set_webhook_secret(practice: Practice, sealed: str | None) -> None:
    """The HMAC key for this practice's action webhooks, sealed (``runtime.cipher.seal``)."""
    settings = dict(practice.settings or {})
    settings["action_webhook_secret"] = sealed
    practice.settings = settings


_DEMO_OFF = frozenset({"missed_session_followup"})


def seed_demo_actions(session: Session, cipher: FieldCipher, practice: Practice) -> None:
    """The demo practice gets the built-in actions, switched on, and a webhook signing secret.
    A re-seed keeps what the practice changed since."""
    have = set(
        session.scalars(
            select(ActionSpecRecord.name).where(ActionSpecRecord.practice_id == practice.id)
        )
    )
    for text in builtin_sources().values():
        name = parse_spec(text).name
        if name not in have:
            # The reminder policy already sends the demo's missed-session follow-up and opens
            # its review item: the action version ships switched off, or patients would get
            # two messages for one missed session.
            enabled = name not in _DEMO_OFF
            save(session, practice, text, actor="demo-seed", enabled=enabled)
    if not (practice.settings or {}).get("action_webhook_secret"):
        set_webhook_secret(practice, cipher.seal(secrets.token_urlsafe(32)))
    if not (practice.settings or {}).get("action_webhook_url"):
        # Where `frontdesk actions receiver` listens by default.
        practice.settings = {**practice.settings, "action_webhook_url": DEMO_RECEIVER_URL}


def configure_webhook(
    practice: Practice, cipher: FieldCipher, *, url: str | None, new_secret: bool
) -> str | None:
    """Set where action webhooks go and/or a new signing secret; returns the new secret (shown
    once) when one was made."""
    settings = dict(practice.settings or {})
    if url is not None:
        if not url.startswith(("http://", "https://")):
            raise ValidationFailed([FieldError("url", "must start with http:// or https://")])
        settings["action_webhook_url"] = url.rstrip("/")
    practice.settings = settings
    if not new_secret:
        return None
    secret = secrets.token_urlsafe(32)
    set_webhook_secret(practice, cipher.seal(secret))
    return secret


def sign(secret: str, body: str, timestamp: int) -> str:
    """The ``X-Frontdesk-Signature`` value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(
    secret: str,
    header: str,
    body: str,
    *,
    now: datetime,
    tolerance: timedelta = timedelta(minutes=5),
) -> bool:
    """What a receiver checks: the HMAC of the raw body, in constant time, and a fresh stamp."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        stamp = int(parts.get("t", ""))
    except ValueError:
        return False
    if abs(now.timestamp() - stamp) > tolerance.total_seconds():
        return False
    return hmac.compare_digest(sign(secret, body, stamp), f"t={stamp},v1={parts.get('v1', '')}")


# --- runs ----------------------------------------------------------------------------------------


def runner_for(runtime: Runtime, now: datetime) -> ActionRunner:
    settings = runtime.settings
    return ActionRunner(
        cipher=runtime.cipher,
        planning=Planning(settings.reminder_policy, now),
        public_url=settings.public_url,
        run_ttl=timedelta(minutes=settings.action_run_ttl_minutes),
        identity_limits=Limits(
            per_conversation=settings.action_identity_max_failures,
            per_identifier=settings.action_identity_max_failures + 2,
        ),
        model=llm_usage.language_model(settings),
        llm_budget=settings.llm_monthly_token_budget,
    )


def start_manual(
    session: Session,
    runner: ActionRunner,
    practice: Practice,
    name: str,
    *,
    conversation_id: int | None = None,
    patient_id: int | None = None,
    appointment_id: int | None = None,
    actor: str,
) -> ActionRun:
    """Staff start an action from the inbox, in a conversation or for a patient."""
    _record(session, practice, name)
    context = {
        "appointment_id": appointment_id,
        "started_by": actor,
        "trigger_key": f"manual:{uuid.uuid4().hex}",
        "even_if_disabled": True,
    }
    if appointment_id is not None:
        appointment = session.get(Appointment, appointment_id)
        if appointment is None or appointment.practice_id != practice.id:
            raise ValidationFailed([FieldError("appointment_id", "no such appointment")])
        patient_id = patient_id or appointment.patient_id
    run: ActionRun | None
    if conversation_id is not None:
        conversation = session.get(Conversation, conversation_id)
        if conversation is None or conversation.practice_id != practice.id:
            raise ValidationFailed([FieldError("conversation_id", "no such conversation")])
        run = runner.start(session, name, conversation, context)
    elif patient_id is not None:
        patient = session.get(Patient, patient_id)
        if patient is None or patient.practice_id != practice.id:
            raise ValidationFailed([FieldError("patient_id", "no such patient")])
        run = start_for_patient(runner, session, practice, patient, name, context)
    else:
        raise ValidationFailed(
            [FieldError("conversation_id", "give a conversation_id, patient_id or appointment_id")]
        )
    if run is None:
        raise ValidationFailed(
            [
                FieldError(
                    "conversation_id" if conversation_id is not None else "patient_id",
                    "the action could not start: the patient has no channel to reach, or staff "
                    "have the conversation (hand it back to the agent first)",
                )
            ]
        )
    return run


def run_view(session: Session, practice: Practice, run_id: int) -> dict[str, Any]:
    run = session.get(ActionRun, run_id)
    if run is None or run.practice_id != practice.id:
        raise NotFound(f"no action run {run_id}")
    steps = session.scalars(
        select(ActionStepLog).where(ActionStepLog.run_id == run.id).order_by(ActionStepLog.id)
    )
    return {
        **_run_row(run),
        "steps": [
            {
                "at": s.started_at.isoformat(),
                "pc": s.pc,
                "kind": s.kind,
                "outcome": s.outcome,
                "attempt": s.attempt,
                "duration_ms": s.duration_ms,
                "detail": s.detail,
            }
            for s in steps
        ],
    }


def list_runs(session: Session, practice: Practice, limit: int = 50) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(ActionRun)
        .where(ActionRun.practice_id == practice.id)
        .order_by(ActionRun.id.desc())
        .limit(limit)
    )
    return [_run_row(r) for r in rows]


def _run_row(run: ActionRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "action": run.action_name,
        "state": run.state,
        "outcome": run.outcome,
        "conversation_id": run.conversation_id,
        "patient_id": run.patient_id,
        "appointment_id": run.appointment_id,
        "verified": run.verified,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }


# --- the worker's chore ----------------------------------------------------------------------


@dataclass
class ActionWorker:
    """Performs what runs recorded. Safe in any number of processes: effects are claimed under
    a lease (SKIP LOCKED on PostgreSQL), and each run is advanced in its own transaction."""

    runtime: Runtime
    sender: MessageSender | None = None
    http: httpx.Client | None = None
    clock: Callable[[], datetime] = now_utc
    lease: timedelta = timedelta(minutes=2)
    backoff_base: timedelta = timedelta(seconds=5)
    backoff_max: timedelta = timedelta(minutes=10)
    rng: random.Random | None = None
    worker_id: str = ""

    def __post_init__(self) -> None:
        self.worker_id = self.worker_id or f"actions-{uuid.uuid4().hex[:8]}"
        self.rng = self.rng or random.Random()

    def run_due(self) -> int:
        done = self.start_triggered() + self.time_out_waits() + self.expire()
        done += self.perform_effects()
        return done

    # Events

    def start_triggered(self) -> int:
        now = self.clock()
        started = 0
        with self.runtime.transaction() as session:
            runner = runner_for(self.runtime, now)
            records = list(
                session.scalars(
                    select(ActionSpecRecord).where(
                        ActionSpecRecord.enabled.is_(True),
                        ActionSpecRecord.trigger_event.in_(EVENT_TRIGGERS),
                    )
                )
            )
            for record in records:
                practice = session.get(Practice, record.practice_id)
                assert practice is not None
                window = timedelta(hours=float(record.spec["trigger"].get("window_hours") or 24))
                for appointment in self._due_appointments(session, record, window, now):
                    patient = session.get(Patient, appointment.patient_id)
                    if patient is None:
                        continue
                    before = len(runner.queued)
                    try:
                        # A savepoint each: another worker starting the same run (the unique
                        # trigger key) costs this one start, not the whole round.
                        with session.begin_nested():
                            run = start_for_patient(
                                runner,
                                session,
                                practice,
                                patient,
                                record.name,
                                {
                                    "appointment_id": appointment.id,
                                    "trigger_key": f"{record.trigger_event}:{appointment.id}",
                                    "started_by": f"event:{record.trigger_event}",
                                },
                            )
                            session.flush()
                    except IntegrityError:
                        del runner.queued[before:]
                        continue
                    started += run is not None
            session.flush()
            ids = [m.id for m in runner.queued]
        self._send(ids)
        return started

    def _due_appointments(
        self, session: Session, record: ActionSpecRecord, window: timedelta, now: datetime
    ) -> list[Appointment]:
        already = exists().where(
            ActionRun.practice_id == record.practice_id,
            ActionRun.action_name == record.name,
            ActionRun.appointment_id == Appointment.id,
        )
        query = select(Appointment).where(Appointment.practice_id == record.practice_id, ~already)
        event = record.trigger_event
        if event == "reminder_unconfirmed":
            reminded = exists().where(
                Reminder.appointment_id == Appointment.id, Reminder.sent_at.is_not(None)
            )
            query = query.where(
                Appointment.status.in_(
                    (AppointmentStatus.BOOKED.value, AppointmentStatus.PENDING.value)
                ),
                Appointment.confirmation == Confirmation.UNCONFIRMED.value,
                Appointment.start_at > now,
                Appointment.start_at <= now + window,
                reminded,
            )
        elif event == "appointment_missed":
            query = query.where(
                Appointment.status == AppointmentStatus.NOSHOW.value,
                Appointment.start_at >= now - window,
                Appointment.start_at <= now,
            )
        else:
            query = query.where(
                Appointment.status == AppointmentStatus.CANCELLED.value,
                Appointment.status_changed_at >= now - window,
            )
        return list(session.scalars(query.order_by(Appointment.start_at).limit(200)))

    # Waits and expiry

    def time_out_waits(self) -> int:
        now = self.clock()
        with self.runtime.transaction() as session:
            ids = list(
                session.scalars(
                    select(ActionRun.id).where(
                        ActionRun.state == "waiting_reply", ActionRun.wait_until <= now
                    )
                )
            )
        for run_id in ids:
            self._advance_run(run_id, lambda runner, s, run: runner.wait_timed_out(s, run))
        return len(ids)

    def expire(self) -> int:
        now = self.clock()
        with self.runtime.transaction() as session:
            runs = list(
                session.scalars(
                    select(ActionRun).where(
                        ActionRun.state.in_(("collecting", "running")),
                        ActionRun.expires_at <= now,
                    )
                )
            )
            runner = runner_for(self.runtime, now)
            for run in runs:
                runner._finish(session, run, "expired", "expired")
        return len(runs)

    # Webhooks

    def claim(self, limit: int = 20) -> list[int]:
        now = self.clock()
        with self.runtime.transaction() as session:
            ids = list(
                session.scalars(
                    select(ActionEffect.id)
                    .where(
                        or_(
                            (ActionEffect.status == "pending")
                            & (ActionEffect.next_attempt_at <= now),
                            (ActionEffect.status == "sending")
                            & (ActionEffect.claim_expires_at < now),
                        )
                    )
                    .order_by(ActionEffect.next_attempt_at)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            )
            if ids:
                session.execute(
                    update(ActionEffect)
                    .where(ActionEffect.id.in_(ids))
                    .values(
                        status="sending",
                        claimed_by=self.worker_id,
                        claim_expires_at=now + self.lease,
                        attempts=ActionEffect.attempts + 1,
                    )
                    .execution_options(synchronize_session=False)
                )
        return ids

    def perform_effects(self, limit: int = 20) -> int:
        ids = self.claim(limit)
        for effect_id in ids:
            self._perform(effect_id)
        return len(ids)

    def _perform(self, effect_id: int) -> None:
        with self.runtime.transaction() as session:
            effect = session.get(ActionEffect, effect_id)
            if effect is None or effect.claimed_by != self.worker_id:
                return
            practice = session.get(Practice, effect.practice_id)
            run = session.get(ActionRun, effect.run_id)
            assert practice is not None and run is not None
            sealed = (practice.settings or {}).get("action_webhook_secret")
            secret = self.runtime.cipher.open(sealed) if sealed else None
            body = self.runtime.cipher.open(effect.body_sealed) or "{}"
            url, timeout, attempt = effect.url, effect.timeout_seconds, effect.attempts
            key, max_attempts = effect.idempotency_key, effect.max_attempts
            personal = personal_fields(run.spec.get("fields", []))
        if secret is None:
            self._record(
                effect_id,
                attempt,
                None,
                "no webhook signing secret is set",
                False,
                0,
                request={"url": url},
                personal=personal,
                max_attempts=max_attempts,
            )
            return
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": key,
            SIGNATURE_HEADER: sign(secret, body, int(self.clock().timestamp())),
            "User-Agent": "frontdesk-actions",
        }
        request = {"method": "POST", "url": url, "headers": headers, "body": json.loads(body)}
        started = time.monotonic()
        status: int | None = None
        response: Any = None
        error: str | None = None
        transient = False
        try:
            client = self.http or httpx.Client()
            try:
                reply = client.post(url, content=body.encode(), headers=headers, timeout=timeout)
            finally:
                if self.http is None:
                    client.close()
            status = reply.status_code
            try:
                response = reply.json()
            except ValueError:
                response = reply.text[:2000]
            if status >= 500 or status == 429:
                error, transient = f"HTTP {status}", True
            elif status >= 400:
                error = f"HTTP {status}"
        except httpx.TimeoutException:
            error, transient = "timed out", True
        except httpx.HTTPError as exc:
            error, transient = f"connection failed: {type(exc).__name__}", True
        elapsed = int((time.monotonic() - started) * 1000)
        self._record(
            effect_id,
            attempt,
            status,
            error,
            transient,
            elapsed,
            request=request,
            response=response,
            personal=personal,
            max_attempts=max_attempts,
        )

    def _record(
        self,
        effect_id: int,
        attempt: int,
        status: int | None,
        error: str | None,
        transient: bool,
        elapsed_ms: int,
        *,
        request: dict[str, Any],
        personal: frozenset[str],
        max_attempts: int,
        response: Any = None,
    ) -> None:
        now = self.clock()
        ids: list[int] = []
        with self.runtime.transaction() as session:
            effect = session.get(ActionEffect, effect_id)
            if effect is None:
                return
            run = session.get(ActionRun, effect.run_id)
            assert run is not None
            will_retry = transient and attempt < max_attempts
            outcome = "ok" if error is None else ("retrying" if will_retry else "failed")
            session.add(
                ActionStepLog(
                    practice_id=effect.practice_id,
                    run_id=effect.run_id,
                    pc=effect.pc,
                    kind="webhook_call",
                    attempt=attempt,
                    outcome=outcome,
                    detail=redact(
                        {
                            "request": request,
                            "response": {"status": status, "body": response},
                            "error": error,
                        },
                        extra_keys=personal,
                    ),
                    started_at=now,
                    duration_ms=elapsed_ms,
                )
            )
            effect.claimed_by = None
            effect.claim_expires_at = None
            effect.error = error[:300] if error else None
            if will_retry:
                assert self.rng is not None
                delay = min(self.backoff_base * 2 ** (attempt - 1), self.backoff_max)
                effect.status = "pending"
                effect.next_attempt_at = now + delay * (0.5 + self.rng.random())
                return
            effect.status = "done" if error is None else "failed"
            effect.finished_at = now
            runner = runner_for(self.runtime, now)
            runner.effect_finished(session, run, ok=error is None, response=response, error=error)
            session.flush()
            ids = [m.id for m in runner.queued]
        self._send(ids)

    # Shared

    def _advance_run(
        self, run_id: int, step: Callable[[ActionRunner, Session, ActionRun], None]
    ) -> None:
        now = self.clock()
        with self.runtime.transaction() as session:
            run = session.get(ActionRun, run_id)
            if run is None or run.state not in ACTIVE:
                return
            runner = runner_for(self.runtime, now)
            step(runner, session, run)
            session.flush()
            ids = [m.id for m in runner.queued]
        self._send(ids)

    def _send(self, ids: list[int]) -> None:
        if self.sender is not None and ids:
            self.sender.send_now(ids)


def run_due(runtime: Runtime, sender: MessageSender | None = None, **options: Any) -> int:
    """The worker's round for actions (add to ``Chores.extra``)."""
    return ActionWorker(runtime, sender, **options).run_due()
