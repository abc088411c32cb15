"""The safety screen: crisis first, then clinical concerns. Recall first.

Rules and lexicons only (``lexicons/crisis_*.txt``, ``clinical_*.txt``), read against the
normalised words of a message (``keywords.normalize``), in English and Spanish at once (a
Spanish speaker may write one English phrase, and the reverse):

1. ordinary uses of alarming words are hidden (``benign_*.txt``: "this traffic is killing
   me", "me muero de ganas"), narrowly: a threat from a partner or a family member is never
   hidden ("my husband will kill me if he finds out" stays a crisis);
2. any crisis line that matches makes the message a crisis. Indirect lines marked soft
   ("I won't be around next week") are dropped only when the message also gives an ordinary
   reason (``reasons.txt``: a trip, a move, feeling better...);
3. otherwise any clinical line (symptoms, mood, medication, side effects, therapy content)
   makes it a clinical concern.

Nothing here is clever on purpose: each decision names the lexicon line that made it.
"""

from __future__ import annotations

from functools import lru_cache

from frontdesk.agent import lexicons
from frontdesk.agent.keywords import normalize
from frontdesk.domain.intents import Evidence, Intent

_CRISIS = ("crisis_en", "crisis_es")
_BENIGN = ("benign_en", "benign_es")
_CLINICAL = ("clinical_en", "clinical_es")


@lru_cache(maxsize=256)
def unmask(normalized: str) -> str:
    """``normalized`` with benign idioms hidden (remembered for the last few messages: the
    rules, the intent model and the crisis screens each read a message this way)."""
    text = normalized
    for name in _BENIGN:
        text = lexicons.load(name).mask(text)
    return text


def crisis_evidence(normalized: str) -> list[Evidence]:
    """The crisis lines a normalised message matches (empty when none)."""
    text = unmask(normalized)
    found: list[Evidence] = []
    soft: list[Evidence] = []
    for name in _CRISIS:
        hit = lexicons.load(name).search_all(text)
        for h in hit:
            (soft if h.soft else found).append(Evidence(Intent.CRISIS, h.rule, h.matched))
    if found:
        return found + soft
    if soft and lexicons.load("reasons").search(text) is None:
        return soft
    return []


def clinical_evidence(normalized: str) -> list[Evidence]:
    """The clinical lines a normalised message matches (empty when none), medicine taken as
    prescribed hidden (``as_prescribed.txt``)."""
    text = lexicons.load("as_prescribed").mask(normalized)
    found: list[Evidence] = []
    for name in _CLINICAL:
        hit = lexicons.load(name).search(text)
        if hit is not None:
            found.append(Evidence(Intent.CLINICAL_CONCERN, hit.rule, hit.matched))
    return found


def screen(normalized: str) -> list[Evidence]:
    """Crisis evidence if any, else clinical evidence, else nothing."""
    return crisis_evidence(normalized) or clinical_evidence(normalized)


def is_crisis(text: str) -> bool:
    """Whether a raw message is a crisis (convenience for callers outside ``understand``)."""
    return bool(crisis_evidence(normalize(text)))
