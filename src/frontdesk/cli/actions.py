"""`frontdesk actions …`: check, store, switch on and off, and follow custom actions."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from frontdesk.cli.common import (
    EXIT_INPUT,
    JsonOpt,
    PracticeOpt,
    app,
    err,
    opened,
    out,
    print_json,
)
from frontdesk.domain.errors import FieldError

actions_app = typer.Typer(
    help="Custom actions: declarative YAML routines run in conversations (docs/ACTIONS.md).",
    no_args_is_help=True,
)
app.add_typer(actions_app, name="actions")

FileArg = Annotated[
    Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="A YAML action spec.")
]


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _report(path: Path, errors: list[FieldError]) -> None:
    # One line per error, never wrapped: editors and CI read "FILE: line L, column C: …".
    for error in errors:
        sys.stderr.write(f"{path}: {error.loc}: {error.message}\n")


@actions_app.command("validate")
def actions_validate(file: FileArg, as_json: JsonOpt = False) -> None:
    """Check a spec; every problem is printed with its line and column (exit 2 on errors)."""
    from frontdesk.domain.errors import ValidationFailed
    from frontdesk.services.actions import validate

    try:
        spec = validate(_read(file))
    except ValidationFailed as exc:
        if as_json:
            print_json({"valid": False, "errors": [e.as_dict() for e in exc.errors]})
        else:
            _report(file, list(exc.errors))
        raise typer.Exit(EXIT_INPUT) from None
    if as_json:
        print_json({"valid": True, "name": spec.name})
        return
    out.print(
        f"{file}: ok — action {spec.name!r}, {len(spec.fields)} fields, {len(spec.steps)} steps"
    )


@actions_app.command("add")
def actions_add(
    file: FileArg,
    enable: Annotated[bool, typer.Option("--enable", help="Switch it on at once.")] = False,
    practice: PracticeOpt = None,
) -> None:
    """Store (or replace) an action from a YAML file, checked first."""
    from frontdesk.domain.errors import ValidationFailed
    from frontdesk.services import actions
    from frontdesk.services.practices import resolve_practice

    text = _read(file)
    try:
        actions.validate(text)
    except ValidationFailed as exc:
        _report(file, list(exc.errors))
        raise typer.Exit(EXIT_INPUT) from None
    with opened() as runtime, runtime.transaction() as session:
        record = actions.save(
            session,
            resolve_practice(session, practice),
            text,
            actor="cli",
            enabled=True if enable else None,
        )
        name, enabled, version = record.name, record.enabled, record.version
    out.print(f"stored {name} (version {version}, {'enabled' if enabled else 'disabled'})")


@actions_app.command("list")
def actions_list(practice: PracticeOpt = None, as_json: JsonOpt = False) -> None:
    """The practice's actions: trigger, whether enabled, fields and steps."""
    from frontdesk.services import actions
    from frontdesk.services.practices import resolve_practice

    with opened() as runtime, runtime.transaction() as session:
        rows = actions.list_actions(session, resolve_practice(session, practice))
    if as_json:
        print_json(rows)
        return
    table = Table("name", "trigger", "enabled", "version", "fields", "steps")
    for r in rows:
        table.add_row(
            r["name"],
            r["trigger"],
            "yes" if r["enabled"] else "no",
            str(r["version"]),
            ", ".join(r["fields"]),
            str(r["steps"]),
        )
    out.print(table)


def _switch(name: str, enabled: bool, practice: str | None) -> None:
    from frontdesk.services import actions
    from frontdesk.services.practices import resolve_practice

    with opened() as runtime, runtime.transaction() as session:
        actions.set_enabled(
            session, resolve_practice(session, practice), name, enabled, actor="cli"
        )
    out.print(f"{name} {'enabled' if enabled else 'disabled'}")


@actions_app.command("enable")
def actions_enable(
    name: Annotated[str, typer.Argument(help="The action's name.")], practice: PracticeOpt = None
) -> None:
    """Switch an action on: its trigger starts runs from now on."""
    _switch(name, True, practice)


@actions_app.command("disable")
def actions_disable(
    name: Annotated[str, typer.Argument(help="The action's name.")], practice: PracticeOpt = None
) -> None:
    """Switch an action off; runs already going finish as they were."""
    _switch(name, False, practice)


