"""REST API: the practice's knowledge base (upload, list, delete documents; ask questions)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response, UploadFile
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from frontdesk.bootstrap import Runtime
from frontdesk.domain.errors import FieldError, ValidationFailed
from frontdesk.services import knowledge
from frontdesk.services.apikeys import Caller
from frontdesk.web.api.v1 import ERRORS, caller, runtime_of, writer

router = APIRouter(prefix="/api/v1/knowledge", tags=["knowledge"])


class Question(BaseModel):
    question: str = Field(min_length=1, max_length=1000, description="The patient's question.")
    language: str | None = Field(
        default=None, pattern="^(en|es)$", description="en or es (default: detected)."
    )


def _upload(runtime: Runtime, who: Caller, files: list[tuple[str, bytes]]) -> list[dict[str, Any]]:
    from frontdesk.adapters.db.models import Practice

    results = []
    for name, content in files:
        with runtime.transaction() as session:
            practice = session.get_one(Practice, who.practice_id)
            result = knowledge.add_document(
                session,
                practice,
                name,
                content,
                actor=who.actor,
                max_bytes=runtime.settings.kb_max_document_bytes,
            )
        results.append(result.as_dict())
    return results


@router.post(
    "/documents",
    responses=ERRORS,
    summary="Upload documents (multipart, field 'files'; Markdown, text, HTML, PDF, DOCX)",
)
async def upload_documents(
    request: Request,
    response: Response,
    files: list[UploadFile],
    who: Annotated[Caller, Depends(writer)],
) -> dict[str, Any]:
    """Each file is stored under its file name: a new name is added, a changed file replaces
    its previous version, an identical one is left alone. A file that cannot be read is stored
    as ``failed`` with its error and the others still load; the response lists each file's
    ``outcome`` (added, replaced, unchanged, failed). 201 when anything was added or replaced."""
    read: list[tuple[str, bytes]] = []
    problems: list[FieldError] = []
    for index, upload in enumerate(files):
        if not upload.filename:
            problems.append(FieldError(f"body.files.{index}", "a file name is required"))
            continue
        name = upload.filename.replace("\\", "/").rsplit("/", 1)[-1]  # no client paths
        if not name.strip():
            problems.append(FieldError(f"body.files.{index}", "a file name is required"))
            continue
        read.append((name, await upload.read()))
    if problems:
        raise ValidationFailed(problems)
    results = await run_in_threadpool(_upload, runtime_of(request), who, read)
    if any(r["outcome"] in {"added", "replaced"} for r in results):
        response.status_code = 201
    return {"documents": results}


@router.get("/documents", responses=ERRORS, summary="The practice's documents and their status")
async def list_documents(
    request: Request, who: Annotated[Caller, Depends(caller)]
) -> dict[str, Any]:
    def work() -> list[dict[str, Any]]:
        with runtime_of(request).transaction() as session:
            return knowledge.list_documents(session, who.practice_id)

    return {"items": await run_in_threadpool(work)}


@router.delete(
    "/documents/{document_id}", responses=ERRORS, status_code=204, summary="Delete a document"
)
async def delete_document(
    document_id: int, request: Request, who: Annotated[Caller, Depends(writer)]
) -> Response:
    def work() -> None:
        with runtime_of(request).transaction() as session:
            knowledge.remove_document(session, who.practice_id, str(document_id), actor=who.actor)

    await run_in_threadpool(work)
    return Response(status_code=204)


@router.post("/ask", responses=ERRORS, summary="Answer a question from the documents")
async def ask(
    body: Question, request: Request, who: Annotated[Caller, Depends(caller)]
) -> dict[str, Any]:
    """``{"answered", "answer", "citations": [{"source", "section", "text"}]}``: an extractive
    answer with its citations, or ``answered: false`` with a reply that offers a person."""
    answer = await run_in_threadpool(
        knowledge.answer, runtime_of(request), who.practice_id, body.question, body.language
    )
    return answer.as_dict()
