"""Keyword replies: the one-word answers to a reminder and the carriers' consent keywords.

A bare ``CANCEL`` is a carrier opt-out word in the US: Twilio's default opt-out handling blocks
the number at the carrier when a patient texts it, so on SMS it must count as an opt-out
(``cancel_is_opt_out``; turn it off only for a provider where CANCEL is not a carrier keyword).
That is why our texts ask for N, never CANCEL, when a patient cannot come.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

OPT_OUT = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "END", "QUIT", "REVOKE", "OPTOUT"})
OPT_IN = frozenset({"START", "UNSTOP"})
HELP = frozenset({"HELP", "INFO", "AYUDA"})
CONFIRM = frozenset({"C", "Y", "YES", "CONFIRM", "CONFIRMED", "SI", "CONFIRMO", "CONFIRMAR"})
CANNOT_COME = frozenset({"N", "NO"})
RESCHEDULE = frozenset({"R", "RESCHEDULE", "CAMBIAR", "REPROGRAMAR"})
CONFIRM_EMOJI = frozenset({"👍", "✅", "👌", "👍🏻", "👍🏼", "👍🏽", "👍🏾", "👍🏿"})


@dataclass(frozen=True)
class Keyword:
    intent: str  # confirm, cancel, reschedule, opt_out, opt_in, help
    carrier_cancel: bool = False  # a bare CANCEL taken as the carrier's opt-out


def normalise(text: str) -> str:
    """``  Sí! `` → ``SI``: trimmed, upper-cased, accents and closing punctuation removed."""
    stripped = text.strip().strip(".!¡?¿,;:'\"()").strip()
    decomposed = unicodedata.normalize("NFKD", stripped)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).upper()


def keyword(text: str, *, channel: str, cancel_is_opt_out: bool = True) -> Keyword | None:
    """The keyword a whole message is, or None when it is free text."""
    if text.strip() in CONFIRM_EMOJI:
        return Keyword("confirm")
    word = normalise(text)
    if " " in word or not word:
        return None
    if word in OPT_OUT:
        return Keyword("opt_out")
    if word == "CANCEL":
        if channel == "sms" and cancel_is_opt_out:
            return Keyword("opt_out", carrier_cancel=True)
        return Keyword("cancel")
    if word in OPT_IN:
        return Keyword("opt_in")
    if word in HELP:
        return Keyword("help")
    if word in CONFIRM:
        return Keyword("confirm")
    if word in CANNOT_COME:
        return Keyword("cancel")
    if word in RESCHEDULE:
        return Keyword("reschedule")
    return None
