"""The knowledge base end to end: service, CLI and API, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from conftest import TEST_SECRET, new_api_key
from frontdesk.adapters.db.knowledge_models import KnowledgeChunk, KnowledgeDocument
from frontdesk.bootstrap import Runtime, build_runtime
from frontdesk.cli import app
from frontdesk.config import Settings
from frontdesk.services import knowledge, practices
from kb_files import docx_bytes, pdf_bytes

FEES_V1 = "# Fees\n\n## Late cancellation\n\nThe late cancellation fee is $75.\n"
FEES_V2 = "# Fees\n\n## Late cancellation\n\nThe late cancellation fee is $90.\n"


def default_practice_id(runtime: Runtime) -> int:
    with runtime.transaction() as session:
        return practices.resolve_practice(session, None).id


def chunk_count(runtime: Runtime) -> int:
    with runtime.transaction() as session:
        return session.scalar(select(func.count()).select_from(KnowledgeChunk)) or 0


def write_folder(root: Path) -> Path:
    folder = root / "kb"
    (folder / "policies").mkdir(parents=True)
    (folder / "fees.md").write_text(FEES_V1)
    (folder / "policies" / "parking.txt").write_text("PARKING\nFree parking behind the building.\n")
    (folder / "policies" / "hours.html").write_text(
        "<h1>Hours</h1><p>We are open Monday to Thursday from 8 a.m. to 7 p.m.</p>"
    )
    (folder / "telehealth.pdf").write_bytes(
        pdf_bytes([["Telehealth", "Video sessions use a secure link sent 10 minutes before."]])
    )
    (folder / "records.docx").write_bytes(
        docx_bytes([("h1", "Records"), ("p", "Records are sent within 15 business days.")])
    )
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4\ngarbage")
    (folder / "photo.png").write_bytes(b"\x89PNG\r\n")
    (folder / ".hidden.md").write_text("# Secret\n\nnot loaded\n")
    return folder


# --- the service -----------------------------------------------------------------------------


def test_add_a_folder_reports_each_file_and_loads_the_good_ones(
    runtime: Runtime, tmp_path: Path
) -> None:
    results = knowledge.add_paths(runtime, None, [write_folder(tmp_path)])
    outcomes = {r.source: (r.outcome, r.error) for r in results}
    assert outcomes["fees.md"] == ("added", None)
    assert outcomes["policies/parking.txt"] == ("added", None)
    assert outcomes["policies/hours.html"] == ("added", None)
    assert outcomes["telehealth.pdf"] == ("added", None)
    assert outcomes["records.docx"] == ("added", None)
    assert outcomes["broken.pdf"][0] == "failed" and "PDF" in (outcomes["broken.pdf"][1] or "")
    assert outcomes["photo.png"] == ("failed", outcomes["photo.png"][1])
    assert "unsupported file type .png" in (outcomes["photo.png"][1] or "")
    assert ".hidden.md" not in outcomes
    practice_id = default_practice_id(runtime)
    with runtime.transaction() as session:
        listed = {d["source"]: d for d in knowledge.list_documents(session, practice_id)}
    assert listed["broken.pdf"]["status"] == "failed" and listed["broken.pdf"]["chunks"] == 0
    assert listed["records.docx"]["status"] == "ready" and listed["records.docx"]["title"]
    for question, phrase, source in [
        ("How much is the late cancellation fee?", "$75", "fees.md"),
        ("Is parking free?", "Free parking", "policies/parking.txt"),
        ("When are you open?", "Monday to Thursday", "policies/hours.html"),
        ("When do I get the telehealth link?", "10 minutes", "telehealth.pdf"),
        ("How long until my records are sent?", "15 business days", "records.docx"),
    ]:
        answer = knowledge.answer(runtime, practice_id, question)
        assert answer.answered, question
        assert phrase in answer.answer and answer.citations[0].source == source


def test_readding_replaces_changed_files_and_skips_unchanged_ones(
    runtime: Runtime, tmp_path: Path
) -> None:
    path = tmp_path / "fees.md"
    path.write_text(FEES_V1)
    practice_id = default_practice_id(runtime)
    [first] = knowledge.add_paths(runtime, None, [path])
    assert first.outcome == "added"
    assert "$75" in knowledge.answer(runtime, practice_id, "late cancellation fee?").answer
    [again] = knowledge.add_paths(runtime, None, [path])
    assert (again.outcome, again.document_id) == ("unchanged", first.document_id)
    path.write_text(FEES_V2)
    [changed] = knowledge.add_paths(runtime, None, [path])
    assert (changed.outcome, changed.document_id) == ("replaced", first.document_id)
    assert chunk_count(runtime) == 1  # the old chunk is gone, not kept beside the new one
    answer = knowledge.answer(runtime, practice_id, "late cancellation fee?")
    assert "$90" in answer.answer and "$75" not in answer.answer


def test_the_cached_index_follows_changes_made_by_another_process(
    runtime: Runtime, settings: Settings, tmp_path: Path
) -> None:
    practice_id = default_practice_id(runtime)
    question = "What is the late cancellation fee?"
    assert not knowledge.answer(runtime, practice_id, question).answered  # cached: empty
    other = build_runtime(settings)  # another process's runtime, same database
    try:
        (tmp_path / "fees.md").write_text(FEES_V1)
        knowledge.add_paths(other, None, [tmp_path / "fees.md"])
        assert "$75" in knowledge.answer(runtime, practice_id, question).answer
        with other.transaction() as session:
            knowledge.remove_document(session, practice_id, "fees.md")
    finally:
        other.dispose()
    assert not knowledge.answer(runtime, practice_id, question).answered


def test_practices_have_separate_knowledge(runtime: Runtime, tmp_path: Path) -> None:
    with runtime.transaction() as session:
        north = practices.create_practice(session, "north", practices.PracticeProfile())
        north_id = north.id
    (tmp_path / "fees.md").write_text(FEES_V1)
    knowledge.add_paths(runtime, "north", [tmp_path / "fees.md"])
    assert knowledge.answer(runtime, north_id, "late cancellation fee?").answered
    default_id = default_practice_id_by_slug(runtime, "default")
    assert not knowledge.answer(runtime, default_id, "late cancellation fee?").answered


def default_practice_id_by_slug(runtime: Runtime, slug: str) -> int:
    with runtime.transaction() as session:
        return practices.resolve_practice(session, slug).id


def test_answer_accepts_a_session_too(runtime: Runtime, tmp_path: Path) -> None:
    (tmp_path / "fees.md").write_text(FEES_V1)
    knowledge.add_paths(runtime, None, [tmp_path / "fees.md"])
    practice_id = default_practice_id(runtime)
    with runtime.transaction() as session:
        answer = knowledge.answer(session, practice_id, "late cancellation fee?", "en")
    assert answer.answered and answer.citations[0].section == "Late cancellation"


def test_removing_an_unknown_document_is_not_found(runtime: Runtime) -> None:
    from frontdesk.domain.errors import NotFound

    with pytest.raises(NotFound), runtime.transaction() as session:
        knowledge.remove_document(session, default_practice_id(runtime), "nope.md")


# --- the CLI ---------------------------------------------------------------------------------


@pytest.fixture
def cli_env(database_url: str, runtime: Runtime) -> dict[str, str | None]:
    env: dict[str, str | None] = {f"FRONTDESK_{n.upper()}": None for n in Settings.model_fields}
    env["FRONTDESK_DATABASE_URL"] = database_url
    env["FRONTDESK_SECRET_KEY"] = TEST_SECRET
    return env


def run_cli(env: dict[str, str | None], *args: str | Path, stdin: str | None = None) -> Any:
    return CliRunner().invoke(app, [str(a) for a in args], env=env, input=stdin)


def test_cli_add_list_ask_remove(
    cli_env: dict[str, str | None], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    folder = write_folder(tmp_path)
    added = run_cli(cli_env, "kb", "add", folder, "--json")
    assert added.exit_code == 3, added.output  # some files failed, the rest loaded
    outcomes = {r["source"]: r["outcome"] for r in json.loads(added.stdout)}
    assert outcomes["fees.md"] == "added" and outcomes["broken.pdf"] == "failed"

    listed = run_cli(cli_env, "kb", "list", "--json")
    assert listed.exit_code == 0
    assert {d["source"]: d["status"] for d in json.loads(listed.stdout)}["fees.md"] == "ready"

    asked = run_cli(cli_env, "kb", "ask", "What's the late cancellation fee?", "--json")
    assert asked.exit_code == 0, asked.output
    body = json.loads(asked.stdout)
    assert list(body) == ["answered", "answer", "citations"]
    assert body["answered"] is True and "$75" in body["answer"]
    assert body["citations"] == [
        {"source": "fees.md", "section": "Late cancellation", "text": body["answer"]}
    ]
    declined = json.loads(run_cli(cli_env, "kb", "ask", "Do you take Cigna?", "--json").stdout)
    assert declined == {"answered": False, "answer": declined["answer"], "citations": []}

    questions = tmp_path / "questions.jsonl"
    questions.write_text(
        "\n".join(
            json.dumps({"id": i, "question": q})
            for i, q in [
                ("q1", "late cancellation fee?"),
                ("q2", "Do you offer couples therapy?"),
                ("q3", "Should I stop my meds?"),
            ]
        )
        + "\n"
    )
    many = run_cli(cli_env, "kb", "ask", "--jsonl", questions)
    assert many.exit_code == 0, many.output
    lines = [json.loads(line) for line in many.stdout.splitlines()]
    assert [(r["id"], r["answered"]) for r in lines] == [
        ("q1", True),
        ("q2", False),
        ("q3", False),
    ]
    assert list(lines[0]) == ["id", "answered", "answer", "citations"]
    piped = run_cli(cli_env, "kb", "ask", "--jsonl", "-", stdin='{"id": 7, "question": "fee?"}\n')
    assert piped.exit_code == 0 and json.loads(piped.stdout)["id"] == 7

    removed = run_cli(cli_env, "kb", "remove", "fees.md")
    assert removed.exit_code == 0, removed.output
    after = json.loads(run_cli(cli_env, "kb", "ask", "late cancellation fee?", "--json").stdout)
    assert after["answered"] is False
    assert run_cli(cli_env, "kb", "remove", "fees.md").exit_code == 2


def test_cli_ask_refuses_bad_input(cli_env: dict[str, str | None], tmp_path: Path) -> None:
    assert run_cli(cli_env, "kb", "ask").exit_code == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1}\n')
    result = run_cli(cli_env, "kb", "ask", "--jsonl", bad)
    assert result.exit_code == 2 and "question" in result.stderr


# --- the API ---------------------------------------------------------------------------------


def upload(client: TestClient, *files: tuple[str, bytes]) -> Any:
    return client.post(
        "/api/v1/knowledge/documents",
        files=[("files", (name, content, "application/octet-stream")) for name, content in files],
    )


def test_api_upload_list_ask_delete(client: TestClient) -> None:
    response = upload(
        client,
        ("fees.md", FEES_V1.encode()),
        ("records.docx", docx_bytes([("h1", "Records"), ("p", "Records take 15 days.")])),
        ("broken.docx", b"not a zip"),
    )
    assert response.status_code == 201, response.text
    outcomes = {d["source"]: d["outcome"] for d in response.json()["documents"]}
    assert outcomes == {"fees.md": "added", "records.docx": "added", "broken.docx": "failed"}
    again = upload(client, ("fees.md", FEES_V1.encode()))
    assert again.status_code == 200 and again.json()["documents"][0]["outcome"] == "unchanged"

    listed = client.get("/api/v1/knowledge/documents").json()["items"]
    status = {d["source"]: (d["status"], d["error"]) for d in listed}
    assert status["fees.md"] == ("ready", None)
    assert status["broken.docx"][0] == "failed" and "DOCX" in status["broken.docx"][1]

    asked = client.post("/api/v1/knowledge/ask", json={"question": "late cancellation fee?"})
    assert asked.status_code == 200
    assert asked.json()["answered"] is True and "$75" in asked.json()["answer"]
    assert asked.json()["citations"][0]["source"] == "fees.md"

    fees_id = next(d["id"] for d in listed if d["source"] == "fees.md")
    assert client.delete(f"/api/v1/knowledge/documents/{fees_id}").status_code == 204
    assert client.delete(f"/api/v1/knowledge/documents/{fees_id}").status_code == 404
    after = client.post("/api/v1/knowledge/ask", json={"question": "late cancellation fee?"})
    assert after.json()["answered"] is False


def test_api_validates_and_authenticates(
    client: TestClient, app_client: TestClient, runtime: Runtime
) -> None:
    bad = client.post("/api/v1/knowledge/ask", json={"question": ""})
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["loc"] == "body.question"
    bad_language = client.post("/api/v1/knowledge/ask", json={"question": "x", "language": "fr"})
    assert bad_language.status_code == 422
    no_files = client.post("/api/v1/knowledge/documents")
    assert no_files.status_code == 422
    assert client.delete("/api/v1/knowledge/documents/999999").status_code == 404
    unknown = {"Authorization": "Bearer fdk_000000000000_wrong"}
    assert app_client.get("/api/v1/knowledge/documents", headers=unknown).status_code == 401
    read_only = new_api_key(runtime, "default", can_write=False)
    denied = app_client.post(
        "/api/v1/knowledge/documents",
        files=[("files", ("fees.md", FEES_V1.encode(), "text/markdown"))],
        headers={"Authorization": f"Bearer {read_only}"},
    )
    assert denied.status_code == 403
    ok = app_client.get(
        "/api/v1/knowledge/documents", headers={"Authorization": f"Bearer {read_only}"}
    )
    assert ok.status_code == 200


def test_api_keys_see_only_their_practice(
    client: TestClient, app_client: TestClient, runtime: Runtime
) -> None:
    assert upload(client, ("fees.md", FEES_V1.encode())).status_code == 201
    with runtime.transaction() as session:
        practices.create_practice(session, "north", practices.PracticeProfile())
    north_key = new_api_key(runtime, "north")
    headers = {"Authorization": f"Bearer {north_key}"}
    assert app_client.get("/api/v1/knowledge/documents", headers=headers).json()["items"] == []
    fees_id = client.get("/api/v1/knowledge/documents").json()["items"][0]["id"]
    gone = app_client.delete(f"/api/v1/knowledge/documents/{fees_id}", headers=headers)
    assert gone.status_code == 404


def test_demo_seeding_loads_the_demo_knowledge_base(runtime: Runtime) -> None:
    from datetime import UTC, datetime

    from frontdesk.domain.reminders import ReminderPolicy
    from frontdesk.services.demo import seed_demo

    with runtime.transaction() as session:
        practice = practices.resolve_practice(session, None)
        seed_demo(session, runtime.cipher, practice, datetime.now(UTC), ReminderPolicy())
        practice_id = practice.id
    with runtime.transaction() as session:
        docs = session.scalars(select(KnowledgeDocument.status)).all()
    assert len(docs) >= 10 and set(docs) == {"ready"}
    answer = knowledge.answer(runtime, practice_id, "What should I do in a crisis?")
    assert answer.answered and "988" in answer.answer
    with runtime.transaction() as session:  # seeding again changes nothing
        practice = practices.resolve_practice(session, None)
        results = knowledge.seed_demo_documents(session, practice)
    assert {r.outcome for r in results} == {"unchanged"}
