"""The ``frontdesk`` command. Each command parses, calls one service, and prints.

Exit codes: 0 success; 1 an unexpected failure; 2 bad input or configuration; 3 an import that
finished but rejected some rows (they are listed and kept).
"""

from __future__ import annotations

import ipaddress
import json
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from frontdesk.bootstrap import Runtime, build_runtime
from frontdesk.config import Settings
from frontdesk.domain.errors import FrontdeskError, ValidationFailed
from frontdesk.domain.times import now_utc, zone
from frontdesk.logs import configure_logging

app = typer.Typer(
    help="frontdesk: the AI front desk for therapy practices.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
practice_app = typer.Typer(help="Practices (tenants).", no_args_is_help=True)
apikey_app = typer.Typer(help="API keys for scheduling systems.", no_args_is_help=True)
appointments_app = typer.Typer(help="Appointments.", no_args_is_help=True)
patients_app = typer.Typer(help="Patients.", no_args_is_help=True)
reminders_app = typer.Typer(
    help="Reminders: what is planned, and what was sent.", no_args_is_help=True
)
rejections_app = typer.Typer(
    help="Input that could not be accepted, kept for replay.", no_args_is_help=True
)
app.add_typer(db_app, name="db")
app.add_typer(practice_app, name="practice")
app.add_typer(apikey_app, name="apikey")
app.add_typer(appointments_app, name="appointments")
app.add_typer(patients_app, name="patients")
app.add_typer(rejections_app, name="rejections")
app.add_typer(reminders_app, name="reminders")

# Output carries patients' and files' text: never read it as rich markup ("[/es]" is data).
out = Console(markup=False, highlight=False)
err = Console(stderr=True, highlight=False)

PracticeOpt = Annotated[
    str | None,
    typer.Option("--practice", "-p", help="Practice slug (default: the only practice)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]

EXIT_FAILURE, EXIT_INPUT, EXIT_REJECTED = 1, 2, 3


def fail(message: str, code: int = EXIT_INPUT, errors: list[Any] | None = None) -> NoReturn:
    err.print(f"[red]error:[/red] {escape(message)}")
    for item in errors or []:
        err.print(f"  - {item.loc}: {item.message}", markup=False)
    raise typer.Exit(code)


def load_settings(**overrides: Any) -> Settings:
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        fail(f"configuration: {lines}")


@contextmanager
def opened(settings: Settings | None = None, *, upgrade: bool | None = None) -> Iterator[Runtime]:
    """The runtime for one command; domain errors become messages and exit codes.

    The embedded SQLite database is brought up to date on every command, so a laptop user
    never has to think about migrations; PostgreSQL is migrated by `frontdesk db upgrade`.
    """
    runtime: Runtime | None = None
    settings = settings or load_settings()
    try:
        runtime = build_runtime(
            settings, upgrade=settings.is_sqlite if upgrade is None else upgrade
        )
        _ensure_default(runtime)
        yield runtime
    except ValidationFailed as exc:
        fail(exc.message, EXIT_INPUT, exc.errors)
    except FrontdeskError as exc:
        fail(str(exc), EXIT_INPUT)
    finally:
        if runtime is not None:
            runtime.dispose()


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str, ensure_ascii=False) + "\n")


def _ensure_default(runtime: Runtime) -> None:
    from frontdesk.services.practices import ensure_default_practice

    with runtime.transaction() as session:
        ensure_default_practice(session, runtime.settings.default_timezone)


# --- serve -------------------------------------------------------------------------------------


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    demo: Annotated[bool, typer.Option("--demo", help="Seed the demo practice first.")] = False,
    worker: Annotated[
        bool, typer.Option("--worker/--no-worker", help="Dispatch reminders in this process.")
    ] = True,
    practice: PracticeOpt = None,
) -> None:
    """Serve the web app and API (upgrades the database first); dispatches reminders too
    unless --no-worker (then run `frontdesk worker` separately)."""
    import uvicorn

    from frontdesk.services import apikeys, practices
    from frontdesk.services import demo as demo_seed
    from frontdesk.web.app import create_app

    settings = load_settings(**({"demo": True} if demo else {}))
    bind_host = host or settings.host
    bind_port = port or settings.port
    configure_logging(settings.log_level)
    with opened(settings, upgrade=True) as runtime:
        if demo:
            with runtime.transaction() as session:
                chosen = practices.resolve_practice(session, practice)
                count = demo_seed.seed_demo(
                    session, runtime.cipher, chosen, now_utc(), settings.reminder_policy
                )
                _, token = apikeys.create_api_key(session, chosen, "demo", actor="demo-seed")
                name = chosen.name
            err.print(f"Demo practice [bold]{escape(name)}[/bold]: {count} appointments this week.")
            err.print(f"Demo API key (shown once): [bold]{token}[/bold]")
        if not _is_loopback(bind_host):
            err.print(
                "[yellow]warning:[/yellow] the schedule page has no staff login yet; "
                "serving it beyond this machine shows patient first names to anyone who can "
                "reach it."
            )
        err.print(f"frontdesk is at http://{bind_host}:{bind_port}  (API docs: /docs)")
        stop = threading.Event()
        web = create_app(settings, runtime)
        thread = _start_worker(runtime, stop, web.state.dispatch_metrics) if worker else None
        try:
            uvicorn.run(
                web,
                host=bind_host,
                port=bind_port,
                log_level=settings.log_level.lower(),
                log_config=None,  # keep our JSON log lines
            )
        finally:
            stop.set()
            if thread is not None:
                thread.join(timeout=30)


