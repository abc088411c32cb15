"""`frontdesk import`: appointments and patients from files."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from frontdesk.cli.common import (
    EXIT_REJECTED,
    JsonOpt,
    PracticeOpt,
    app,
    aware,
    err,
    fail,
    load_settings,
    opened,
    out,
    print_json,
)
from frontdesk.domain.times import now_utc, zone

FORMATS = {".csv": "csv", ".ics": "ics", ".ical": "ics", ".ifb": "ics", ".json": "fhir"}


@app.command("import")
def import_file(
    file: Annotated[Path, typer.Argument(help="A .csv, .ics or FHIR .json file.")],
    practice: PracticeOpt = None,
    file_format: Annotated[
        str | None, typer.Option("--format", help="csv, ics or fhir (default: by extension).")
    ] = None,
    column_map: Annotated[
        list[str] | None,
        typer.Option("--map", help="CSV: rename a column, THEIRS=ours (repeatable)."),
    ] = None,
    source: Annotated[
        str | None, typer.Option(help="Source name for ids (default: csv, ics or fhir).")
    ] = None,
    timezone: Annotated[
        str | None,
        typer.Option(help="Zone of times written without an offset (default: the practice's)."),
    ] = None,
    window_from: Annotated[
        datetime | None,
        typer.Option("--from", help="ics: expand recurrences from (default: 30 days ago)."),
    ] = None,
    window_to: Annotated[
        datetime | None,
        typer.Option("--to", help="ics: expand recurrences until (default: 180 days ahead)."),
    ] = None,
    patient_from: Annotated[
        str, typer.Option(help="ics: who the patient is: 'attendee' or 'summary'.")
    ] = "attendee",
    as_json: JsonOpt = False,
) -> None:
    """Import appointments (and patients) from a file. Valid rows land; bad rows are reported
    with their line or JSON path and kept for replay (see `frontdesk rejections list`)."""
    from frontdesk.adapters.importers import csv_file
    from frontdesk.domain.contact import region_of_locale
    from frontdesk.services import imports
    from frontdesk.services.practices import resolve_practice

    kind = file_format or FORMATS.get(file.suffix.lower())
    if kind not in ("csv", "ics", "fhir"):
        fail(f"cannot tell the format of {file.name}: use --format csv|ics|fhir")
    if not file.is_file():
        fail(f"{file} is not a file")
    settings = load_settings()
    with opened(settings) as runtime:
        with runtime.transaction() as session:
            chosen = resolve_practice(session, practice)
            slug, tz, locale = chosen.slug, chosen.timezone, chosen.locale
        if timezone:
            try:
                zone(timezone)
            except ValueError as exc:
                fail(str(exc))
        context = {"default_region": region_of_locale(locale), "default_timezone": timezone or tz}
        ignored: list[str] = []
        rows: Iterator[Any]
        if kind == "csv":
            mapping = csv_file.parse_column_map(column_map or [])
            rows = csv_file.read_csv(
                file, source=source or "csv", context=context, column_map=mapping, ignored=ignored
            )
        elif kind == "ics":
            from frontdesk.adapters.importers import ics_file

            now = now_utc()
            rows = ics_file.read_ics(
                file,
                source=source or "ics",
                context=context,
                window_start=aware(window_from, context["default_timezone"])
                or now - timedelta(days=settings.import_window_past_days),
                window_end=aware(window_to, context["default_timezone"])
                or now + timedelta(days=settings.import_window_future_days),
                patient_from=patient_from,
            )
        else:
            from frontdesk.adapters.importers import fhir_json

            rows = fhir_json.read_fhir(file, source=source or "fhir", context=context)
        summary = _with_progress(
            file,
            as_json,
            lambda progress: imports.run_import(
                runtime,
                rows,
                practice_slug=slug,
                channel=f"import.{kind}",
                actor="cli:import",
                progress=progress,
            ),
        )
    result = {"file": str(file), "format": kind, **summary.as_dict(), "ignored_columns": ignored}
    if as_json:
        print_json(result)
    else:
        out.print(
            f"{file.name}: created {summary.created}, updated {summary.updated}, "
            f"unchanged {summary.unchanged}, rejected {summary.rejected}"
        )
        if ignored:
            out.print(f"ignored columns (not stored): {', '.join(ignored)}")
        for item in summary.rejections[:50]:
            for e in item["errors"]:
                out.print(f"  {item['reference']}: {e['loc']}: {e['message']}", highlight=False)
        if summary.rejected > 50:
            out.print(f"  … {summary.rejected - 50} more (frontdesk rejections list)")
    if summary.rejected:
        raise typer.Exit(EXIT_REJECTED)


def _with_progress(file: Path, quiet: bool, work: Callable[[Callable[[int], None]], Any]) -> Any:
    if quiet or not err.is_terminal:
        return work(lambda _n: None)
    with Progress(
        TextColumn("importing {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
    ) as progress:
        task = progress.add_task(file.name, total=None)
        return work(lambda n: progress.advance(task, n))


# --- appointments / patients / rejections ------------------------------------------------------
