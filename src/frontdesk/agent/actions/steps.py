"""Running a run's program: webhooks (as effects performed after commit), sends, status
changes, handoffs, waits and branches, with the template context they render from."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from jinja2 import TemplateError
from sqlalchemy import select
from sqlalchemy.orm import Session

from frontdesk.adapters.db.action_models import (
    ActionEffect,
    ActionRun,
)
from frontdesk.adapters.db.models import (
    Appointment,
    Patient,
    Practice,
    ReviewItem,
)
from frontdesk.agent.actions.base import (
    _ENV,
    _TOO_MANY,
    MAX_STEPS_PER_RUN,
    RunnerBase,
    _StepFailed,
)
from frontdesk.agent.actions.program import compile_steps, spec_of
from frontdesk.agent.actions.redaction import personal_fields, redact
from frontdesk.agent.actions.slots import _reachable
from frontdesk.agent.actions.spec import (
    ActionSpec,
)
from frontdesk.domain.channels import Channel
from frontdesk.domain.reply_keywords import keyword
from frontdesk.domain.templates import Purpose
from frontdesk.services import outgoing
from frontdesk.services.appointment_answers import apply_answer
from frontdesk.services.patients import contact_of
from frontdesk.services.replies import thread_for
from frontdesk.services.templates import TemplateBook, context_for, render


class StepRunner(RunnerBase):
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
