"""Finding the passages that answer a question: BM25 (with typo-tolerant, synonym-expanded
questions), optionally fused with sentence embeddings by reciprocal rank fusion.

The index is built once per practice from its stored chunks and kept by the knowledge service;
building and searching touch no database and no network.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
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

# Verbs and nouns that every kind of question carries; on their own they ask nothing.
GENERIC = frozenset(
    """make come go goes going see say find use leave morning afternoon night tonight tomorrow
    today yesterday week thought thoughts happen happens happened look give work way time
    thing things question ask asking wondering wonder curious info information able
    possible allowed let help mean means available offer offers provide provides explain sure
    soon right exactly actually maybe currently usually normally also kind sort type tomorrow
    today quick hablar saber decir pregunta preguntar informacion posible puede""".split()  # noqa: SIM905
)


# Question frames: "how long" asks for a time, "last minute" means late. Rewritten before the
# words are read, so that the frame's words do not count as things the documents must mention.
FRAMES = [
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
    (re.compile(r"\b(?:forms?|methods?|ways?|types?|kinds?) of payment\b"), " payment "),
]


def reframe(question: str) -> str:
    text = fold(question).replace("\u2019", "'")
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


class KnowledgeIndex:
    """Passages of one practice, searchable by BM25 (and embeddings when given an encoder)."""

    def __init__(self, passages: Sequence[Passage], encoder: Encoder | None = None) -> None:
        self.prepared: list[_Prepared] = []
        documents: list[list[str]] = []
        surfaces: dict[str, set[str]] = {}
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
            documents.append(body + heading + heading + title)
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
            for w in words(" ".join([passage.title, passage.section, *kept])):
                if not is_stop(w, language) and len(w) >= 4 and not w.isdigit():
                    surfaces.setdefault(w[0], set()).add(w)
        self.bm25 = BM25(documents)
        self._surfaces = {k: sorted(v) for k, v in surfaces.items()}
        stems: dict[str, set[str]] = {}
        for term in self.bm25.postings:
            if term and not term.isdigit():
                stems.setdefault(term[0], set()).add(term)
        self._stems = {k: sorted(v) for k, v in stems.items()}
        self.encoder = encoder
        self._vectors: list[list[float]] = []
        if encoder is not None and self.prepared:
            self._vectors = encoder.encode(
                [f"{p.passage.section}. {' '.join(p.sentences)}" for p in self.prepared]
            )

    def __len__(self) -> int:
        return len(self.prepared)

    # --- questions ---------------------------------------------------------------------------

    def query(self, question: str, language: str | None = None) -> Query:
        language = language if language in {"en", "es"} else detect_language(question)
        assert language is not None
        query = Query(question, language)
        seen: set[str] = set()
        related = synonyms.groups(language)
        for word in words(reframe(question)):
            if word in GENERIC:
                query.extras.append(stem(word, language))
                continue
            if is_stop(word, language) or len(word) < 2:
                continue
            base = stem(word, language)
            if base in seen or self._near_generic(word, base, language):
                continue
            seen.add(base)
            variants: dict[str, float] = {base: 1.0}
            if self.bm25.document_frequency(base) == 0 and not word.isdigit():
                for fixed in self._corrections(word):
                    variants.setdefault(stem(fixed, language), TYPO_WEIGHT)
                for fixed in self._stem_corrections(base):
                    variants.setdefault(fixed, TYPO_WEIGHT)
            for known in list(variants):
                for other in related.get(known, ()):
                    variants.setdefault(other, SYNONYM_WEIGHT)
            merged = next((c for c in query.concepts if base in c.variants), None)
            if merged is not None:  # "insurance plans": one thing asked, in two words
                merged.variants[base] = 1.0
                merged.asked.add(base)
                continue
            present = [self.bm25.idf(v) for v in variants if self.bm25.document_frequency(v)]
            concept = Concept(word, variants, asked={base})
            concept.weight = max(present) if present else self.bm25.idf("\x00unseen")
            query.concepts.append(concept)
        return query

    def _near_generic(self, word: str, base: str, language: str) -> bool:
        """A misspelt frame word ("hapens", "wat") that the documents do not contain."""
        if self.bm25.document_frequency(base) or len(word) < 3:
            return False
        if len(word) < 4:
            return word in SHORT_TYPOS
        stops = STOP_ES if language == "es" else STOP_EN
        return any(
            edit_distance_at_most(word, g, 1)
            for g in (*GENERIC, *stops)
            if abs(len(g) - len(word)) <= 1 and len(g) >= 4
        )

    def _stem_corrections(self, base: str) -> list[str]:
        """Known stems one edit away ("acept" for "accept"), for words whose forms differ."""
        if len(base) < 4:
            return []
        return [
            known
            for known in self._stems.get(base[0], ())
            if known != base and len(known) >= 4 and edit_distance_at_most(base, known, 1)
        ]

    def _corrections(self, word: str) -> list[str]:
        if len(word) < 4:
            return []
        limit = 1 if len(word) < 9 else 2
        return [
            w
            for w in self._surfaces.get(word[0], ())
            if w != word and edit_distance_at_most(word, w, limit)
        ]

    # --- ranking -----------------------------------------------------------------------------

    def search(self, query: Query, limit: int = 5) -> list[Hit]:
        if not self.prepared or not query.concepts:
            return []
        scores: dict[int, float] = {}
        for concept in query.concepts:
            # The words asked add up; a synonym stands in for them at the asked word's idf.
            best: dict[int, float] = {}
            for variant, weight in concept.variants.items():
                if variant in concept.asked:
                    continue
                for index, score in self.bm25.term_scores(variant, concept.weight).items():
                    best[index] = max(best.get(index, 0.0), weight * score)
            for variant in concept.asked:
                for index, score in self.bm25.term_scores(variant, concept.weight).items():
                    best[index] = best.get(index, 0.0) + score
            for index, score in best.items():
                scores[index] = scores.get(index, 0.0) + score
        for extra in query.extras:
            for index, score in self.bm25.term_scores(extra).items():
                if index in scores:
                    scores[index] += EXTRA_WEIGHT * score
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
