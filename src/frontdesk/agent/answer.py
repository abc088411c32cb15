"""Extractive, cited answers from a practice's documents, or an honest "I don't have that".

The answer is made only of sentences copied from retrieved passages; nothing is generated. It is
given only when a passage covers what the question asks (weighted by how specific each word is)
and a sentence in it has the kind of fact asked for (an amount for "how much", a time or day for
"when", a number for "what number"). Otherwise the agent says the documents don't have it and
offers a person. Questions asking for clinical advice are declined towards the clinician; text
that tries to instruct the agent is ignored (dropped from questions, never quoted from documents).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from frontdesk.agent.guard import asks_for_clinical_advice, is_instruction
from frontdesk.agent.retrieval import Concept, KnowledgeIndex, Passage, Query, _Prepared
from frontdesk.agent.safety import is_crisis
from frontdesk.agent.text import (
    ABBREVIATIONS,
    detect_language,
    fold,
    sentences,
    stem,
    terms,
    words,
)

# Calibrated on the dev split of tests/eval/answers (see docs/QUALITY.md). In session 12, with
# texted sentences split at their question marks, 0.63 would have kept the declines (745 of 786
# over dev-test16, 485 answered right) and 0.6 answers 504 right for 735 declines; 0.6 stays,
# because above it the date in a story before "is it still happening?" no longer answers.
MIN_PASSAGE_COVERAGE = 0.5
MIN_SENTENCE_COVERAGE = 0.6
MAX_SENTENCES = 2
RANK_PENALTY = 0.01
CANDIDATES = 5

NOT_FOUND = {
    "en": (
        "I'm sorry, I don't have that information in the practice's documents, and I don't "
        "want to guess. Someone from the front desk can help: reply here and a person will "
        "follow up."
    ),
    "es": (
        "Lo siento, esa información no está en los documentos de la consulta y no quiero "
        "adivinar. Alguien de la recepción puede ayudarle: responda aquí y una persona le "
        "contactará."
    ),
}
CLINICAL = {
    "en": (
        "I can't give clinical or medical advice. Please talk with your clinician about this; "
        "the front desk can help you reach them or book a session. If you are in crisis, call or "
        "text 988, or call 911 in an emergency."
    ),
    "es": (
        "No puedo dar consejos clínicos ni médicos. Hable de esto con su terapeuta; la recepción "
        "puede ayudarle a comunicarse o a reservar una sesión. Si está en crisis, llame o envíe "
        "un mensaje al 988, o llame al 911 en una emergencia."
    ),
}


@dataclass(frozen=True)
class Citation:
    source: str
    section: str
    text: str

    def as_dict(self) -> dict[str, str]:
        return {"source": self.source, "section": self.section, "text": self.text}


@dataclass(frozen=True)
class Answer:
    answered: bool
    answer: str
    citations: tuple[Citation, ...]
    reason: str  # answered | crisis | not_found | clinical | instruction | empty
    language: str

    def as_dict(self) -> dict[str, Any]:
        """The public shape: exactly ``answered``, ``answer`` and ``citations``."""
        return {
            "answered": self.answered,
            "answer": self.answer,
            "citations": [c.as_dict() for c in self.citations],
        }


# Words of danger: a question that carries them and is not answered gets the reply that names
# 988 and 911, never the plain "I don't have that" (the crisis screen runs before this too).
_DANGER = re.compile(
    r"\bsuicid\w*|\bkill (?:myself|me)\b|\bend (?:my|it all)\b|\bself[- ]?harm|"
    r"\bhurt(?:ing)? (?:myself|me|someone)\b|\boverdos\w*|\bsuicidio|\bmatarme\b|"
    r"\bhacerme dano\b|\bquitarme la vida\b"
)


def decline(reason: str, language: str, question: str = "") -> Answer:
    lang = language if language in NOT_FOUND else "en"
    clinical = reason in ("clinical", "crisis") or _DANGER.search(fold(question)) is not None
    text = CLINICAL[lang] if clinical else NOT_FOUND[lang]
    return Answer(False, text, (), reason, lang)


# --- what kind of fact the question wants ------------------------------------------------------

_MONEY_Q = re.compile(
    r"\bhow much\b(?! (?:notice|time|warning|advance|ahead|earlier|longer|sooner))|"
    r"^(?:what|whats|what's)\b.*\b(?:cost|costs|price|fee|rate)\b|"
    r"\bcuant[oa]\b(?! (?:tiempo|anticipacion|antes|dias|horas|minutos|semanas))|"
    r"^(?:cual|que) es (?:el|la) (?:precio|costo|tarifa)|"
    r"\b(?:do|does|will) (?:you|they|it|the practice) (?:charge|cost|bill)\b|"
    r"\bis there (?:a|any) (?:fee|charge|cost)\b|\bcobran\b"
)
_MONEY_A = re.compile(
    r"\$\s?\d|\d+\s?(?:dollars|dolares|usd)|\bfree\b|\bgratis\b|\bgratuit|"
    r"\bno (?:charge|cost)\b|\bwaived\b|\bsin costo\b"
)
_TIME_Q = re.compile(
    r"\bwhen\b|\bwhat time\b|\bhow long\b|\bhow soon\b|\bhours\b|\bcuando\b|"
    r"\bque hora\b|\bhorario|\bhow much (?:notice|time|warning|advance|ahead)\b|"
    r"\bcuanto tiempo\b|\bcon cuanta anticipacion\b"
)
_TIME_A = re.compile(
    r"\d+[\s-]*(?:minutes?|hours?|days?|business days?|weeks?|months?|years?|a\.m\.|p\.m\.|am|pm|"
    r"minutos?|horas?|dias?|semanas?)\b|\d{1,2}:\d{2}|"
    r"\b(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|"
    r"weekday|weekend|daily|lunes|martes|miercoles|jueves|viernes|sabado|"
    r"domingo|before|after|within|closed|cerrad[oa]|day|days|dia|dias|"
    r"next|same|each|every|upon|during|cada)\b"
)
_NUMBER_Q = re.compile(
    r"\b(?:number|fax|numero)\b|"
    r"^(?:what|whats|what's|cual|which)\b(?! (?:time|hours?|days?)\b).*\b(?:phone|telefono)\b"
)
_NUMBER_A = re.compile(r"\(?\d{3}\)?[\s.-]?\d{3}[\s.-]?\d{4}|\b(?:988|911)\b")


_HOW_MANY_Q = re.compile(r"\bhow many\b|\bcuant[oa]s\b")


def _counts_what_was_asked(query: Query, sentence_text: str) -> bool:
    """For "how many X": a number right before X (or a word standing for it)."""
    tokens = words(sentence_text)
    wanted = {v for c in query.concepts for v in c.variants}
    for position, token in enumerate(tokens):
        if token.isdigit() and any(
            stem(t, query.language) in wanted for t in tokens[position + 1 : position + 4]
        ):
            return True
    return False


_ADDRESS_Q = re.compile(r"\bad+res+\b|\bdireccion\b|^where(?: is|'s| are)\b|^donde (?:esta|queda)")
_ADDRESS_A = re.compile(
    r"\b\d{1,5}\s+\w+(?:\s+\w+)?\s+(?:st|street|ave|avenue|rd|road|blvd|lane|way|drive|dr)\b"
)


# A sentence that states the kind of fact asked for mentions the question's word for that kind:
# "120 Harbor St" is the address even where the word "address" is not written.
_FACT_WORDS: tuple[tuple[re.Pattern[str], re.Pattern[str], frozenset[str]], ...] = (
    (
        _ADDRESS_Q,
        _ADDRESS_A,
        frozenset({"address", "adress", "addres", "direccion", "location", "ubicacion"}),
    ),
    (_NUMBER_Q, _NUMBER_A, frozenset({"number", "numero", "phone", "telefono"})),
)


def _implied(query: Query, sentence_text: str) -> frozenset[str]:
    """Stems a sentence mentions by stating the fact a question word asks for."""
    q, a = fold(query.text).strip(" ¿¡"), fold(sentence_text)
    found: set[str] = set()
    for asks, states, names in _FACT_WORDS:
        if asks.search(q) and states.search(a):
            for concept in query.concepts:
                if fold(concept.word) in names:
                    found.update(concept.asked)
    return frozenset(found)


# "Which bus goes to the Elm Ave office?" asks for a bus: the word right after "which" or
# "what" names what is asked, and a passage that says everything else (the office's address)
# but not that does not answer it.
_FOCUS = re.compile(
    r"\b(?:which|what|whats|what's|que|cual|cuales)\s+(?:kind of |kinds of |type of |sort of )?"
    r"([a-z]{3,})\b"
)


_FACT_FOCUS = frozenset(
    """time times hour hours day days date hora horas horario dia dias fecha""".split()  # noqa: SIM905
).union(*(names for _, _, names in _FACT_WORDS))


def _focus(query: Query) -> Concept | None:
    found = _FOCUS.search(fold(query.text))
    if found is None:
        return None
    word = found.group(1)
    if word in _FACT_FOCUS:
        return None  # a time, a number, an address: asked by its kind of fact (_type_ok)
    for concept in query.concepts:
        if fold(concept.word) == word:
            return concept
    return None


def _type_ok(question: str, sentence_text: str) -> bool:
    q, a = fold(question).strip(" ¿¡"), fold(sentence_text)
    if _ADDRESS_Q.search(q) and "email" not in q and not _ADDRESS_A.search(a):
        return False
    if _MONEY_Q.search(q) and not _MONEY_A.search(a):
        return False
    if _NUMBER_Q.search(q) and not _NUMBER_A.search(a):
        return False
    return not (_TIME_Q.search(q) and not _TIME_A.search(a))


# --- answering ---------------------------------------------------------------------------------


def strip_instructions(question: str) -> str:
    """The question without any sentence that tries to instruct the agent."""
    kept = [s for s in sentences(question.replace("\n", " ")) if not is_instruction(s)]
    if not kept and not is_instruction(question):
        return question
    return " ".join(kept)


def the_question(message: str) -> str:
    """The sentences of a message that ask (end in "?"), when it also tells a story: "My doctor
    wants to send a referral. Is there a fax number?" is asking for the fax number, and every
    word of the story would otherwise count as something the documents must mention."""
    parts = _texted_sentences(message)
    asking = [p for p in parts if p.rstrip().endswith("?")]
    if not asking or len(asking) == len(parts):
        return message
    return " ".join(asking)


# Patients text in lower case ("can i pay cash? some weeks i get paid in cash"), so a question
# mark ends a sentence whatever follows it; a full stop or "!" does where it ends no
# abbreviation ("my dr. said", "a.m.").
_TEXTED_END = re.compile(r"[.!?]+\s+")
_ABBREVIATED = frozenset(a.rstrip(".").lower() for a in ABBREVIATIONS) | frozenset(
    "vs jr sr etc no approx".split()  # noqa: SIM905
)
_INITIALS = re.compile(r"\w(\.\w)+")  # "a.m", "p.m", "e.g" before their last full stop


def _texted_sentences(message: str) -> list[str]:
    found: list[str] = []
    for sentence in sentences(message):
        start = 0
        for end in _TEXTED_END.finditer(sentence):
            before = sentence[start : end.start()].split()
            last = before[-1].lower() if before else ""
            if "?" not in end.group() and (last in _ABBREVIATED or _INITIALS.fullmatch(last)):
                continue
            found.append(sentence[start : end.end()].strip())
            start = end.end()
        if sentence[start:].strip():
            found.append(sentence[start:].strip())
    return found


def answer_question(index: KnowledgeIndex, question: str, language: str | None = None) -> Answer:
    question = " ".join(question.split())[:1000]
    lang = language if language in {"en", "es"} else detect_language(question)
    assert lang is not None
    asked = strip_instructions(question)
    if not asked.strip():
        return decline("instruction", lang)
    if is_crisis(asked):
        # Someone in danger (or asking for someone who is) gets the practice's own crisis
        # guidance, quoted and cited, whatever else they asked; without one (or without any
        # documents), the decline that names 988 and 911.
        return crisis_guidance(index, lang) or decline("crisis", lang, asked)
    if len(index) == 0:
        return decline("empty", lang, asked)
    if asks_for_clinical_advice(asked):
        return decline("clinical", lang)
    asking = the_question(asked)
    query = index.query(asking, lang)
    if len(query.concepts) < 2 and asking != asked:
        # "Is it still happening?" asks about what the story before it names.
        query = index.query(asked, lang)
    if not query.concepts:
        return decline("not_found", lang, asked)
    best: tuple[float, int, list[int], _Prepared] | None = None
    focus = _focus(query)
    for rank, hit in enumerate(index.search(query, CANDIDATES)):
        prepared = index.prepared[hit.index]
        if hit.coverage < MIN_PASSAGE_COVERAGE and not _implied(query, prepared.passage.text):
            continue
        chosen, score = _sentences_for(index, query, prepared)
        if focus is not None and chosen:
            said = prepared.heading_terms.union(*(prepared.sentence_terms[i] for i in chosen))
            if not any(v in said for v in focus.variants):
                continue
        score -= RANK_PENALTY * rank
        if chosen and score >= MIN_SENTENCE_COVERAGE and (best is None or score > best[0]):
            best = (score, rank, chosen, prepared)
    if best is None:
        return decline("not_found", lang, asked)
    _, _, chosen, prepared = best
    quoted = [prepared.sentences[i] for i in chosen]
    text = " ".join(_clean(s) for s in quoted)
    citation = Citation(prepared.passage.source, prepared.passage.section, text)
    return Answer(True, text, (citation,), "answered", lang)


_CRISIS_LINE = re.compile(r"\b(?:988|911)\b")
_ABOUT_CRISIS = re.compile(
    r"\b(?:crisis|crises|emergenc\w*|urgent\w*|suicid\w*|988|911|hotline|lifeline|danger\w*|"
    r"unsafe|safe|harm\w*|hurt\w*|kill\w*|die|dying|overdos\w*|after hours|night|weekend|"
    r"urgencia|emergencia|peligro|suicidio|suicida|morir\w*|muere|vivir|matar\w*|"
    r"linea de ayuda|help ?line)\b"
)
_CRISIS_QUERY = {"en": "crisis emergency 988 911", "es": "crisis emergencia 988 911"}


def crisis_guidance(index: KnowledgeIndex, language: str) -> Answer | None:
    """The practice's passage on what to do in a crisis (the best match that names 988 or 911),
    its sentences that name them quoted; None when the documents have none."""
    query = index.query(_CRISIS_QUERY.get(language, _CRISIS_QUERY["en"]), language)
    for hit in index.search(query, CANDIDATES):
        prepared = index.prepared[hit.index]
        quoted = [s for s in prepared.sentences if _CRISIS_LINE.search(s)][:MAX_SENTENCES]
        if quoted:
            text = " ".join(_clean(s) for s in quoted)
            citation = Citation(prepared.passage.source, prepared.passage.section, text)
            return Answer(True, text, (citation,), "crisis", language)
    return None


def retrieved_passages(
    index: KnowledgeIndex, question: str, language: str, limit: int = 3
) -> list[Passage]:
    """The passages that best match ``question`` (at most ``limit``), for a language model to
    phrase an answer from; instructions inside the question are dropped first, as above."""
    asked = strip_instructions(" ".join(question.split())[:1000])
    if not asked.strip() or len(index) == 0:
        return []
    query = index.query(asked, language)
    if not query.concepts:
        return []
    found: list[Passage] = []
    for hit in index.search(query, CANDIDATES):
        if hit.coverage >= MIN_PASSAGE_COVERAGE:
            found.append(index.prepared[hit.index].passage)
        if len(found) >= limit:
            break
    return found


def nearest_passages(
    index: KnowledgeIndex, question: str, language: str, limit: int = 3
) -> list[Passage]:
    """The passages ranked first for ``question`` whether or not they cover it (a question the
    extractive answer declined): for a language model that must say when they do not answer."""
    asked = strip_instructions(" ".join(question.split())[:1000])
    if not asked.strip() or len(index) == 0:
        return []
    query = index.query(the_question(asked), language)
    if not query.concepts:
        return []
    return [index.prepared[hit.index].passage for hit in index.search(query, limit)]


def _clean(sentence: str) -> str:
    return re.sub(r"^[-*•]\s+", "", sentence).strip()


def _sentences_for(
    index: KnowledgeIndex, query: Query, prepared: _Prepared
) -> tuple[list[int], float]:
    """The best one or two sentences of a passage for the query, and how well they cover it
    (read under the passage's heading and, weaker, its document's title)."""
    heading = prepared.heading_terms
    title = prepared.title_terms
    # A section whose heading alone is what was asked ("Dirección"): its sentences answer it.
    heading_answers = index.coverage(query, heading) >= MIN_PASSAGE_COVERAGE
    heading_only = index.coverage(query, heading, title)
    how_many = _HOW_MANY_Q.search(fold(query.text)) is not None
    scored: list[tuple[float, float, int]] = []  # (order, coverage, sentence)
    fallback: list[tuple[float, float, int]] = []
    about_crisis = _ABOUT_CRISIS.search(fold(query.text)) is not None
    for i, stated in enumerate(prepared.sentence_terms):
        text = prepared.sentences[i]
        if not _type_ok(query.text, text) or (how_many and not _counts_what_was_asked(query, text)):
            continue
        if not about_crisis and _CRISIS_LINE.search(text):
            # 988 and 911 answer a question about a crisis or an emergency; they are not the
            # number to text about an appointment ("is there a number I can text instead?").
            continue
        present = stated | _implied(query, text)
        covered = index.coverage(query, present | heading, title)
        # Within a passage, prefer the sentence that itself says what the heading does not.
        order = covered + 0.05 * (covered - heading_only)
        if index.coverage(query, present) > 0.0:
            scored.append((order, covered, i))
        elif heading_answers:
            fallback.append((order, covered, i))
    scored = scored or fallback[:1]
    if not scored:
        return [], 0.0
    scored.sort(key=lambda item: (-item[0], item[2]))
    best_order, covered, first = scored[0]
    single = covered
    chosen = [first]
    for other_order, _, other in scored[1:]:
        if len(chosen) >= MAX_SENTENCES:
            break
        union = prepared.sentence_terms[first] | prepared.sentence_terms[other]
        combined = index.coverage(query, union | heading, title)
        if (
            other_order >= best_order - 0.005  # as good as the first: give both
            or combined > covered + 0.05  # it adds what the first lacks
            or (len(prepared.sentences[first]) < 60 and abs(other - first) == 1)
        ):
            chosen.append(other)
            covered = max(covered, combined)
    # One sentence that says it all beats two that say it together.
    return sorted(chosen), single + 0.5 * (covered - single)


def passage_terms(text: str, language: str) -> frozenset[str]:
    return frozenset(terms(text, language))
