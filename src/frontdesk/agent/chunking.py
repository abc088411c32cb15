"""Cutting parsed documents into passages that follow the headings.

Each chunk lies under exactly one section and keeps that section's title (its heading path), so
an answer can cite "Fees > Late cancellation" and retrieval can match on the heading's words.
A long section is cut at paragraph (then sentence) boundaries, never inside a sentence.
"""

from __future__ import annotations

from dataclasses import dataclass

from frontdesk.agent.documents import ParsedDocument
from frontdesk.agent.text import sentences

TARGET_CHARS = 700
MAX_CHARS = 1200


@dataclass(frozen=True)
class Chunk:
    section: str
    text: str


def chunk_document(document: ParsedDocument) -> list[Chunk]:
    chunks: list[Chunk] = []
    for section in document.sections:
        title = section.heading or document.title
        for piece in _split(section.lines):
            chunks.append(Chunk(title[:500], piece))
    return chunks


def _split(lines: list[str]) -> list[str]:
    units: list[str] = []
    for line in (ln.strip() for ln in lines):
        if not line:
            continue
        if len(line) <= MAX_CHARS:
            units.append(line)
            continue
        current = ""
        for sentence in sentences(line):  # a very long paragraph: cut between sentences
            if current and len(current) + len(sentence) + 1 > TARGET_CHARS:
                units.append(current)
                current = ""
            current = f"{current} {sentence}".strip()
        if current:
            units.append(current)
    pieces: list[str] = []
    current_lines: list[str] = []
    size = 0
    for unit in units:
        if current_lines and size + len(unit) > TARGET_CHARS:
            pieces.append("\n".join(current_lines))
            current_lines, size = [], 0
        current_lines.append(unit)
        size += len(unit) + 1
    if current_lines:
        pieces.append("\n".join(current_lines))
    return pieces