def _dispatcher(runtime: Runtime, **overrides: Any) -> Any:
    import os
    import socket

    from frontdesk.bootstrap import build_senders
    from frontdesk.services.dispatcher import Dispatcher, DispatchSettings

    metrics = overrides.pop("metrics", None)
    values = {k: v for k, v in overrides.items() if v is not None}
    return Dispatcher(
        runtime,
        build_senders(runtime),
        worker_id=f"{socket.gethostname()}:{os.getpid()}",
        settings=DispatchSettings(**values),
        metrics=metrics,
    )


def _start_worker(runtime: Runtime, stop: threading.Event, metrics: Any) -> threading.Thread:
    dispatcher = _dispatcher(runtime, metrics=metrics)
    thread = threading.Thread(
        target=dispatcher.run, args=(stop,), name="frontdesk-dispatcher", daemon=True
    )
    thread.start()
    return thread


@app.command()
def worker(
    once: Annotated[bool, typer.Option("--once", help="Dispatch what is due, then exit.")] = False,
    concurrency: Annotated[
        int | None, typer.Option(min=1, max=256, help="Sends in flight at once (default 8).")
    ] = None,
    rate: Annotated[
        float | None, typer.Option(min=0.1, help="Messages per second per channel (default 50).")
    ] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, max=10000)] = None,
    lease_seconds: Annotated[
        float | None,
        typer.Option(
            min=1, help="How long a claim holds before another worker may take it (default 300)."
        ),
    ] = None,
    poll_interval: Annotated[float, typer.Option(min=0.05, help="Seconds between polls.")] = 2.0,
    as_json: JsonOpt = False,
) -> None:
    """Dispatch due reminders until stopped (any number of workers may share PostgreSQL)."""
    import signal

    with opened() as runtime:
        configure_logging(runtime.settings.log_level)
        dispatcher = _dispatcher(
            runtime,
            concurrency=concurrency,
            rate_per_second=rate,
            batch_size=batch_size,
            lease=timedelta(seconds=lease_seconds) if lease_seconds else None,
        )
        if once:
            total: dict[str, int] = {}
            while True:
                report = dispatcher.dispatch_due()
                for key, value in vars(report).items():
                    total[key] = total.get(key, 0) + value
                if report.claimed == 0:
                    break
            if as_json:
                print_json(total)
            else:
                out.print(", ".join(f"{k} {v}" for k, v in total.items()))
            return
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        err.print(f"worker {dispatcher.worker_id} dispatching; Ctrl-C to stop", markup=False)
        try:
            dispatcher.run(stop, poll_interval)
        except KeyboardInterrupt:
            stop.set()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --- db ----------------------------------------------------------------------------------------


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


@practice_app.command("list")
def practice_list(as_json: JsonOpt = False) -> None:
    """List practices."""
    from frontdesk.services.practices import list_practices
    from frontdesk.services.views import practice_view

    with opened() as runtime, runtime.transaction() as session:
        rows = [practice_view(p) for p in list_practices(session)]
    if as_json:
        print_json(rows)
        return
    table = Table("slug", "name", "timezone", "phone", "email")
    for row in rows:
        table.add_row(
            row["slug"], row["name"], row["timezone"], row["phone"] or "", row["email"] or ""
        )
    out.print(table)


def _profile(**values: Any) -> Any:
    from frontdesk.services.practices import PracticeProfile

    return PracticeProfile(**values)


