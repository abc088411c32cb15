"""What every command shares: the Typer apps, consoles, the runtime, errors and exit codes."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from frontdesk.bootstrap import Runtime, build_runtime
from frontdesk.config import Settings
from frontdesk.domain.errors import FrontdeskError, ValidationFailed
from frontdesk.domain.times import zone

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
        ensure_default(runtime)
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


def ensure_default(runtime: Runtime) -> None:
    from frontdesk.services.practices import ensure_default_practice

    with runtime.transaction() as session:
        ensure_default_practice(session, runtime.settings.default_timezone)


# --- serve -------------------------------------------------------------------------------------


def aware(value: datetime | None, tz: str) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=zone(tz))


def emit_json(value: dict[str, Any]) -> None:
    """One JSON object on a line of stdout (for --json and --jsonl output)."""
    sys.stdout.write(json.dumps(value, ensure_ascii=False) + "\n")


def read_jsonl(path: Path, text_key: str) -> list[dict[str, Any]]:
    """Lines ``{"id", <text_key>}`` of ``path`` ("-" is stdin); a bad line stops the run with
    its line number, before anything is printed."""
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {path}: {exc}")
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            fail(f"{path}:{number}: not valid JSON", EXIT_INPUT)
        if not isinstance(row, dict) or "id" not in row or not isinstance(row.get(text_key), str):
            fail(f'{path}:{number}: each line needs "id" and a string "{text_key}"', EXIT_INPUT)
        rows.append(row)
    return rows
