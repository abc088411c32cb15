"""`frontdesk users …` in-process through Typer's runner, against a real database."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner, Result

from conftest import TEST_SECRET, make_settings
from frontdesk.adapters.db.models import AuditEvent, Clinician
from frontdesk.adapters.db.staff_models import StaffUser
from frontdesk.bootstrap import Runtime
from frontdesk.cli import app
from frontdesk.config import Settings
from frontdesk.domain.times import now_utc
from frontdesk.services import practices, signin
from staff_support import FAST_HASHING

Run = Callable[..., Result]
PASSWORD = "a sturdy password for the cli"


@pytest.fixture
def run(runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    """``frontdesk ARGS…`` on the test database (``input`` goes to standard input)."""
    monkeypatch.chdir(tmp_path)
    env: dict[str, str | None] = {f"FRONTDESK_{n.upper()}": None for n in Settings.model_fields}
    env["FRONTDESK_DATABASE_URL"] = runtime.settings.database_url
    env["FRONTDESK_SECRET_KEY"] = TEST_SECRET
    for name, value in FAST_HASHING.items():
        env[f"FRONTDESK_{name.upper()}"] = str(value)

    def invoke(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(app, list(args), env=env, input=input)

    return invoke


def ok(result: Result) -> str:
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return result.stdout


def can_sign_in(runtime: Runtime, email: str, password: str) -> bool:
    settings = make_settings(runtime.settings.database_url, **FAST_HASHING)
    return signin.sign_in(
        runtime,
        settings=settings,
        email=email,
        password=password,
        code="",
        ip="127.0.0.1",
        now=now_utc(),
    ).ok


def test_users_add_list_disable_enable_and_reset_password(run: Run, runtime: Runtime) -> None:
    added = run(
        "users",
        "add",
        "Admin@Example.com",
        "--name",
        "Ada Admin",
        "--role",
        "admin",
        "--password-stdin",
        "--json",
        input=PASSWORD + "\n",
    )
    view = json.loads(ok(added))
    assert (view["email"], view["role"], view["active"]) == ("admin@example.com", "admin", True)
    assert PASSWORD not in added.output
    assert can_sign_in(runtime, "admin@example.com", PASSWORD)

    # Without --password-stdin it prompts twice (hidden) and refuses a mismatch.
    prompted = run(
        "users",
        "add",
        "desk@example.com",
        "--name",
        "Dee Desk",
        "--role",
        "front_desk",
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    ok(prompted)
    assert PASSWORD not in prompted.output
    short = run(
        "users",
        "add",
        "x@example.com",
        "--name",
        "X",
        "--role",
        "front_desk",
        "--password-stdin",
        input="short\n",
    )
    assert short.exit_code == 2 and "password" in short.stderr
    duplicate = run(
        "users",
        "add",
        "DESK@example.com",
        "--name",
        "Again",
        "--role",
        "front_desk",
        "--password-stdin",
        input=PASSWORD + "\n",
    )
    assert duplicate.exit_code == 2 and "exists" in duplicate.stderr

    listed = json.loads(ok(run("users", "list", "--json")))
    assert [(u["email"], u["role"]) for u in listed] == [
        ("admin@example.com", "admin"),
        ("desk@example.com", "front_desk"),
    ]
    assert "Dee Desk" in ok(run("users", "list"))

    ok(run("users", "disable", "desk@example.com"))
    assert not can_sign_in(runtime, "desk@example.com", PASSWORD)
    assert json.loads(ok(run("users", "list", "--json")))[1]["active"] is False
    ok(run("users", "enable", "desk@example.com"))
    assert can_sign_in(runtime, "desk@example.com", PASSWORD)

    ok(
        run(
            "users",
            "reset-password",
            "desk@example.com",
            "--password-stdin",
            input="a brand new password\n",
        )
    )
    assert not can_sign_in(runtime, "desk@example.com", PASSWORD)
    assert can_sign_in(runtime, "desk@example.com", "a brand new password")
    missing = run("users", "disable", "nobody@example.com")
    assert missing.exit_code == 2 and "no staff user" in missing.stderr

    with runtime.transaction() as session:
        actions = [e.action for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
        details = str([e.details for e in session.scalars(select(AuditEvent))])
    assert actions.count("staff.created") == 2
    assert {"staff.disabled", "staff.enabled", "staff.password_reset"} <= set(actions)
    assert PASSWORD not in details


def test_users_add_a_clinician_needs_a_clinician_of_the_practice(
    run: Run, runtime: Runtime
) -> None:
    with runtime.transaction() as session:
        practice = practices.resolve_practice(session, None)
        row = Clinician(practice_id=practice.id, match_key="dr-x", name="Dr. X")
        session.add(row)
        session.flush()
        clinician_id = row.id
    base = ["users", "add", "doc@example.com", "--name", "Doc", "--role", "clinician"]
    unlinked = run(*base, "--password-stdin", input=PASSWORD + "\n")
    assert unlinked.exit_code == 2 and "clinician" in unlinked.stderr
    wrong = run(*base, "--clinician", "9999", "--password-stdin", input=PASSWORD + "\n")
    assert wrong.exit_code == 2
    ok(run(*base, "--clinician", str(clinician_id), "--password-stdin", input=PASSWORD + "\n"))
    with runtime.transaction() as session:
        user = session.scalars(select(StaffUser)).one()
    assert (user.role, user.clinician_id) == ("clinician", clinician_id)


def test_no_password_option_exists(run: Run) -> None:
    help_text = ok(run("users", "add", "--help")) + ok(run("users", "reset-password", "--help"))
    assert "--password-stdin" in help_text
    assert "--password " not in help_text and "--password\n" not in help_text
