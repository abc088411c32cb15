"""A second, semantic crisis screen (``pip install 'frontdesk[embeddings]'``).

The rules in ``safety.py`` name the lexicon line that fired; they miss a crisis said in words
no line has yet. This screen embeds the message (all-MiniLM-L6-v2, offline, see
``embeddings.py``) and compares it with the exemplars in ``lexicons/crisis_exemplars.tsv``
(the crisis and non-crisis rows of ``train.tsv`` and ``tests/eval/intents/labelled.tsv``).
A message is flagged when the mean similarity of its ``NEIGHBOURS`` nearest crisis exemplars
is at least ``THRESHOLD`` and at least ``MARGIN`` above that of its nearest non-crisis ones.

It only ever raises a message to crisis (``understand`` never lets it lower one), and without
the extra :func:`load_screen` returns None: the rules alone decide, as before. The numbers
behind the constants (calibrated on ``labelled.tsv`` alone, leave-one-out; measured on the
blind sets and everyday text) are in ``docs/QUALITY.md``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from importlib import resources
from typing import TYPE_CHECKING, Any

from frontdesk.agent import embeddings, safety
from frontdesk.agent.keywords import normalize
from frontdesk.agent.tsv import data_lines

if TYPE_CHECKING:
    from frontdesk.agent.retrieval import Encoder

log = logging.getLogger(__name__)

THRESHOLD = 0.45
MARGIN = 0.0
NEIGHBOURS = 3
RULE = "embeddings:crisis-screen"


@dataclass(frozen=True, slots=True)
class Exemplar:
    id: str
    crisis: bool
    text: str


@dataclass(frozen=True, slots=True)
class ScreenHit:
    """Why the screen flagged a message: its nearest crisis exemplar (an id, never text)."""

    exemplar: str
    similarity: float
    margin: float

    @property
    def rule(self) -> str:
        return f"{RULE}:{self.exemplar}"


def read_exemplars(source: str) -> list[Exemplar]:
    """``id<TAB>crisis|not_crisis<TAB>source<TAB>text`` lines; ``#`` comments skipped."""
    found = []
    for number, line in data_lines(source):
        parts = line.split("\t")
        if len(parts) != 4 or parts[1] not in {"crisis", "not_crisis"}:
            raise ValueError(
                f"line {number}: expected id<TAB>crisis|not_crisis<TAB>source<TAB>text"
            )
        found.append(Exemplar(parts[0], parts[1] == "crisis", parts[3]))
    return found


def shipped_exemplars() -> list[Exemplar]:
    lexicons = resources.files("frontdesk.agent.lexicons")
    return read_exemplars(lexicons.joinpath("crisis_exemplars.tsv").read_text(encoding="utf-8"))


def screen_text(text: str) -> str:
    """What the screen reads, of a message and of an exemplar alike: the normalised words with
    benign idioms hidden (as the crisis rules read them)."""
    return safety.unmask(normalize(text))


class CrisisScreen:
    """Nearest-neighbour similarity to crisis exemplars against non-crisis ones."""

    def __init__(
        self,
        encoder: Encoder,
        exemplars: Sequence[Exemplar],
        *,
        threshold: float = THRESHOLD,
        margin: float = MARGIN,
        neighbours: int = NEIGHBOURS,
    ) -> None:
        import numpy as np  # present wherever sentence-transformers is

        crisis = [e for e in exemplars if e.crisis]
        calm = [e for e in exemplars if not e.crisis]
        if not crisis or not calm:
            raise ValueError("the screen needs crisis and non-crisis exemplars")
        self.encoder = encoder
        self.threshold, self.margin, self.neighbours = threshold, margin, neighbours
        self._ids = [e.id for e in crisis]
        self._crisis: Any = np.asarray(encoder.encode([e.text for e in crisis]), dtype=np.float32)
        self._calm: Any = np.asarray(encoder.encode([e.text for e in calm]), dtype=np.float32)

    def check(self, text: str) -> ScreenHit | None:
        """A hit when ``text`` reads like a crisis (``screen_text`` of a message: the shipped
        exemplars are read the same way)."""
        import numpy as np

        if not text.strip():
            return None
        vector = np.asarray(self.encoder.encode([text])[0], dtype=np.float32)
        to_crisis = self._crisis @ vector
        to_calm = self._calm @ vector
        k = self.neighbours
        near_crisis = float(np.sort(to_crisis)[-k:].mean())
        near_calm = float(np.sort(to_calm)[-k:].mean())
        margin = near_crisis - near_calm
        if near_crisis < self.threshold or margin < self.margin:
            return None
        nearest = self._ids[int(np.argmax(to_crisis))]
        return ScreenHit(nearest, round(near_crisis, 3), round(margin, 3))


_lock = threading.Lock()
_loaded: list[CrisisScreen | None] = []


def load_screen() -> CrisisScreen | None:
    """The shared screen, built once per process; None when the embeddings extra is absent
    (or fails to load: the rules alone then decide, and a warning says so)."""
    if not embeddings.available():
        return None
    with _lock:
        if not _loaded:
            screen: CrisisScreen | None = None
            try:
                encoder = embeddings.load_encoder()
                if encoder is not None:
                    exemplars = [replace(e, text=screen_text(e.text)) for e in shipped_exemplars()]
                    screen = CrisisScreen(encoder, exemplars)
            except Exception:  # the extra is optional: never let it break the rules
                log.warning("semantic crisis screen unavailable; rules alone", exc_info=True)
            _loaded.append(screen)
        return _loaded[0]
