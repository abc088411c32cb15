"""Admin settings: channel accounts (secrets shown only masked; a blank secret field keeps the
stored one) and the knowledge base (upload, per-document status, remove)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, File, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from frontdesk.adapters.db.models import Practice
from frontdesk.bootstrap import Runtime
from frontdesk.domain.errors import FieldError, ValidationFailed
from frontdesk.services import audit, channel_accounts, knowledge
from frontdesk.services.channel_accounts import PROVIDERS
from frontdesk.web.access import client_ip
from frontdesk.web.pages.settings_common import (
    Admin,
    Done,
    change,
    practice_of,
    render,
    runtime_of,
    show,
)

router = APIRouter(include_in_schema=False)


# --- channels ----------------------------------------------------------------------------------


def _kind(annotation: Any) -> str:
    text = str(annotation)
    if "SecretStr" in text:
        return "secret"
    if "dict" in text:
        return "json"
    if text in ("bool", "<class 'bool'>"):
        return "bool"
    return "text"


def provider_fields(model: type[BaseModel]) -> list[dict[str, Any]]:
    """The form fields of a provider's settings model."""
    fields = []
    for name, info in model.model_fields.items():
        default = None if info.is_required() else info.get_default(call_default_factory=True)
        kind = _kind(info.annotation)
        if kind == "json":
            default = json.dumps(default) if default is not None else ""
        elif default is not None and hasattr(default, "value"):
            default = default.value
        fields.append(
            {
                "name": name,
                "kind": kind,
                "required": info.is_required(),
                "description": info.description or "",
                "default": ""
                if default is None
                else str(default).lower()
                if kind == "bool"
                else str(default),
            }
        )
    return fields


def _channels_page(session: Session, runtime: Runtime, practice: Practice) -> dict[str, Any]:
    current = {
        a["channel"]: a for a in channel_accounts.list_accounts(session, practice, runtime.cipher)
    }
    channels = []
    for channel, providers in PROVIDERS.items():
        account = current.get(channel)
        forms = []
        for provider, model in providers.items():
            fields = provider_fields(model) if model is not None else []
            if account and account["provider"] == provider:
                for f in fields:
                    stored = account["settings"].get(f["name"])
                    if f["kind"] == "secret":
                        f["masked"] = account["secrets"].get(f["name"], "")
                    elif stored is not None:
                        f["value"] = (
                            json.dumps(stored)
                            if f["kind"] == "json"
                            else str(stored).lower()
                            if f["kind"] == "bool"
                            else str(stored)
                        )
            forms.append({"provider": provider, "fields": fields})
        channels.append({"channel": channel, "account": account, "forms": forms})
    return {"channels": channels}


@router.get("/settings/channels", response_class=HTMLResponse)
async def channels_page(request: Request, staff: Admin) -> Response:
    return await show(request, staff, "settings_channels.html", _channels_page)


@router.post("/settings/channels/{channel}/{provider}")
async def save_channel(request: Request, staff: Admin, channel: str, provider: str) -> Response:
    submitted = await request.form()
    model = PROVIDERS.get(channel, {}).get(provider)
    values: dict[str, Any] = {}
    typed: dict[str, str] = {}
    problems: list[FieldError] = []
    for f in provider_fields(model) if model is not None else []:
        raw = submitted.get(f["name"])
        text = raw.strip()[:5000] if isinstance(raw, str) else ""
        if not text:
            continue  # a blank secret keeps the stored one; a blank setting takes the default
        if f["kind"] != "secret":
            typed[f["name"]] = text
        if f["kind"] == "json":
            try:
                values[f["name"]] = json.loads(text)
            except json.JSONDecodeError as exc:
                problems.append(FieldError(f["name"], f"not valid JSON: {exc.msg}"))
        else:
            values[f["name"]] = text

    def work(session: Session, runtime: Runtime, practice: Practice) -> Done:
        if problems:
            raise ValidationFailed(problems)
        channel_accounts.set_account(
            session, runtime.cipher, practice, channel, provider, values, actor=staff.actor
        )
        return Done(f"Saved the {channel.replace('_', ' ')} account ({provider}).")

    return await change(
        request,
        staff,
        "settings_channels.html",
        _channels_page,
        work,
        failed=f"{channel}/{provider}",
        form=typed,
    )


# --- knowledge base ----------------------------------------------------------------------------


def _knowledge_page(session: Session, runtime: Runtime, practice: Practice) -> dict[str, Any]:
    return {
        "documents": knowledge.list_documents(session, practice.id),
        # An upload is one request body, bounded by FRONTDESK_MAX_BODY_BYTES as well.
        "max_bytes": min(runtime.settings.kb_max_document_bytes, runtime.settings.max_body_bytes),
    }


@router.get("/settings/knowledge", response_class=HTMLResponse)
async def knowledge_page(request: Request, staff: Admin) -> Response:
    return await show(request, staff, "settings_knowledge.html", _knowledge_page)


@router.post("/settings/knowledge")
async def upload_documents(
    request: Request, staff: Admin, files: Annotated[list[UploadFile] | None, File()] = None
) -> Response:
    """Each file is added in its own transaction: one bad file never stops the others."""
    runtime = runtime_of(request)
    limit = runtime.settings.kb_max_document_bytes
    uploads = [(f.filename or "", await f.read(limit + 1)) for f in files or []]

    def run() -> tuple[list[str], list[FieldError]]:
        lines: list[str] = []
        problems: list[FieldError] = []
        for name, content in uploads:
            if not name:
                continue
            try:
                with runtime.transaction() as session:
                    audit.from_where(session, client_ip(request))
                    result = knowledge.add_document(
                        session,
                        practice_of(session, staff),
                        name,
                        content,
                        actor=staff.actor,
                        max_bytes=limit,
                    )
            except ValidationFailed as exc:
                problems += [FieldError(f"{name}: {e.loc}", e.message) for e in exc.errors]
                continue
            lines.append(
                f"{result.source}: {result.outcome}"
                + (f" ({result.error})" if result.error else f", {result.chunks} passages")
            )
        return lines, problems

    lines, problems = await run_in_threadpool(run)
    if not lines and not problems:
        problems = [FieldError("files", "choose at least one file")]
    return await run_in_threadpool(
        lambda: render(
            request,
            staff,
            "settings_knowledge.html",
            _knowledge_page,
            done=Done("; ".join(lines)) if lines else None,
            errors=problems,
            failed="upload",
            status=422 if problems and not lines else 200,
        )
    )


@router.post("/settings/knowledge/{document_id}/remove")
async def remove_document(request: Request, staff: Admin, document_id: int) -> Response:
    def work(session: Session, runtime: Runtime, practice: Practice) -> Done:
        view = knowledge.remove_document(session, practice.id, str(document_id), actor=staff.actor)
        return Done(f"Removed {view['source']}.")

    return await change(
        request, staff, "settings_knowledge.html", _knowledge_page, work, failed="documents"
    )
