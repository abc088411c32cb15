"""The ``frontdesk`` command. Each command parses, calls one service, and prints.

Exit codes: 0 success; 1 an unexpected failure; 2 bad input or configuration; 3 an import that
finished but rejected some rows (they are listed and kept).
"""

from __future__ import annotations

# Importing the command modules registers their commands on ``app``.
from frontdesk.cli import (
    actions,
    database,
    importing,
    knowledge,
    listing,
    messaging,
    practices,
    reminders,
    serving,
    understanding,
    users,
    webhooks,
)
from frontdesk.cli import integrations as integrations_cli
from frontdesk.cli.common import app

__all__ = [
    "actions",
    "app",
    "database",
    "importing",
    "integrations_cli",
    "knowledge",
    "listing",
    "main",
    "messaging",
    "practices",
    "reminders",
    "serving",
    "understanding",
    "users",
    "webhooks",
]


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        raise SystemExit(130) from None
