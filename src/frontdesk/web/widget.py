"""The embeddable web chat: ``<script src=".../widget.js?practice=SLUG" async></script>``.

The script and its API are served by frontdesk. Cross-origin calls are answered only for the
practice's configured sites (and frontdesk's own pages); the visitor's conversation token lives
in their browser's storage, so the chat survives reloads. New messages and "a person has
joined" arrive over server-sent events.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from pydantic import BaseModel
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from frontdesk.adapters.db.models import Practice
from frontdesk.bootstrap import Runtime
from frontdesk.domain.errors import Forbidden, NotFound
from frontdesk.domain.times import now_utc
from frontdesk.services import practices, webchat
from frontdesk.services.chores import message_sender
from frontdesk.web.pages.shared import TEMPLATES

router = APIRouter(include_in_schema=False)
SCRIPT = (Path(__file__).parent / "static" / "widget.js").read_text(encoding="utf-8")


class Post(BaseModel):
    token: str
    text: str


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _practice(runtime: Runtime, slug: str) -> Practice:
    with runtime.transaction() as session:
        practice = session.scalar(select(Practice).where(Practice.slug == slug))
        if practice is None:
            raise NotFound(f"practice {slug!r} not found")
        session.expunge(practice)
        return practice


def _cors(request: Request, practice: Practice, response: Response) -> Response:
    origin = request.headers.get("origin")
    own = request.app.state.settings.public_url
    if not webchat.origin_allowed(practice, origin, own) and origin != _self_origin(request):
        raise Forbidden("this site may not use the practice's chat")
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = "Content-Type"
        response.headers["Access-Control-Max-Age"] = "600"
    return response


def _self_origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.headers.get('host', '')}"


@router.get("/widget.js")
async def script(request: Request, practice: str) -> Response:
    runtime = _runtime(request)
    chosen = await run_in_threadpool(_practice, runtime, practice)
    config = webchat.widget_config(chosen).as_dict()
    config.pop("allowed_origins")
    base = str(request.base_url).rstrip("/")
    body = SCRIPT.replace(
        "__FRONTDESK_CONFIG__", json.dumps({**config, "practice": practice, "base": base})
    )
    return Response(
        body,
        media_type="application/javascript",
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )


@router.options("/widget/api/{slug}/{rest:path}")
async def preflight(request: Request, slug: str, rest: str) -> Response:
    chosen = await run_in_threadpool(_practice, _runtime(request), slug)
    return _cors(request, chosen, Response(status_code=204))


@router.post("/widget/api/{slug}/sessions")
async def start(request: Request, slug: str) -> Response:
    runtime = _runtime(request)
    chosen = await run_in_threadpool(_practice, runtime, slug)
    _cors(request, chosen, Response())

    def run() -> dict[str, Any]:
        now = now_utc()
        with runtime.transaction() as session:
            practice = session.get(Practice, chosen.id)
            assert practice is not None
            token, conversation = webchat.start(session, runtime.cipher, practice, now)
            session.flush()
            return {"token": token, **webchat.history(session, conversation)}

    return _cors(request, chosen, JSONResponse(await run_in_threadpool(run), status_code=201))


@router.get("/widget/api/{slug}/messages")
async def messages(request: Request, slug: str, token: str, after: int = 0) -> Response:
    runtime = _runtime(request)
    chosen = await run_in_threadpool(_practice, runtime, slug)
    _cors(request, chosen, Response())

    def read() -> dict[str, Any]:
        with runtime.transaction() as session:
            conversation = webchat.find(session, runtime.cipher, chosen, token)
            return webchat.history(session, conversation, after)

    return _cors(request, chosen, JSONResponse(await run_in_threadpool(read)))


@router.post("/widget/api/{slug}/messages")
async def post(request: Request, slug: str, body: Post) -> Response:
    runtime = _runtime(request)
    chosen = await run_in_threadpool(_practice, runtime, slug)
    _cors(request, chosen, Response())

    def run() -> Response:
        try:
            webchat.post(runtime, message_sender(runtime), chosen, body.token, body.text, now_utc())
        except webchat.RateLimited as exc:
            return JSONResponse(
                {"error": {"code": "rate_limited", "message": str(exc), "fields": []}},
                status_code=429,
                headers={"Retry-After": "30"},
            )
        return JSONResponse({"accepted": True}, status_code=202)

    return _cors(request, chosen, await run_in_threadpool(run))


@router.get("/widget/api/{slug}/events")
async def events(request: Request, slug: str, token: str, after: int = 0) -> Response:
    """New messages and the conversation's state, as server-sent events."""
    runtime = _runtime(request)
    chosen = await run_in_threadpool(_practice, runtime, slug)
    _cors(request, chosen, Response())

    def read(last: int) -> dict[str, Any]:
        with runtime.transaction() as session:
            conversation = webchat.find(session, runtime.cipher, chosen, token)
            return webchat.history(session, conversation, last)

    first = await run_in_threadpool(read, after)  # 404 now, before the stream starts

    async def stream() -> AsyncIterator[str]:
        last = after
        state = None
        current = first
        while True:
            for message in current["messages"]:
                last = max(last, message["id"])
                yield f"event: message\ndata: {json.dumps(message)}\n\n"
            now_state = (current["person_joined"], current["with_staff"])
            if now_state != state:
                state = now_state
                payload = {"person_joined": state[0], "with_staff": state[1]}
                yield f"event: state\ndata: {json.dumps(payload)}\n\n"
            if await request.is_disconnected():
                return
            await asyncio.sleep(1.0)
            current = await run_in_threadpool(read, last)

    return _cors(request, chosen, StreamingResponse(stream(), media_type="text/event-stream"))


@router.get("/chat-demo", response_class=HTMLResponse)
async def demo_page(request: Request, practice: str | None = None) -> HTMLResponse:
    """A page with the widget on it, as a practice's own site would have."""
    runtime = _runtime(request)

    def slug() -> str:
        with runtime.transaction() as session:
            return practices.resolve_practice(session, practice).slug

    return TEMPLATES.TemplateResponse(
        request, "chat_demo.html", {"slug": await run_in_threadpool(slug)}
    )