@practice_app.command("create")
def practice_create(
    slug: Annotated[str, typer.Argument(help="Short id: lower-case letters, digits, dashes.")],
    name: Annotated[str, typer.Option(help="Display name.")],
    timezone: Annotated[str | None, typer.Option(help="IANA zone, e.g. America/Chicago.")] = None,
    locale: Annotated[str | None, typer.Option(help="e.g. en-US.")] = None,
    phone: Annotated[str | None, typer.Option()] = None,
    email: Annotated[str | None, typer.Option()] = None,
    booking_url: Annotated[str | None, typer.Option()] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a practice."""
    from frontdesk.services.practices import create_practice
    from frontdesk.services.views import practice_view

    with opened() as runtime, runtime.transaction() as session:
        view = practice_view(
            create_practice(
                session,
                slug,
                _profile(
                    name=name,
                    timezone=timezone,
                    locale=locale,
                    phone=phone,
                    email=email,
                    booking_url=booking_url,
                ),
                default_timezone=runtime.settings.default_timezone,
            )
        )
    print_json(view) if as_json else out.print(f"created practice {slug}")


@practice_app.command("update")
def practice_update(
    practice: PracticeOpt = None,
    name: Annotated[str | None, typer.Option()] = None,
    timezone: Annotated[str | None, typer.Option()] = None,
    locale: Annotated[str | None, typer.Option()] = None,
    phone: Annotated[str | None, typer.Option()] = None,
    email: Annotated[str | None, typer.Option()] = None,
    booking_url: Annotated[str | None, typer.Option()] = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a practice's profile (name, timezone, contact, booking link)."""
    from frontdesk.services.practices import apply_profile, resolve_practice
    from frontdesk.services.views import practice_view

    with opened() as runtime, runtime.transaction() as session:
        chosen = resolve_practice(session, practice)
        apply_profile(
            chosen,
            _profile(
                name=name,
                timezone=timezone,
                locale=locale,
                phone=phone,
                email=email,
                booking_url=booking_url,
            ),
        )
        view = practice_view(chosen)
    print_json(view) if as_json else out.print(f"updated practice {view['slug']}")


# --- apikey ------------------------------------------------------------------------------------


@apikey_app.command("create")
def apikey_create(
    practice: PracticeOpt = None,
    name: Annotated[str, typer.Option(help="What the key is for.")] = "default",
    read_only: Annotated[bool, typer.Option("--read-only", help="May only read.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create an API key. The key is printed once and stored only as a hash."""
    from frontdesk.services.apikeys import create_api_key
    from frontdesk.services.practices import resolve_practice

    with opened() as runtime, runtime.transaction() as session:
        chosen = resolve_practice(session, practice)
        key, token = create_api_key(session, chosen, name, can_write=not read_only)
        result = {
            "practice": chosen.slug,
            "name": key.name,
            "prefix": key.prefix,
            "can_write": key.can_write,
            "key": token,
        }
    if as_json:
        print_json(result)
    else:
        err.print(
            f"API key for practice {result['practice']} (shown once; store it now):", markup=False
        )
        sys.stdout.write(token + "\n")


@apikey_app.command("list")
def apikey_list(practice: PracticeOpt = None, as_json: JsonOpt = False) -> None:
    """List a practice's API keys (prefixes only)."""
    from frontdesk.domain.times import iso
    from frontdesk.services.apikeys import list_api_keys
    from frontdesk.services.practices import resolve_practice

    with opened() as runtime, runtime.transaction() as session:
        rows: list[dict[str, Any]] = [
            {
                "prefix": k.prefix,
                "name": k.name,
                "can_write": k.can_write,
                "created_at": iso(k.created_at),
                "last_used_at": iso(k.last_used_at),
                "revoked_at": iso(k.revoked_at),
            }
            for k in list_api_keys(session, resolve_practice(session, practice))
        ]
    if as_json:
        print_json(rows)
        return
    table = Table("prefix", "name", "write", "created", "last used", "revoked")
    for r in rows:
        table.add_row(
            r["prefix"],
            r["name"],
            "yes" if r["can_write"] else "no",
            r["created_at"],
            r["last_used_at"] or "",
            r["revoked_at"] or "",
        )
    out.print(table)


@apikey_app.command("revoke")
def apikey_revoke(
    prefix: Annotated[str, typer.Argument(help="The key's prefix (see apikey list).")],
    practice: PracticeOpt = None,
) -> None:
    """Revoke an API key at once."""
    from frontdesk.services.apikeys import revoke_api_key
    from frontdesk.services.practices import resolve_practice

    with opened() as runtime, runtime.transaction() as session:
        revoke_api_key(session, resolve_practice(session, practice), prefix, actor="cli")
    out.print(f"revoked {prefix}")


# --- import ------------------------------------------------------------------------------------

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
                window_start=_aware(window_from, context["default_timezone"])
                or now - timedelta(days=settings.import_window_past_days),
                window_end=_aware(window_to, context["default_timezone"])
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


def _aware(value: datetime | None, tz: str) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=zone(tz))


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
            start_from=_aware(start_from, chosen.timezone),
            start_to=_aware(start_to, chosen.timezone),
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
            _aware(start_from, chosen.timezone) or start_from,
            _aware(start_to, chosen.timezone) or start_to,
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


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        raise SystemExit(130) from None
