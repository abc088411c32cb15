"""The demo's stand-in scheduling system: where the demo practice's custom actions send their
webhooks, so the whole action runs on a laptop. It checks each request's signature, applies
each Idempotency-Key once, and answers 200. Only served in demo mode."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from frontdesk.adapters.db.models import Practice
from frontdesk.bootstrap import Runtime
from frontdesk.domain.errors import NotFound
from frontdesk.domain.times import now_utc
from frontdesk.services import actions

router = APIRouter(include_in_schema=False)


@router.post("/demo/scheduler/{slug}/{rest:path}")
async def receive(request: Request, slug: str, rest: str) -> JSONResponse:
    if not request.app.state.settings.demo:
        raise NotFound("the demo scheduler runs in demo mode only")
    runtime: Runtime = request.app.state.runtime
    raw = (await request.body()).decode("utf-8", "replace")

    def secret() -> str | None:
        with runtime.transaction() as session:
            practice = session.scalar(select(Practice).where(Practice.slug == slug))
            sealed = (practice.settings or {}).get("action_webhook_secret") if practice else None
            return runtime.cipher.open(sealed) if sealed else None

    key_text = await run_in_threadpool(secret)
    valid = key_text is not None and actions.verify_signature(
        key_text, request.headers.get(actions.SIGNATURE_HEADER, ""), raw, now=now_utc()
    )
    if not valid:
        return JSONResponse({"ok": False}, status_code=401)
    key = request.headers.get("Idempotency-Key", "")
    # Remembered per app (a real scheduling system keeps them in its database).
    applied: set[str] | None = getattr(request.app.state, "demo_scheduler_keys", None)
    if applied is None:
        applied = request.app.state.demo_scheduler_keys = set()
    first = key not in applied
    applied.add(key)
    return JSONResponse({"ok": True, "reference": key, "applied": first})
