"""Reading each document format into titled sections, and cutting them into heading chunks."""

from __future__ import annotations

import io
import zipfile

import pytest

from frontdesk.agent.chunking import MAX_CHARS, chunk_document
from frontdesk.agent.documents import DocumentError, parse
from kb_files import docx_bytes, pdf_bytes

MARKDOWN = b"""---
title: Front matter title is not used when there is an H1
---
# Fees and cancellation

Intro text under the title.

## Session fees

A standard session costs **$160**. See [the portal](https://portal.example).

### Late cancellation

Less than 24 hours' notice costs $75.

```
# not a heading inside a fence
```

Parking
-------

| Lot | Price |
|-----|-------|
| Behind the building | free |

- bring your ID
"""


def sections_of(name: str, content: bytes) -> list[tuple[str, str]]:
    _, parsed = parse(name, content)
    return [(s.heading, s.text) for s in parsed.sections]


def test_markdown_headings_paths_and_inline_markup() -> None:
    media_type, parsed = parse("fees.md", MARKDOWN)
    assert media_type == "text/markdown"
    assert parsed.title == "Fees and cancellation"
    got = [(s.heading, s.text) for s in parsed.sections]
    assert got == [
        ("Fees and cancellation", "Intro text under the title."),
        ("Session fees", "A standard session costs $160. See the portal (https://portal.example)."),
        (
            "Session fees > Late cancellation",
            "Less than 24 hours' notice costs $75.\n\n# not a heading inside a fence",
        ),
        ("Parking", "Lot: Price\nBehind the building: free\n\nbring your ID"),
    ]


def test_plain_text_headings_by_shape() -> None:
    text = (
        b"Harbor Light Counseling\n\nOFFICE HOURS\nWe are open Monday to Thursday,\n"
        b"from 8 to 7.\n\nParking:\nFree parking behind the building.\n"
    )
    _, parsed = parse("policies.txt", text)
    assert parsed.title == "Harbor Light Counseling"
    assert [(s.heading, s.text) for s in parsed.sections] == [
        ("OFFICE HOURS", "We are open Monday to Thursday, from 8 to 7."),
        ("Parking", "Free parking behind the building."),
    ]


def test_html_headings_and_skipped_scripts() -> None:
    html = b"""<html><head><title>Our Policies</title><style>h1{}</style></head><body>
    <nav>Home | About</nav><h1>Policies</h1><p>Welcome.</p>
    <h2>Telehealth</h2><p>Sessions use a <b>secure</b> video link.</p><script>alert(1)</script>
    <h3>If the call drops</h3><ul><li>We call you back.</li></ul>
    <table><tr><td>Fee</td><td>$160</td></tr></table></body></html>"""
    media_type, parsed = parse("policies.html", html)
    assert media_type == "text/html"
    assert parsed.title == "Our Policies"
    assert [(s.heading, s.text) for s in parsed.sections] == [
        ("Policies", "Welcome."),
        ("Telehealth", "Sessions use a secure video link."),
        ("Telehealth > If the call drops", "We call you back.\nFee : $160"),
    ]


def test_pdf_text_and_headings() -> None:
    content = pdf_bytes(
        [
            ["Cancellation Policy", "Please cancel 24 hours ahead. The late fee is $75."],
            ["Parking", "Free parking is behind the building."],
        ],
        title="Office Policies",
    )
    media_type, parsed = parse("policies.pdf", content)
    assert media_type == "application/pdf"
    assert parsed.title == "Office Policies"
    assert [(s.heading, s.text) for s in parsed.sections] == [
        ("Cancellation Policy", "Please cancel 24 hours ahead. The late fee is $75."),
        ("Parking", "Free parking is behind the building."),
    ]


def test_docx_headings_and_tables() -> None:
    content = docx_bytes(
        [
            ("title", "Welcome Packet"),
            ("h1", "Fees"),
            ("p", "A session costs $160."),
            ("h2", "Late cancellation"),
            ("p", "The fee is $75."),
            ("table", "Intake|$200"),
        ]
    )
    media_type, parsed = parse("welcome.docx", content)
    assert media_type.endswith("wordprocessingml.document")
    assert parsed.title == "Welcome Packet"
    assert [(s.heading, s.text) for s in parsed.sections] == [
        ("Fees", "A session costs $160."),
        ("Fees > Late cancellation", "The fee is $75.\nIntake: $200"),
    ]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("notes.xlsx", b"PK\x03\x04", "unsupported file type .xlsx"),
        ("README", b"hello", "unsupported file type (no extension)"),
        ("empty.md", b"  \n", "the file is empty"),
        ("broken.pdf", b"%PDF-1.4\nthis is not really a pdf", "the PDF"),
        ("fake.pdf", b"<html>not a pdf</html>", "not a PDF file"),
        ("fake.docx", b"plain text, not a zip", "not a DOCX file"),
        ("binary.txt", b"\x00\x01\x02\x03" * 10, "not a text file"),
        ("headings-only.md", b"# Title\n## Empty\n", "no readable text"),
    ],
)
def test_unreadable_files_raise_a_clear_error(name: str, content: bytes, message: str) -> None:
    with pytest.raises(DocumentError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse(name, content)


def test_a_zip_that_is_not_a_docx_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "not word")
    with pytest.raises(DocumentError, match="the DOCX cannot be read"):
        parse("letter.docx", buffer.getvalue())


def test_chunks_follow_headings_and_keep_section_titles() -> None:
    _, parsed = parse("fees.md", MARKDOWN)
    chunks = chunk_document(parsed)
    assert [c.section for c in chunks] == [
        "Fees and cancellation",
        "Session fees",
        "Session fees > Late cancellation",
        "Parking",
    ]
    assert "$75" in chunks[2].text and "$75" not in chunks[1].text


def test_a_long_section_is_cut_between_sentences_under_the_same_title() -> None:
    sentence = "Our clinicians see adults and teens in person and by video every weekday. "
    body = ("# Guide\n\n## Services\n\n" + sentence * 60 + "\n").encode()
    _, parsed = parse("guide.md", body)
    chunks = chunk_document(parsed)
    assert len(chunks) > 2
    assert {c.section for c in chunks} == {"Services"}
    assert all(len(c.text) <= MAX_CHARS for c in chunks)
    assert all(c.text.endswith("weekday.") for c in chunks)
