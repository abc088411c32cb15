"""Reading a practice's documents into titled sections: Markdown, plain text, HTML, PDF, DOCX.

Every reader returns the same thing, a :class:`ParsedDocument`: a title and the text under each
heading. Anything that cannot be read raises :class:`DocumentError` with a message that says what
is wrong with the *file* and never quotes its content.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import PurePath

MEDIA_TYPES = {
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".txt": "text/plain",
    ".text": "text/plain",
    ".html": "text/html",
    ".htm": "text/html",
    ".pdf": "application/pdf",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}
SUPPORTED = ", ".join(sorted({k for k in MEDIA_TYPES if k not in {".markdown", ".text", ".htm"}}))


class DocumentError(ValueError):
    """The file cannot be loaded; the message is safe to show and store."""


@dataclass
class Section:
    heading: str  # "" for text before the first heading
    level: int
    lines: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(self.lines).strip()


@dataclass
class ParsedDocument:
    title: str
    sections: list[Section]


def media_type_of(name: str) -> str:
    suffix = PurePath(name).suffix.lower()
    if suffix not in MEDIA_TYPES:
        shown = suffix or "(no extension)"
        raise DocumentError(f"unsupported file type {shown}; supported: {SUPPORTED}")
    return MEDIA_TYPES[suffix]


def parse(name: str, content: bytes) -> tuple[str, ParsedDocument]:
    """(media type, parsed document) for the file ``name`` holding ``content``."""
    media_type = media_type_of(name)
    fallback_title = _title_from_name(name)
    if not content.strip():
        raise DocumentError("the file is empty")
    if media_type == "application/pdf":
        parsed = _parse_pdf(content, fallback_title)
    elif media_type.endswith("wordprocessingml.document"):
        parsed = _parse_docx(content, fallback_title)
    else:
        text = _decode(content)
        if media_type == "text/html":
            parsed = _parse_html(text, fallback_title)
        elif media_type == "text/markdown":
            parsed = _parse_markdown(text, fallback_title)
        else:
            parsed = _parse_plain(text, fallback_title)
    parsed.sections = [s for s in parsed.sections if s.text]
    if not parsed.sections:
        raise DocumentError("no readable text in the file")
    return media_type, parsed


def _title_from_name(name: str) -> str:
    stem = PurePath(name).stem
    return re.sub(r"[-_]+", " ", stem).strip().capitalize() or "Document"


def _decode(content: bytes) -> str:
    if b"\x00" in content[:4096]:
        raise DocumentError("not a text file (binary content)")
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return content.decode(encoding).replace("\r\n", "\n").replace("\r", "\n")
        except UnicodeDecodeError:
            continue
    raise DocumentError("the text is not UTF-8")  # pragma: no cover - cp1252 rarely fails


# --- Markdown ----------------------------------------------------------------------------------

_ATX = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_SETEXT = re.compile(r"^\s{0,3}(=+|-+)\s*$")
_FENCE = re.compile(r"^\s{0,3}(```|~~~)")
_LINK = re.compile(r"!?\[([^\]]*)\]\(([^)\s]*)[^)]*\)")
_EMPHASIS = re.compile(r"(\*\*|__|\*|_|`)(\S(?:.*?\S)?)\1")
_TAG = re.compile(r"<[^>\n]+>")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")


def _inline(text: str) -> str:
    def link(match: re.Match[str]) -> str:
        label, target = match.group(1), match.group(2)
        if match.group(0).startswith("!"):
            return label
        if not target or target.startswith("#") or label == target:
            return label
        return f"{label} ({target.removeprefix('mailto:').removeprefix('tel:')})"

    text = _LINK.sub(link, text)
    for _ in range(2):
        text = _EMPHASIS.sub(r"\2", text)
    return _TAG.sub("", text).strip()


def _table_row(line: str) -> str:
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    return ": ".join(c for c in cells if c)


def _parse_markdown(text: str, fallback_title: str) -> ParsedDocument:
    lines = text.split("\n")
    if lines and lines[0].strip() == "---":  # front matter: skip it, keep its title
        for end in range(1, len(lines)):
            if lines[end].strip() in {"---", "..."}:
                for meta in lines[1:end]:
                    key, _, value = meta.partition(":")
                    if key.strip().lower() == "title" and value.strip():
                        fallback_title = value.strip().strip("\"'")
                lines = lines[end + 1 :]
                break
    sections = [Section("", 0)]
    title: str | None = None
    in_fence = False
    for index, raw in enumerate(lines):
        if _FENCE.match(raw):
            in_fence = not in_fence
            continue
        if in_fence:
            sections[-1].lines.append(raw)
            continue
        heading = _ATX.match(raw)
        nxt = lines[index + 1] if index + 1 < len(lines) else ""
        if (
            heading is None
            and raw.strip()
            and _SETEXT.match(nxt)
            and raw.lstrip()[:1] not in "-*|>"
        ):
            level = 1 if nxt.strip().startswith("=") else 2
            heading_text = raw.strip()
        elif heading is not None:
            level, heading_text = len(heading.group(1)), heading.group(2)
        else:
            if _SETEXT.match(raw) and sections[-1].lines == [] and sections[-1].heading:
                continue  # the underline of a setext heading
            if _TABLE_RULE.match(raw):
                continue
            line = raw.strip()
            if line.startswith("|"):
                line = _table_row(line)
            line = re.sub(r"^(?:[-*+]|\d+[.)])\s+", "", line.lstrip("> ").strip())
            sections[-1].lines.append(_inline(line))
            continue
        heading_text = _inline(heading_text)
        if level == 1 and title is None:
            title = heading_text
        sections.append(Section(heading_text, level))
    title = title or fallback_title
    return ParsedDocument(title, _with_paths(sections, title))


def _with_paths(sections: list[Section], title: str, *also: str) -> list[Section]:
    """Give each section its heading path below the document title: 'Fees > Late cancellation'."""
    stack: list[tuple[int, str]] = []
    out: list[Section] = []
    for s in sections:
        if s.level == 0:
            out.append(s)
            continue
        while stack and stack[-1][0] >= s.level:
            stack.pop()
        stack.append((s.level, s.heading))
        path = [h for _, h in stack if h != title and h not in also]
        out.append(Section(" > ".join(path) or s.heading, s.level, s.lines))
    return out


# --- plain text and PDF text -------------------------------------------------------------------


def _looks_like_heading(line: str, previous: str, following: str) -> bool:
    stripped = line.strip()
    if not stripped or not following.strip() or len(stripped) > 70:
        return False
    if stripped[-1] in ".,;?!" or re.match(r"^(?:[-*•]|\d+[.)])\s", stripped):
        return False
    words = stripped.rstrip(":").split()
    if not 1 <= len(words) <= 9 or not stripped[0].isupper():
        return False
    if previous.strip() and previous.strip()[-1] not in ".!?:" and not previous.isupper():
        return False
    letters = [c for c in stripped if c.isalpha()]
    if letters and all(c.isupper() for c in letters):
        return True
    if stripped.endswith(":"):
        return True
    capitalised = sum(1 for w in words if w[0].isupper() or not w[0].isalpha())
    small = {"and", "or", "of", "the", "a", "an", "to", "in", "for", "on", "y", "de", "la", "el"}
    return capitalised + sum(1 for w in words if w in small) >= len(words) and len(words) <= 6


def _parse_lines(
    lines: list[str], fallback_title: str, *, first_heading_is_title: bool = True
) -> ParsedDocument:
    sections = [Section("", 0)]
    title: str | None = None
    cleaned = [ln.rstrip() for ln in lines]
    was_heading = False
    for index, line in enumerate(cleaned):
        previous = "" if was_heading else (cleaned[index - 1] if index else "")
        following = next((x for x in cleaned[index + 1 :] if x.strip()), "")
        atx = _ATX.match(line)
        if atx is not None:
            heading = atx.group(2).strip()
        elif _looks_like_heading(line, previous, following):
            heading = line.strip().rstrip(":")
        else:
            if line.strip():
                was_heading = False
                sections[-1].lines.append(re.sub(r"^(?:[-*•]|\d+[.)])\s+", "", line.strip()))
            continue
        was_heading = True
        if first_heading_is_title and title is None and not any(s.text for s in sections):
            title = heading
            continue
        sections.append(Section(heading, 1))
    return ParsedDocument(title or fallback_title, sections)


def _parse_plain(text: str, fallback_title: str) -> ParsedDocument:
    return _parse_lines(_unwrap(text.split("\n")), fallback_title)


def _unwrap(lines: list[str]) -> list[str]:
    """Join hard-wrapped prose lines back into paragraphs (headings and lists stay apart)."""
    out: list[str] = []
    for line in lines:
        stripped = line.strip()
        if (
            out
            and out[-1].strip()
            and stripped
            and out[-1].strip()[-1] not in ".!?:"
            and stripped[0].islower()
        ):
            out[-1] = f"{out[-1].rstrip()} {stripped}"
        else:
            out.append(line)
    return out


def _parse_pdf(content: bytes, fallback_title: str) -> ParsedDocument:
    if not content.lstrip().startswith(b"%PDF"):
        raise DocumentError("not a PDF file (no %PDF header)")
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(content))
        if reader.is_encrypted:
            raise DocumentError("the PDF is encrypted; save an unprotected copy and add that")
        pages = [page.extract_text() or "" for page in reader.pages]
        meta_title = (reader.metadata.title if reader.metadata else None) or None
    except DocumentError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        raise DocumentError(f"the PDF cannot be read ({type(exc).__name__})") from exc
    text = "\n".join(pages)
    if not text.strip():
        raise DocumentError("the PDF has no extractable text (a scan? add a text version)")
    titled = bool(meta_title and meta_title.strip())
    parsed = _parse_lines(
        _unwrap(text.split("\n")), fallback_title, first_heading_is_title=not titled
    )
    if titled and meta_title:
        parsed.title = meta_title.strip()[:300]
    return parsed


# --- HTML --------------------------------------------------------------------------------------


class _HtmlSections(HTMLParser):
    SKIP = frozenset({"script", "style", "noscript", "template", "svg", "nav", "head"})
    BLOCK = frozenset(
        {"p", "div", "li", "tr", "br", "section", "article", "dd", "dt", "blockquote", "table"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections = [Section("", 0)]
        self.title = ""
        self._skip = 0
        self._in_title = False
        self._heading: tuple[int, list[str]] | None = None
        self._line: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in self.SKIP:
            self._skip += 1
        elif re.fullmatch(r"h[1-6]", tag):
            self._flush()
            self._heading = (int(tag[1]), [])
        elif tag in self.BLOCK:
            self._flush()
        elif tag in {"td", "th"}:
            self._line.append(" : " if self._line else "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in self.SKIP:
            self._skip = max(0, self._skip - 1)
        elif re.fullmatch(r"h[1-6]", tag) and self._heading is not None:
            level, parts = self._heading
            text = " ".join("".join(parts).split())
            self._heading = None
            if text:
                self.sections.append(Section(text, level))
        elif tag in self.BLOCK:
            self._flush()

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif self._skip:
            return
        elif self._heading is not None:
            self._heading[1].append(data)
        else:
            self._line.append(data)

    def _flush(self) -> None:
        line = " ".join("".join(self._line).split()).strip(" :")
        self._line = []
        if line:
            self.sections[-1].lines.append(line)

    def close(self) -> None:
        super().close()
        self._flush()


def _parse_html(text: str, fallback_title: str) -> ParsedDocument:
    parser = _HtmlSections()
    parser.feed(text)
    parser.close()
    sections = parser.sections
    title = " ".join(parser.title.split())
    h1 = next((s for s in sections if s.level == 1), None)
    if not title and h1 is not None:
        title = h1.heading
    title = title or fallback_title
    # A page's one H1 is its title again: leave it out of the section paths below it.
    page_heading = [s.heading for s in sections if s.level == 1]
    also = page_heading if len(page_heading) == 1 else []
    return ParsedDocument(title, _with_paths(sections, title, *also))


# --- DOCX --------------------------------------------------------------------------------------


def _parse_docx(content: bytes, fallback_title: str) -> ParsedDocument:
    if not zipfile.is_zipfile(io.BytesIO(content)):
        raise DocumentError("not a DOCX file (not a zip archive)")
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(io.BytesIO(content))
    except (PackageNotFoundError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise DocumentError(f"the DOCX cannot be read ({type(exc).__name__})") from exc
    except Exception as exc:  # lxml syntax errors and friends from a damaged part
        raise DocumentError(f"the DOCX cannot be read ({type(exc).__name__})") from exc
    sections = [Section("", 0)]
    title: str | None = document.core_properties.title or None
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    for block in document.iter_inner_content():
        if isinstance(block, Table):
            for row in block.rows:
                cells: list[str] = []
                for cell in row.cells:
                    value = " ".join(cell.text.split())
                    if value and (not cells or cells[-1] != value):
                        cells.append(value)
                if cells:
                    sections[-1].lines.append(": ".join(cells))
            continue
        assert isinstance(block, Paragraph)
        text = " ".join(block.text.split())
        if not text:
            continue
        style = (block.style.name if block.style is not None else "") or ""
        heading = re.fullmatch(r"Heading (\d)", style)
        if style == "Title":
            if title is None:
                title = text
            else:
                sections.append(Section(text, 1))
        elif heading is not None:
            sections.append(Section(text, int(heading.group(1))))
        else:
            sections[-1].lines.append(text)
    title = title or fallback_title
    return ParsedDocument(title, _with_paths(sections, title))
