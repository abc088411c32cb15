"""Reading one field's value out of a patient's message: pure functions of text and a clock.

``read_value`` checks a whole answer for one field; ``find_correction`` spots a patient taking an
earlier answer back ("actually, text me instead", "mejor por correo") and says which field now
holds what. Values come back normalised (E.164 phones, ISO dates, channel names).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from datetime import date

from frontdesk.domain.contact import normalize_email, normalize_phone

_CHANNEL_WORDS: dict[str, tuple[str, ...]] = {
    "whatsapp": ("whatsapp", "whats app", "wa", "wasap", "guasap"),
    "sms": ("sms", "text", "texts", "texting", "text message", "mensaje de texto", "texto", "txt"),
    "email": ("email", "e-mail", "mail", "correo", "correo electronico", "inbox"),
}
_CORRECTION = re.compile(
    r"\b(actually|instead|rather|no wait|change (?:it|that)|i meant|better|en realidad|"
    r"mejor|en vez|cambi[ae]|perd[oó]n)\b",
    re.IGNORECASE,
)
_EMAIL_IN_TEXT = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE_IN_TEXT = re.compile(r"\+?\d[\d\s().-]{6,}\d")
_MONTHS = {
    name: i + 1
    for i, names in enumerate(
        [
            ("january", "jan", "enero", "ene"),
            ("february", "feb", "febrero"),
            ("march", "mar", "marzo"),
            ("april", "apr", "abril", "abr"),
            ("may", "mayo"),
            ("june", "jun", "junio"),
            ("july", "jul", "julio"),
            ("august", "aug", "agosto", "ago"),
            ("september", "sep", "sept", "septiembre", "setiembre"),
            ("october", "oct", "octubre"),
            ("november", "nov", "noviembre"),
            ("december", "dec", "diciembre", "dic"),
        ]
    )
    for name in names
}
_WHEN_WORDS = re.compile(
    r"\b(mon|tue|wed|thu|fri|sat|sun|monday|tuesday|wednesday|thursday|friday|saturday|sunday|"
    r"morning|afternoon|evening|tonight|today|tomorrow|next week|weekday|weekend|noon|am|pm|"
    r"lunes|martes|mi[eé]rcoles|jueves|viernes|s[aá]bado|domingo|ma[nñ]ana|tarde|noche|hoy|"
    r"semana)\b|\d{1,2}(:\d{2})?\s*(am|pm|h)?\b",
    re.IGNORECASE,
)

DEFAULT_INVALID: dict[str, dict[str, str]] = {
    "name": {
        "en": "Sorry, I didn't catch a name there. Please type your full name.",
        "es": "Perdón, no entendí un nombre. Escriba su nombre completo, por favor.",
    },
    "email": {
        "en": "That doesn't look like an email address. Please type it like name@example.com.",
        "es": "Eso no parece un correo. Escríbalo así: nombre@ejemplo.com.",
    },
    "phone": {
        "en": "That doesn't look like a phone number. Please include the area code.",
        "es": "Eso no parece un número de teléfono. Incluya el código de área, por favor.",
    },
    "date_of_birth": {
        "en": "Please give your date of birth like 1990-03-25 or 03/25/1990.",
        "es": "Indique su fecha de nacimiento así: 25/03/1990.",
    },
    "channel": {
        "en": "Please answer email, text (SMS) or WhatsApp.",
        "es": "Responda correo, texto (SMS) o WhatsApp, por favor.",
    },
    "datetime_preference": {
        "en": "Please tell me a day or time that suits you, like 'Tuesday morning'.",
        "es": "Indique un día u hora que le convenga, por ejemplo 'martes por la mañana'.",
    },
    "choice": {
        "en": "Please answer with one of: {choices}.",
        "es": "Responda con una de estas opciones: {choices}.",
    },
    "free_text": {
        "en": "Sorry, that answer is empty or too long. Please try again.",
        "es": "Perdón, la respuesta está vacía o es demasiado larga. Inténtelo de nuevo.",
    },
}


def _plain(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def read_channel(text: str) -> str | None:
    """The one channel a message names, or None when it names none or several."""
    plain = f" {re.sub(r'[^a-z0-9@ -]+', ' ', _plain(text))} "
    found = {
        channel
        for channel, words in _CHANNEL_WORDS.items()
        for word in words
        if f" {word} " in plain
    }
    return found.pop() if len(found) == 1 else None


def read_date_of_birth(text: str, today: date, *, day_first: bool = False) -> date | None:
    raw = _plain(text).strip()
    parsed: date | None = None
    try:
        if m := re.fullmatch(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})", raw):
            parsed = date(int(m[1]), int(m[2]), int(m[3]))
        elif m := re.fullmatch(r"(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})", raw):
            a, b = int(m[1]), int(m[2])
            month, day = (b, a) if day_first or a > 12 else (a, b)
            parsed = date(int(m[3]), month, day)
        elif m := re.fullmatch(r"([a-z]+)\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})", raw):
            parsed = date(int(m[3]), _MONTHS[m[1]], int(m[2])) if m[1] in _MONTHS else None
        elif m := re.fullmatch(r"(\d{1,2})\s+(?:de\s+)?([a-z]+)\.?,?\s+(?:de\s+)?(\d{4})", raw):
            parsed = date(int(m[3]), _MONTHS[m[2]], int(m[1])) if m[2] in _MONTHS else None
    except ValueError:
        return None
    if parsed is None or parsed > today or parsed.year < today.year - 120:
        return None
    return parsed


def read_value(
    kind: str,
    text: str,
    *,
    today: date,
    region: str = "US",
    choices: list[str] | None = None,
    max_length: int = 500,
    language: str = "en",
) -> str | None:
    """The normalised value of ``text`` as a ``kind`` field, or None when it is not one."""
    value = text.strip()
    if not value:
        return None
    if kind == "name":
        cleaned = " ".join(value.split())
        if 2 <= len(cleaned) <= 100 and re.fullmatch(
            r"[^\W\d_][^\W\d_ .'-]*([ .'-]+[^\W\d_]+)*\.?", cleaned
        ):
            return cleaned
        return None
    if kind == "email":
        found = _EMAIL_IN_TEXT.search(value)
        try:
            return normalize_email(found[0]).lower() if found else None
        except ValueError:
            return None
    if kind == "phone":
        found = _PHONE_IN_TEXT.search(value)
        try:
            return normalize_phone(found[0].strip(), region) if found else None
        except ValueError:
            return None
    if kind == "date_of_birth":
        born = read_date_of_birth(value, today, day_first=language == "es")
        return born.isoformat() if born else None
    if kind == "channel":
        return read_channel(value)
    if kind == "datetime_preference":
        return value[:200] if _WHEN_WORDS.search(value) else None
    if kind == "choice":
        options = choices or []
        plain = _plain(value).strip(" .!")
        for i, option in enumerate(options, start=1):
            if plain in (_plain(option), str(i)):
                return option
        matches = [o for o in options if _plain(o) in plain]
        return matches[0] if len(matches) == 1 else None
    if kind == "free_text":
        return value if len(value) <= max_length else None
    raise ValueError(f"unknown field kind {kind!r}")


def is_correction(text: str) -> bool:
    return _CORRECTION.search(text) is not None


def find_correction(
    text: str, filled: Mapping[str, str], kinds: Mapping[str, str], *, region: str = "US"
) -> tuple[str, str] | None:
    """(field, new value) when ``text`` takes back an earlier answer: a correction word and a
    value that only one already-answered field can hold (a channel, an email, a phone)."""
    if not is_correction(text):
        return None
    for name, kind in kinds.items():
        if name not in filled:
            continue
        value: str | None = None
        if kind == "channel":
            value = read_channel(text)
        elif kind == "email":
            found = _EMAIL_IN_TEXT.search(text)
            value = read_value("email", found[0], today=date.max) if found else None
        elif kind == "phone":
            found = _PHONE_IN_TEXT.search(text)
            value = read_value("phone", found[0], today=date.max, region=region) if found else None
        if value is not None and value != filled[name]:
            return name, value
    return None


def invalid_text(kind: str, language: str, choices: list[str] | None) -> str:
    text = DEFAULT_INVALID[kind].get(language) or DEFAULT_INVALID[kind]["en"]
    return text.replace("{choices}", ", ".join(choices or []))
