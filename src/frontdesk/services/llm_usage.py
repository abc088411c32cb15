"""Each practice's language-model usage: every call recorded (tokens, purpose, outcome), a
monthly token budget enforced before each call, and the totals the dashboard bills from."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from frontdesk.adapters.db.llm_models import LlmCall
from frontdesk.adapters.llm import LanguageModel, model_from_settings
from frontdesk.config import Settings

_models: dict[tuple[object, ...], LanguageModel | None] = {}


def language_model(settings: Settings) -> LanguageModel | None:
    """The configured model (one SDK client per process and configuration), or None."""
    key = (
        settings.llm_base_url,
        settings.llm_model,
        settings.llm_api_key,
        settings.llm_timeout_seconds,
        settings.llm_max_tokens,
    )
    if key not in _models:
        _models[key] = model_from_settings(
            settings.llm_base_url,
            settings.llm_model,
            settings.llm_api_key,
            settings.llm_timeout_seconds,
            settings.llm_max_tokens,
        )
    return _models[key]


def month_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def tokens_between(session: Session, practice_id: int, start: datetime, end: datetime) -> int:
    total = session.scalar(
        select(func.coalesce(func.sum(LlmCall.prompt_tokens + LlmCall.completion_tokens), 0)).where(
            LlmCall.practice_id == practice_id, LlmCall.at >= start, LlmCall.at < end
        )
    )
    return int(total or 0)


def usage_between(
    session: Session, practice_id: int, start: datetime, end: datetime
) -> dict[str, int]:
    calls, failed, prompt, completion = session.execute(
        select(
            func.count(LlmCall.id),
            func.coalesce(func.sum(case((LlmCall.ok.is_(False), 1), else_=0)), 0),
            func.coalesce(func.sum(LlmCall.prompt_tokens), 0),
            func.coalesce(func.sum(LlmCall.completion_tokens), 0),
        ).where(LlmCall.practice_id == practice_id, LlmCall.at >= start, LlmCall.at < end)
    ).one()
    return {
        "llm_calls": int(calls or 0),
        "llm_failed_calls": int(failed or 0),
        "llm_prompt_tokens": int(prompt or 0),
        "llm_completion_tokens": int(completion or 0),
        "llm_tokens": int((prompt or 0) + (completion or 0)),
    }


def llm_call(
    practice_id: int, model: str, at: datetime, purpose: str, prompt: int, completion: int
) -> LlmCall:
    """The row recording one call (its outcome is set by the caller)."""
    return LlmCall(
        practice_id=practice_id,
        at=at,
        purpose=purpose[:40],
        model=model[:120],
        prompt_tokens=max(0, prompt),
        completion_tokens=max(0, completion),
    )


@dataclass
class SessionMeter:
    """A ``Meter`` (adapters/llm.py) writing to the caller's session: a call is recorded with
    the change it served, in the same transaction (SQLite has one writer; a second transaction
    from inside the first would wait for itself). ``monthly_budget`` None: no limit."""

    session: Session
    practice_id: int
    model: str
    now: datetime
    monthly_budget: int | None = None
    _used: int | None = field(default=None, init=False)

    def allowed(self) -> bool:
        if self.monthly_budget is None:
            return True
        if self._used is None:
            self._used = monthly_used(self.session, self.practice_id, self.now)
        return self._used < self.monthly_budget

    def record(
        self,
        purpose: str,
        *,
        prompt_tokens: int,
        completion_tokens: int,
        ok: bool,
        duration_ms: int,
    ) -> None:
        call = llm_call(
            self.practice_id, self.model, self.now, purpose, prompt_tokens, completion_tokens
        )
        call.ok, call.duration_ms = ok, duration_ms
        self.session.add(call)
        if self._used is not None:
            self._used += max(0, prompt_tokens) + max(0, completion_tokens)


@dataclass
class BufferedMeter:
    """A ``Meter`` for calls made outside any transaction: whether a call is allowed was read
    before (``used`` tokens this month), and the calls are kept until :meth:`write` adds them
    in the transaction that records the result."""

    practice_id: int
    model: str
    now: datetime
    used: int = 0
    monthly_budget: int | None = None
    calls: list[LlmCall] = field(default_factory=list)

    def allowed(self) -> bool:
        return self.monthly_budget is None or self.used < self.monthly_budget

    def record(
        self,
        purpose: str,
        *,
        prompt_tokens: int,
        completion_tokens: int,
        ok: bool,
        duration_ms: int,
    ) -> None:
        call = llm_call(
            self.practice_id, self.model, self.now, purpose, prompt_tokens, completion_tokens
        )
        call.ok, call.duration_ms = ok, duration_ms
        self.calls.append(call)
        self.used += max(0, prompt_tokens) + max(0, completion_tokens)

    def write(self, session: Session) -> None:
        session.add_all(self.calls)
        self.calls = []


def monthly_used(session: Session, practice_id: int, now: datetime) -> int:
    start = month_start(now)
    return tokens_between(session, practice_id, start, start + timedelta(days=32))
