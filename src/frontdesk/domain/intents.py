"""What a patient's message asks for: one intent per message, and the order in which they win.

Safety wins when a message carries several intents: ``crisis`` > ``clinical_concern`` >
``opt_out`` > everything else. Among the rest, an appointment action beats a question (a
patient who writes "can't make it thursday, can we do friday?" wants the move), so the full
order is (``help``, asking what to do or for a person, is more specific than ``question``)::

    crisis > clinical_concern > opt_out > reschedule > cancel > confirm > opt_in
           > help > question > other

``Understanding`` is the plain result the agent's ``understand()`` returns; it lives here so
services can take it without importing the agent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum


class Intent(StrEnum):
    CONFIRM = "confirm"
    CANCEL = "cancel"
    RESCHEDULE = "reschedule"
    QUESTION = "question"
    CLINICAL_CONCERN = "clinical_concern"
    CRISIS = "crisis"
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"
    OTHER = "other"


PRIORITY: tuple[Intent, ...] = (
    Intent.CRISIS,
    Intent.CLINICAL_CONCERN,
    Intent.OPT_OUT,
    Intent.RESCHEDULE,
    Intent.CANCEL,
    Intent.CONFIRM,
    Intent.OPT_IN,
    Intent.HELP,
    Intent.QUESTION,
    Intent.OTHER,
)
_RANK = {intent: rank for rank, intent in enumerate(PRIORITY)}

# Intents that hand the conversation to staff.
HANDOFF_INTENTS = frozenset({Intent.CRISIS, Intent.CLINICAL_CONCERN})


def rank(intent: Intent) -> int:
    """Position in ``PRIORITY``: lower wins."""
    return _RANK[intent]


def strongest(intents: Iterable[Intent]) -> Intent:
    """The intent that wins among several found in one message (``other`` when none)."""
    return min(intents, key=rank, default=Intent.OTHER)


@dataclass(frozen=True, slots=True)
class Evidence:
    """Why an intent was found: the rule or lexicon entry (``rule``) and the words it matched.

    ``matched`` holds the patient's own words: show it to staff, never write it to logs.
    """

    intent: Intent
    rule: str
    matched: str = ""


@dataclass(frozen=True, slots=True)
class Understanding:
    """One message understood: exactly one ``intent`` plus what the caller needs to act on it.

    - ``language``: ``en`` or ``es``.
    - ``confidence``: 0..1; rules and keywords are near 1, the model's guesses lower.
    - ``evidence``: every rule that fired, strongest first (for the staff inbox).
    - ``is_keyword``: the whole message is one carrier/reply keyword (STOP, HELP, C, Y, N, R...).
    - ``carrier_cancel``: the whole message is "CANCEL", which SMS carriers treat as an
      opt-out; the caller records the opt-out and may tell the patient how to cancel the
      appointment on another consented channel.
    - ``carrier_opt_in``: the whole message is a word the carrier treats as an opt-in
      (START, UNSTOP, and YES, which is also a confirm): if the channel was opted out, the
      carrier has already lifted its block.
    - ``asks_for_person`` / ``asks_if_bot``: the patient wants a human / asks whether this
      is an automated assistant.
    """

    intent: Intent
    language: str
    confidence: float
    evidence: tuple[Evidence, ...] = field(default=())
    is_keyword: bool = False
    carrier_cancel: bool = False
    carrier_opt_in: bool = False
    asks_for_person: bool = False
    asks_if_bot: bool = False

    @property
    def hands_off(self) -> bool:
        """Whether the conversation goes to staff (crisis or clinical concern)."""
        return self.intent in HANDOFF_INTENTS
