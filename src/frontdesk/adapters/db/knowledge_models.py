"""The knowledge base: a practice's documents and the chunks answers are built from."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from frontdesk.adapters.db.models import Base, utcnow


class KnowledgeDocument(Base):
    """One file a practice loaded (by CLI or upload), keyed by its source name.

    ``status`` is ``ready`` (chunks stored) or ``failed`` (``error`` says why, in words that
    never quote the file's content). Re-adding the same name with the same ``content_hash`` is
    a no-op; a new hash replaces the chunks.
    """

    __tablename__ = "knowledge_documents"
    __table_args__ = (UniqueConstraint("practice_id", "source"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(500))
    content_hash: Mapped[str] = mapped_column(String(64))
    media_type: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20))
    error: Mapped[str | None] = mapped_column(String(500))
    title: Mapped[str | None] = mapped_column(String(300))
    chunk_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class KnowledgeChunk(Base):
    """A passage of a document under one section heading, in reading order."""

    __tablename__ = "knowledge_chunks"
    __table_args__ = (
        UniqueConstraint("document_id", "ordinal"),
        Index("ix_knowledge_chunks_practice", "practice_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id", ondelete="CASCADE"))
    document_id: Mapped[int] = mapped_column(
        ForeignKey("knowledge_documents.id", ondelete="CASCADE")
    )
    ordinal: Mapped[int] = mapped_column(Integer)
    section: Mapped[str] = mapped_column(String(500))
    text: Mapped[str] = mapped_column(Text)