@actions_app.command("runs")
def actions_runs(
    run: Annotated[int | None, typer.Argument(help="One run's id: its full step log.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    practice: PracticeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Recent runs, or one run step by step (inputs and webhooks redacted)."""
    from frontdesk.services import actions
    from frontdesk.services.practices import resolve_practice

    with opened() as runtime, runtime.transaction() as session:
        chosen = resolve_practice(session, practice)
        if run is not None:
            shown = actions.run_view(session, chosen, run)
        else:
            rows = actions.list_runs(session, chosen, limit)
    if run is not None:
        if as_json:
            print_json(shown)
            return
        out.print(f"run {shown['id']} {shown['action']}: {shown['state']} ({shown['outcome']})")
        for step in shown["steps"]:
            took = f" {step['duration_ms']} ms" if step["duration_ms"] is not None else ""
            out.print(
                f"  {step['at']} #{step['pc']} {step['kind']} → {step['outcome']}"
                f" (try {step['attempt']}){took} {step['detail']}"
            )
        return
    if as_json:
        print_json(rows)
        return
    table = Table("id", "action", "state", "outcome", "patient", "appointment", "started")
    for r in rows:
        table.add_row(
            str(r["id"]),
            r["action"],
            r["state"],
            r["outcome"] or "",
            str(r["patient_id"] or ""),
            str(r["appointment_id"] or ""),
            r["started_at"],
        )
    out.print(table)


@actions_app.command("webhook")
def actions_webhook(
    url: Annotated[
        str | None, typer.Option(help="The practice's base URL for action webhooks.")
    ] = None,
    new_secret: Annotated[
        bool, typer.Option("--new-secret", help="Make a new signing secret (shown once).")
    ] = False,
    practice: PracticeOpt = None,
) -> None:
    """Where action webhooks go ({{ practice.webhook_url }}) and their HMAC signing secret."""
    from frontdesk.services import actions
    from frontdesk.services.practices import resolve_practice

    with opened() as runtime, runtime.transaction() as session:
        chosen = resolve_practice(session, practice)
        secret = actions.configure_webhook(chosen, runtime.cipher, url=url, new_secret=new_secret)
        shown_url = (chosen.settings or {}).get("action_webhook_url") or "(not set)"
    out.print(f"webhook URL: {shown_url}")
    if secret:
        out.print("signing secret (shown once; X-Frontdesk-Signature, HMAC-SHA256):")
        sys.stdout.write(f"{secret}\n")


@actions_app.command("receiver")
def actions_receiver(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port on 127.0.0.1.")] = 8765,
    practice: PracticeOpt = None,
) -> None:
    """A stand-in scheduling system on loopback for trying actions: checks each webhook's
    signature, applies each Idempotency-Key once, prints what arrived, answers 200."""
    import json
    from datetime import UTC, datetime
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from frontdesk.services import actions
    from frontdesk.services.practices import resolve_practice

    with opened() as runtime, runtime.transaction() as session:
        chosen = resolve_practice(session, practice)
        sealed = (chosen.settings or {}).get("action_webhook_secret")
        secret = runtime.cipher.open(sealed) if sealed else None
        if (chosen.settings or {}).get("action_webhook_url") is None:
            actions.configure_webhook(
                chosen, runtime.cipher, url=f"http://127.0.0.1:{port}", new_secret=False
            )
    if secret is None:
        err.print("no signing secret yet: run `frontdesk actions webhook --new-secret` first")
        raise typer.Exit(EXIT_INPUT)
    key_text: str = secret
    applied: set[str] = set()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
            valid = actions.verify_signature(
                key_text,
                self.headers.get(actions.SIGNATURE_HEADER, ""),
                raw,
                now=datetime.now(UTC),
            )
            key = self.headers.get("Idempotency-Key", "")
            first = valid and key not in applied
            if first:
                applied.add(key)
            out.print(
                f"{self.path} signature={'ok' if valid else 'BAD'} key={key} "
                f"{'applied' if first else 'repeat' if valid else 'refused'}: {raw}"
            )
            code = 200 if valid else 401
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps({"ok": valid, "reference": key}).encode())

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    out.print(f"receiving action webhooks on http://127.0.0.1:{port} (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
