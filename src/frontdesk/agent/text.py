"""Words for retrieval: normalising, stop words, stemming (English and Spanish), sentences."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import snowballstemmer

_WORD = re.compile(r"[a-z0-9]+(?:['\u2019][a-z]+)?")


def _set(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Function words, and the words every question to a front desk uses ("do you", "can I",
# "tell me"), which say nothing about what is being asked.
STOP_EN = _set(
    """a about above after again against all also am an and any are aren't as at be because
    been before being below between both but by can can't cannot could couldn't did didn't do
    does doesn't doing don't down during each few for from further had hadn't has hasn't have
    haven't having he he'd he'll he's her here here's hers herself him himself his how how's i
    i'd i'll i'm i've if in into is isn't it it's its itself let's me more most mustn't my
    myself no nor not of off on once only or other ought our ours ourselves out over own same
    shan't she she'd she'll she's should shouldn't so some such than that that's the their
    theirs them themselves then there there's these they they'd they'll they're they've this
    those through to too under until up very was wasn't we we'd we'll we're we've were weren't
    what what's when when's where where's which while who who's whom why why's with won't would
    wouldn't you you'd you'll you're you've your yours yourself yourselves
    u ur pls plz please thanks thank hi hello hey ok okay just get got know tell need want
    like would much many any anything something someone somebody one ones really also still
    yes yeah im ive id dont cant wont isnt doesnt whats wheres hows
    practice office clinic harbor light counseling there here us ya will shall
    without within per via across around near toward towards upon onto among along inside
    outside since unless whether either neither every each still even ever anyone anybody
    everyone everybody nobody getting gets gotten yall lol haha guys um uh hmm btw basically
    literally honestly kinda sorta anyway anyways q yet now supposed far ahead probably
    totally ugh gonna wanna sooner middle special hoping lands roughly beforehand told figure
    wondering whatever stuff thing things bit"""
)
STOP_ES = _set(
    """a al algo algun alguna algunas alguno algunos ante antes aqui asi aun bien cada como con
    contra cual cuales cualquier cuando de del desde donde dos el ella ellas ellos en entre era
    eran es esa esas ese eso esos esta estaba estan estar este esto estos estoy fue fueron ha
    hace hacen hacer han hasta hay la las le les lo los mas me mi mis mucho muy nada ni no nos
    nosotros o otra otras otro otros para pero poco por porque puede pueden puedo que quien se
    sea ser si sin sobre solo son su sus tambien tan te tengo tiene tienen todo todos tu tus un
    una unas uno unos usted ustedes y ya yo hola gracias favor quiero quisiera saber necesito
    ustedes consultorio clinica oficina cuanto cuanta cuantos cuantas hago hacer hace haga
    debo puedo podria"""
)

_SPANISH_HINTS = _set(
    """el la los las de del que y en por para con una un es son como cual cuando donde hay
    puedo tienen tiene usted ustedes mi mis su sus se cuanto cuesta qué cómo cuál dónde
    cuándo horario cita citas sesion sesiones seguro pago tengo lo le me aceptan acepta
    pagar quiero necesito hola gracias"""
)
_ENGLISH_HINTS = _set(
    """the and is are do does you your what when where how can i my of to for with have
    is it that this there which who"""
)


def fold(text: str) -> str:
    """Lower case without accents: 'Sesión' and 'sesion' are one word."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def words(text: str) -> list[str]:
    """Folded words; a possessive "'s" is dropped ("tomorrow's" is "tomorrow")."""
    out = []
    for w in _WORD.findall(fold(text)):
        w = w.replace("\u2019", "'")
        out.append(w[:-2] if w.endswith("'s") and w not in STOP_EN else w)
    return out


def detect_language(text: str) -> str:
    """'es' or 'en', from function words (cheap, and enough to choose stemmer and replies)."""
    tokens = words(text)
    if re.search(r"[¿¡ñ]", text.lower()):
        return "es"
    spanish = sum(1 for t in tokens if t in _SPANISH_HINTS)
    english = sum(1 for t in tokens if t in _ENGLISH_HINTS)
    return "es" if spanish > english else "en"


@lru_cache(maxsize=4)
def _stemmer(language: str) -> snowballstemmer.basestemmer.BaseStemmer:
    return snowballstemmer.stemmer("spanish" if language == "es" else "english")


@lru_cache(maxsize=50_000)
def stem(word: str, language: str) -> str:
    stemmed: str = _stemmer(language).stemWord(word.replace("'", ""))
    return stemmed


def is_stop(word: str, language: str) -> bool:
    return word in (STOP_ES if language == "es" else STOP_EN) or word in STOP_EN


def terms(text: str, language: str) -> list[str]:
    """The stems retrieval matches on: content words only."""
    return [stem(w, language) for w in words(text) if not is_stop(w, language)]


def content_words(text: str, language: str) -> list[str]:
    return [w for w in words(text) if not is_stop(w, language)]


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'“(¿¡]?[A-Z0-9ÁÉÍÓÚÑ])")
ABBREVIATIONS = ("Dr.", "Mr.", "Mrs.", "Ms.", "St.", "Ave.", "Ste.", "e.g.", "i.e.", "a.m.")


def sentences(text: str) -> list[str]:
    """Split a passage into sentences; list items and lines stay whole."""
    out: list[str] = []
    for line in text.split("\n"):
        line = line.strip()
        if not line:
            continue
        pieces = _SENTENCE_END.split(line)
        merged: list[str] = []
        for piece in pieces:
            if merged and merged[-1].endswith(ABBREVIATIONS):
                merged[-1] = f"{merged[-1]} {piece}"
            else:
                merged.append(piece)
        out.extend(p.strip() for p in merged if p.strip())
    return out


def edit_distance_at_most(a: str, b: str, limit: int) -> bool:
    """Whether the Levenshtein distance (with transpositions) of a and b is <= limit."""
    if abs(len(a) - len(b)) > limit:
        return False
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > limit:
            return False
        previous2, previous = previous, current
    return previous[-1] <= limit
