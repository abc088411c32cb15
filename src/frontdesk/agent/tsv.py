"""The shipped example files (``lexicons/*.tsv``): tab-separated, ``#`` comments."""

from __future__ import annotations

from collections.abc import Iterator


def data_lines(source: str) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` of every line that carries data: blank lines and ``#`` comment
    lines are skipped; numbers count from 1 so errors can name the line."""
    for number, line in enumerate(source.splitlines(), start=1):
        if line.strip() and not line.startswith("#"):
            yield number, line


def retired_examples(source: str) -> list[tuple[str, str]]:
    """``intent<TAB>lang<TAB>text`` lines of the retired blind sets (``lexicons/retired.tsv``,
    training for the crisis screen and the intent model), as (intent, text)."""
    found = []
    for number, line in data_lines(source):
        parts = line.split("\t")
        if len(parts) != 3:
            raise ValueError(f"line {number}: expected intent<TAB>lang<TAB>text")
        found.append((parts[0], parts[2]))
    return found
