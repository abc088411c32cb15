"""Docs are tested: every setting, CLI command and CSV column is documented."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer.main

from frontdesk.adapters.importers.csv_file import KNOWN_COLUMNS
from frontdesk.cli import app
from frontdesk.config import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs"


def command_paths(command: Any, prefix: str = "frontdesk") -> list[str]:
    # Typer ships its own copy of click, so look for sub-commands rather than a click type.
    if getattr(command, "commands", None):
        return [
            path
            for name, sub in command.commands.items()
            for path in command_paths(sub, f"{prefix} {name}")
        ]
    return [prefix]


def test_every_setting_is_documented() -> None:
    text = (DOCS / "CONFIGURATION.md").read_text()
    missing = [
        f"FRONTDESK_{n.upper()}"
        for n in Settings.model_fields
        if f"`FRONTDESK_{n.upper()}`" not in text
    ]
    assert missing == []


def test_every_cli_command_has_a_section() -> None:
    text = (DOCS / "CLI.md").read_text()
    headings = set(re.findall(r"^## (frontdesk[\w -]*)$", text, flags=re.MULTILINE))
    paths = command_paths(typer.main.get_command(app))
    assert len(paths) >= 12
    assert [p for p in paths if p not in headings] == []
    assert [h for h in headings if h not in paths] == []  # no section for a command that is gone


def test_every_csv_column_is_documented() -> None:
    text = (DOCS / "IMPORT.md").read_text()
    assert [c for c in KNOWN_COLUMNS if f"| `{c}` |" not in text] == []
