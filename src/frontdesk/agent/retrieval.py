"""Finding the passages that answer a question: BM25 (with typo-tolerant, synonym-expanded
questions), optionally fused with sentence embeddings by reciprocal rank fusion.

The index is built once per practice from its stored chunks and kept by the knowledge service;
building and searching touch no database and no network.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol

from frontdesk.agent import synonyms
from frontdesk.agent.bm25 import BM25
from frontdesk.agent.guard import is_instruction
from frontdesk.agent.text import (
    STOP_EN,
    STOP_ES,
    detect_language,
    edit_distance_at_most,
    fold,
    is_stop,
    sentences,
    stem,
    terms,
    words,
)

RRF_K = 60
SYNONYM_WEIGHT = 0.7
TYPO_WEIGHT = 0.9
EXTRA_WEIGHT = 0.3
TITLE_CREDIT = 0.7
NUMBER_WEIGHT = 0.25

# Verbs and nouns that every kind of question carries; on their own they ask nothing.
GENERIC_EN = frozenset(
    """make come go goes going see say find use leave morning afternoon night tonight tomorrow
    today yesterday week thought thoughts include included includes including contain happen
    happens happened look give work way time
    thing things question ask asking wondering wonder curious info information able
    possible allowed let help mean means available offer offers provide provides explain sure
    soon right exactly actually maybe currently usually normally also kind sort type tomorrow
    today quick happening coming came went goes left start starting begin pretty super
    instead people folks real therapy hey hi hello sorry thanks please nah prob probably
    gotta gonna wanna hafta yall lol""".split()  # noqa: SIM905
)
GENERIC_ES = frozenset(
    """hablar saber decir pregunta preguntar informacion posible puede puedo poder hacer hago
    hace venir vengo viene ir voy va van vamos ver veo dice encontrar usar dejar salir manana
    tarde noche hoy ayer semana pensar pienso cosa cosas ayuda ayudar significa disponible
    explicar pronto exactamente realmente quizas actualmente normalmente tambien tipo rapido
    alguien gente tiempo entrar ahi alli alla aqui aca atender atenderla atenderlo atiende
    atienden vaya vayan fui terapia hola buenas buenos oye oiga disculpe disculpa perdon
    ahorita soy""".split()  # noqa: SIM905
)
# A patient may mix languages, so a frame word of either counts as one; a misspelt one is
# only looked for in the question's own language ("venmo" is not a misspelt "vengo").
GENERIC = GENERIC_EN | GENERIC_ES


# Question frames: "how long" asks for a time, "last minute" means late. Rewritten before the
# words are read, so that the frame's words do not count as things the documents must mention.
FRAMES = [
    # "How long does that usually take": the "take" of a duration is not "do you take Aetna".
    (re.compile(r"\bhow (long|much time)\b((?:\s+\S+){0,6}?)\s+take\b"), r" how \1\2 "),
    (re.compile(r"\bhow (?:long|fast|soon|quickly|often|much|many)(?: does it take)?\b"), " "),
    (re.compile(r"\blast[- ]minute\b|\bshort notice\b"), " late "),
    (
        re.compile(
            r"\b(?:don'?t|do not|didn'?t|did not|not|never|doesn'?t) (?:show|turn)(?: up)?\b"
        ),
        " no-show ",
    ),
    (re.compile(r"\bno[- ]?show\b"), " no-show "),
    (re.compile(r"\bin[- ]person\b"), " in-person "),
    (re.compile(r"\be-?mail address\b"), " email "),
    (re.compile(r"\b(?:tele)?phone number\b"), " phone "),
    (re.compile(r"\bzip(?: code)?\b|\bpostal code\b"), " address "),
    (re.compile(r"\b(?:show up|arrive|arriving|running|be|am|i'm) late\b"), " late "),
    (re.compile(r"\b(?:forms?|methods?|ways?|types?|kinds?) of payment\b"), " payment "),
    (re.compile(r"\bout[- ]of[- ]pocket\b"), " self-pay "),
    (re.compile(r"\b(\d+) ?min\b"), r" \1 minutes "),
    (re.compile(r"\b(?:get|got|be|getting|gets) hit with\b"), " charged "),
    (re.compile(r"\b(?:one[- ]time|free) pass\b"), " waived "),
    (re.compile(r"\bafter work\b"), " evening "),
    # A clock time in a question is the patient's day ("I get off at 5:30"), not a topic.
    (re.compile(r"\b\d{1,2}:\d{2}(?:\s*(?:am|pm|a\.m\.|p\.m\.))?"), " "),
    # "my daughter is 16", "I'm 16": an age, as for "16-year-old" below.
    (
        re.compile(
            r"\b(?:daughter|son|kid|child|teen|teenager|she|he|i|i'm|im|i am)(?:'s| is| am)? "
            r"(?:\d{1,2})\b(?! (?:minutes|min|mins|hours|hrs|days|weeks|months|dollars|am|pm))"
        ),
        " age ",
    ),
    # Holidays by their dates and everyday names, as a practice's holiday list names them.
    (
        re.compile(r"\bjuly (?:4|4th|fourth)\b|\bfourth of july\b|\b4th of july\b"),
        " independence day ",
    ),
    (re.compile(r"\bchristmas eve\b"), " december 24 "),
    (
        re.compile(r"\b(?:friday|day) after thanksgiving\b|\bblack friday\b"),
        " thanksgiving day after ",
    ),
    # The same day, in either language, is a late cancellation's notice.
    (re.compile(r"\bsame[- ]day\b"), " late "),
    (re.compile(r"\b(?:el )?mismo dia\b|\bultima hora\b"), " menos de 24 horas "),
    (
        re.compile(r"\bcon cuant[oa] (?:tiempo|anticipacion)(?: de anticipacion)?\b"),
        " anticipacion ",
    ),
    # "my 12-year-old", "16 yo": an age, which documents state as a limit, never as that number.
    (re.compile(r"\b\d{1,2}[- ]?(?:years?|yrs?)[- ]?olds?\b|\b\d{1,2} ?yo\b"), " age "),
]


# Patients' shorthand for words documents spell out.
SHORTHAND = {
    "appt": "appointment",
    "appts": "appointments",
    "apt": "appointment",
    "wk": "week",
    "wks": "weeks",
    "thru": "through",
    "tmrw": "tomorrow",
    "tmr": "tomorrow",
    "msg": "message",
    "msgs": "messages",
    "txt": "text",
    "meds": "medication",
    "rx": "prescription",
    "yo": "years old",
    "yrs": "years",
    "mins": "minutes",
    "hrs": "hours",
    "pymt": "payment",
    "bcbs": "blue cross blue shield",
    "uhc": "unitedhealthcare",
    "dr": "doctor",
    "info": "information",
    "tele": "telehealth",
    "vm": "voicemail",
    "rn": "right now",
    "hr": "hour",
    "st": "street",
    "ave": "avenue",
    # Days and months as patients shorten them ("mon-thurs", "dec 24"): documents spell them.
    "mon": "monday",
    "tue": "tuesday",
    "tues": "tuesday",
    "wed": "wednesday",
    "thu": "thursday",
    "thur": "thursday",
    "thurs": "thursday",
    "fri": "friday",
    "sat": "saturday",
    "sun": "sunday",
    "jan": "january",
    "feb": "february",
    "aug": "august",
    "sept": "september",
    "oct": "october",
    "nov": "november",
    "dec": "december",
}
# Spanish texting, read only in a Spanish question ("hasta q hora", "pa la cita", "toy
# nerviosa"): in English "q" or "pa" mean something else.
SHORTHAND_ES = {
    "q": "que",
    "k": "que",
    "pa": "para",
    "xq": "porque",
    "pq": "porque",
    "tmb": "tambien",
    "tb": "tambien",
    "toy": "estoy",
    "ta": "esta",
    "ud": "usted",
    "uds": "ustedes",
    "x": "por",
    "d": "de",
    "dra": "doctora",
}
_SHORTHAND = re.compile(r"\b(" + "|".join(SHORTHAND) + r")\b")
_SHORTHAND_ES = re.compile(r"\b(" + "|".join(SHORTHAND_ES) + r")\b")


def reframe(
    question: str, language: str = "en", known: Callable[[str], bool] = lambda word: False
) -> str:
    """The question with patients' shorthand spelt out and its frames rewritten. A short form
    the documents use themselves (``known``: "Elm Ave", "Harbor St") is left as it is."""
    text = fold(question).replace("\u2019", "'")

    def spelt(table: dict[str, str]) -> Callable[[re.Match[str]], str]:
        return lambda m: m.group(1) if known(m.group(1)) else table[m.group(1)]

    if language == "es":
        text = _SHORTHAND_ES.sub(spelt(SHORTHAND_ES), text)
    text = _SHORTHAND.sub(spelt(SHORTHAND), text)
    for pattern, replacement in FRAMES:
        text = pattern.sub(replacement, text)
    return text


# SMS spellings of question words that are too short to correct by edit distance.
SHORT_TYPOS = frozenset(
    """wat wut wht whn whr hw abt bc cuz tho pls plz thx ur ure yr""".split()  # noqa: SIM905
)


class Encoder(Protocol):
    """Turns texts into unit-length vectors (the embeddings extra)."""

    def encode(self, texts: Sequence[str]) -> list[list[float]]: ...


@dataclass(frozen=True)
class Passage:
    source: str
    title: str
    section: str
    text: str


@dataclass
class _Prepared:
    passage: Passage
    language: str
    sentences: list[str]
    sentence_terms: list[frozenset[str]]
    heading_terms: frozenset[str]  # the section's heading path
    title_terms: frozenset[str]  # the document's title
    all_terms: frozenset[str]  # sentences and heading (not the title)


@dataclass
class Concept:
    """One thing the question asks about, and the stems that count as mentioning it."""

    word: str
    variants: dict[str, float]
    weight: float = 0.0
    asked: set[str] = field(default_factory=set)


@dataclass
class Query:
    text: str
    language: str
    concepts: list[Concept] = field(default_factory=list)
    # Frame words ("how does a video session *work*"): they help rank, never count as asked.
    extras: list[str] = field(default_factory=list)

    @property
    def total_weight(self) -> float:
        return sum(c.weight for c in self.concepts)


@dataclass(frozen=True)
class Hit:
    index: int
    score: float
    coverage: float


@lru_cache(maxsize=20_000)
def _misspelt_frame_word(word: str, language: str) -> bool:
    if len(word) < 4:
        return word in SHORT_TYPOS
    stops = STOP_ES if language == "es" else STOP_EN
    generic = GENERIC_ES if language == "es" else GENERIC_EN
    return any(
        edit_distance_at_most(word, g, 1)
        for g in (*generic, *stops)
        if abs(len(g) - len(word)) <= 1 and len(g) >= 4
    )


@dataclass
class _Shelf:
    """The passages of one language: words are matched within a language, never across."""

    bm25: BM25
    members: list[int]  # positions in KnowledgeIndex.prepared
    surfaces: dict[str, list[str]]  # first letter -> known words, for typo correction
    stems: dict[str, list[str]]  # first letter -> known stems


class KnowledgeIndex:
    """Passages of one practice, searchable by BM25 (and embeddings when given an encoder)."""

    def __init__(self, passages: Sequence[Passage], encoder: Encoder | None = None) -> None:
        self.prepared: list[_Prepared] = []
        documents: dict[str, list[list[str]]] = {}
        members: dict[str, list[int]] = {}
        surfaces: dict[str, dict[str, set[str]]] = {}
        for passage in passages:
            language = detect_language(passage.text)
            # Sentences that try to instruct the agent are not facts: never indexed or quoted.
            kept = [s for s in sentences(passage.text) if not is_instruction(s)]
            if not kept:
                continue
            heading = terms(passage.section, language)
            title = terms(passage.title, language)
            sentence_terms = [frozenset(terms(s, language)) for s in kept]
            body = [t for s in kept for t in terms(s, language)]
            documents.setdefault(language, []).append(body + heading + heading + title)
            members.setdefault(language, []).append(len(self.prepared))
            all_terms = frozenset(heading).union(*sentence_terms)
            self.prepared.append(
                _Prepared(
                    passage,
                    language,
                    kept,
                    sentence_terms,
                    frozenset(heading),
                    frozenset(title) - frozenset(heading),
                    all_terms,
                )
            )
            known = surfaces.setdefault(language, {})
            for w in words(" ".join([passage.title, passage.section, *kept])):
                if not is_stop(w, language) and len(w) >= 4 and not w.isdigit():
                    known.setdefault(w[0], set()).add(w)
        self.shelves: dict[str, _Shelf] = {}
        for language, docs in documents.items():
            bm25 = BM25(docs)
            stems: dict[str, set[str]] = {}
            for term in bm25.postings:
                if term and not term.isdigit():
                    stems.setdefault(term[0], set()).add(term)
            self.shelves[language] = _Shelf(
                bm25,
                members[language],
                {k: sorted(v) for k, v in surfaces.get(language, {}).items()},
                {k: sorted(v) for k, v in stems.items()},
            )
        self.encoder = encoder
        self._vectors: list[list[float]] = []
        if encoder is not None and self.prepared:
            self._vectors = encoder.encode(
                [f"{p.passage.section}. {' '.join(p.sentences)}" for p in self.prepared]
            )

    def __len__(self) -> int:
        return len(self.prepared)

    def _shelf(self, language: str) -> _Shelf:
        """The question's language; a practice with no document in it falls back to its
        largest language (an answer can only quote what is there)."""
        if language in self.shelves:
            return self.shelves[language]
        if self.shelves:
            return max(self.shelves.values(), key=lambda shelf: len(shelf.members))
        return _Shelf(BM25([]), [], {}, {})

    # --- questions ---------------------------------------------------------------------------

    def query(self, question: str, language: str | None = None) -> Query:
        language = language if language in {"en", "es"} else detect_language(question)
        assert language is not None
        query = Query(question, language)
        shelf = self._shelf(language)
        bm25 = shelf.bm25
        seen: set[str] = set()
        related = synonyms.groups(language)

        def documented(word: str) -> bool:
            return bm25.document_frequency(stem(word, language)) > 0

        for word in words(reframe(question, language, documented)):
            if word in GENERIC:
                query.extras.append(stem(word, language))
                continue
            if is_stop(word, language) or len(word) < 2:
                continue
            base = stem(word, language)
            if base in seen or self._near_generic(shelf, word, base, language):
                continue
            seen.add(base)
            variants: dict[str, float] = {base: 1.0}
            if bm25.document_frequency(base) == 0 and not word.isdigit():
                for fixed in self._corrections(shelf, word):
                    variants.setdefault(stem(fixed, language), TYPO_WEIGHT)
                for fixed in self._stem_corrections(shelf, base):
                    variants.setdefault(fixed, TYPO_WEIGHT)
                if len(variants) == 1 and base not in related and len(base) >= 5:
                    # A misspelt patient word the documents never use ("adress"): its
                    # synonyms may still be there ("located", "where").
                    for known in related:
                        if known[0] == base[0] and edit_distance_at_most(base, known, 1):
                            variants.setdefault(known, TYPO_WEIGHT)
            for known in list(variants):
                for other in related.get(known, ()):
                    variants.setdefault(other, SYNONYM_WEIGHT)
            present = [bm25.idf(v) for v in variants if bm25.document_frequency(v)]
            concept = Concept(word, variants, asked={base})
            concept.weight = max(present) if present else bm25.idf("\x00unseen")
            if not present and any(ch.isdigit() for ch in word):
                # The patient's own figures ("I owe $295", "10 min late", "at 2am") that the
                # documents never state: what is asked is the rule around them.
                concept.weight *= NUMBER_WEIGHT
            query.concepts.append(concept)
        return query

    @staticmethod
    def _near_generic(shelf: _Shelf, word: str, base: str, language: str) -> bool:
        """A misspelt frame word ("hapens", "wat") that the documents do not contain."""
        if shelf.bm25.document_frequency(base) or len(word) < 3:
            return False
        return _misspelt_frame_word(word, language)

    @staticmethod
    def _stem_corrections(shelf: _Shelf, base: str) -> list[str]:
        """Known stems one edit away ("acept" for "accept"), for words whose forms differ."""
        if len(base) < 4:
            return []
        return [
            known
            for known in shelf.stems.get(base[0], ())
            if known != base and len(known) >= 4 and edit_distance_at_most(base, known, 1)
        ]

    @staticmethod
    def _corrections(shelf: _Shelf, word: str) -> list[str]:
        if len(word) < 4:
            return []
        limit = 1 if len(word) < 9 else 2
        return [
            w
            for w in shelf.surfaces.get(word[0], ())
            if w != word and edit_distance_at_most(word, w, limit)
        ]

    # --- ranking -----------------------------------------------------------------------------

    def search(self, query: Query, limit: int = 5) -> list[Hit]:
        if not self.prepared or not query.concepts:
            return []
        shelf = self._shelf(query.language)
        local: dict[int, float] = {}
        for concept in query.concepts:
            # The words asked add up; a synonym stands in for them at the asked word's idf.
            best: dict[int, float] = {}
            for variant, weight in concept.variants.items():
                if variant in concept.asked:
                    continue
                for index, score in shelf.bm25.term_scores(variant, concept.weight).items():
                    best[index] = max(best.get(index, 0.0), weight * score)
            for variant in concept.asked:
                for index, score in shelf.bm25.term_scores(variant, concept.weight).items():
                    best[index] = best.get(index, 0.0) + score
            for index, score in best.items():
                local[index] = local.get(index, 0.0) + score
        for extra in query.extras:
            for index, score in shelf.bm25.term_scores(extra).items():
                if index in local:
                    local[index] += EXTRA_WEIGHT * score
        scores = {shelf.members[i]: score for i, score in local.items()}
        ranked = sorted(scores, key=lambda i: (-scores[i], i))
        if self.encoder is not None and self._vectors:
            ranked = self._fused(query, ranked)
        return [
            Hit(
                i,
                scores.get(i, 0.0),
                self.coverage(query, self.prepared[i].all_terms, self.prepared[i].title_terms),
            )
            for i in ranked[:limit]
        ]

    def _fused(self, query: Query, lexical: list[int]) -> list[int]:
        assert self.encoder is not None
        [vector] = self.encoder.encode([query.text])
        similarity = [sum(a * b for a, b in zip(vector, v, strict=True)) for v in self._vectors]
        dense = sorted(range(len(self.prepared)), key=lambda i: (-similarity[i], i))[:20]
        fused: dict[int, float] = {}
        for ranking in (lexical[:20], dense):
            for rank, index in enumerate(ranking):
                fused[index] = fused.get(index, 0.0) + 1.0 / (RRF_K + rank + 1)
        return sorted(fused, key=lambda i: (-fused[i], i))

    @staticmethod
    def coverage(
        query: Query, present: frozenset[str], weak: frozenset[str] = frozenset()
    ) -> float:
        """Share of the question's weight that ``present`` mentions (synonyms count less, and
        words only in ``weak``, the document's title, count less again)."""
        total = query.total_weight
        if total <= 0:
            return 0.0
        got = 0.0
        for concept in query.concepts:
            credit = max((w for v, w in concept.variants.items() if v in present), default=0.0)
            if weak:
                credit = max(
                    credit,
                    TITLE_CREDIT
                    * max((w for v, w in concept.variants.items() if v in weak), default=0.0),
                )
            got += concept.weight * credit
        return got / total


def unit(vector: Sequence[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]
