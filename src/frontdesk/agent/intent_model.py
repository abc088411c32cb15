"""A small linear model for the messages no rule decides: multinomial naive Bayes over word
and character n-grams, trained at first use from ``lexicons/train.tsv`` (shipped, written by
the project) and the retired blind sets (``lexicons/retired.tsv``; about two seconds on one
core, nothing downloaded).

Naive Bayes is a linear classifier in log space; it was chosen over a logistic regression
because it trains in one counting pass in pure Python (no scikit-learn/numpy dependency) and
scores a short message in well under a millisecond. Its probabilities are over-confident, so
``predict`` tempers them by the number of features.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from functools import cache
from importlib import resources

from frontdesk.agent.keywords import normalize
from frontdesk.agent.tsv import data_lines, retired_examples
from frontdesk.domain.intents import Intent

_ALPHA = 0.3
_LABELS: tuple[Intent, ...] = tuple(Intent)


def features(normalized: str) -> Counter[str]:
    """Word 1-2-grams and in-word character 3-4-grams of a normalised message."""
    words = [w for w in normalized.split() if w != "."]
    feats: Counter[str] = Counter()
    prev = "<s>"
    for w in words:
        feats["w:" + w] += 1
        feats["b:" + prev + " " + w] += 1
        prev = w
        padded = f"<{w}>"
        for n in (3, 4):
            for i in range(len(padded) - n + 1):
                feats["c:" + padded[i : i + n]] += 1
    feats["b:" + prev + " </s>"] += 1
    return feats


@dataclass(frozen=True, slots=True)
class Prediction:
    intent: Intent
    confidence: float


class NaiveBayes:
    def __init__(self, examples: list[tuple[Intent, str]]) -> None:
        class_docs: Counter[Intent] = Counter()
        counts: dict[str, list[float]] = {}
        totals = [0.0] * len(_LABELS)
        index = {label: i for i, label in enumerate(_LABELS)}
        for intent, text in examples:
            class_docs[intent] += 1
            k = index[intent]
            for feat, n in features(normalize(text)).items():
                row = counts.setdefault(feat, [0.0] * len(_LABELS))
                row[k] += n
                totals[k] += n
        vocab = len(counts)
        docs = sum(class_docs.values())
        self.prior = [
            math.log((class_docs[label] + 1) / (docs + len(_LABELS))) for label in _LABELS
        ]
        denominators = [math.log(t + _ALPHA * vocab) for t in totals]
        self.weights: dict[str, tuple[float, ...]] = {
            feat: tuple(math.log(row[k] + _ALPHA) - denominators[k] for k in range(len(_LABELS)))
            for feat, row in counts.items()
        }

    def predict(self, normalized: str) -> Prediction:
        scores = list(self.prior)
        seen = 0
        weights = self.weights
        for feat, n in features(normalized).items():
            row = weights.get(feat)
            if row is None:
                continue
            seen += n
            for k, w in enumerate(row):
                scores[k] += n * w
        if not seen:
            return Prediction(Intent.OTHER, 0.0)
        temper = max(1.0, seen / 4.0)
        top = max(scores)
        exps = [math.exp((s - top) / temper) for s in scores]
        best = max(range(len(scores)), key=scores.__getitem__)
        return Prediction(_LABELS[best], exps[best] / sum(exps))


def read_examples(source: str) -> list[tuple[Intent, str]]:
    """``intent<TAB>text`` lines; ``#`` comments and blank lines skipped."""
    examples = []
    for number, line in data_lines(source):
        label, sep, text = line.partition("\t")
        if not sep:
            raise ValueError(f"line {number}: expected intent<TAB>text")
        examples.append((Intent(label.strip()), text.strip()))
    return examples


@cache
def model() -> NaiveBayes:
    """The model trained on the shipped examples and the retired blind sets (once per
    process)."""
    lexicons = resources.files("frontdesk.agent.lexicons")
    examples = read_examples(lexicons.joinpath("train.tsv").read_text(encoding="utf-8"))
    retired = lexicons.joinpath("retired.tsv").read_text(encoding="utf-8")
    examples += [(Intent(intent), text) for intent, text in retired_examples(retired)]
    return NaiveBayes(examples)
