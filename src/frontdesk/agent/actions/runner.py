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

import uuid
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from frontdesk.adapters.db.action_models import (
    ActionRun,
    ActionSpecRecord,
)
from frontdesk.adapters.db.models import (
    Conversation,
    Patient,
    Practice,
)
from frontdesk.agent.actions import fields as field_reading
from frontdesk.agent.actions.base import ACTIVE, SAFETY_INTENTS
from frontdesk.agent.actions.program import compile_steps, spec_of
from frontdesk.agent.actions.slots import SlotFilling
from frontdesk.agent.actions.steps import StepRunner
from frontdesk.domain.messages import language_of
from frontdesk.services.appointment_answers import ANSWERS
from frontdesk.services.llm_usage import SessionMeter
from frontdesk.services.patients import effective_channel
from frontdesk.services.replies import thread_for

__all__ = ["ACTIVE", "ActionRunner", "compile_steps", "spec_of", "start_for_patient"]


class ActionRunner(SlotFilling, StepRunner):
    """The runner a caller uses (``services/actions.runner_for`` builds one per message)."""

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
            started_by = f"message:{intent}"
            if name is None and intent == "other" and self.model is not None:
                # No rule matched: the model may pick one of the conversational actions.
                name, started_by = self._picked(session, conversation, message_text), "llm"
            if name is None:
                return False
            return self.start(session, name, conversation, {"started_by": started_by}) is not None
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
            # A valid answer to the field asked is the answer, whatever the classifier guessed
            # for a lone word ("whatsapp" read as help, "WhatsApp?" as a question).
            intent in ("question", "help") and self._answers_the_field(session, run, message_text)
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

    def _picked(self, session: Session, conversation: Conversation, text: str) -> str | None:
        """The action the model proposes for ``text``, only among the practice's enabled
        actions that a message may start (intent, keyword or manual triggers); starting it goes
        through ``start`` like any other, identity checks included."""
        assert self.model is not None
        records = session.scalars(
            select(ActionSpecRecord)
            .where(
                ActionSpecRecord.practice_id == conversation.practice_id,
                ActionSpecRecord.enabled.is_(True),
                ActionSpecRecord.trigger_event.in_(("intent", "keyword", "manual")),
            )
            .order_by(ActionSpecRecord.name)
        ).all()
        if not records:
            return None
        meter = SessionMeter(
            session, conversation.practice_id, self.model.model, self.now, self.llm_budget
        )
        return self.model.pick_action(text, [(r.name, r.description) for r in records], meter)

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
