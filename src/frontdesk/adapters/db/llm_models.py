"""Language-model calls, one row each: what a practice's pay-as-you-go usage is made of."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from frontdesk.adapters.db.models import Base, utcnow


class LlmCall(Base):
    """One call to the practice's language model. Append-only (no row is ever updated), so
    any number of processes record calls without contending for a counter. Holds counts and
    the purpose only: never a prompt, a message or an answer."""

    __tablename__ = "llm_calls"
    __table_args__ = (Index("ix_llm_calls_practice_at", "practice_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    # extract_field, pick_action, phrase_answer
    purpose: Mapped[str] = mapped_column(String(40))
    model: Mapped[str] = mapped_column(String(120))
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    # False: the call failed (timeout, error, unusable answer); it may still have used tokens.
    ok: Mapped[bool] = mapped_column(Boolean, default=True)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
