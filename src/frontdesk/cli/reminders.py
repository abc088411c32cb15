"""`frontdesk reminders plan / list`: what will be sent, and what was."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table

from frontdesk.cli.common import (
    JsonOpt,
    PracticeOpt,
    aware,
    opened,
    out,
    print_json,
    reminders_app,
)
from frontdesk.domain.times import now_utc


@reminders_app.command("plan")
def reminders_plan(
    start_from: Annotated[datetime, typer.Option("--from", help="Appointments starting from.")],
    start_to: Annotated[datetime, typer.Option("--to", help="… until (exclusive).")],
    practice: PracticeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Dry run: what would be sent for appointments in the window, when, on which channel, and
    what is skipped and why. Sends nothing, writes nothing."""
    from frontdesk.services.practices import resolve_practice
    from frontdesk.services.reminders import dry_run

    with opened() as runtime, runtime.transaction() as session:
        chosen = resolve_practice(session, practice)
        rows = dry_run(
            session,
            chosen,
            runtime.settings.reminder_policy,
            aware(start_from, chosen.timezone) or start_from,
            aware(start_to, chosen.timezone) or start_to,
            now_utc(),
        )
    if as_json:
        print_json(rows)
        return
    table = Table("due (UTC)", "appointment", "kind", "stage", "channel", "action", "reason")
    for r in rows:
        table.add_row(
            r["due_at"],
            f"{r['source']}/{r['external_id']}",
            r["kind"],
            r["stage"],
            r["channel"] or "",
            r["action"],
            r["reason"] or "",
        )
    out.print(table)


@reminders_app.command("list")
def reminders_list(
    practice: PracticeOpt = None,
    state: Annotated[str | None, typer.Option(help="scheduled, sent, skipped, …")] = None,
    limit: Annotated[int, typer.Option(min=1, max=5000)] = 200,
    as_json: JsonOpt = False,
) -> None:
    """Stored reminders with their state and reason, soonest due first."""
    from frontdesk.services.practices import resolve_practice
    from frontdesk.services.reminders import reminder_rows

    with opened() as runtime, runtime.transaction() as session:
        rows = reminder_rows(session, resolve_practice(session, practice), state=state, limit=limit)
    if as_json:
        print_json(rows)
        return
    table = Table("due (UTC)", "appointment", "stage", "channel", "state", "reason")
    for r in rows:
        table.add_row(
            r["due_at"],
            f"{r['source']}/{r['external_id']}",
            r["stage"],
            r["channel"] or "",
            r["state"],
            r["reason"] or "",
        )
    out.print(table)
