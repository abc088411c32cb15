"""`frontdesk kb add / list / remove / ask`: the practice's knowledge base."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from frontdesk.cli.common import (
    EXIT_REJECTED,
    JsonOpt,
    PracticeOpt,
    app,
    emit_json,
    fail,
    opened,
    out,
    print_json,
    read_jsonl,
)

kb_app = typer.Typer(
    help="Knowledge base: the practice's documents, and answers from them.", no_args_is_help=True
)
app.add_typer(kb_app, name="kb")


@kb_app.command("add")
def kb_add(
    paths: Annotated[
        list[Path], typer.Argument(help="Files or folders (read recursively).", exists=True)
    ],
    practice: PracticeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add Markdown, text, HTML, PDF or DOCX files. A changed file replaces its old version, an
    unchanged one is left alone; a file that cannot be read is reported and the rest still load
    (exit code 3 when any failed)."""
    from frontdesk.services import knowledge

    with opened() as runtime:
        results = knowledge.add_paths(runtime, practice, paths)
    if as_json:
        print_json([r.as_dict() for r in results])
    else:
        for r in results:
            detail = f"{r.chunks} chunks" if r.outcome != "failed" else f"error: {r.error}"
            out.print(f"{r.outcome:<9} {r.source}  ({detail})")
        failed = sum(1 for r in results if r.outcome == "failed")
        out.print(f"{len(results) - failed} loaded, {failed} failed")
    if not results:
        fail("no files found in the paths given")
    if any(r.outcome == "failed" for r in results):
        raise typer.Exit(EXIT_REJECTED)


@kb_app.command("list")
def kb_list(practice: PracticeOpt = None, as_json: JsonOpt = False) -> None:
    """The practice's documents with their status (ready or failed, and why)."""
    from frontdesk.services import knowledge
    from frontdesk.services.practices import resolve_practice

    with opened() as runtime, runtime.transaction() as session:
        docs = knowledge.list_documents(session, resolve_practice(session, practice).id)
    if as_json:
        print_json(docs)
        return
    table = Table("id", "source", "title", "status", "chunks", "updated", "error")
    for d in docs:
        table.add_row(
            str(d["id"]),
            d["source"],
            d["title"] or "",
            d["status"],
            str(d["chunks"]),
            d["updated_at"][:16].replace("T", " "),
            d["error"] or "",
        )
    out.print(table)
    out.print(f"{len(docs)} documents")


@kb_app.command("remove")
def kb_remove(
    name_or_id: Annotated[str, typer.Argument(help="The document's source name or id.")],
    practice: PracticeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove a document and its passages from the knowledge base."""
    from frontdesk.services import knowledge
    from frontdesk.services.practices import resolve_practice

    with opened() as runtime, runtime.transaction() as session:
        removed = knowledge.remove_document(
            session, resolve_practice(session, practice).id, name_or_id
        )
    if as_json:
        print_json(removed)
    else:
        out.print(f"removed {removed['source']} (id {removed['id']})")


@kb_app.command("ask")
def kb_ask(
    question: Annotated[str | None, typer.Argument(help="The question, in quotes.")] = None,
    jsonl: Annotated[
        Path | None,
        typer.Option(
            "--jsonl",
            help='Answer every line {"id", "question"} of FILE ("-" for stdin), one JSON '
            "object per line.",
        ),
    ] = None,
    language: Annotated[
        str | None, typer.Option("--language", help="en or es (default: detected).")
    ] = None,
    practice: PracticeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Answer a question from the practice's documents, with citations, or say they don't
    cover it. With --json prints {"answered", "answer", "citations": [{"source", "section",
    "text"}]}."""
    from frontdesk.services import knowledge
    from frontdesk.services.practices import resolve_practice

    if (question is None) == (jsonl is None):
        fail("give either a QUESTION or --jsonl FILE")
    if language is not None and language not in {"en", "es"}:
        fail("--language must be en or es")
    rows: list[dict[str, Any]] = []
    if jsonl is not None:
        rows = read_jsonl(jsonl, "question")
    with opened() as runtime:
        with runtime.transaction() as session:
            practice_id = resolve_practice(session, practice).id
        if jsonl is None:
            assert question is not None
            answer = knowledge.answer(runtime, practice_id, question, language)
            if as_json:
                emit_json(answer.as_dict())
                return
            out.print(answer.answer)
            for c in answer.citations:
                out.print(f"  — {c.source}, {c.section}")
            return
        answers = knowledge.answer_many(
            runtime, practice_id, [str(r["question"]) for r in rows], language
        )
    for row, answer in zip(rows, answers, strict=True):
        emit_json({"id": row["id"], **answer.as_dict()})
