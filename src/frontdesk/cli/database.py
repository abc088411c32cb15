"""`frontdesk db`: the schema."""

from __future__ import annotations

import typer

from frontdesk.cli.common import (
    EXIT_FAILURE,
    JsonOpt,
    db_app,
    err,
    opened,
    out,
    print_json,
)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration to FRONTDESK_DATABASE_URL."""
    from frontdesk.adapters.db.migrate import current_revision

    with opened(upgrade=True) as runtime:
        err.print(f"database at revision {current_revision(runtime.engine)}")


@db_app.command("current")
def db_current(as_json: JsonOpt = False) -> None:
    """Show the database's migration revision and the code's."""
    from frontdesk.adapters.db.migrate import current_revision, head_revision

    with opened() as runtime:
        current, head = current_revision(runtime.engine), head_revision()
    if as_json:
        print_json({"current": current, "head": head, "up_to_date": current == head})
    else:
        out.print(f"current: {current}  head: {head}")
    if current != head:
        raise typer.Exit(EXIT_FAILURE)


# --- practice ----------------------------------------------------------------------------------
