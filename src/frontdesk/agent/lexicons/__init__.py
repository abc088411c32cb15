"""Lexicons: one regular expression a line, read against ``keywords.normalize``'d text.

A line is a pattern (Python ``re`` syntax, matched case-sensitively against lower-case,
accent-free words); ``#`` starts a comment line; a pattern starting with ``?`` is *soft*: the
caller may discard it when the message also gives an ordinary reason (used for indirect crisis
phrases such as "won't be around next week", which a holiday explains); a pattern starting with
``~`` only counts in a short message (``search(..., short=False)`` skips it: "leave me alone"
is an opt-out as a reply, not inside a long story); a pattern starting with ``!`` is a *topic
word* (a crisis line that fires on "suicide", "kill me", "overdose", "gun"…): when only such
lines call a message a crisis and the crisis model reads it as plainly ordinary, the caller may
send it to staff as a concern instead (``crisis_model.VETO_THRESHOLD``). Each entry is named
``<file>:<line>`` in the evidence a rule leaves.

Speed: a lexicon first asks RE2 (``google-re2``), in one pass over the text for all its lines,
which lines can match at all, and runs Python's ``re`` only on those, in file order, so results
and evidence are exactly what the lines one by one give. RE2 has no lookarounds: a line with
one is given to RE2 without it (which can only widen what it matches). Where RE2's reading of a
pattern could differ from ``re``'s (word characters, word boundaries and whitespace are ASCII
in RE2, Unicode in ``re``), the text is not pre-filtered: only printable-ASCII text is, which
is what ``keywords.normalize`` produces. On 5,000 messages from the written sets this made the
lexicons' regular expressions about 8 times faster (docs/QUALITY.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

try:
    import re2
except ImportError:  # pragma: no cover - google-re2 is a core dependency; still, never fail
    re2 = None


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
    topic: bool = False


class Lexicon:
    """The entries of one file. Searching tries each entry in turn: measured on the labelled
    set, one alternation of all 200-odd crisis lines was four times slower than the lines one by
    one (``re`` does not share work between alternatives); the combined pattern only masks."""

    def __init__(self, name: str, entries: list[Entry], *, prefilter: bool = True) -> None:
        self.name = name
        self.entries = entries
        combined = "|".join(f"(?:{e.pattern.pattern})" for e in entries) or r"(?!x)x"
        self._any = re.compile(combined)
        self._set: Any = None
        self._set_entries: list[int] = []  # RE2 set index -> entry index
        self._always: list[int] = []  # entries RE2 cannot read: tried on every text
        if prefilter and re2 is not None and entries:
            self._build_set()

    def _build_set(self) -> None:
        options = re2.Options()
        options.log_errors = False
        options.max_mem = 64 << 20
        searcher = re2.Set.SearchSet(options)
        always: list[int] = []
        for index, entry in enumerate(self.entries):
            try:
                # Without its lookarounds a pattern matches more texts, never fewer: RE2 can
                # still rule a line out, and ``re`` then decides with the lookarounds.
                searcher.Add(without_lookarounds(entry.pattern.pattern))
            except Exception:  # syntax RE2 does not have
                always.append(index)
            else:
                self._set_entries.append(index)
        searcher.Compile()
        self._set, self._always = searcher, always

    def candidates(self, text: str) -> list[Entry]:
        """The entries that may match ``text``, in file order: all of them, unless RE2 could
        rule some out."""
        if self._set is None or not (text.isascii() and text.isprintable()):
            return self.entries
        found = self._set.Match(text)
        if not found:
            if not self._always:
                return []
            indices = self._always
        else:
            indices = sorted([self._set_entries[i] for i in found] + self._always)
        entries = self.entries
        return [entries[i] for i in indices]

    def search(self, text: str, *, short: bool = True) -> Hit | None:
        """The first entry (in file order) that matches, or None; ``short=False`` skips the
        entries that only count in short messages."""
        for entry in self.candidates(text):
            if entry.short_only and not short:
                continue
            found = entry.pattern.search(text)
            if found:
                return Hit(entry.rule, found.group(0), entry.soft)
        return None

    def search_all(self, text: str) -> list[Hit]:
        """Every entry that matches, in file order."""
        hits = []
        for entry in self.candidates(text):
            found = entry.pattern.search(text)
            if found:
                hits.append(Hit(entry.rule, found.group(0), entry.soft))
        return hits

    def mask(self, text: str, token: str = " _ ") -> str:
        """``text`` with every match replaced by ``token`` (idioms hidden from later rules)."""
        if not self.candidates(text) or not self._any.search(text):
            return text
        return " ".join(self._any.sub(token, text).split())


def without_lookarounds(pattern: str) -> str:
    """``pattern`` with every ``(?=…)``, ``(?!…)``, ``(?<=…)`` and ``(?<!…)`` removed."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        if pattern.startswith(("(?=", "(?!", "(?<=", "(?<!"), i):
            i = _group_end(pattern, i)
            continue
        step = 2 if pattern[i] == "\\" else 1
        if pattern[i] == "[":
            step = _class_end(pattern, i) - i
        out.append(pattern[i : i + step])
        i += step
    return "".join(out)


def _class_end(pattern: str, start: int) -> int:
    """The index just past the character class opened at ``start``."""
    i = start + 1
    if i < len(pattern) and pattern[i] == "^":
        i += 1
    if i < len(pattern) and pattern[i] == "]":
        i += 1  # a leading ] is a literal
    while i < len(pattern) and pattern[i] != "]":
        i += 2 if pattern[i] == "\\" else 1
    return i + 1


def _group_end(pattern: str, start: int) -> int:
    """The index just past the group opened at ``start``."""
    depth, i = 0, start
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i += 2
            continue
        if char == "[":
            i = _class_end(pattern, i)
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ValueError(f"unbalanced group in {pattern!r}")


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
        topic = line.startswith("!")
        pattern = line[1:] if soft or short_only or topic else line
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"lexicon {name}.txt line {number}: {exc}") from exc
        entries.append(Entry(f"{name}:{number}", compiled, soft, short_only, topic))
    return Lexicon(name, entries)
