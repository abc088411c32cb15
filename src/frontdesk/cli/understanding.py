"""``frontdesk classify``: the agent's reading of patient messages, without a database."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from frontdesk.cli.common import JsonOpt, app, emit_json, fail, load_settings, out, read_jsonl


@app.command("classify")
def classify(
    text: Annotated[str | None, typer.Argument(help="The message, in quotes.")] = None,
    jsonl: Annotated[
        Path | None,
        typer.Option(
            "--jsonl",
            help='Classify every line {"id", "text"} of FILE ("-" for stdin): one '
            '{"id", "intent", "confidence"} per line.',
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """The intent of a patient's message (confirm, cancel, reschedule, question,
    clinical_concern, crisis, opt_out, opt_in, help, other) and how sure the agent is. With
    --json prints {"intent", "confidence"}."""
    from frontdesk.agent.understand import understand

    if (text is None) == (jsonl is None):
        fail("give either a TEXT or --jsonl FILE")
    # The same screens as the inbound path: the lexical one, and the semantic one where the
    # embeddings extra is installed.
    screen = load_settings().crisis_screen
    if jsonl is None:
        assert text is not None
        found = understand(text, crisis_screen=screen)
        if as_json:
            emit_json({"intent": found.intent.value, "confidence": found.confidence})
            return
        out.print(f"{found.intent.value} ({found.confidence:.2f})")
        for evidence in found.evidence:
            out.print(f"  — {evidence.rule}")
        return
    for row in read_jsonl(jsonl, "text"):
        found = understand(str(row["text"]), crisis_screen=screen)
        emit_json({"id": row["id"], "intent": found.intent.value, "confidence": found.confidence})
