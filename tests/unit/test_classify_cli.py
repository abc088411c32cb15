"""``frontdesk classify``: one message or a JSONL file, as the issue specifies."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner, Result

from frontdesk.cli import app
from frontdesk.config import Settings

# No database is needed; only the crisis-screen switch is read from the settings.
ENV: dict[str, str | None] = {f"FRONTDESK_{n.upper()}": None for n in Settings.model_fields}


def run(*args: str | Path, stdin: str | None = None) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args], env=ENV, input=stdin)


def test_one_message_as_json() -> None:
    result = run("classify", "honestly I don't see the point anymore", "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert list(body) == ["intent", "confidence"]
    assert body["intent"] == "crisis" and 0.0 < body["confidence"] <= 1.0
    plain = run("classify", "can't make it thursday")
    assert plain.exit_code == 0 and plain.stdout.startswith("cancel (")


def test_a_jsonl_file_gives_one_line_per_message_with_its_id(tmp_path: Path) -> None:
    source = tmp_path / "messages.jsonl"
    rows = [
        ("a", "C"),
        ("b", "what's your late cancel fee?"),
        ("c", "stop texting me"),
        (4, "I'm NOT cancelling, see you then"),
    ]
    source.write_text("\n".join(json.dumps({"id": i, "text": t}) for i, t in rows) + "\n\n")
    result = run("classify", "--jsonl", source)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["id"], r["intent"]) for r in lines] == [
        ("a", "confirm"),
        ("b", "question"),
        ("c", "opt_out"),
        (4, "confirm"),
    ]
    assert all(list(r) == ["id", "intent", "confidence"] for r in lines)
    piped = run("classify", "--jsonl", "-", stdin='{"id": 9, "text": "HELP"}\n')
    assert piped.exit_code == 0, piped.output
    [line] = [json.loads(line) for line in piped.stdout.splitlines()]
    assert (line["id"], line["intent"]) == (9, "help") and 0.0 < line["confidence"] <= 1.0


def test_bad_input_is_refused_with_the_line(tmp_path: Path) -> None:
    assert run("classify").exit_code == 2
    assert run("classify", "x", "--jsonl", "-").exit_code == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1, "text": "ok"}\n{"id": 2}\n')
    result = run("classify", "--jsonl", bad)
    assert result.exit_code == 2 and ":2:" in result.stderr and "text" in result.stderr
    assert result.stdout == ""  # nothing printed before the bad line was found
