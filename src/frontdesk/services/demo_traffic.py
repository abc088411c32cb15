"""Live traffic for the demo practice: patients who write in, so a practice trying frontdesk sees
the inbox move, an escalation to answer, and the agent at work — all through the real inbound
path and the local outbox (the demo's numbers are fictional 555-01xx ones; nothing is sent).

``warm_up`` plays a short history once when the demo starts; ``run`` then plays one scripted
message every ``interval`` seconds, round and round.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from sqlalchemy import select

from frontdesk.adapters.db.models import Patient, Practice
from frontdesk.bootstrap import Runtime
from frontdesk.domain.channels import Channel
from frontdesk.services import handoff
from frontdesk.services.demo import SOURCE
from frontdesk.services.inbound_messages import outbox_reply
from frontdesk.services.outgoing import MessageSender

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Line:
    patient: str  # the demo patient's key (p-01 …)
    text: str
    channel: Channel | None = None


# Avery (p-01) is left alone: the No-show reminder action waits for them (docs/ACTIONS.md, "Try
# it in the demo"). At start: a confirmation, a question the documents answer, one they do not,
# a clinical concern, and a crisis — so the inbox has an urgent thread waiting for a person.
WARM_UP = [
    Line("p-12", "C"),
    Line("p-03", "Is there parking near the Harbor Street office?"),
    Line("p-05", "¿Aceptan el seguro Aetna?"),
    Line("p-06", "I've been feeling a lot worse since starting the new medication"),
    Line("p-07", "honestly I don't see the point anymore. I won't be around for next week"),
]
# Then, round and round.
LIVE = [
    Line("p-09", "can't make it thursday, can we move it?"),
    Line("p-10", "What's your late cancellation fee?"),
    Line("p-05", "C"),
    Line("p-12", "Do you offer telehealth sessions?"),
    Line("p-02", "Sí, ahí estaré"),
    Line("p-04", "Can I talk to a real person please?"),
    Line("p-08", "¿Cuál es su horario los sábados?"),
    Line("p-12", "this traffic is killing me, 5 min late!"),
]
ON_CALL = [{"name": "Demo on-call", "phone": "+12025550199"}]


class DemoTraffic:
    def __init__(self, runtime: Runtime, sender: MessageSender, practice_id: int) -> None:
        self.runtime = runtime
        self.sender = sender
        self.practice_id = practice_id
        self.position = 0

    def warm_up(self) -> None:
        with self.runtime.transaction() as session:
            practice = session.get(Practice, self.practice_id)
            assert practice is not None
            if not (practice.settings or {}).get("on_call"):
                handoff.set_on_call(practice, self.runtime.cipher, ON_CALL)
        for line in WARM_UP:
            self.play(line)

    def play(self, line: Line) -> None:
        with self.runtime.transaction() as session:
            patient_id = session.scalar(
                select(Patient.id).where(
                    Patient.practice_id == self.practice_id,
                    Patient.source == SOURCE,
                    Patient.external_id == line.patient,
                )
            )
        if patient_id is None:
            return
        try:
            outbox_reply(
                self.runtime,
                self.sender,
                practice_id=self.practice_id,
                patient_id=patient_id,
                text=line.text,
                channel=line.channel,
            )
        except Exception:  # the demo must never take the server down
            log.exception("demo traffic: a scripted message failed")

    def step(self) -> None:
        self.play(LIVE[self.position % len(LIVE)])
        self.position += 1

    def run(self, stop: threading.Event, interval: float) -> None:
        while not stop.wait(interval):
            self.step()
