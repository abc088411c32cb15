"""The ``frontdesk`` command, driven in-process through Typer's runner against a real database.

Each test starts from an empty database (no practice yet): the SQLite file is a fresh copy of
the migrated template, and the session's PostgreSQL database is emptied first.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import typer
from sqlalchemy import text
from typer.core import TyperGroup
from typer.testing import CliRunner, Result

from conftest import TEST_SECRET, make_settings
from frontdesk.adapters.db.migrate import head_revision
from frontdesk.adapters.db.models import Base
from frontdesk.bootstrap import build_runtime
from frontdesk.cli import app
from frontdesk.config import Settings
from frontdesk.domain.errors import Unauthorized
from frontdesk.services.apikeys import Caller, authenticate

Cli = Callable[..., Result]

# --- the command tree ------------------------------------------------------------------------


def command_paths() -> list[list[str]]:
    """Every command and sub-command of the app, found by walking its click tree."""
    paths: list[list[str]] = []

    def walk(command: Any, path: list[str]) -> None:
        paths.append(path)
        if isinstance(command, TyperGroup):
            for name, sub in sorted(command.commands.items()):
                walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return paths


COMMAND_PATHS = command_paths()


def test_the_command_walk_finds_the_documented_commands() -> None:
    found = {" ".join(path) for path in COMMAND_PATHS}
    expected = {
        "",
        "serve",
        "import",
        "db",
        "db upgrade",
        "db current",
        "practice list",
        "practice create",
        "practice update",
        "apikey create",
        "apikey list",
        "apikey revoke",
        "appointments list",
        "patients list",
        "rejections list",
    }
    assert expected <= found


@pytest.mark.parametrize(
    "path", COMMAND_PATHS, ids=[" ".join(p) or "frontdesk" for p in COMMAND_PATHS]
)
def test_help_works_for_every_command(path: list[str]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.stdout
    if path:
        assert path[-1] in result.stdout


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def empty_database_url(database_url: str) -> str:
    """``database_url`` with no rows in any table (not even a practice)."""
    if database_url.startswith("postgresql"):
        runtime = build_runtime(make_settings(database_url))
        try:
            tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
            with runtime.engine.begin() as connection:
                connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        finally:
            runtime.dispose()
    return database_url


@pytest.fixture
def cli(empty_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """Run ``frontdesk ARGS…`` with only FRONTDESK_DATABASE_URL and FRONTDESK_SECRET_KEY set."""
    monkeypatch.chdir(tmp_path)  # no stray frontdesk.toml
    env: dict[str, str | None] = {
        f"FRONTDESK_{name.upper()}": None for name in Settings.model_fields
    }
    env["FRONTDESK_DATABASE_URL"] = empty_database_url
    env["FRONTDESK_SECRET_KEY"] = TEST_SECRET
    runner = CliRunner()

    def run(*args: str | Path) -> Result:
        return runner.invoke(app, [str(a) for a in args], env=env)

    return run


def ok_json(result: Result, code: int = 0) -> Any:
    assert result.exit_code == code, (
        f"exit {result.exit_code}\n{result.output}\n{result.exception!r}"
    )
    return json.loads(result.stdout)


def failed(result: Result, code: int) -> str:
    """The one-line error output of a command expected to exit with ``code``."""
    assert result.exit_code == code, (
        f"exit {result.exit_code}\n{result.output}\n{result.exception!r}"
    )
    # Rich wraps long messages at the console width; compare them as one line.
    return " ".join(result.stderr.split())


def authenticate_token(database_url: str, token: str) -> Caller:
    runtime = build_runtime(make_settings(database_url))
    try:
        with runtime.transaction() as session:
            return authenticate(session, token)
    finally:
        runtime.dispose()


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def default_practice_id(cli: Cli) -> int:
    [practice] = ok_json(cli("practice", "list", "--json"))
    assert practice["slug"] == "default"
    return int(practice["id"])


# --- practices -------------------------------------------------------------------------------


def test_practice_list_shows_the_default_practice_on_a_fresh_database(cli: Cli) -> None:
    practices = ok_json(cli("practice", "list", "--json"))
    assert [(p["slug"], p["name"], p["timezone"], p["locale"]) for p in practices] == [
        ("default", "My Practice", "America/New_York", "en-US")
    ]


def test_practice_create_then_practice_option_chooses_it(
    cli: Cli, empty_database_url: str, tmp_path: Path
) -> None:
    created = ok_json(
        cli(
            "practice",
            "create",
            "north",
            "--name",
            "North Clinic",
            "--timezone",
            "America/Chicago",
            "--phone",
            "(312) 555-0100",
            "--json",
        )
    )
    assert (created["slug"], created["name"], created["timezone"], created["phone"]) == (
        "north",
        "North Clinic",
        "America/Chicago",
        "+13125550100",
    )
    listed = ok_json(cli("practice", "list", "--json"))
    assert [p["slug"] for p in listed] == ["default", "north"]

    # A file imported into north lands there, is read in north's zone (CST, -06:00), and is
    # not in the default practice.
    path = write_csv(
        tmp_path / "north.csv",
        ["appointment_id", "patient_id", "start"],
        [["n1", "p1", "2026-12-03 15:00"]],
    )
    summary = ok_json(cli("import", path, "--practice", "north", "--json"))
    assert (summary["created"], summary["rejected"]) == (1, 0)
    north = ok_json(cli("appointments", "list", "--practice", "north", "--json"))
    assert [(a["external_id"], a["start"], a["local_start"]) for a in north["items"]] == [
        ("n1", "2026-12-03T21:00:00Z", "2026-12-03T15:00:00-06:00")
    ]
    assert ok_json(cli("appointments", "list", "--practice", "default", "--json"))["total"] == 0

    key = ok_json(cli("apikey", "create", "--practice", "north", "--json"))
    assert key["practice"] == "north"
    assert authenticate_token(empty_database_url, key["key"]).practice_id == created["id"]


def test_practice_create_refuses_a_taken_slug(cli: Cli) -> None:
    ok_json(cli("practice", "create", "north", "--name", "North Clinic", "--json"))
    message = failed(cli("practice", "create", "north", "--name", "Other"), 2)
    assert "a practice 'north' already exists" in message


NEEDS_A_PRACTICE = [
    ["appointments", "list"],
    ["patients", "list"],
    ["rejections", "list"],
    ["apikey", "list"],
    ["apikey", "create"],
    ["apikey", "revoke", "0123456789ab"],
    ["practice", "update", "--name", "Renamed"],
    ["import", "{csv}"],
]


@pytest.mark.parametrize("args", NEEDS_A_PRACTICE, ids=[" ".join(a[:2]) for a in NEEDS_A_PRACTICE])
def test_without_practice_option_commands_exit_2_when_two_practices_exist(
    cli: Cli, tmp_path: Path, args: list[str]
) -> None:
    ok_json(cli("practice", "create", "north", "--name", "North Clinic", "--json"))
    path = write_csv(
        tmp_path / "one.csv",
        ["appointment_id", "patient_id", "start"],
        [["a1", "p1", "2026-12-03 15:00"]],
    )
    result = cli(*[str(path) if a == "{csv}" else a for a in args])
    message = failed(result, 2)
    assert "several practices exist: choose one with --practice SLUG" in message
    assert result.stdout == ""
    # Nothing was done to either practice.
    for slug in ("default", "north"):
        assert ok_json(cli("appointments", "list", "--practice", slug, "--json"))["total"] == 0
        assert ok_json(cli("apikey", "list", "--practice", slug, "--json")) == []
    assert [p["name"] for p in ok_json(cli("practice", "list", "--json"))] == [
        "My Practice",
        "North Clinic",
    ]


def test_an_unknown_practice_slug_exits_2(cli: Cli) -> None:
    message = failed(cli("appointments", "list", "--practice", "nowhere"), 2)
    assert "no practice with slug 'nowhere'" in message


# --- API keys --------------------------------------------------------------------------------


def test_apikey_create_returns_a_key_that_authenticates(cli: Cli, empty_database_url: str) -> None:
    created = ok_json(cli("apikey", "create", "--json"))
    prefix = created["prefix"]
    assert (created["practice"], created["name"], created["can_write"]) == (
        "default",
        "default",
        True,
    )
    assert created["key"].startswith(f"fdk_{prefix}_")

    caller = authenticate_token(empty_database_url, created["key"])
    assert (caller.key_prefix, caller.can_write) == (prefix, True)
    assert caller.practice_id == default_practice_id(cli)


def test_apikey_create_read_only_makes_a_key_that_may_not_write(
    cli: Cli, empty_database_url: str
) -> None:
    created = ok_json(cli("apikey", "create", "--read-only", "--name", "reports", "--json"))
    assert (created["name"], created["can_write"]) == ("reports", False)
    assert authenticate_token(empty_database_url, created["key"]).can_write is False


def test_apikey_create_prints_only_the_key_on_stdout(cli: Cli, empty_database_url: str) -> None:
    result = cli("apikey", "create")
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert result.stdout == token + "\n"
    assert "shown once" in result.stderr
    assert authenticate_token(empty_database_url, token).can_write is True


def test_apikey_list_shows_prefixes_and_never_the_keys(cli: Cli) -> None:
    ehr = ok_json(cli("apikey", "create", "--name", "ehr", "--json"))
    calendar = ok_json(cli("apikey", "create", "--name", "calendar", "--read-only", "--json"))

    result = cli("apikey", "list", "--json")
    rows = ok_json(result)
    assert [(r["prefix"], r["name"], r["can_write"], r["revoked_at"]) for r in rows] == [
        (ehr["prefix"], "ehr", True, None),
        (calendar["prefix"], "calendar", False, None),
    ]
    assert all(r["created_at"] for r in rows)
    assert ehr["key"] not in result.stdout
    assert calendar["key"] not in result.stdout


def test_apikey_revoke_stops_that_key_only(cli: Cli, empty_database_url: str) -> None:
    doomed = ok_json(cli("apikey", "create", "--name", "old", "--json"))
    kept = ok_json(cli("apikey", "create", "--name", "new", "--json"))
    assert authenticate_token(empty_database_url, doomed["key"]).key_prefix == doomed["prefix"]

    result = cli("apikey", "revoke", doomed["prefix"])
    assert result.exit_code == 0, result.output
    assert f"revoked {doomed['prefix']}" in result.stdout

    with pytest.raises(Unauthorized, match="revoked"):
        authenticate_token(empty_database_url, doomed["key"])
    assert authenticate_token(empty_database_url, kept["key"]).key_prefix == kept["prefix"]
    revoked = {r["prefix"]: r["revoked_at"] for r in ok_json(cli("apikey", "list", "--json"))}
    assert revoked[doomed["prefix"]] is not None
    assert revoked[kept["prefix"]] is None


def test_apikey_revoke_of_an_unknown_prefix_exits_2(cli: Cli) -> None:
    message = failed(cli("apikey", "revoke", "0123456789ab"), 2)
    assert "no API key '0123456789ab' in practice 'default'" in message


# --- import ----------------------------------------------------------------------------------

# The file's own headers, mapped to ours with --map (given twice: the option repeats).
HEADER = ["Appt", "Patient", "Name", "Mobile", "Starts", "Ends", "State", "Diagnosis"]
MAP = [
    "--map",
    "Appt=appointment_id,Patient=patient_id,Name=patient_name",
    "--map",
    "Mobile=phone,Starts=start,Ends=end,State=status",
]
ROWS = [
    # line 2: good
    ["a1", "p1", "Avery Johnson", "(202) 555-0143", "2026-12-03 15:00", "2026-12-03 15:50",
     "booked", "F41.1"],
    # line 3: a phone number that is not one
    ["a2", "p2", "Jordan Lee", "555-CALL", "2026-12-03 16:00", "2026-12-03 16:50", "booked", ""],
    # line 4: ends before it starts
    ["a3", "p3", "Chen Wei", "(202) 555-0144", "2026-12-04 10:00", "2026-12-04 09:00",
     "booked", ""],
    # line 5: a status that does not exist
    ["a4", "p4", "Grace Kim", "(202) 555-0145", "2026-12-04 11:00", "2026-12-04 11:50",
     "maybe", ""],
    # line 6: good, no end (the default 50 minutes) and no status (booked)
    ["a5", "p1", "Avery Johnson", "(202) 555-0143", "2026-12-10 15:00", "", "", ""],
]  # fmt: skip


@pytest.fixture
def schedule_csv(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "schedule.csv", HEADER, ROWS)


def rejections_by_line(summary: dict[str, Any]) -> dict[str, list[dict[str, str]]]:
    return {r["reference"]: r["errors"] for r in summary["rejections"]}


def test_import_lands_valid_rows_and_reports_bad_ones_by_line_and_column(
    cli: Cli, schedule_csv: Path
) -> None:
    summary = ok_json(cli("import", schedule_csv, *MAP, "--json"), code=3)
    assert (summary["format"], summary["created"], summary["updated"]) == ("csv", 2, 0)
    assert (summary["unchanged"], summary["rejected"]) == (0, 3)
    assert summary["ignored_columns"] == ["Diagnosis"]
    rejections = rejections_by_line(summary)
    assert set(rejections) == {"line 3", "line 4", "line 5"}
    assert rejections["line 3"] == [
        {"loc": "column 'Mobile'", "message": "not a valid phone number for its country"}
    ]
    [status_error] = rejections["line 5"]
    assert status_error["loc"] == "column 'State'"
    assert "'booked'" in status_error["message"]

    # The valid rows landed, in the practice's zone (EST, -05:00); the rejected ones wrote
    # nothing, not even their patients.
    page = ok_json(cli("appointments", "list", "--json"))
    assert [
        (a["external_id"], a["start"], a["end"], a["status"], a["patient"]["external_id"])
        for a in page["items"]
    ] == [
        ("a1", "2026-12-03T20:00:00Z", "2026-12-03T20:50:00Z", "booked", "p1"),
        ("a5", "2026-12-10T20:00:00Z", "2026-12-10T20:50:00Z", "booked", "p1"),
    ]
    patients = ok_json(cli("patients", "list", "--json"))
    assert [(p["external_id"], p["name"], p["phone"]) for p in patients["items"]] == [
        ("p1", "Avery Johnson", "+12025550143")
    ]


def test_import_rejection_of_an_end_before_start_names_the_files_column(
    cli: Cli, schedule_csv: Path
) -> None:
    summary = ok_json(cli("import", schedule_csv, *MAP, "--json"), code=3)
    [error] = rejections_by_line(summary)["line 4"]
    assert error["message"] == "end must be after start"
    # The person fixing the file needs its own header ("Ends" or "Starts"), as for other cells.
    assert error["loc"] in ("column 'Ends'", "column 'Starts'")


def test_importing_the_same_file_again_changes_nothing(cli: Cli, schedule_csv: Path) -> None:
    ok_json(cli("import", schedule_csv, *MAP, "--json"), code=3)
    before = ok_json(cli("appointments", "list", "--json"))

    again = ok_json(cli("import", schedule_csv, *MAP, "--json"), code=3)
    assert (again["created"], again["updated"], again["unchanged"], again["rejected"]) == (
        0,
        0,
        2,
        3,
    )
    after = ok_json(cli("appointments", "list", "--json"))
    assert [(a["id"], a["version"], a["updated_at"]) for a in after["items"]] == [
        (a["id"], a["version"], a["updated_at"]) for a in before["items"]
    ]


def test_rejections_list_shows_the_rejected_rows(cli: Cli, schedule_csv: Path) -> None:
    ok_json(cli("import", schedule_csv, *MAP, "--json"), code=3)
    rows = ok_json(cli("rejections", "list", "--json"))
    assert sorted((r["channel"], r["reference"]) for r in rows) == [
        ("import.csv", "line 3"),
        ("import.csv", "line 4"),
        ("import.csv", "line 5"),
    ]
    by_line = {r["reference"]: r["errors"] for r in rows}
    assert by_line["line 3"] == [
        {"loc": "column 'Mobile'", "message": "not a valid phone number for its country"}
    ]
    assert [e["message"] for e in by_line["line 4"]] == ["end must be after start"]
    assert [e["loc"] for e in by_line["line 5"]] == ["column 'State'"]


def test_import_of_a_csv_missing_a_required_column_exits_2_naming_it(
    cli: Cli, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "no-patient.csv",
        ["appointment_id", "start", "phone"],
        [["a1", "2026-12-03 15:00", "(202) 555-0143"]],
    )
    message = failed(cli("import", path, "--json"), 2)
    assert "missing column 'patient_id'" in message
    assert ok_json(cli("appointments", "list", "--json"))["total"] == 0


def test_import_with_a_map_to_an_unknown_column_exits_2(cli: Cli, schedule_csv: Path) -> None:
    message = failed(cli("import", schedule_csv, "--map", "Appt=appointment_idx", "--json"), 2)
    assert "'appointment_idx' is not a frontdesk column" in message
    assert ok_json(cli("appointments", "list", "--json"))["total"] == 0


def test_import_report_prints_cell_values_literally(cli: Cli, tmp_path: Path) -> None:
    # Cell values reach the text report inside error messages; square brackets in them are
    # data, not console markup to interpret (or to crash on).
    path = write_csv(
        tmp_path / "brackets.csv",
        ["appointment_id", "patient_id", "start", "language"],
        [["a1", "p1", "2026-12-03 15:00", "[es]"], ["a2", "p2", "2026-12-03 16:00", "[/es]"]],
    )
    result = cli("import", path)
    assert result.exit_code == 3, f"{result.output}\n{result.exception!r}"
    report = " ".join(result.stdout.split())
    assert "rejected 2" in report
    assert "line 2: column 'language': not a language tag: '[es]'" in report
    assert "line 3: column 'language': not a language tag: '[/es]'" in report


# --- db --------------------------------------------------------------------------------------


def test_db_current_reports_up_to_date(cli: Cli) -> None:
    state = ok_json(cli("db", "current", "--json"))
    head = head_revision()
    assert head is not None
    assert state == {"current": head, "head": head, "up_to_date": True}
