"""Is a generated answer supported by the passages it cites? A deterministic check, run on
every answer a language model phrases; an answer that fails is never sent (the extractive
answer is, instead).

A sentence is supported when it cites at least one of the passages it was given, and against
those cited passages:

- every number in it (prices, times, days, phone numbers, percentages) appears in them;
- every capitalised word inside it (names of people, places, insurers) appears in them;
- at least ``MIN_WORDS_FOUND`` of its content words appear in them (compared by their first
  five letters, so "cancels" matches "cancellation");
- it does not deny what they say: a sentence with a negation needs a cited passage with one.

It cannot tell a fluent paraphrase that reverses a condition from a faithful one; the numbers,
names and negations are what most often goes wrong, and they are checked exactly.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

MIN_WORDS_FOUND = 0.75
_MARKER = re.compile(r"\[(\d{1,2})\]")
_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
_NEGATION = re.compile(
    r"\b(?:not|no|never|none|cannot|can't|won't|don't|doesn't|isn't|aren't|without|"
    r"nunca|ningun\w*|sin|tampoco)\b|n't\b"
)
_STOP = frozenset(
    """
    about above after again also always another because been before being both could does doing
    down during each either every from have having here however into itself just like more most
    much must only other ours over same should some such than that their them then there these
    they this those through under until very were what when where which while whom will with
    would your yours you'll we'll we're you're please thanks thank patient patients practice
    para pero como esta este esto estos estas desde donde cuando porque sobre tiene tienen puede
    pueden usted ustedes nuestro nuestra nuestros nuestras también todos todas
    """.split()  # noqa: SIM905 (a list this long reads better as text)
)


@dataclass(frozen=True)
class Verdict:
    supported: bool
    reason: str  # "supported", or what failed (never quoting the text: it may be logged)
    text: str = ""  # the answer without its [n] markers
    cited: tuple[int, ...] = ()


def check(answer: str, passages: Mapping[int, str]) -> Verdict:
    """``passages``: the text of each passage the model was given, by its number."""
    by_number = dict(passages)
    sentences = _sentences(answer)
    if not sentences:
        return Verdict(False, "empty")
    cited_all: list[int] = []
    for sentence in sentences:
        numbers = [int(n) for n in _MARKER.findall(sentence)]
        if not numbers:
            return Verdict(False, "a sentence cites no passage")
        if any(n not in by_number for n in numbers):
            return Verdict(False, "a sentence cites a passage it was not given")
        source = " ".join(by_number[n] for n in numbers)
        problem = _unsupported(_MARKER.sub(" ", sentence), source)
        if problem:
            return Verdict(False, problem)
        cited_all += [n for n in numbers if n not in cited_all]
    text = " ".join(" ".join(_MARKER.sub(" ", s).split()) for s in sentences)
    text = re.sub(r"\s+([.,!?;:])", r"\1", text)
    return Verdict(True, "supported", text, tuple(cited_all))


_ABBREVIATION = re.compile(r"\b(Dr|Mr|Mrs|Ms|St|Ave|Dra|Sr|Sra|etc|e\.g|i\.e|approx)\.", re.I)


def _sentences(answer: str) -> list[str]:
    # "Dr. Smith" is not the end of a sentence: hide its period while splitting.
    text = _ABBREVIATION.sub(lambda m: m.group(1) + "\u2024", " ".join(answer.split()))
    # "… $75. [1]" → "… $75 [1]." so each marker stays with the sentence it follows.
    text = re.sub(r"([.!?])\s*((?:\[\d{1,2}\]\s*)+)", r" \2\1 ", text)
    parts = re.split(r"(?<=[.!?])\s+", text)
    return [p.replace("\u2024", ".").strip() for p in parts if p.strip(" .!?")]


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower().replace("\u2019", "'"))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _unsupported(sentence: str, source: str) -> str | None:
    folded_source = _fold(source)
    source_numbers = {n.replace(",", "") for n in _NUMBER.findall(folded_source)}
    for number in _NUMBER.findall(_fold(sentence)):
        if number.replace(",", "") not in source_numbers:
            return "a number the passages do not state"
    source_words = {w for w in _WORD.findall(folded_source)}
    source_stems = {w[:5] for w in source_words}
    words = _WORD.findall(sentence)
    for position, word in enumerate(words):
        if position > 0 and word[:1].isupper() and _fold(word) not in source_words:
            return "a name the passages do not mention"
    content = [w for w in (_fold(w) for w in words) if len(w) >= 4 and w not in _STOP]
    if content:
        found = sum(1 for w in content if w[:5] in source_stems)
        if found / len(content) < MIN_WORDS_FOUND:
            return "words the passages do not use"
    if _NEGATION.search(_fold(sentence)) and not _NEGATION.search(folded_source):
        return "a negation the passages do not make"
    return None
