"""Running actions in conversations: slot filling, identity, steps, waits — all state in the
database, every side effect recorded in the caller's transaction and performed after commit.

The caller's contract (``services/replies.py`` wires it):

1. **Safety first, always.** The caller screens a message for crisis and clinical concern
   BEFORE calling ``on_message`` and hands off itself; it then calls ``interrupt`` so the run
   stops. ``on_message`` also refuses those intents (returns False and interrupts) as a second
   guard, so a caller that forgot cannot make an action swallow a crisis.
2. ``on_message(...) -> True``: the runner answered (prompts and messages are queued in
   ``runner.queued``; send their ids after commit). ``False``: the caller handles the message as
   if no action were running — a question (answer it, then call ``resume`` to re-ask the
   pending field), opt-out (the run is cancelled), help, or no active run.
3. Webhooks are rows in ``action_effects``; ``services.actions.run_due`` performs them, then
   continues the run.

A spec's steps are compiled to a flat program (``compile_steps``): ``if`` and ``wait_for_reply``
become jumps, so the run's position is one integer that survives restarts.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from frontdesk.adapters.crypto import FieldCipher
from frontdesk.adapters.db.action_models import (
    ActionEffect,
    ActionRun,
    ActionSpecRecord,
    ActionStepLog,
)
from frontdesk.adapters.db.models import (
    Appointment,
    Conversation,
    Message,
    Patient,
    Practice,
    ReviewItem,
)
from frontdesk.adapters.llm import FieldExtractor
from frontdesk.agent.actions import fields as field_reading
from frontdesk.agent.actions import identity
from frontdesk.agent.actions.redaction import personal_fields, redact
from frontdesk.agent.actions.spec import (
    ActionSpec,
    IfStep,
    WaitStep,
)
from frontdesk.domain.channels import Channel, ConsentStatus
from frontdesk.domain.contact import region_of_locale
from frontdesk.domain.messages import language_of
from frontdesk.domain.reply_keywords import keyword
from frontdesk.domain.templates import Purpose
from frontdesk.services import consent, handoff, outgoing
from frontdesk.services.appointment_answers import ANSWERABLE, ANSWERS, apply_answer
from frontdesk.services.patients import contact_of, effective_channel
from frontdesk.services.reminders import Planning
from frontdesk.services.replies import thread_for
from frontdesk.services.templates import TemplateBook, context_for, render

ACTIVE = ("collecting", "running", "waiting_effect", "waiting_reply")
SAFETY_INTENTS = frozenset({"crisis", "clinical_concern"})
MAX_STEPS_PER_RUN = 500

_ENV = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
_ENV.globals.clear()

_VERIFY_FAILED = {
    "en": "Sorry, I couldn't verify those details. Let's try again.",
    "es": "Lo siento, no pude verificar esos datos. Intentémoslo de nuevo.",
}
_LOCKED = {
    "en": "I couldn't verify those details, so a member of our team will follow up with you.",
    "es": "No pude verificar esos datos; una persona de nuestro equipo se comunicará con usted.",
}
_TOO_MANY = {
    "en": "Thanks for your patience. A member of our team will follow up with you.",
    "es": "Gracias por su paciencia. Una persona de nuestro equipo se comunicará con usted.",
}
_UNREACHABLE = {
    "en": "We can't reach you that way yet. Please choose another: email, text (SMS) or WhatsApp.",
    "es": "Aún no podemos contactarle por ese medio. Elija otro: correo, texto (SMS) o WhatsApp.",
}
_UPDATED = {"en": "Got it, I've updated that.", "es": "Entendido, lo he actualizado."}


# --- the program -------------------------------------------------------------------------------


def compile_steps(steps: list[Any]) -> list[dict[str, Any]]:
    """Flat instructions: ``step`` (do it), ``wait`` (then a jump past its timeout body),
    ``branch`` (to ``else`` when false), ``jump``."""
    program: list[dict[str, Any]] = []

    def emit(items: list[Any]) -> None:
        for step in items:
            if isinstance(step, IfStep):
                branch = {"op": "branch", "when": step.when.model_dump(), "else": -1}
                program.append(branch)
                emit(step.then)
                jump = {"op": "jump", "to": -1}
                program.append(jump)
                branch["else"] = len(program)
                emit(step.otherwise)
                jump["to"] = len(program)
            elif isinstance(step, WaitStep):
                program.append({"op": "wait", "step": step.model_dump(exclude={"on_timeout"})})
                jump = {"op": "jump", "to": -1}
                program.append(jump)
                emit(step.on_timeout)
                program.append({"op": "stop", "outcome": "reply_timeout"})
                jump["to"] = len(program)
            else:
                program.append({"op": "step", "step": step.model_dump()})

    emit(steps)
    return program


def spec_of(run: ActionRun) -> ActionSpec:
    return ActionSpec.model_validate(run.spec)


# --- the runner --------------------------------------------------------------------------------


@dataclass
class ActionRunner:
    cipher: FieldCipher
    planning: Planning
    public_url: str = "http://127.0.0.1:8000"
    run_ttl: timedelta = timedelta(hours=24)
    identity_limits: identity.Limits = field(default_factory=identity.Limits)
    # Optional: a language model that proposes a field value from free text (adapters/llm.py).
    extract: FieldExtractor | None = None
    # Messages queued by this runner: send their ids after the caller's commit.
    queued: list[Message] = field(default_factory=list)

    @property
    def now(self) -> datetime:
        return self.planning.now

    # Entry points

    def start(
        self,
        session: Session,
        action_name: str,
        conversation: Conversation,
        trigger_context: dict[str, Any] | None = None,
    ) -> ActionRun | None:
        """Start ``action_name`` in ``conversation``. ``trigger_context``: ``appointment_id``,
        ``trigger_key`` (one run per key; default a fresh key), ``started_by``,
        ``signed_link`` (the patient arrived through a signed link to this thread). Returns None
        when the action is unknown or disabled, or a run for that key exists already."""
        context = trigger_context or {}
        record = session.scalar(
            select(ActionSpecRecord).where(
                ActionSpecRecord.practice_id == conversation.practice_id,
                ActionSpecRecord.name == action_name,
            )
        )
        if record is None or (not record.enabled and not context.get("even_if_disabled")):
            return None
        if conversation.owner != "agent":
            return None  # staff have this thread: the agent stays silent until handed back
        key = str(context.get("trigger_key") or f"run:{conversation.id}:{uuid.uuid4().hex}")
        exists = session.scalar(
            select(ActionRun.id).where(
                ActionRun.practice_id == conversation.practice_id,
                ActionRun.action_name == action_name,
                ActionRun.trigger_key == key,
            )
        )
        if exists is not None:
            return None
        # One action at a time per conversation: a new one replaces an unfinished one.
        for old in self._active_runs(session, conversation):
            self._finish(session, old, "cancelled", "replaced")
        practice = session.get(Practice, conversation.practice_id)
        assert practice is not None
        patient = session.get(Patient, conversation.patient_id) if conversation.patient_id else None
        run = ActionRun(
            practice_id=conversation.practice_id,
            action_name=action_name,
            spec=record.spec,
            trigger_key=key,
            conversation_id=conversation.id,
            patient_id=conversation.patient_id,
            appointment_id=context.get("appointment_id"),
            state="running",
            pc=0,
            asks=0,
            language=language_of(patient.language if patient else practice.locale),
            verified=False,
            signed_link=bool(context.get("signed_link")) and patient is not None,
            fields_sealed=self.cipher.seal("{}"),
            results_sealed=self.cipher.seal("{}"),
            expires_at=self.now + self.run_ttl,
            started_by=str(context.get("started_by") or "agent")[:120],
            step_count=0,
            started_at=self.now,
        )
        session.add(run)
        session.flush()
        self._log(session, run, "start", "started", {"trigger": key.split(":", 1)[0]})
        self._advance(session, run)
        return run

    def on_message(
        self,
        session: Session,
        conversation: Conversation,
        message_text: str,
        interpretation: Any,
    ) -> bool:
        intent = str(getattr(interpretation, "intent", "other"))
        if intent in SAFETY_INTENTS:
            self.interrupt(session, conversation, intent)
            return False
        if conversation.owner != "agent":
            return False  # staff answer this thread; the agent (and its actions) stay silent
        run = self._current(session, conversation)
        if run is None:
            name = self._triggered(session, conversation, message_text, intent)
            if name is None:
                return False
            return (
                self.start(session, name, conversation, {"started_by": f"message:{intent}"})
                is not None
            )
        if run.expires_at <= self.now:
            self._finish(session, run, "expired", "expired")
            return False
        if intent == "opt_out":
            self._finish(session, run, "cancelled", "opt_out")
            return False
        if (
            intent in ANSWERS
            and run.state == "collecting"
            and run.appointment_id is not None
            and not self._answers_the_field(session, run, message_text)
        ):
            # "C" to the reminder while the action asks for a name: the patient answered the
            # appointment itself. The caller applies it as any reply; the run has nothing left
            # to ask for.
            self._finish(session, run, "cancelled", f"patient_replied_{intent}")
            return False
        if intent in ("question", "help", "opt_in") and not (
            intent == "question" and self._answers_the_field(session, run, message_text)
        ):
            self._log(session, run, "interrupted", intent, {})
            return False
        run.expires_at = max(self.now + self.run_ttl, run.wait_until or self.now)
        if run.state == "collecting":
            self._collect(session, run, conversation, message_text)
            return True
        if run.state == "waiting_reply":
            if self._correct(session, run, conversation, message_text):
                return True
            self._answer_wait(session, run, message_text, intent)
            return True
        return False

    def interrupt(self, session: Session, conversation: Conversation, reason: str) -> None:
        """The caller handed off (a crisis, a clinical concern): every run in this thread, and
        every run of this patient on their other threads, stops here."""
        query = select(ActionRun).where(ActionRun.state.in_(ACTIVE))
        if conversation.patient_id is not None:
            query = query.where(
                or_(
                    ActionRun.conversation_id == conversation.id,
                    ActionRun.patient_id == conversation.patient_id,
                )
            )
        else:
            query = query.where(ActionRun.conversation_id == conversation.id)
        for run in session.scalars(query):
            self._finish(session, run, "interrupted", reason)

    def resume(self, session: Session, conversation: Conversation) -> None:
        """After the caller answered a question: ask the pending field again."""
        run = self._current(session, conversation)
        if run is not None and run.state == "collecting" and run.asking:
            self._ask(session, run, run.asking, again=False)

    # Finding runs

    def _active_runs(self, session: Session, conversation: Conversation) -> list[ActionRun]:
        return list(
            session.scalars(
                select(ActionRun).where(
                    ActionRun.conversation_id == conversation.id, ActionRun.state.in_(ACTIVE)
                )
            )
        )

    def _current(self, session: Session, conversation: Conversation) -> ActionRun | None:
        """The run this conversation's message is for: one in this thread, or one waiting for
        the patient's reply on the channel it sent to."""
        query = select(ActionRun).where(ActionRun.state.in_(ACTIVE))
        if conversation.patient_id is not None:
            query = query.where(
                or_(
                    ActionRun.conversation_id == conversation.id,
                    (ActionRun.patient_id == conversation.patient_id)
                    & (ActionRun.state == "waiting_reply"),
                )
            )
        else:
            query = query.where(ActionRun.conversation_id == conversation.id)
        return session.scalar(query.order_by(ActionRun.id.desc()).limit(1))

    def _triggered(
        self, session: Session, conversation: Conversation, text: str, intent: str
    ) -> str | None:
        records = session.scalars(
            select(ActionSpecRecord)
            .where(
                ActionSpecRecord.practice_id == conversation.practice_id,
                ActionSpecRecord.enabled.is_(True),
                ActionSpecRecord.trigger_event.in_(("intent", "keyword")),
            )
            .order_by(ActionSpecRecord.name)
        )
        words = field_reading._plain(text).strip(" .!?¡¿")
        for record in records:
            trigger = record.spec.get("trigger", {})
            if trigger.get("event") == "keyword" and words in {
                field_reading._plain(k) for k in trigger.get("keywords") or []
            }:
                return record.name
            if trigger.get("event") == "intent" and trigger.get("intent") == intent:
                return record.name
        return None

    # Slot filling

    def _fields(self, run: ActionRun) -> dict[str, str]:
        return dict(json.loads(self.cipher.open(run.fields_sealed) or "{}"))

    def _results(self, run: ActionRun) -> dict[str, Any]:
        return dict(json.loads(self.cipher.open(run.results_sealed) or "{}"))

    def _save(
        self,
        run: ActionRun,
        *,
        values: dict[str, str] | None = None,
        results: dict[str, Any] | None = None,
    ) -> None:
        if values is not None:
            run.fields_sealed = self.cipher.seal(json.dumps(values))
        if results is not None:
            run.results_sealed = self.cipher.seal(json.dumps(results, default=str))

    def _region(self, session: Session, run: ActionRun) -> str:
        practice = session.get(Practice, run.practice_id)
        return region_of_locale(practice.locale) if practice else "US"

    def _answers_the_field(self, session: Session, run: ActionRun, text: str) -> bool:
        """Whether ``text`` is a valid answer to the field being asked ("WhatsApp?" when asked
        for a channel): then it is the answer, not a question to interrupt for. Free text
        accepts anything, so a question there stays a question."""
        if run.state != "collecting" or run.asking is None:
            return False
        asking = next((f for f in spec_of(run).fields if f.name == run.asking), None)
        if asking is None or asking.kind == "free_text":
            return False
        value = field_reading.read_value(
            asking.kind,
            text,
            today=self.now.date(),
            region=self._region(session, run),
            choices=asking.choices,
            max_length=asking.max_length,
            language=run.language,
        )
        return value is not None

    def _collect(
        self, session: Session, run: ActionRun, conversation: Conversation, text: str
    ) -> None:
        spec = spec_of(run)
        if self._correct(session, run, conversation, text):
            return
        asking = next((f for f in spec.fields if f.name == run.asking), None)
        if asking is None:
            self._advance(session, run)
            return
        value = field_reading.read_value(
            asking.kind,
            text,
            today=self.now.date(),
            region=self._region(session, run),
            choices=asking.choices,
            max_length=asking.max_length,
            language=run.language,
        )
        if value is None and self.extract is not None:
            # The model only proposes; the same reader must accept its proposal.
            candidate = self.extract(asking.kind, text, asking.choices)
            if candidate is not None:
                value = field_reading.read_value(
                    asking.kind,
                    candidate,
                    today=self.now.date(),
                    region=self._region(session, run),
                    choices=asking.choices,
                    max_length=asking.max_length,
                    language=run.language,
                )
            self._log(
                session,
                run,
                "extract",
                "accepted" if value is not None else "rejected",
                {"field": asking.name, "by": "llm"},
            )
        unreachable = False
        if value is not None and asking.kind == "channel" and run.patient_id is not None:
            patient = session.get(Patient, run.patient_id)
            if patient is not None and not _reachable(patient, value):
                if asking.opt_in and _may_opt_in(patient, value):
                    self._opt_in(session, run, patient, value)
                else:
                    value, unreachable = None, True
        if value is None:
            run.asks += 1
            self._log(session, run, "field", "invalid", {"field": asking.name, "asks": run.asks})
            if run.asks >= asking.max_asks:
                self._say(session, run, _TOO_MANY[run.language])
                self._hand_off(session, run, "action", "too_many_invalid_answers")
                return
            invalid = _pick(asking.invalid, run.language) or field_reading.invalid_text(
                asking.kind, run.language, asking.choices
            )
            if unreachable:
                invalid = _UNREACHABLE[run.language]
            self._say(session, run, invalid)
            return
        values = self._fields(run)
        values[asking.name] = value
        self._save(run, values=values)
        shown = value if asking.kind in ("channel", "choice") else "[redacted]"
        self._log(session, run, "field", "accepted", {"field": asking.name, "value": shown})
        run.asking = None
        run.asks = 0
        self._advance(session, run)

    def _opt_in(self, session: Session, run: ActionRun, patient: Patient, channel: str) -> None:
        """The patient picked ``channel`` when the prompt said that doing so agrees to messages
        there: record it as their opt-in, with their reply as the evidence."""
        conversation = self._conversation(session, run)
        evidence = (
            session.scalar(
                select(func.max(Message.id)).where(
                    Message.conversation_id == conversation.id,
                    Message.direction == "inbound",
                )
            )
            if conversation is not None
            else None
        )
        consent.set_consent(
            session,
            patient,
            Channel(channel),
            ConsentStatus.GRANTED,
            source="action_opt_in",
            actor=f"action:{run.action_name}",
            evidence_message_id=evidence,
            detail=f"chose {channel} when action {run.action_name} asked",
        )
        self._log(session, run, "consent", "granted", {"channel": channel})

    def _correct(
        self, session: Session, run: ActionRun, conversation: Conversation, text: str
    ) -> bool:
        spec = spec_of(run)
        values = self._fields(run)
        kinds = {f.name: f.kind for f in spec.fields}
        found = field_reading.find_correction(
            text, values, kinds, region=self._region(session, run)
        )
        if found is None:
            return False
        name, value = found
        values[name] = value
        self._save(run, values=values)
        shown = value if kinds[name] in ("channel", "choice") else "[redacted]"
        self._log(session, run, "correction", "applied", {"field": name, "value": shown})
        self._say(session, run, _UPDATED[run.language])
        if run.state == "collecting" and run.asking:
            self._ask(session, run, run.asking, again=False)
        return True

    def _ask(self, session: Session, run: ActionRun, name: str, *, again: bool) -> None:
        spec = spec_of(run)
        asked = next(f for f in spec.fields if f.name == name)
        run.state = "collecting"
        run.asking = name
        prompt = _pick(asked.prompt, run.language) or ""
        practice = session.get(Practice, run.practice_id)
        # The one placeholder a prompt may carry: the patient must know who is asking.
        prompt = prompt.replace("{practice}", practice.name if practice is not None else "")

        self._say(session, run, prompt)
        self._log(session, run, "ask", "asked", {"field": name})

    # Running steps

    def _advance(self, session: Session, run: ActionRun) -> None:
        spec = spec_of(run)
        values = self._fields(run)
        identity_fields: set[str] = set()
        if spec.identity is not None and spec.identity.required:
            identity_fields = {spec.identity.identifier, spec.identity.date_of_birth}
            conversation = self._conversation(session, run)
            if (
                not run.verified
                and run.signed_link
                and conversation is not None
                and conversation.patient_id is not None
                and conversation.patient_id == run.patient_id
            ):
                run.verified = True
                self._log(session, run, "identity", "verified", {"by": "address_and_signed_link"})
        for f in spec.fields:
            if f.name in values or (run.verified and f.name in identity_fields):
                continue
            self._ask(session, run, f.name, again=False)
            return
        needs_check = spec.identity is not None and spec.identity.required and not run.verified
        if needs_check and not self._verify(session, run, spec, values):
            return
        run.state = "running"
        run.asking = None
        program = compile_steps(spec.steps)
        while run.state == "running":
            if run.pc >= len(program):
                self._finish(session, run, "done", "completed")
                return
            run.step_count += 1
            if run.step_count > MAX_STEPS_PER_RUN:
                self._finish(session, run, "failed", "too_many_steps")
                return
            op = program[run.pc]
            if op["op"] == "jump":
                run.pc = op["to"]
            elif op["op"] == "stop":
                self._finish(session, run, "done", op["outcome"])
            elif op["op"] == "branch":
                truth = self._condition(run, op["when"])
                self._log(session, run, "if", "then" if truth else "else", {"pc": run.pc})
                run.pc = run.pc + 1 if truth else op["else"]
            elif op["op"] == "wait":
                step = op["step"]
                run.state = "waiting_reply"
                run.wait_until = self.now + timedelta(minutes=step["timeout_minutes"])
                run.expires_at = max(run.expires_at, run.wait_until + timedelta(minutes=1))
                self._log(
                    session,
                    run,
                    "wait_for_reply",
                    "waiting",
                    {"id": step["id"], "timeout_minutes": step["timeout_minutes"]},
                )
            else:
                self._do(session, run, op["step"])
                if run.state == "running":
                    run.pc += 1

    def _condition(self, run: ActionRun, when: dict[str, Any]) -> bool:
        if when.get("field"):
            value: Any = self._fields(run).get(when["field"])
        else:
            step_id, _, key = str(when["result"]).partition(".")
            value = self._results(run).get(step_id, {})
            for part in key.split("."):
                value = value.get(part) if isinstance(value, dict) else None
        if when.get("present") is not None:
            return (value is not None and value != "") == bool(when["present"])
        if when.get("equals") is not None:
            return str(value).lower() == str(when["equals"]).lower() if value is not None else False
        return value is not None and str(value).lower() in {
            str(v).lower() for v in when.get("one_of") or []
        }

    def _do(self, session: Session, run: ActionRun, step: dict[str, Any]) -> None:
        kind = step["type"]
        if kind == "webhook":
            self._queue_webhook(session, run, step)
        elif kind == "send":
            self._send(session, run, step)
        elif kind == "set_status":
            self._set_status(session, run, step)
        elif kind == "handoff":
            self._hand_off(session, run, step["reason"], "handoff_step", urgent=step["urgent"])

    def _verify(
        self, session: Session, run: ActionRun, spec: ActionSpec, values: dict[str, str]
    ) -> bool:
        assert spec.identity is not None
        conversation = self._conversation(session, run)
        practice = session.get(Practice, run.practice_id)
        assert conversation is not None and practice is not None
        kind = next(f.kind for f in spec.fields if f.name == spec.identity.identifier)
        check = identity.verify(
            session,
            self.cipher,
            practice,
            conversation,
            identifier_kind=kind,
            identifier=values[spec.identity.identifier],
            date_of_birth=values[spec.identity.date_of_birth],
            now=self.now,
            limits=self.identity_limits,
            run_id=run.id,
        )
        if check.verified:
            run.verified = True
            run.patient_id = check.patient_id
            if run.appointment_id is None and check.patient_id is not None:
                # Started by a message: the appointment is the patient's next answerable one.
                run.appointment_id = session.scalar(
                    select(Appointment.id)
                    .where(
                        Appointment.patient_id == check.patient_id,
                        Appointment.status.in_(ANSWERABLE),
                        Appointment.end_at > self.now,
                    )
                    .order_by(Appointment.start_at)
                    .limit(1)
                )
            self._log(session, run, "identity", "verified", {"by": "identifier_and_date_of_birth"})
            return True
        values.pop(spec.identity.identifier, None)
        values.pop(spec.identity.date_of_birth, None)
        self._save(run, values=values)
        if check.locked:
            self._log(session, run, "identity", "locked", {})
            self._say(session, run, _LOCKED[run.language])
            self._hand_off(session, run, "action", "identity_locked")
            return False
        self._log(session, run, "identity", "failed", {})
        self._say(session, run, _VERIFY_FAILED[run.language])
        self._advance(session, run)
        return False

    # Steps

    def template_context(self, session: Session, run: ActionRun) -> dict[str, Any]:
        """What a webhook body or a send step's text may use: ``fields``, ``results``,
        ``run``, ``practice``, and — once the person is verified, or in the patient's own
        thread — ``patient`` and ``appointment``."""
        practice = session.get(Practice, run.practice_id)
        assert practice is not None
        reveal = self._may_reveal(session, run, spec_of(run))
        patient = session.get(Patient, run.patient_id) if run.patient_id and reveal else None
        appointment = session.get(Appointment, run.appointment_id) if run.appointment_id else None
        context: dict[str, Any] = {
            "fields": self._fields(run),
            "results": self._results(run),
            "run": {"id": run.id, "action": run.action_name, "language": run.language},
            "practice": {
                "slug": practice.slug,
                "name": practice.name,
                "booking_url": practice.booking_url or "",
                "webhook_url": str(
                    (practice.settings or {}).get("action_webhook_url") or ""
                ).rstrip("/"),
            },
            "patient": {},
            "appointment": {},
        }
        if patient is not None:
            contact = contact_of(patient, self.cipher)
            context["patient"] = {
                "id": patient.id,
                "external_id": patient.external_id,
                "name": patient.name or "",
                "email": contact.email or "",
                "phone": contact.phone or "",
                "preferred_channel": patient.preferred_channel or "",
            }
        if appointment is not None and reveal:
            context["appointment"] = {
                "id": appointment.id,
                "external_id": appointment.external_id,
                "source": appointment.source,
                "start": appointment.start_at.isoformat(),
                "end": appointment.end_at.isoformat(),
                "status": appointment.status,
                "confirmation": appointment.confirmation,
            }
        return context

    def _render(self, source: str, context: dict[str, Any]) -> str:
        try:
            return _ENV.from_string(source).render(**context)
        except TemplateError as exc:
            raise _StepFailed(f"template error: {exc.message}") from None

    def _render_tree(self, value: Any, context: dict[str, Any]) -> Any:
        if isinstance(value, str):
            return self._render(value, context)
        if isinstance(value, dict):
            return {k: self._render_tree(v, context) for k, v in value.items()}
        if isinstance(value, list):
            return [self._render_tree(v, context) for v in value]
        return value

    def _queue_webhook(self, session: Session, run: ActionRun, step: dict[str, Any]) -> None:
        context = self._context(session, run)
        try:
            body = self._render_tree(step["body"], context)
            url = self._render(step["url"], context).strip()
        except _StepFailed as exc:
            self._step_failed(session, run, step, str(exc))
            return
        if not url.startswith(("http://", "https://")):
            self._step_failed(session, run, step, "the webhook URL is not set for this practice")
            return
        key = f"action-run-{run.id}-step-{run.pc}"
        session.add(
            ActionEffect(
                practice_id=run.practice_id,
                run_id=run.id,
                pc=run.pc,
                idempotency_key=key,
                url=url,
                body_sealed=self.cipher.seal(json.dumps(body)) or "",
                timeout_seconds=float(step["timeout_seconds"]),
                max_attempts=int(step["max_attempts"]),
                status="pending",
                attempts=0,
                next_attempt_at=self.now,
                created_at=self.now,
            )
        )
        run.state = "waiting_effect"
        self._log(
            session,
            run,
            "webhook",
            "queued",
            {
                "id": step["id"],
                "url": step["url"],
                "idempotency_key": key,
                "body": redact(body, extra_keys=personal_fields(run.spec.get("fields", []))),
            },
        )

    def effect_finished(
        self, session: Session, run: ActionRun, *, ok: bool, response: Any, error: str | None
    ) -> None:
        """The worker's word on a webhook: capture the response and go on, or fail the step."""
        program = compile_steps(spec_of(run).steps)
        step = program[run.pc]["step"]
        if run.state != "waiting_effect":
            return
        if ok:
            results = self._results(run)
            captured: dict[str, Any] = {"ok": True}
            for name, path in step.get("capture", {}).items():
                value: Any = response
                for part in path.split("."):
                    value = value.get(part) if isinstance(value, dict) else None
                captured[name] = value
            results[step["id"]] = captured
            self._save(run, results=results)
            run.state = "running"
            run.pc += 1
            self._advance(session, run)
            return
        results = self._results(run)
        results[step["id"]] = {"ok": False}
        self._save(run, results=results)
        run.state = "running"
        self._step_failed(session, run, step, error or "failed")
        if run.state == "running":
            run.pc += 1
            self._advance(session, run)

    def _step_failed(
        self, session: Session, run: ActionRun, step: dict[str, Any], error: str
    ) -> None:
        self._log(session, run, step["type"], "failed", {"error": error[:300]})
        policy = step.get("on_failure", "handoff")
        if policy == "handoff":
            self._say(session, run, _TOO_MANY[run.language])
            self._hand_off(session, run, "action", f"{step['type']}_failed")
        elif policy == "stop":
            self._finish(session, run, "failed", f"{step['type']}_failed")
        else:
            run.state = "running"

    def _send(self, session: Session, run: ActionRun, step: dict[str, Any]) -> None:
        practice = session.get(Practice, run.practice_id)
        assert practice is not None
        patient = session.get(Patient, run.patient_id) if run.patient_id else None
        conversation = self._conversation(session, run)
        channel_name = step["channel"]
        if step.get("channel_field"):
            channel_name = self._fields(run).get(step["channel_field"]) or "conversation"
        if channel_name != "conversation" and patient is not None:
            if not _reachable(patient, channel_name):
                self._step_failed(
                    session, run, step, f"the patient cannot be reached by {channel_name}"
                )
                return
            conversation = thread_for(
                session, self.cipher, practice, patient, Channel(channel_name), None
            )
            session.flush()
        if conversation is None:
            self._step_failed(session, run, step, "no conversation to send on")
            return
        appointment = (
            session.get(Appointment, run.appointment_id)
            if run.appointment_id and step.get("about_appointment", True)
            else None
        )
        if appointment is not None and not self._may_reveal(session, run, spec_of(run)):
            self._step_failed(session, run, step, "identity not verified")
            return
        tz_name = (patient.timezone if patient else None) or practice.timezone
        base = context_for(
            practice=practice,
            channel=conversation.channel,
            language=run.language,
            patient_name=patient.name if patient else None,
            patient_preferred_name=patient.preferred_name if patient else None,
            tz_name=tz_name,
            appointment=appointment,
        )
        try:
            if step.get("text"):
                source = step["text"].get(run.language) or step["text"]["en"]
                body = self._render(source, {**self._context(session, run), **base}).strip()
                subject: str | None = None
                html: str | None = None
            else:
                text = TemplateBook.load(session, practice.id).text_for(
                    Purpose(step["purpose"]), conversation.channel, run.language
                )
                rendered = render(text, base)
                body, subject, html = rendered.body, rendered.subject, rendered.html
        except (_StepFailed, Exception) as exc:  # a template problem is the step's failure
            self._step_failed(session, run, step, f"render failed: {type(exc).__name__}")
            return
        message = outgoing.queue_message(
            session,
            conversation=conversation,
            # A template's purpose travels with the message: outside WhatsApp's 24-hour window
            # the sender needs it to pick the approved template (free text would be refused).
            purpose=step.get("purpose") or f"action:{run.action_name}"[:40],
            body=body,
            subject=subject,
            html=html,
            appointment_id=appointment.id if appointment else None,
            now=self.now,
        )
        self.queued.append(message)
        session.flush()
        self._log(
            session,
            run,
            "send",
            "queued",
            {
                "channel": conversation.channel,
                "purpose": step.get("purpose") or "text",
                "chars": len(body),
                "message_id": message.id,
            },
        )

    def _may_reveal(self, session: Session, run: ActionRun, spec: ActionSpec) -> bool:
        if spec.identity is not None and spec.identity.required:
            return run.verified
        # No identity block: only to the patient's own thread (the address on their record).
        conversation = self._conversation(session, run)
        return (
            conversation is not None
            and conversation.patient_id is not None
            and conversation.patient_id == run.patient_id
        )

    def _set_status(self, session: Session, run: ActionRun, step: dict[str, Any]) -> None:
        appointment = session.get(Appointment, run.appointment_id) if run.appointment_id else None
        practice = session.get(Practice, run.practice_id)
        assert practice is not None
        if appointment is None or not self._may_reveal(session, run, spec_of(run)):
            self._step_failed(session, run, step, "no verified appointment")
            return
        answer = step.get("answer")
        if step.get("answer_from"):
            answer = self._results(run).get(step["answer_from"], {}).get("answer")
        changed = False
        if answer:
            changed = apply_answer(
                session,
                practice,
                appointment,
                answer,
                self.planning,
                actor=f"action:{run.action_name}",
                source=f"action_run:{run.id}",
            )
        if step.get("review"):
            exists = session.scalar(
                select(ReviewItem.id).where(
                    ReviewItem.appointment_id == appointment.id, ReviewItem.kind == step["review"]
                )
            )
            if exists is None:
                session.add(
                    ReviewItem(
                        practice_id=appointment.practice_id,
                        appointment_id=appointment.id,
                        patient_id=appointment.patient_id,
                        kind=step["review"],
                        state="open",
                        created_at=self.now,
                    )
                )
        self._log(
            session,
            run,
            "set_status",
            "changed" if changed else "unchanged",
            {
                "answer": answer,
                "review": step.get("review"),
                "status": appointment.status,
                "confirmation": appointment.confirmation,
            },
        )

    def _answer_wait(self, session: Session, run: ActionRun, text: str, intent: str) -> None:
        program = compile_steps(spec_of(run).steps)
        step = program[run.pc]["step"]
        found = keyword(text, channel="button")
        answer = found.intent if found is not None else intent
        if answer not in ("confirm", "cancel", "reschedule"):
            answer = "other"
        results = self._results(run)
        results[step["id"]] = {"answer": answer, "replied": True}
        self._save(run, results=results)
        self._log(session, run, "reply", "received", {"id": step["id"], "answer": answer})
        run.state = "running"
        run.wait_until = None
        run.pc += 1  # the jump past the timeout branch
        self._advance(session, run)

    def wait_timed_out(self, session: Session, run: ActionRun) -> None:
        program = compile_steps(spec_of(run).steps)
        step = program[run.pc]["step"]
        results = self._results(run)
        results[step["id"]] = {"answer": None, "replied": False}
        self._save(run, results=results)
        self._log(session, run, "wait_for_reply", "timed_out", {"id": step["id"]})
        run.state = "running"
        run.wait_until = None
        run.pc += 2  # past the jump: the on_timeout steps
        self._advance(session, run)

    # Plumbing

    def _context(self, session: Session, run: ActionRun) -> dict[str, Any]:
        return self.template_context(session, run)

    def _conversation(self, session: Session, run: ActionRun) -> Conversation | None:
        return session.get(Conversation, run.conversation_id) if run.conversation_id else None

    def _say(self, session: Session, run: ActionRun, text: str) -> None:
        conversation = self._conversation(session, run)
        if conversation is None or conversation.owner != "agent":
            return
        message = outgoing.queue_message(
            session,
            conversation=conversation,
            purpose=f"action:{run.action_name}"[:40],
            body=text,
            now=self.now,
        )
        self.queued.append(message)

    def _hand_off(
        self, session: Session, run: ActionRun, reason: str, outcome: str, *, urgent: bool = False
    ) -> None:
        conversation = self._conversation(session, run)
        practice = session.get(Practice, run.practice_id)
        if conversation is not None and practice is not None:
            handoff.hand_off(
                session,
                practice=practice,
                conversation=conversation,
                reason=reason,
                urgent=urgent,
                now=self.now,
                cipher=self.cipher,
                public_url=self.public_url,
            )
        self._finish(session, run, "handed_off", outcome)

    def _finish(self, session: Session, run: ActionRun, state: str, outcome: str) -> None:
        run.state = state
        run.outcome = outcome
        run.finished_at = self.now
        run.wait_until = None
        self._log(session, run, "finish", state, {"outcome": outcome})

    def _log(
        self,
        session: Session,
        run: ActionRun,
        kind: str,
        outcome: str,
        detail: dict[str, Any],
        *,
        attempt: int = 1,
        duration_ms: int | None = None,
    ) -> None:
        session.add(
            ActionStepLog(
                practice_id=run.practice_id,
                run_id=run.id,
                pc=run.pc,
                kind=kind,
                attempt=attempt,
                outcome=outcome,
                detail=redact(detail),
                started_at=self.now,
                duration_ms=duration_ms,
            )
        )


