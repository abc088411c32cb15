"""The knowledge base of a practice: add, list and remove documents, and ask it questions.

Documents are parsed and chunked when added (one transaction per file, so a bad file never
stops the others) and stored with their chunks. The search index is built from the stored
chunks and cached in-process per practice, keyed on a fingerprint of the practice's documents
(count, newest change, highest id, chunk total): any process that adds or removes a document
changes the fingerprint, so every process rebuilds on its next question.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from frontdesk.adapters import llm
from frontdesk.adapters.db.knowledge_models import KnowledgeChunk, KnowledgeDocument
from frontdesk.adapters.db.models import Practice, utcnow
from frontdesk.adapters.llm import LanguageModel, Meter
from frontdesk.agent import grounding
from frontdesk.agent.answer import (
    Answer,
    Citation,
    answer_question,
    nearest_passages,
    retrieved_passages,
)
from frontdesk.agent.chunking import chunk_document
from frontdesk.agent.documents import DocumentError, media_type_of, parse
from frontdesk.agent.embeddings import load_encoder
from frontdesk.agent.retrieval import KnowledgeIndex, Passage
from frontdesk.bootstrap import Runtime
from frontdesk.domain.errors import FieldError, NotFound, ValidationFailed
from frontdesk.services import audit

log = logging.getLogger(__name__)

READY, FAILED = "ready", "failed"
MAX_SOURCE = 500


@dataclass(frozen=True)
class AddResult:
    source: str
    outcome: str  # added | replaced | unchanged | failed
    document_id: int | None
    chunks: int
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "outcome": self.outcome,
            "id": self.document_id,
            "chunks": self.chunks,
            "error": self.error,
        }


def document_view(doc: KnowledgeDocument) -> dict[str, Any]:
    return {
        "id": doc.id,
        "source": doc.source,
        "title": doc.title,
        "media_type": doc.media_type,
        "status": doc.status,
        "error": doc.error,
        "chunks": doc.chunk_count,
        "content_hash": doc.content_hash,
        "created_at": doc.created_at.isoformat(),
        "updated_at": doc.updated_at.isoformat(),
    }


# --- adding ------------------------------------------------------------------------------------


def add_document(
    session: Session,
    practice: Practice,
    source: str,
    content: bytes,
    *,
    actor: str = "cli",
    max_bytes: int | None = None,
) -> AddResult:
    """Store one document under ``source``: new, replaced (content changed) or unchanged."""
    source = source.strip().replace("\\", "/")
    if not source or len(source) > MAX_SOURCE:
        raise ValidationFailed([FieldError("source", f"a file name of 1 to {MAX_SOURCE} chars")])
    digest = hashlib.sha256(content).hexdigest()
    existing = session.scalar(
        select(KnowledgeDocument).where(
            KnowledgeDocument.practice_id == practice.id, KnowledgeDocument.source == source
        )
    )
    if existing is not None and existing.content_hash == digest and existing.status == READY:
        return AddResult(source, "unchanged", existing.id, existing.chunk_count)
    error: str | None = None
    title: str | None = None
    chunks = []
    try:
        media_type = media_type_of(source)
        if max_bytes is not None and len(content) > max_bytes:
            raise DocumentError(f"the file is larger than {max_bytes} bytes")
        media_type, parsed = parse(source, content)
        title = parsed.title[:300]
        chunks = chunk_document(parsed)
        if not chunks:
            raise DocumentError("no readable text in the file")
    except DocumentError as exc:
        error = str(exc)[:500]
        media_type = _guess_media_type(source)
    now = utcnow()
    if existing is None:
        doc = KnowledgeDocument(practice_id=practice.id, source=source, created_at=now)
        session.add(doc)
        outcome = "added"
    else:
        doc = existing
        session.execute(delete(KnowledgeChunk).where(KnowledgeChunk.document_id == doc.id))
        outcome = "replaced"
    doc.content_hash = digest
    doc.media_type = media_type
    doc.status = FAILED if error else READY
    doc.error = error
    doc.title = title
    doc.chunk_count = len(chunks)
    doc.updated_at = now
    session.flush()
    session.add_all(
        KnowledgeChunk(
            practice_id=practice.id,
            document_id=doc.id,
            ordinal=i,
            section=c.section,
            text=c.text,
        )
        for i, c in enumerate(chunks)
    )
    session.flush()
    audit.record(
        session,
        practice_id=practice.id,
        actor=actor,
        action=f"knowledge.{outcome if not error else 'failed'}",
        entity_type="knowledge_document",
        entity_id=doc.id,
        details={"chunks": len(chunks), "status": doc.status},
    )
    return AddResult(source, FAILED if error else outcome, doc.id, len(chunks), error)


def _guess_media_type(source: str) -> str:
    try:
        return media_type_of(source)
    except DocumentError:
        return "application/octet-stream"


def expand_paths(paths: Iterable[Path]) -> list[tuple[str, Path]]:
    """(source name, file) for each file given and each file under each folder given
    (recursively, hidden files skipped). Files in a folder are named by their path in it."""
    found: list[tuple[str, Path]] = []
    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                relative = child.relative_to(path)
                if child.is_file() and not any(p.startswith(".") for p in relative.parts):
                    found.append((relative.as_posix(), child))
        else:
            found.append((path.name, path))
    return found


def add_paths(
    runtime: Runtime, practice_slug: str | None, paths: Sequence[Path], *, actor: str = "cli"
) -> list[AddResult]:
    """Add files and folders; each file in its own transaction, failures reported per file."""
    from frontdesk.services.practices import resolve_practice

    results: list[AddResult] = []
    for source, path in expand_paths(paths):
        try:
            content = path.read_bytes()
        except OSError as exc:
            results.append(
                AddResult(source, FAILED, None, 0, f"cannot read the file ({exc.strerror})")
            )
            continue
        with runtime.transaction() as session:
            practice = resolve_practice(session, practice_slug)
            results.append(
                add_document(
                    session,
                    practice,
                    source,
                    content,
                    actor=actor,
                    max_bytes=runtime.settings.kb_max_document_bytes,
                )
            )
    return results


# --- listing and removing ----------------------------------------------------------------------


def list_documents(session: Session, practice_id: int) -> list[dict[str, Any]]:
    docs = session.scalars(
        select(KnowledgeDocument)
        .where(KnowledgeDocument.practice_id == practice_id)
        .order_by(KnowledgeDocument.source)
    )
    return [document_view(d) for d in docs]


def find_document(session: Session, practice_id: int, name_or_id: str) -> KnowledgeDocument:
    query = select(KnowledgeDocument).where(KnowledgeDocument.practice_id == practice_id)
    doc = session.scalar(query.where(KnowledgeDocument.source == name_or_id))
    if doc is None and name_or_id.isdigit():
        doc = session.scalar(query.where(KnowledgeDocument.id == int(name_or_id)))
    if doc is None:
        raise NotFound(f"no document {name_or_id!r} in this practice's knowledge base")
    return doc


def remove_document(
    session: Session, practice_id: int, name_or_id: str, *, actor: str = "cli"
) -> dict[str, Any]:
    doc = find_document(session, practice_id, name_or_id)
    view = document_view(doc)
    session.execute(delete(KnowledgeChunk).where(KnowledgeChunk.document_id == doc.id))
    session.delete(doc)
    audit.record(
        session,
        practice_id=practice_id,
        actor=actor,
        action="knowledge.removed",
        entity_type="knowledge_document",
        entity_id=view["id"],
    )
    session.flush()
    return view


# --- the index and answers ---------------------------------------------------------------------

_cache: dict[tuple[int, bool], tuple[tuple[Any, ...], KnowledgeIndex]] = {}
_cache_lock = threading.Lock()


def fingerprint(session: Session, practice_id: int) -> tuple[Any, ...]:
    row = session.execute(
        select(
            func.count(KnowledgeDocument.id),
            func.max(KnowledgeDocument.updated_at),
            func.max(KnowledgeDocument.id),
            func.coalesce(func.sum(KnowledgeDocument.chunk_count), 0),
        ).where(KnowledgeDocument.practice_id == practice_id)
    ).one()
    return tuple(str(v) for v in row)


def index_for(session: Session, practice_id: int, *, embeddings: bool = True) -> KnowledgeIndex:
    """The practice's search index, rebuilt only when its documents changed."""
    key = fingerprint(session, practice_id)
    with _cache_lock:
        cached = _cache.get((practice_id, embeddings))
        if cached is not None and cached[0] == key:
            return cached[1]
    rows = session.execute(
        select(
            KnowledgeDocument.source,
            KnowledgeDocument.title,
            KnowledgeChunk.section,
            KnowledgeChunk.text,
        )
        .join(KnowledgeDocument, KnowledgeChunk.document_id == KnowledgeDocument.id)
        .where(KnowledgeChunk.practice_id == practice_id, KnowledgeDocument.status == READY)
        .order_by(KnowledgeDocument.source, KnowledgeChunk.ordinal)
    ).all()
    passages = [Passage(r.source, r.title or r.source, r.section, r.text) for r in rows]
    index = KnowledgeIndex(passages, load_encoder() if embeddings else None)
    with _cache_lock:
        _cache[(practice_id, embeddings)] = (key, index)
    return index


