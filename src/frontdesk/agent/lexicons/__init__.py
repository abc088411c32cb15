"""Lexicons: one regular expression a line, read against ``keywords.normalize``'d text.

A line is a pattern (Python ``re`` syntax, matched case-sensitively against lower-case,
accent-free words); ``#`` starts a comment line; a pattern starting with ``?`` is *soft*: the
caller may discard it when the message also gives an ordinary reason (used for indirect crisis
phrases such as "won't be around next week", which a holiday explains); a pattern starting with
``~`` only counts in a short message (``search(..., short=False)`` skips it: "leave me alone"
is an opt-out as a reply, not inside a long story). Each entry is named ``<file>:<line>`` in
the evidence a rule leaves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True, slots=True)
class Hit:
    rule: str
    matched: str
    soft: bool


@dataclass(frozen=True, slots=True)
class Entry:
    rule: str
    pattern: re.Pattern[str]
    soft: bool
    short_only: bool = False


class Lexicon:
    """The entries of one file. Searching tries each entry in turn: measured on the labelled
    set, one alternation of all 200-odd crisis lines was four times slower than the lines one by
    one (``re`` does not share work between alternatives); the combined pattern only masks."""

    def __init__(self, name: str, entries: list[Entry]) -> None:
        self.name = name
        self.entries = entries
        combined = "|".join(f"(?:{e.pattern.pattern})" for e in entries) or r"(?!x)x"
        self._any = re.compile(combined)

    def search(self, text: str, *, short: bool = True) -> Hit | None:
        """The first entry (in file order) that matches, or None; ``short=False`` skips the
        entries that only count in short messages."""
        for entry in self.entries:
            if entry.short_only and not short:
                continue
            found = entry.pattern.search(text)
            if found:
                return Hit(entry.rule, found.group(0), entry.soft)
        return None

    def search_all(self, text: str) -> list[Hit]:
        """Every entry that matches, in file order."""
        hits = []
        for entry in self.entries:
            found = entry.pattern.search(text)
            if found:
                hits.append(Hit(entry.rule, found.group(0), entry.soft))
        return hits

    def mask(self, text: str, token: str = " _ ") -> str:
        """``text`` with every match replaced by ``token`` (idioms hidden from later rules)."""
        if not self._any.search(text):
            return text
        return " ".join(self._any.sub(token, text).split())


@cache
def load(name: str) -> Lexicon:
    """The lexicon in ``<name>.txt`` beside this module (read once per process)."""
    source = resources.files(__name__).joinpath(f"{name}.txt").read_text(encoding="utf-8")
    entries: list[Entry] = []
    for number, line in enumerate(source.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        soft = line.startswith("?")
        short_only = line.startswith("~")
        pattern = line[1:] if soft or short_only else line
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"lexicon {name}.txt line {number}: {exc}") from exc
        entries.append(Entry(f"{name}:{number}", compiled, soft, short_only))
    return Lexicon(name, entries)