def _reachable(patient: Patient, channel: str) -> bool:
    """An address on record and no opt-out (WhatsApp: an opt-in)."""
    has_address = (patient.email_sealed if channel == "email" else patient.phone_sealed) is not None
    agreed = consent.current(patient, Channel(channel))
    if channel == "whatsapp":
        return has_address and agreed == ConsentStatus.GRANTED
    return has_address and agreed != ConsentStatus.REVOKED


def _may_opt_in(patient: Patient, channel: str) -> bool:
    """An address to reach, and no earlier opt-out there (STOP is only undone by START)."""
    has_address = (patient.email_sealed if channel == "email" else patient.phone_sealed) is not None
    return has_address and consent.current(patient, Channel(channel)) != ConsentStatus.REVOKED


def _pick(texts: Mapping[Any, str] | None, language: str) -> str | None:
    """The wording in ``language``, else English."""
    if not texts:
        return None
    return texts.get(language) or texts.get("en")


class _StepFailed(Exception):
    pass


def start_for_patient(
    runner: ActionRunner,
    session: Session,
    practice: Practice,
    patient: Patient,
    action_name: str,
    trigger_context: dict[str, Any],
) -> ActionRun | None:
    """Start an action for a patient in their thread on their usual channel (events, inbox)."""
    channel = effective_channel(patient)
    if channel is None:
        return None
    conversation = thread_for(session, runner.cipher, practice, patient, channel, None)
    session.flush()
    return runner.start(session, action_name, conversation, trigger_context)
