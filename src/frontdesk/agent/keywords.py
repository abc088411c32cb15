"""Carrier and reply keywords, and the plain form every rule reads a message in.

``bare_keyword(text)`` answers whether the WHOLE message is one keyword (the way carriers
match them: case-insensitive, surrounding spaces and a trailing ``.``/``!`` ignored):

- opt-out (carrier): STOP, STOPALL, STOP ALL, UNSUBSCRIBE, END, QUIT, REVOKE, OPTOUT, OPT OUT,
  and CANCEL (see ``CARRIER_CANCEL``); Spanish BAJA, ALTO, PARAR, DETENER;
- opt-in: START, UNSTOP (Spanish ALTA, REANUDAR); YES is a confirm that carriers also read as
  an opt-in (``carrier_opt_in``);
- help: HELP, INFO, AYUDA;
- confirm: C, Y, YES, YEP, OK, CONFIRM, CONFIRMED, SI, SÍ, CONFIRMO, CONFIRMAR and 👍 ✅ 👌;
- cancel: N, NO, CANCELAR (not a carrier keyword) and 👎 ❌;
- reschedule: R, RESCHEDULE, CAMBIAR, REPROGRAMAR.

``normalize(text)`` gives the lower-case, accent-free, shorthand-expanded, typo-corrected
words the rules match (``"Cant make it 2mrw 😢"`` → ``"can not make it tomorrow emo_sad"``).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from frontdesk.domain.intents import Intent

CARRIER_CANCEL = "cancel"


@dataclass(frozen=True, slots=True)
class Keyword:
    word: str
    intent: Intent
    carrier_opt_in: bool = False


# fmt: off
_KEYWORDS: dict[str, tuple[Intent, bool]] = {
    # opt-out: carrier list (Twilio, CTIA, FCC) and Spanish equivalents
    **{w: (Intent.OPT_OUT, False) for w in (
        "stop", "stopall", "stop all", "unsubscribe", "end", "quit", "revoke", "optout",
        "opt out", "opt-out", "unsub", "baja", "alto", "parar", "detener",
    )},
    CARRIER_CANCEL: (Intent.OPT_OUT, False),
    "start": (Intent.OPT_IN, True),
    "unstop": (Intent.OPT_IN, True),
    "alta": (Intent.OPT_IN, False),
    "reanudar": (Intent.OPT_IN, False),
    "iniciar": (Intent.OPT_IN, False),
    "help": (Intent.HELP, False),
    "info": (Intent.HELP, False),
    "ayuda": (Intent.HELP, False),
    "yes": (Intent.CONFIRM, True),
    **{w: (Intent.CONFIRM, False) for w in (
        "c", "y", "yep", "yup", "yeah", "ok", "okay", "k", "confirm", "confirmed", "si",
        "confirmo", "confirmar", "confirmado", "emo_yes",
    )},
    **{w: (Intent.CANCEL, False) for w in ("n", "no", "nope", "cancelar", "emo_no")},
    **{w: (Intent.RESCHEDULE, False) for w in ("r", "reschedule", "cambiar", "reprogramar")},
}

# fmt: on

# Emoji read as words. Thumbs/checks confirm, thumbs-down/crosses decline.
# fmt: off
_EMOJI = {
    "👍": " emo_yes ", "✅": " emo_yes ", "👌": " emo_yes ", "✔": " emo_yes ", "☑": " emo_yes ",
    "🙌": " emo_yes ", "💯": " emo_yes ", "🆗": " emo_yes ",
    "👎": " emo_no ", "❌": " emo_no ", "🚫": " emo_no ", "✖": " emo_no ", "⛔": " emo_no ",
    "😢": " emo_sad ", "😭": " emo_sad ", "😞": " emo_sad ", "😔": " emo_sad ", "💔": " emo_sad ",
    "🙁": " emo_sad ", "☹": " emo_sad ",
    "😂": " emo_laugh ", "🤣": " emo_laugh ", "😆": " emo_laugh ", "😅": " emo_laugh ",
    "🙏": " thanks ", "❤": " emo_heart ", "😊": " emo_smile ", "🙂": " emo_smile ",
    "😀": " emo_smile ", "😁": " emo_smile ",
    # Read by the crisis rules and the crisis screen: young patients say the worst in emoji.
    "🔪": " emo_knife ", "🩸": " emo_blood ", "🪦": " emo_grave ", "⚰": " emo_grave ",
    "🪢": " emo_rope ", "💊": " emo_pill ", "🔫": " emo_gun ", "🙃": " emo_ironic ",
}
# fmt: on
_EMOJI_RE = re.compile("|".join(re.escape(e) for e in sorted(_EMOJI, key=len, reverse=True)))
# Skin tones, variation selectors and joiners say nothing about intent.
_EMOJI_MODIFIERS = re.compile("[\U0001f3fb-\U0001f3ff\ufe0e\ufe0f\u200d]")


def _emoji_words(text: str) -> str:
    return _EMOJI_RE.sub(lambda m: _EMOJI[m.group(0)], _EMOJI_MODIFIERS.sub("", text))


_QUOTES = "\"'\u201c\u201d\u2018\u2019"
_KEYWORD_STRIP = re.compile(f"^[\\s{_QUOTES}]+|[\\s.!{_QUOTES}]+$")


def bare_keyword(text: str) -> Keyword | None:
    """The keyword the whole message is, or None (``"Stop."`` → STOP, ``"stop please"`` → None)."""
    body = _KEYWORD_STRIP.sub("", text)
    # "HELP??" still asks for help; "stop?" or "C?" asks something, it is no keyword.
    asked = body.rstrip("? \t")
    questioned = asked != body
    body = _KEYWORD_STRIP.sub("", asked).lstrip("\u00bf")
    if not body or len(body) > 16:
        return None
    body = _emoji_words(body).strip()
    word = " ".join(_fold(body).split())
    found = _KEYWORDS.get(word)
    if questioned and (found is None or found[0] is not Intent.HELP):
        return None
    if found is None and body and set(body.split()) <= {"emo_yes"}:
        found = _KEYWORDS["emo_yes"]
    if found is None and body and set(body.split()) <= {"emo_no"}:
        found = _KEYWORDS["emo_no"]
    if found is None:
        return None
    intent, opt_in = found
    return Keyword(word=word, intent=intent, carrier_opt_in=opt_in)


# A reply that starts with a reminder's letter and goes on ("C, see you then", "R. anything
# next week?", "N - flare day, sorry"): the letter answers the reminder, the rest explains.
# Read on the raw text, because normalize() takes "r" and "n" for SMS shorthand ("are",
# "and"). The letter must be followed by punctuation or a polite word, so "r u open?" and
# "n u?" stay shorthand; "R.I.P." is not a reply.
_LEADING_LETTER = re.compile(
    r"^\s*(?:>+\s*)?(?:reply\s*:?\s*)?([crn])"
    r"(?:\s*[.,!;:>\-\u2013\u2014]+(?!\s*[a-z]\.)"
    r"|\s+(?=(?:pls|please|plz|porfa|por favor|thanks|thank you|thx|ty|gracias|sorry)\b))",
    re.IGNORECASE,
)


# The reminder quoted back before the answer ('"Reply C to confirm, R to reschedule, or N if
# you can't come" N. we're moving', "> Reminder: your appointment … at 3:00 PM. N - surgery"):
# the letter comes after it. Tried in order, the longest quote first.
_QUOTE_END = r"[\s.\u2026\"'\u201d\u2019>\-\u2013\u2014]*"
_QUOTED_REMINDER = tuple(
    re.compile(pattern + _QUOTE_END, re.IGNORECASE | re.DOTALL)
    for pattern in (
        r"^.*?\breply c to confirm\b.*?\bcan['\u2019]?t come\b",
        r"^.*?\breply c to confirm\b.*?\bto cancel\b",
        r"^.*?\breply c to confirm\b.*?\bto reschedule\b",
        r"^\W*reminder:.*?\b\d{1,2}(?::\d\d)? ?(?:am|pm)\b",
    )
)
# Right after the quoted reminder a lone letter is the answer, alone ('"… N to cancel." C') or
# followed by words without punctuation ('"… N to cancel" N we dont need it anymore'): nothing
# else there is shorthand ("c u", "r ya" stay so).
_LETTER_AFTER_QUOTE = re.compile(
    r"^\s*([crn])(?:\s*[.!]?\s*$|\s+(?=[a-z])(?!u\b|ur\b|ya\b))", re.IGNORECASE
)
# The letter the patient settles on after asking about it ("Reply R? ok R. Friday won't work").
_OK_LETTER = re.compile(
    r"^\s*(?:reply\s+[crn]\s*\?\s*)?(?:ok|okay|k|fine|alright|then)[,.!]?\s+([crn])"
    r"(?:\s*[.,!;:\-\u2013\u2014]+|\s*$)",
    re.IGNORECASE,
)
# A letter after the quoted instruction, at the very end ('"Reply C to confirm" >> C').
_TRAILING_LETTER = re.compile(
    r"\breply c to confirm\b.*(?:>>|\u00bb|-{2,}|:)\s*([crn])\s*[.!]?\s*$",
    re.IGNORECASE | re.DOTALL,
)


def leading_reply_letter(text: str) -> Keyword | None:
    """The reply letter a longer message starts with (``"N - flare day"`` → N, cancel), or
    gives right after the reminder's own words when the patient quoted them first or last."""
    found = (
        _LEADING_LETTER.match(text)
        or _OK_LETTER.match(text)
        or _TRAILING_LETTER.search(text)
        or _after_quote(text)
    )
    if found is None:
        return None
    letter = found.group(1).lower()
    return Keyword(word=letter, intent=_KEYWORDS[letter][0], carrier_opt_in=False)