def answer(
    runtime_or_session: Runtime | Session,
    practice_id: int,
    question: str,
    language: str | None = None,
    *,
    embeddings: bool = True,
) -> Answer:
    """A grounded answer to ``question`` from the practice's documents, or a decline.

    ``language`` ('en' or 'es') chooses the words of a decline and how the question is read;
    None detects it from the question. The extractive answer only: a language model words
    answers after the message's transaction (``phrase``, called by the inbound path). With a
    session, ``embeddings`` is the practice's ``kb_embeddings`` setting (a runtime carries its
    own).
    """
    if isinstance(runtime_or_session, Runtime):
        embeddings = runtime_or_session.settings.kb_embeddings
        with runtime_or_session.transaction() as session:
            index = index_for(session, practice_id, embeddings=embeddings)
    else:
        index = index_for(runtime_or_session, practice_id, embeddings=embeddings)
    return answer_question(index, question, language)


def phrase(
    index: KnowledgeIndex,
    question: str,
    extractive: Answer,
    model: LanguageModel,
    meter: Meter | None,
    *,
    unmatched: bool = False,
) -> Answer:
    """The model's wording of the answer, built from the passages retrieved for the question
    and kept only when every sentence is supported by the passages it cites
    (``agent/grounding.py``); otherwise the extractive answer. A question that asks for clinical
    advice or carries danger never reaches the model; one the extractive answer declined only
    with ``unmatched`` (the nearest passages are offered and the model must say when they do not
    answer)."""
    declined = not extractive.answered
    if extractive.reason == "crisis" or (
        declined and not (unmatched and extractive.reason == "not_found")
    ):
        # The practice's crisis guidance goes out in its own words, never reworded.
        return extractive
    found = (
        nearest_passages(index, question, extractive.language)
        if declined
        else retrieved_passages(index, question, extractive.language)
    )
    numbered = [llm.Passage(n, p.source, p.section, p.text) for n, p in enumerate(found, start=1)]
    phrased = model.phrase_answer(question, numbered, meter, may_decline=declined)
    if phrased is None:
        return extractive
    verdict = grounding.check(phrased.text, {p.number: p.text for p in numbered})
    if not verdict.supported:
        log.info("generated answer replaced by the extractive one: %s", verdict.reason)
        return extractive
    citations = tuple(
        Citation(numbered[n - 1].source, numbered[n - 1].section, numbered[n - 1].text[:500])
        for n in verdict.cited
    )
    return Answer(True, verdict.text, citations, "phrased", extractive.language)


def answer_many(
    runtime: Runtime, practice_id: int, questions: Sequence[str], language: str | None = None
) -> list[Answer]:
    """Many questions against one index (built or fetched once)."""
    with runtime.transaction() as session:
        index = index_for(session, practice_id, embeddings=runtime.settings.kb_embeddings)
    return [answer_question(index, q, language) for q in questions]


def demo_documents() -> list[Path]:
    """The demo practice's knowledge base, shipped inside the package."""
    folder = Path(__file__).resolve().parent.parent / "agent" / "demo_kb"
    return sorted(folder.glob("*.md"))


def seed_demo_documents(session: Session, practice: Practice) -> list[AddResult]:
    return [
        add_document(session, practice, path.name, path.read_bytes(), actor="demo-seed")
        for path in demo_documents()
    ]
