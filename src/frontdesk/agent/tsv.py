"""The shipped example files (``lexicons/*.tsv``): tab-separated, ``#`` comments."""

from __future__ import annotations

from collections.abc import Iterator


def data_lines(source: str) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` of every line that carries data: blank lines and ``#`` comment
    lines are skipped; numbers count from 1 so errors can name the line."""
    for number, line in enumerate(source.splitlines(), start=1):
        if line.strip() and not line.startswith("#"):
            yield number, line
