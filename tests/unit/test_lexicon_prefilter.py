"""The RE2 pre-filter of the lexicons (agent/lexicons): it may only make reading faster, never
change what a lexicon finds."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from frontdesk.agent import lexicons
from frontdesk.agent.keywords import normalize
from frontdesk.agent.lexicons import without_lookarounds

EVAL = Path(__file__).resolve().parents[1] / "eval"
NAMES = sorted(
    item.name.removesuffix(".txt")
    for item in resources.files("frontdesk.agent.lexicons").iterdir()
    if item.name.endswith(".txt")
)


def _texts() -> list[str]:
    texts = []
    for path in sorted((EVAL / "intents").glob("*.tsv")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.startswith("#"):
                texts.append(line.split("\t")[-1])
    return texts


@pytest.fixture(scope="module")
def normalized() -> list[str]:
    found = [normalize(text) for text in _texts()]
    assert len(found) > 5000
    return found


@pytest.mark.parametrize("name", NAMES)
def test_prefiltered_lexicon_finds_exactly_what_every_line_finds(
    name: str, normalized: list[str]
) -> None:
    fast = lexicons.load(name)
    slow = lexicons.Lexicon(name, fast.entries, prefilter=False)
    assert fast._set is not None  # the pre-filter is really on (google-re2 is installed)
    assert not fast._always  # every line has an RE2 form (lookarounds removed)
    for text in normalized:
        every = slow.search_all(text)
        assert fast.search_all(text) == every, text
        # search() and mask() read the same candidates, so agreeing here is enough; the
        # first hit is checked too, since search() skips short-only lines in long messages.
        long_ones = [hit for hit in every if not _short_only(slow, hit.rule)]
        assert fast.search(text, short=False) == (long_ones[0] if long_ones else None), text
        if not every:
            assert fast.mask(text) == text


def _short_only(lexicon: lexicons.Lexicon, rule: str) -> bool:
    return next(e.short_only for e in lexicon.entries if e.rule == rule)


def test_the_prefilter_rules_lines_out() -> None:
    crisis = lexicons.load("crisis_en")
    assert crisis.candidates("see you tuesday at 3") == []
    assert len(crisis.candidates("i want to kill myself")) < len(crisis.entries) / 10


def test_text_re2_could_read_differently_is_not_prefiltered() -> None:
    crisis = lexicons.load("crisis_en")
    # \w, \b and \s are Unicode in re and ASCII in RE2; control characters differ in \s.
    for text in ("señor", "a\u000bb", "tab\there", "line\nbreak"):
        assert crisis.candidates(text) is crisis.entries


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (r"(?<!not )(?<!never )\bin danger\b", r"\bin danger\b"),
        (r"\bno voy\b(?! a (cancelar|cambiar))", r"\bno voy\b"),
        (r"a(?=b)c|d", r"ac|d"),
        (r"[(?!]x(?!\)y)z", r"[(?!]xz"),  # a class and an escaped parenthesis are not groups
        (r"\(?!x", r"\(?!x"),
        (r"(?:a(?!(b|c)d))e", r"(?:a)e"),
    ],
)
def test_without_lookarounds(pattern: str, expected: str) -> None:
    assert without_lookarounds(pattern) == expected