def _after_quote(text: str) -> re.Match[str] | None:
    for quote in _QUOTED_REMINDER:
        unquoted = quote.sub("", text, count=1)
        if unquoted != text and (
            found := _LEADING_LETTER.match(unquoted) or _LETTER_AFTER_QUOTE.match(unquoted)
        ):
            return found
    return None


def _fold(text: str) -> str:
    """Lower case without accents (``"SÍ"`` → ``"si"``); ``ñ`` becomes ``n``."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


# --- normalisation ----------------------------------------------------------------------------

# Whole-token rewrites: SMS shorthand, contractions written without apostrophes, misspellings
# common enough to list. Keys are already folded (lower case, no accents, no apostrophes).
# fmt: off
_SHORTHAND: dict[str, str] = {
    # time
    "2mrw": "tomorrow", "2moro": "tomorrow", "2morrow": "tomorrow", "tmrw": "tomorrow",
    "tmr": "tomorrow", "tmrrw": "tomorrow", "tomoz": "tomorrow", "tomorow": "tomorrow",
    "tommorow": "tomorrow", "tommorrow": "tomorrow", "tmw": "tomorrow", "2day": "today",
    "2nite": "tonight", "tonite": "tonight", "l8": "late", "l8r": "later", "b4": "before",
    "wk": "week", "nxt": "next", "mins": "minutes", "min": "minutes", "hr": "hour",
    "hrs": "hours", "thurs": "thursday", "thur": "thursday", "thu": "thursday",
    "tues": "tuesday", "tue": "tuesday", "weds": "wednesday",
    "mon": "monday", "fri": "friday",
    # contractions (apostrophes already removed)
    "cant": "can not", "cannot": "can not", "cnt": "can not", "cant't": "can not",
    "wont": "will not", "dont": "do not", "dnt": "do not", "didnt": "did not",
    "doesnt": "does not", "isnt": "is not", "arent": "are not", "wasnt": "was not",
    "werent": "were not", "couldnt": "could not", "shouldnt": "should not",
    "wouldnt": "would not", "havent": "have not", "hasnt": "has not", "aint": "is not",
    "im": "i am", "ive": "i have", "youre": "you are", "theyre": "they are",
    "whats": "what is", "wats": "what is", "thats": "that is", "theres": "there is",
    "hows": "how is", "wheres": "where is", "its": "it is", "hes": "he is", "shes": "she is",
    "gonna": "going to", "wanna": "want to", "gotta": "have to", "lemme": "let me",
    "ill": "i will", "itll": "it will", "youll": "you will", "youve": "you have",
    # chat shorthand
    "u": "you", "ur": "your", "yr": "your", "pls": "please", "plz": "please",
    "plez": "please", "thx": "thanks", "thnx": "thanks", "thanx": "thanks", "ty": "thanks",
    "tysm": "thanks", "tq": "thanks", "k": "ok", "kk": "ok", "okk": "ok", "okey": "ok",
    "okay": "ok", "okie": "ok", "oki": "ok", "yh": "yes", "ye": "yes", "yea": "yes",
    "yeah": "yes", "yep": "yes", "yup": "yes", "yas": "yes", "yess": "yes", "yesss": "yes",
    "ys": "yes", "nah": "no", "nope": "no", "naw": "no", "cya": "see you", "cu": "see you",
    "omw": "on my way", "idk": "i do not know", "rn": "right now", "asap": "as soon as possible",
    "cuz": "because", "coz": "because", "bc": "because", "b": "be", "r": "are", "n": "and",
    "w": "with", "tho": "though", "thru": "through", "wat": "what", "wht": "what",
    "wen": "when", "whn": "when", "abt": "about", "bout": "about", "prob": "probably",
    "msg": "message", "msgs": "messages", "txt": "text", "txts": "texts", "txting": "texting",
    "texting": "texting", "appt": "appointment", "appts": "appointments",
    "apt": "appointment", "apmt": "appointment", "appoinment": "appointment",
    "appointmnt": "appointment", "sesh": "session", "resched": "reschedule",
    "cancle": "cancel", "cancell": "cancel", "cancelation": "cancellation",
    "gr8": "great", "fone": "phone", "ppl": "people", "bday": "birthday",
    "dr": "doctor", "doc": "doctor", "meds": "medication", "med": "medication",
    "therapist's": "therapist", "bf": "boyfriend", "gf": "girlfriend",
    # crisis slang (read as what it means)
    "kms": "kill myself", "kys": "kill yourself", "unalive": "kill", "unaliving": "killing",
    "sewerslide": "suicide", "kil": "kill", "kiled": "killed", "suicde": "suicide",
    "sucide": "suicide", "suicid": "suicide",
    "od": "overdose", "oded": "overdosed",
    # Spanish shorthand
    "q": "que", "kiero": "quiero", "kieres": "quieres", "ke": "que", "qiero": "quiero",
    "xq": "porque", "pq": "porque", "porq": "porque", "tb": "tambien", "tmb": "tambien",
    "mna": "manana", "mnn": "manana", "mnna": "manana", "xfa": "por favor",
    "porfa": "por favor", "xfavor": "por favor", "msj": "mensaje", "msjs": "mensajes",
    "dnd": "donde", "pa": "para", "nse": "no se", "ntp": "no te preocupes",
    "ne": "any", "nemore": "anymore", "nymore": "anymore",
    # Spanish written as it sounds (added after blind38-41): k for c/qu, s for c, no h, b for v
    "kien": "quien", "kienes": "quienes", "kanselar": "cancelar", "kanselo": "cancelo",
    "kansele": "cancele", "sita": "cita", "sitas": "citas", "ablar": "hablar", "ablo": "hablo",
    "berdad": "verdad", "makina": "maquina", "resibir": "recibir", "sakenme": "saquenme",
    "bibir": "vivir", "nesesito": "necesito", "nesesitar": "necesitar", "nesecito": "necesito",
    "aser": "hacer", "aora": "ahora", "grasias": "gracias", "asta": "hasta",
    "kuando": "cuando", "komo": "como", "pal": "para el",
    # English dropped g's (added after blind38-41)
    "comin": "coming", "givin": "giving", "goin": "going", "txtin": "texting",
    "textin": "texting", "nothin": "nothing", "somthing": "something", "sumthing": "something",
    "thinkin": "thinking", "doin": "doing", "feelin": "feeling", "hurtin": "hurting",
    "tryin": "trying", "talkin": "talking", "sayin": "saying", "gettin": "getting",
}
# fmt: on

# fmt: off
# Words typos are corrected towards (one edit for 5-7 letters, two for longer).
_FUZZY_TARGETS = (
    "cancel", "cancelled", "canceled", "cancelling", "canceling", "cancellation",
    "reschedule", "rescheduled", "rescheduling", "appointment", "appointments", "confirm",
    "confirmed", "confirming", "tomorrow", "tonight", "session", "sessions", "unsubscribe",
    "suicide", "suicidal", "myself", "therapist", "therapy", "medication", "medications",
    "anxiety", "depressed", "depression", "cancelar", "confirmar", "reprogramar", "cambiar",
    "manana", "pastillas", "suicidarme", "sesion", "resubscribe", "please", "schedule",
    "thursday", "wednesday", "tuesday", "friday", "saturday", "monday", "sunday",
    "insurance", "available", "overdose", "overdosed", "prescription", "messages", "texting",
    "stop", "remove", "anymore", "hopeless", "worthless", "unsubscribe", "different",
    "another", "instead", "tomorrow", "morning", "afternoon", "evening", "appointment",
    "cancele", "cancelo", "confirmo", "reagendar", "mensajes", "quiero", "puedo",
)
_FUZZY_SET = frozenset(_FUZZY_TARGETS)
# Real words one edit away from a target that must stay as they are.
_NOT_TYPOS = frozenset({
    "cancer", "cancers", "council", "counsel", "parent", "remote", "anything", "mother",
    "moment", "session", "sessions", "possession", "possessions", "obsession", "confine",
    "mourning", "another", "others", "morning", "stopped", "stops", "friday", "please",
    "pleased", "release", "therapy", "therapies", "different", "difference", "insurer",
    "quieres", "quiere", "pueda", "puedes", "puede", "pueden", "matar", "matarte", "matarlo",
    "messages", "message", "myself", "mystery", "overdue", "remover", "removed",
    "scheduled", "schedules", "schedule", "instead", "installed", "available", "tomorrow",
    "evening", "evenings", "events", "hopeful", "useless", "careless", "cancelada",
    "cancelado", "cambia", "cambio", "cambie", "confirma", "confirme", "reagende",
    "reprograme", "manana", "mañana", "pastilla", "sesiones", "session's", "cause",
    "concealed", "concealing", "conceals", "canelo", "canela", "canelos", "cambiaron",
    "mediation", "mediator", "mediators",
    # Spanish and English words a correction changed the meaning of (session 14): jail read as
    # "cancel", "homeless" as "hopeless", a decreased appetite as "depressed".
    "carcel", "homeless", "testing", "manzana", "quieto", "decreased", "massages", "mensaje",
    "mensajero", "mediacion", "cancelacion", "cancelaciones", "suicidaron",
})

# fmt: on

_APOSTROPHES = re.compile("['`\u2019\u00b4]")
# The contractions _SHORTHAND cannot expand once the apostrophe goes: "were", "well", "hell",
# "shell" are other words ("hell"/"shell" are still guessed from the next word in ``_word``), and
# "theyll" is not listed; "youre", "itll", "youll" are, unambiguously.
_CONTRACTED = {"re": "are", "ll": "will"}
_CONTRACTIONS = re.compile("\\b(we|he|she|they)['`\u2019\u00b4](re|ll)\\b")
_INNER_HYPHEN = re.compile(r"(?<=[a-z0-9])-(?=[a-z0-9])")
_TOKEN = re.compile(r"[a-z0-9]+(?:_[a-z]+)?|[?]|[.,;:!()\-/]+")


def normalize(text: str) -> str:
    """Lower-case words with shorthand expanded and typos fixed; ``?`` kept, other
    punctuation becomes ``.`` (a clause break)."""
    text = _fold(_emoji_words(text))
    # Read before the apostrophes go (see _CONTRACTIONS).
    text = _CONTRACTIONS.sub(lambda m: f"{m.group(1)} {_CONTRACTED[m.group(2)]}", text)
    text = _APOSTROPHES.sub("", text).replace("¿", " ? ")
    # A hyphen inside a word joins, it does not end a clause: "self-harm" reads "self harm".
    text = _INNER_HYPHEN.sub(" ", text)
    raw = _TOKEN.findall(text)
    out: list[str] = []
    n = len(raw)
    for i, tok in enumerate(raw):
        if tok == "?":
            out.append("?")
            continue
        if not tok[0].isalnum():
            if out and out[-1] != ".":
                out.append(".")
            continue
        prev = raw[i - 1] if i else ""
        nxt = raw[i + 1] if i + 1 < n else ""
        out.append(_word(tok, prev, nxt, n))
    while out and out[-1] == ".":
        out.pop()
    return " ".join(out)


_AFTER_BE = frozenset(
    {
        "am",
        "im",
        "feel",
        "feeling",
        "felt",
        "was",
        "been",
        "so",
        "very",
        "really",
        "too",
        "is",
        "are",
        "got",
        "getting",
        "be",
        "and",
        "or",
    }
)


_AFTER_HE = frozenset(
    {
        "be",
        "kill",
        "break",
        "end",
        "beat",
        "choke",
        "shoot",
        "stab",
        "strangle",
        "burn",
        "drown",
        "punch",
        "slap",
        "murder",
        "hurt",
        "come",
        "call",
        "do",
        "get",
        "go",
        "find",
        "see",
        "never",
        "not",
        "probably",
        "definitely",
        "make",
        "take",
        "hit",
        "leave",
    }
)


def _word(tok: str, prev: str, nxt: str, count: int) -> str:
    if tok == "ill" and prev in _AFTER_BE:
        return "ill"  # "I'm ill", not "I will"
    if tok in {"hell", "shell"} and nxt in _AFTER_HE:
        return "he will" if tok == "hell" else "she will"
    if tok == "c":
        return "see" if nxt in {"u", "you", "ya", "y'all"} else "c"
    if tok in {"r", "n", "b", "u", "k"} and count == 1:
        return tok
    if tok == "k" and prev in {"o"}:
        return "ok"
    mapped = _SHORTHAND.get(tok)
    if mapped is not None:
        return mapped
    return _correct(tok)


@lru_cache(maxsize=65536)
def _correct(tok: str) -> str:
    """``tok``, or the fuzzy target it is a typo of (``"reschedual"`` → ``"reschedule"``)."""
    size = len(tok)
    if size < 5 or tok in _FUZZY_SET or tok in _NOT_TYPOS or tok.isdigit():
        return tok
    if tok.endswith("s") and tok[:-1] in _FUZZY_SET:  # plural or possessive
        return tok
    limit = 1 if size < 9 else 2
    best, best_d = tok, limit + 1
    for target in _FUZZY_TARGETS:
        if abs(len(target) - size) > limit or target[0] != tok[0]:
            continue
        d = _distance(tok, target, limit)
        if d < best_d:
            best, best_d = target, d
    return best


def _distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance (a swap of neighbours costs one), capped past limit."""
    la, lb = len(a), len(b)
    prev2: list[int] = []
    prev = list(range(lb + 1))
    for i in range(1, la + 1):
        cur = [i] + [0] * lb
        low = cur[0]
        for j in range(1, lb + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            v = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                v = min(v, prev2[j - 2] + 1)
            cur[j] = v
            low = min(low, v)
        if low > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[lb]
