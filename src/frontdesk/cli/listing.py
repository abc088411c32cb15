"""`frontdesk appointments / patients / rejections list`: what is stored."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table

from frontdesk.cli.common import (
    JsonOpt,
    PracticeOpt,
    appointments_app,
    aware,
    opened,
    out,
    patients_app,
    print_json,
    rejections_app,
)


@appointments_app.command("list")
def appointments_list(
    practice: PracticeOpt = None,
    start_from: Annotated[
        datetime | None, typer.Option("--from", help="Start on or after.")
    ] = None,
    start_to: Annotated[datetime | None, typer.Option("--to", help="Start before.")] = None,
    status: Annotated[str | None, typer.Option(help="FHIR status, e.g. booked.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 100,
    as_json: JsonOpt = False,
) -> None:
    """List appointments, earliest first (times without offset are in the practice's zone)."""
    from frontdesk.services import queries
    from frontdesk.services.practices import resolve_practice

    with opened() as runtime, runtime.transaction() as session:
        chosen = resolve_practice(session, practice)
        page = queries.list_appointments(
            session,
            chosen,
            start_from=aware(start_from, chosen.timezone),
            start_to=aware(start_to, chosen.timezone),
            status=status,
            limit=limit,
        ).as_dict()
    if as_json:
        print_json(page)
        return
    table = Table("local start", "patient", "clinician", "status", "confirmation", "id")
    for a in page["items"]:
        table.add_row(
            a["local_start"][:16].replace("T", " "),
            a["patient"]["preferred_name"] or a["patient"]["name"] or "",
            (a["clinician"] or {}).get("name", ""),
            a["status"],
            a["confirmation"],
            f"{a['source']}/{a['external_id']}",
        )
    out.print(table)
    out.print(f"{len(page['items'])} of {page['total']}")


@patients_app.command("list")
def patients_list(
    practice: PracticeOpt = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 100,
    as_json: JsonOpt = False,
) -> None:
    """List patients with their contact channel and language."""
    from frontdesk.services import queries
    from frontdesk.services.practices import resolve_practice

    with opened() as runtime, runtime.transaction() as session:
        page = queries.list_patients(
            session, runtime.cipher, resolve_practice(session, practice), limit=limit
        ).as_dict()
    if as_json:
        print_json(page)
        return
    table = Table("id", "name", "channel", "language", "phone", "email")
    for p in page["items"]:
        table.add_row(
            f"{p['source']}/{p['external_id']}",
            p["name"] or "",
            p["channel"] or "",
            p["language"],
            p["phone"] or "",
            p["email"] or "",
        )
    out.print(table)
    out.print(f"{len(page['items'])} of {page['total']}")


@rejections_app.command("list")
def rejections_list(
    practice: PracticeOpt = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    as_json: JsonOpt = False,
) -> None:
    """Recently rejected API payloads and import rows, with their reasons."""
    from frontdesk.services import queries
    from frontdesk.services.practices import resolve_practice

    with opened() as runtime, runtime.transaction() as session:
        rows = queries.list_rejections(session, resolve_practice(session, practice), limit=limit)
    if as_json:
        print_json(rows)
        return
    for r in rows:
        reasons = "; ".join(f"{e['loc']}: {e['message']}" for e in r["errors"])
        out.print(f"{r['received_at']} {r['channel']} {r['reference']}: {reasons}", highlight=False)
