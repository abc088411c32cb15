"""Webhooks from messaging providers: Twilio SMS (messages and status callbacks), WhatsApp Cloud
API (subscription handshake, messages and statuses), SendGrid and Mailgun inbound email.

Each one: verify the signature on the raw request (a forged or altered request gets 403 and
changes nothing), store the raw payload, process it once (a redelivery is recognised), answer
fast. Processing failures leave the payload stored and retryable; the provider still gets 200
so it does not hammer us, and the worker retries.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from frontdesk.adapters.channels.config import (
    MailgunInboundSettings,
    TwilioSettings,
    WhatsAppSettings,
)
from frontdesk.adapters.channels.email_inbound import verify_mailgun_signature
from frontdesk.adapters.channels.twilio_sms import empty_twiml, verify_twilio_signature
from frontdesk.adapters.channels.whatsapp import verify_signature, verify_subscription
from frontdesk.adapters.db.models import Practice
from frontdesk.bootstrap import Runtime
from frontdesk.domain.errors import Forbidden, NotFound
from frontdesk.domain.times import now_utc
from frontdesk.services import channel_accounts, inbound_messages
from frontdesk.services import provider_inbound as _parsers  # noqa: F401  (registers parsers)
from frontdesk.services.channel_accounts import SendgridInboundSettings
from frontdesk.services.chores import message_sender
from frontdesk.services.provider_inbound import envelope

router = APIRouter(include_in_schema=False)


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _account(runtime: Runtime, slug: str, channel: str) -> tuple[int, BaseModel]:
    """The practice and its provider settings; 404 for an unknown practice or a channel with no
    such account (nothing to verify a signature with)."""
    with runtime.transaction() as session:
        practice_id = session.scalar(select(Practice.id).where(Practice.slug == slug))
        if practice_id is None:
            raise NotFound("no such practice")
        found = channel_accounts.account(session, runtime.cipher, practice_id, channel)
    if found is None or found[1] is None:
        raise NotFound(f"no {channel} provider is configured for this practice")
    return practice_id, found[1]


def _public_url(request: Request) -> str:
    """The URL the provider called, as configured at the provider: our public address, not
    what a proxy shows us."""
    base = request.app.state.settings.public_url.rstrip("/")
    query = f"?{request.url.query}" if request.url.query else ""
    return f"{base}{request.url.path}{query}"


def _accept(
    runtime: Runtime,
    practice_id: int,
    provider: str,
    kind: str,
    dedupe_key: str,
    body: str,
    content_type: str | None,
) -> None:
    inbound_messages.accept(
        runtime,
        message_sender(runtime),
        practice_id=practice_id,
        provider=provider,
        kind=kind,
        dedupe_key=dedupe_key,
        payload=envelope(body),
        content_type=content_type,
    )


# --- Twilio -------------------------------------------------------------------------------------


async def _twilio(request: Request, slug: str, kind: str) -> Response:
    runtime = _runtime(request)
    practice_id, settings = await run_in_threadpool(_account, runtime, slug, "sms")
    assert isinstance(settings, TwilioSettings)
    raw = await request.body()
    form = await request.form()
    pairs = [(k, str(v)) for k, v in form.multi_items()]
    if not verify_twilio_signature(
        _public_url(request),
        pairs,
        request.headers.get("x-twilio-signature"),
        settings.auth_token.get_secret_value(),
    ):
        raise Forbidden("the Twilio signature does not match")
    fields = dict(pairs)
    sid = fields.get("MessageSid") or fields.get("SmsSid") or ""
    status = fields.get("MessageStatus") or fields.get("SmsStatus") or ""
    key = sid if kind == "message" else f"{sid}:{status}:{fields.get('ErrorCode', '')}"
    await run_in_threadpool(
        _accept,
        runtime,
        practice_id,
        "twilio",
        kind,
        key,
        raw.decode("utf-8"),
        request.headers.get("content-type"),
    )
    return Response(empty_twiml(), media_type="text/xml")


@router.post("/webhooks/twilio/{slug}/sms")
async def twilio_sms(request: Request, slug: str) -> Response:
    return await _twilio(request, slug, "message")


@router.post("/webhooks/twilio/{slug}/status")
async def twilio_status(request: Request, slug: str) -> Response:
    return await _twilio(request, slug, "status")


# --- WhatsApp Cloud API ---------------------------------------------------------------------


@router.get("/webhooks/whatsapp/{slug}")
async def whatsapp_handshake(request: Request, slug: str) -> Response:
    _, settings = await run_in_threadpool(_account, _runtime(request), slug, "whatsapp")
    assert isinstance(settings, WhatsAppSettings)
    challenge = verify_subscription(
        dict(request.query_params), settings.verify_token.get_secret_value()
    )
    if challenge is None:
        raise Forbidden("the verify token does not match")
    return PlainTextResponse(challenge)


@router.post("/webhooks/whatsapp/{slug}")
async def whatsapp(request: Request, slug: str) -> Response:
    runtime = _runtime(request)
    practice_id, settings = await run_in_threadpool(_account, runtime, slug, "whatsapp")
    assert isinstance(settings, WhatsAppSettings)
    raw = await request.body()
    if not verify_signature(
        raw, request.headers.get("x-hub-signature-256"), settings.app_secret.get_secret_value()
    ):
        raise Forbidden("the X-Hub-Signature-256 does not match")
    # Meta may batch several messages and statuses in one body and re-sends the same body on
    # failure: the body's hash identifies the delivery, each message id dedupes in the thread.
    key = hashlib.sha256(raw).hexdigest()
    await run_in_threadpool(
        _accept, runtime, practice_id, "whatsapp", "event", key, raw.decode("utf-8"), None
    )
    return Response(status_code=200)


# --- Inbound email --------------------------------------------------------------------------


async def _form_fields(request: Request) -> dict[str, Any]:
    form = await request.form()
    out: dict[str, Any] = {}
    for key, value in form.multi_items():
        if isinstance(value, str):
            out[key] = value
        # Attachments are not kept: minimum necessary.
    return out


@router.post("/webhooks/email/{slug}/sendgrid/{token}")
async def sendgrid(request: Request, slug: str, token: str) -> Response:
    """SendGrid Inbound Parse does not sign requests: the URL carries a secret token."""
    runtime = _runtime(request)
    practice_id, settings = await run_in_threadpool(_account, runtime, slug, "email_inbound")
    if not isinstance(settings, SendgridInboundSettings) or not _same(
        token, settings.url_token.get_secret_value()
    ):
        raise Forbidden("unknown inbound address")
    fields = await _form_fields(request)
    key = _email_key(fields, "headers")
    await run_in_threadpool(
        _accept, runtime, practice_id, "sendgrid", "message", key, json.dumps(fields), None
    )
    return Response(status_code=200)


@router.post("/webhooks/email/{slug}/mailgun")
async def mailgun(request: Request, slug: str) -> Response:
    runtime = _runtime(request)
    practice_id, settings = await run_in_threadpool(_account, runtime, slug, "email_inbound")
    if not isinstance(settings, MailgunInboundSettings):
        raise NotFound("Mailgun is not this practice's inbound email")
    fields = await _form_fields(request)
    if not verify_mailgun_signature(
        settings.signing_key.get_secret_value(),
        str(fields.get("timestamp", "")),
        str(fields.get("token", "")),
        str(fields.get("signature", "")),
        now=now_utc(),
        max_age_seconds=settings.max_age_seconds,
    ):
        raise Forbidden("the Mailgun signature does not match")
    key = str(fields.get("Message-Id") or fields.get("token"))
    await run_in_threadpool(
        _accept, runtime, practice_id, "mailgun", "message", key, json.dumps(fields), None
    )
    return Response(status_code=200)


def _same(a: str, b: str) -> bool:
    import hmac

    return hmac.compare_digest(a.encode(), b.encode())


def _email_key(fields: dict[str, Any], headers_field: str) -> str:
    """The Message-ID from the raw headers, else a hash of the fields."""
    for line in str(fields.get(headers_field, "")).splitlines():
        name, _, value = line.partition(":")
        if name.strip().lower() == "message-id" and value.strip():
            return value.strip()
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()
