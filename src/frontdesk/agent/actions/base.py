"""What every part of the action runner shares: its settings, the run's sealed state, and the
plumbing (say, hand off, finish, log). ``slots.py`` fills fields, ``steps.py`` runs steps,
``runner.py`` puts them together (its docstring states the caller's contract)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from sqlalchemy.orm import Session

from frontdesk.adapters.crypto import FieldCipher
from frontdesk.adapters.db.action_models import (
    ActionRun,
    ActionStepLog,
)
from frontdesk.adapters.db.models import (
    Conversation,
    Message,
    Practice,
)
from frontdesk.adapters.llm import LanguageModel
from frontdesk.agent.actions import identity
from frontdesk.agent.actions.redaction import redact
from frontdesk.agent.actions.spec import (
    ActionSpec,
)
from frontdesk.domain.contact import region_of_locale
from frontdesk.services import handoff, outgoing
from frontdesk.services.llm_usage import SessionMeter
from frontdesk.services.reminders import Planning

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


def _pick(texts: Mapping[Any, str] | None, language: str) -> str | None:
    """The wording in ``language``, else English."""
    if not texts:
        return None
    return texts.get(language) or texts.get("en")


class _StepFailed(Exception):
    pass


@dataclass
class RunnerBase:
    cipher: FieldCipher
    planning: Planning
    public_url: str = "http://127.0.0.1:8000"
    run_ttl: timedelta = timedelta(hours=24)
    identity_limits: identity.Limits = field(default_factory=identity.Limits)
    # Optional: a language model that may propose a field value or an action (adapters/llm.py),
    # and each practice's monthly token budget for it.
    model: LanguageModel | None = None
    llm_budget: int | None = None
    # Messages queued by this runner: send their ids after the caller's commit.
    queued: list[Message] = field(default_factory=list)

    @property
    def now(self) -> datetime:
        return self.planning.now

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

    def _meter(self, session: Session, run: ActionRun) -> SessionMeter:
        return SessionMeter(
            session,
            run.practice_id,
            self.model.model if self.model is not None else "",
            self.now,
            self.llm_budget,
        )

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

    # Provided by the slot-filling and step halves (slots.py, steps.py): declared here so each
    # half can call the other.

    def _advance(self, session: Session, run: ActionRun) -> None:
        raise NotImplementedError

    def _ask(self, session: Session, run: ActionRun, name: str, *, again: bool) -> None:
        raise NotImplementedError

    def _verify(
        self, session: Session, run: ActionRun, spec: ActionSpec, values: dict[str, str]
    ) -> bool:
        raise NotImplementedError

    def template_context(self, session: Session, run: ActionRun) -> dict[str, Any]:
        raise NotImplementedError
