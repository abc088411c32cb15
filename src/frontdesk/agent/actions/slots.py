"""Slot filling: ask for each field, read and validate the answer, re-ask, accept corrections,
record a channel choice as an opt-in, and verify identity before anything is revealed."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from frontdesk.adapters.db.action_models import (
    ActionRun,
)
from frontdesk.adapters.db.models import (
    Appointment,
    Conversation,
    Message,
    Patient,
    Practice,
)
from frontdesk.agent.actions import fields as field_reading
from frontdesk.agent.actions import identity
from frontdesk.agent.actions.base import (
    _LOCKED,
    _TOO_MANY,
    _UNREACHABLE,
    _UPDATED,
    _VERIFY_FAILED,
    RunnerBase,
    _pick,
)
from frontdesk.agent.actions.program import spec_of
from frontdesk.agent.actions.spec import (
    ActionSpec,
)
from frontdesk.domain.channels import Channel, ConsentStatus
from frontdesk.services import consent
from frontdesk.services.appointment_answers import ANSWERABLE


class SlotFilling(RunnerBase):
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
        if value is None and self.model is not None:
            # The model only proposes; the same reader must accept its proposal.
            candidate = self.model.extract_field(
                asking.kind, text, asking.choices, self._meter(session, run)
            )
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
