"""`frontdesk users`: staff accounts. Passwords are typed at a prompt or piped on standard
input (``--password-stdin``), never given as an option (shell history, process lists)."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from rich.table import Table

from frontdesk.cli.common import JsonOpt, PracticeOpt, app, fail, opened, out, print_json

users_app = typer.Typer(help="Staff accounts (who may sign in to the pages).", no_args_is_help=True)
app.add_typer(users_app, name="users")

PasswordStdinOpt = Annotated[
    bool,
    typer.Option("--password-stdin", help="Read the password from the first line of stdin."),
]
EmailArg = Annotated[str, typer.Argument(help="The person's email (their sign-in name).")]


def _password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            fail("--password-stdin: nothing on standard input")
        return line.rstrip("\r\n")
    value: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value


@users_app.command("add")
def users_add(
    email: EmailArg,
    name: Annotated[str, typer.Option("--name", help="Display name.")],
    role: Annotated[str, typer.Option("--role", help="admin, front_desk or clinician.")],
    clinician: Annotated[
        int | None,
        typer.Option("--clinician", help="Clinician id (role clinician): they see only theirs."),
    ] = None,
    practice: PracticeOpt = None,
    password_stdin: PasswordStdinOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Add a staff user (asks for their first password)."""
    from frontdesk.services import staff
    from frontdesk.services.practices import resolve_practice

    password = _password(password_stdin)
    with opened() as runtime, runtime.transaction() as session:
        user = staff.create_user(
            session,
            resolve_practice(session, practice),
            email=email,
            display_name=name,
            role=role,
            clinician_id=clinician,
            password=password,
            params=staff.hash_parameters(runtime.settings),
            actor="cli",
        )
        view = _view(staff.user_view(user))
    print_json(view) if as_json else out.print(f"added {view['email']} ({view['role']})")


def _view(user: dict[str, Any]) -> dict[str, Any]:
    from frontdesk.domain.times import iso

    return {
        **user,
        "created_at": iso(user["created_at"]),
        "last_login_at": iso(user["last_login_at"]),
    }


@users_app.command("list")
def users_list(practice: PracticeOpt = None, as_json: JsonOpt = False) -> None:
    """List a practice's staff users."""
    from frontdesk.services import staff
    from frontdesk.services.practices import resolve_practice

    with opened() as runtime, runtime.transaction() as session:
        rows = [
            _view(staff.user_view(u))
            for u in staff.list_users(session, resolve_practice(session, practice))
        ]
    if as_json:
        print_json(rows)
        return
    table = Table("email", "name", "role", "clinician", "active", "two-step", "last sign-in")
    for r in rows:
        table.add_row(
            r["email"],
            r["display_name"],
            r["role"],
            str(r["clinician_id"] or ""),
            "yes" if r["active"] else "no",
            "yes" if r["totp_enabled"] else "no",
            r["last_login_at"] or "",
        )
    out.print(table)


def _set_active(email: str, practice: str | None, active: bool) -> None:
    from frontdesk.services import staff
    from frontdesk.services.practices import resolve_practice

    with opened() as runtime, runtime.transaction() as session:
        user = staff.find_user(session, resolve_practice(session, practice), email)
        staff.set_active(session, user, active, actor="cli")
        address = user.email
    out.print(f"{'enabled' if active else 'disabled'} {address}")


@users_app.command("disable")
def users_disable(email: EmailArg, practice: PracticeOpt = None) -> None:
    """Disable a staff user at once (their sessions end)."""
    _set_active(email, practice, False)


@users_app.command("enable")
def users_enable(email: EmailArg, practice: PracticeOpt = None) -> None:
    """Enable a disabled staff user again."""
    _set_active(email, practice, True)


@users_app.command("reset-password")
def users_reset_password(
    email: EmailArg, practice: PracticeOpt = None, password_stdin: PasswordStdinOpt = False
) -> None:
    """Set a new password (asks for it); signs the user out everywhere and turns off their
    two-step sign-in."""
    from frontdesk.services import staff
    from frontdesk.services.practices import resolve_practice

    password = _password(password_stdin)
    with opened() as runtime, runtime.transaction() as session:
        user = staff.find_user(session, resolve_practice(session, practice), email)
        staff.reset_password(
            session, user, password, staff.hash_parameters(runtime.settings), actor="cli"
        )
        address = user.email
    out.print(f"new password set for {address}")
