"""What the custom-action tests share: a practice with one patient and one appointment, a
caller that plays ``services/replies.py`` (safety first, then the runner), and a loopback HTTP
server playing the practice's scheduling system."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sqlalchemy import select

from frontdesk.adapters.channels.outbox import OutboxChannel
from frontdesk.adapters.db.action_models import ActionRun, ActionStepLog
from frontdesk.adapters.db.models import Conversation, Message, Patient, Practice
from frontdesk.bootstrap import Runtime
from frontdesk.domain.channels import Channel, Direction
from frontdesk.services import actions, handoff, practices
from frontdesk.services.outgoing import MessageSender, fixed_senders
from frontdesk.services.replies import Interpretation, thread_for
from integration.test_reminders_flow import T0, Clock, put

SECRET = "practice-webhook-secret-0123456789"
DOB = "1990-03-25"


def sender(runtime: Runtime, clock: Clock) -> MessageSender:
    outbox = OutboxChannel(runtime.sessions, runtime.cipher)
    return MessageSender(
        runtime,
        fixed_senders({Channel.SMS: outbox, Channel.EMAIL: outbox, Channel.WHATSAPP: outbox}),
        clock=clock,
    )


def seed(runtime: Runtime, clock: Clock, *, start: datetime | None = None, **patient: Any) -> None:
    """Avery, born 1990-03-25, with a session 20 hours from now (unconfirmed)."""
    put(
        runtime,
        clock,
        start or clock.now + timedelta(hours=20),
        announce=False,
        patient={"date_of_birth": DOB, "name": "Avery Johnson", **patient},
    )


def configure(runtime: Runtime, url: str | None = None, *, builtins: bool = True) -> None:
    with runtime.transaction() as session:
        practice = practices.resolve_practice(session, "default")
        actions.set_webhook_secret(practice, runtime.cipher.seal(SECRET))
        if url is not None:
            practice.settings = {**practice.settings, "action_webhook_url": url}
        if builtins:
            actions.install_builtins(session, practice, enabled=True, actor="test")


def add_spec(runtime: Runtime, text: str) -> None:
    with runtime.transaction() as session:
        practice = practices.resolve_practice(session, "default")
        actions.save(session, practice, text, actor="test", enabled=True)


@dataclass
class Patient1:
    runtime: Runtime
    clock: Clock
    ttl_minutes: int = 1440
    sent: list[int] = field(default_factory=list)

    def ids(self) -> tuple[int, int]:
        with self.runtime.transaction() as session:
            practice = practices.resolve_practice(session, "default")
            patient = session.scalars(select(Patient)).one()
            return practice.id, patient.id

    def write(self, text: str, intent: str = "other", channel: Channel = Channel.SMS) -> bool | str:
        """The patient writes; the caller screens safety first, then asks the runner."""
        with self.runtime.transaction() as session:
            practice = practices.resolve_practice(session, "default")
            patient = session.scalars(select(Patient)).one()
            conversation = thread_for(
                session, self.runtime.cipher, practice, patient, channel, None
            )
            session.add(
                Message(
                    practice_id=practice.id,
                    conversation=conversation,
                    channel=channel.value,
                    direction=Direction.INBOUND.value,
                    body=text,
                    delivery_status="received",
                    created_at=self.clock.now,
                )
            )
            conversation.last_inbound_at = self.clock.now
            session.flush()
            runner = actions.runner_for(self.runtime, self.clock.now)
            result: bool | str
            if intent in ("crisis", "clinical_concern"):
                handoff.hand_off(
                    session,
                    practice=practice,
                    conversation=conversation,
                    reason=intent,
                    urgent=intent == "crisis",
                    now=self.clock.now,
                    cipher=self.runtime.cipher,
                    public_url="http://x",
                )
                runner.interrupt(session, conversation, intent)
                result = "handed_off"
            else:
                result = runner.on_message(session, conversation, text, Interpretation(intent))
            session.flush()
            ids = [m.id for m in runner.queued]
        sender(self.runtime, self.clock).send_now(ids)
        return result

    def start(self, name: str, **context: Any) -> int:
        with self.runtime.transaction() as session:
            practice = practices.resolve_practice(session, "default")
            patient = session.scalars(select(Patient)).one()
            runner = actions.runner_for(self.runtime, self.clock.now)
            run = actions.start_manual(
                session,
                runner,
                practice,
                name,
                patient_id=patient.id,
                actor="staff:test",
                **context,
            )
            session.flush()
            ids = [m.id for m in runner.queued]
            run_id = run.id
        sender(self.runtime, self.clock).send_now(ids)
        return run_id

    def worker(self, **options: Any) -> actions.ActionWorker:
        return actions.ActionWorker(
            self.runtime, sender(self.runtime, self.clock), clock=self.clock, **options
        )


def outbound(runtime: Runtime) -> list[tuple[str, str]]:
    """(channel, body) of every message we sent, oldest first."""
    with runtime.transaction() as session:
        return [
            (m.channel, m.body)
            for m in session.scalars(
                select(Message)
                .where(Message.direction == Direction.OUTBOUND.value)
                .order_by(Message.id)
            )
        ]


def run_state(runtime: Runtime) -> tuple[str, str | None]:
    with runtime.transaction() as session:
        run = session.scalars(select(ActionRun).order_by(ActionRun.id.desc())).first()
        assert run is not None
        return run.state, run.outcome


def step_log(runtime: Runtime) -> list[ActionStepLog]:
    with runtime.transaction() as session:
        rows = list(session.scalars(select(ActionStepLog).order_by(ActionStepLog.id)))
        session.expunge_all()
        return rows


def conversation_owner(runtime: Runtime) -> list[str]:
    with runtime.transaction() as session:
        return [c.owner for c in session.scalars(select(Conversation).order_by(Conversation.id))]


def practice_id(runtime: Runtime) -> int:
    with runtime.transaction() as session:
        return session.scalars(select(Practice.id)).first() or 0


# --- the practice's scheduling system, on loopback --------------------------------------------


@dataclass
class Scheduler:
    """Records every request; ``plan`` is the status codes to answer in turn (then 200).
    Effects are applied once per Idempotency-Key, as a careful scheduling system would."""

    plan: list[int] = field(default_factory=list)
    delay: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)
    effects: dict[str, dict[str, Any]] = field(default_factory=dict)
    url: str = ""
    release: threading.Event = field(default_factory=threading.Event)


@contextmanager
def scheduler_server(plan: list[int] | None = None, *, hang: bool = False) -> Iterator[Scheduler]:
    state = Scheduler(plan=list(plan or []))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            signature = self.headers.get("X-Frontdesk-Signature", "")
            parts = dict(p.split("=", 1) for p in signature.split(",") if "=" in p)
            expected = hmac.new(
                SECRET.encode(), f"{parts.get('t')}.{raw.decode()}".encode(), hashlib.sha256
            ).hexdigest()
            valid = hmac.compare_digest(expected, parts.get("v1", ""))
            key = self.headers.get("Idempotency-Key", "")
            state.requests.append(
                {"path": self.path, "body": json.loads(raw), "key": key, "valid": valid}
            )
            if hang:
                state.release.wait(5)
            code = state.plan.pop(0) if state.plan else 200
            if not valid:
                code = 401
            if code == 200 and key not in state.effects:
                state.effects[key] = json.loads(raw)
            payload = json.dumps({"reference": f"ref-{len(state.effects)}", "ok": code == 200})
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(payload.encode())

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()
        thread.join()


__all__ = ["DOB", "SECRET", "T0", "Clock"]
