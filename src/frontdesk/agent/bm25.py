"""Okapi BM25 over a few hundred or thousand passages, in plain Python.

Why not a library: a practice's knowledge base is small (tens of documents, hundreds of
passages), so an inverted index of dicts scores a question in well under a millisecond; the
well-kept library (``bm25s``) would bring numpy and scipy into every install for no measurable
gain, and ``rank-bm25`` has not been released since 2022. The formula is the Lucene variant
(non-negative idf), checked against hand-computed values in ``tests/unit/test_kb_retrieval.py``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

K1 = 1.2
B = 0.75


class BM25:
    def __init__(self, documents: Sequence[Sequence[str]], k1: float = K1, b: float = B) -> None:
        self.k1 = k1
        self.b = b
        self.count = len(documents)
        self.lengths = [len(d) for d in documents]
        self.average_length = (sum(self.lengths) / self.count) if self.count else 0.0
        self.postings: dict[str, list[tuple[int, int]]] = {}
        for index, document in enumerate(documents):
            for term, tf in Counter(document).items():
                self.postings.setdefault(term, []).append((index, tf))

    def document_frequency(self, term: str) -> int:
        return len(self.postings.get(term, ()))

    def idf(self, term: str) -> float:
        """ln(1 + (N - df + 0.5) / (df + 0.5)): never negative, highest for unseen terms."""
        df = self.document_frequency(term)
        return math.log(1.0 + (self.count - df + 0.5) / (df + 0.5))

    def term_scores(self, term: str, idf: float | None = None) -> dict[int, float]:
        """Each document's BM25 contribution for ``term`` (documents without it are absent).
        ``idf`` overrides the term's own, so a synonym can count as the word it stands for."""
        postings = self.postings.get(term)
        if not postings:
            return {}
        idf = self.idf(term) if idf is None else idf
        avg = self.average_length or 1.0
        out: dict[int, float] = {}
        for index, tf in postings:
            norm = self.k1 * (1.0 - self.b + self.b * self.lengths[index] / avg)
            out[index] = idf * tf * (self.k1 + 1.0) / (tf + norm)
        return out

    def scores(self, query: Sequence[str]) -> dict[int, float]:
        """BM25 of each document that shares a term with ``query`` (a bag of terms)."""
        total: dict[int, float] = {}
        for term, qtf in Counter(query).items():
            for index, score in self.term_scores(term).items():
                total[index] = total.get(index, 0.0) + qtf * score
        return total
