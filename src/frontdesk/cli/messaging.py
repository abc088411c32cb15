"""`frontdesk outbox …` and `frontdesk templates …`: try the whole loop with no provider, and
see or change what patients are sent."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from frontdesk.cli.common import JsonOpt, PracticeOpt, app, fail, opened, out, print_json
from frontdesk.domain.channels import Channel

outbox_app = typer.Typer(
    help="The local outbox: every message, and patients' replies typed by hand.",
    no_args_is_help=True,
)
templates_app = typer.Typer(
    help="Message templates per purpose, channel, language.", no_args_is_help=True
)
app.add_typer(outbox_app, name="outbox")
app.add_typer(templates_app, name="templates")


@outbox_app.command("list")
def outbox_list(
    patient: Annotated[int | None, typer.Option("--patient", help="Only this patient's.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 50,
    practice: PracticeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Messages, newest first: patient, channel, direction, body, status and time."""
    from frontdesk.services.practices import resolve_practice
    from frontdesk.services.threads import list_messages

    with opened() as runtime, runtime.transaction() as session:
        chosen = resolve_practice(session, practice)
        rows = list_messages(session, chosen, patient_id=patient, limit=limit)
    if as_json:
        print_json(rows)
        return
    table = Table("id", "time (UTC)", "patient", "channel", "dir", "status", "body")
    for r in rows:
        table.add_row(
            str(r["id"]),
            f"{r['created_at']:%Y-%m-%d %H:%M}",
            f"{r['patient_id'] or '?'} {r['patient'] or ''}".strip(),
            r["channel"],
            "→" if r["direction"] == "outbound" else "←",
            r["status"] or "",
            r["body"],
        )
    out.print(table)


@outbox_app.command("reply")
def outbox_reply(
    text: Annotated[str, typer.Argument(help="What the patient writes.")],
    patient: Annotated[int, typer.Option("--patient", help="The patient's id.")],
    channel: Annotated[
        Channel | None,
        typer.Option(help="Their channel (default: the one we last wrote to them on)."),
    ] = None,
    practice: PracticeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A patient's reply arriving on their channel: understood, acted on, answered."""
    from frontdesk.services.chores import message_sender
    from frontdesk.services.inbound_messages import outbox_reply as reply
    from frontdesk.services.practices import resolve_practice
    from frontdesk.services.threads import list_messages

    with opened() as runtime:
        with runtime.transaction() as session:
            practice_id = resolve_practice(session, practice).id
        outcome = reply(
            runtime,
            message_sender(runtime),
            practice_id=practice_id,
            patient_id=patient,
            text=text,
            channel=channel,
        )
        with runtime.transaction() as session:
            chosen = resolve_practice(session, practice)
            answers = [
                m
                for m in list_messages(session, chosen, patient_id=patient, limit=20)
                if m["id"] in set(outcome.queued_ids)
            ]
    result = {
        "intent": outcome.intent,
        "action": outcome.action,
        "appointment_id": outcome.appointment_id,
        "answers": [
            {"channel": a["channel"], "body": a["body"], "status": a["status"]} for a in answers
        ],
    }
    if as_json:
        print_json(result)
        return
    out.print(f"understood: {outcome.intent} → {outcome.action}")
    for a in answers:
        out.print(f"answer ({a['channel']}, {a['status']}): {a['body']}")


@templates_app.command("list")
def templates_list(practice: PracticeOpt = None, as_json: JsonOpt = False) -> None:
    """Every purpose, channel and language, and whether the practice has its own wording."""
    from frontdesk.services.practices import resolve_practice
    from frontdesk.services.templates import catalogue

    with opened() as runtime, runtime.transaction() as session:
        rows = catalogue(session, resolve_practice(session, practice))
    if as_json:
        print_json(rows)
        return
    table = Table("purpose", "channel", "language", "own", "body")
    for r in rows:
        table.add_row(
            r["purpose"], r["channel"], r["language"], "yes" if r["custom"] else "", r["body"][:80]
        )
    out.print(table)


@templates_app.command("preview")
def templates_preview(
    purpose: Annotated[str, typer.Argument(help="e.g. reminder, reminder.2h, receipt_confirm.")],
    channel: Annotated[str, typer.Option(help="sms, email, whatsapp or webchat.")] = "sms",
    language: Annotated[str, typer.Option(help="en or es.")] = "en",
    body_file: Annotated[
        Path | None, typer.Option("--file", help="Preview this draft instead of the stored one.")
    ] = None,
    practice: PracticeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The message with sample values, and its length in SMS segments (GSM-7 or UCS-2)."""
    from frontdesk.services.practices import resolve_practice
    from frontdesk.services.templates import preview

    draft = _read(body_file)
    with opened() as runtime, runtime.transaction() as session:
        result = preview(
            session,
            resolve_practice(session, practice),
            purpose=purpose,
            channel=channel,
            language=language,
            body=draft,
        )
    if as_json:
        print_json(result)
        return
    if result["subject"]:
        out.print(f"Subject: {result['subject']}\n")
    out.print(result["body"])
    sms = result["sms"]
    out.print(
        f"\n{sms['characters']} characters, {sms['encoding']}, {sms['segments']} SMS segment(s)"
    )


@templates_app.command("set")
def templates_set(
    purpose: Annotated[str, typer.Argument()],
    body_file: Annotated[Path, typer.Option("--file", help="The template text (Jinja2).")],
    channel: Annotated[str, typer.Option()] = "sms",
    language: Annotated[str, typer.Option()] = "en",
    subject: Annotated[str | None, typer.Option(help="Email subject.")] = None,
    html_file: Annotated[Path | None, typer.Option("--html-file", help="Email HTML.")] = None,
    whatsapp_template: Annotated[
        str | None, typer.Option(help="Name of the Meta-approved WhatsApp template.")
    ] = None,
    practice: PracticeOpt = None,
) -> None:
    """Store the practice's own wording (checked by rendering it once with sample values)."""
    from frontdesk.services.practices import resolve_practice
    from frontdesk.services.templates import save

    body = _read(body_file)
    assert body is not None
    with opened() as runtime, runtime.transaction() as session:
        result = save(
            session,
            resolve_practice(session, practice),
            purpose=purpose,
            channel=channel,
            language=language,
            body=body,
            subject=subject,
            html=_read(html_file),
            whatsapp_template=whatsapp_template,
        )
    out.print(result["body"])


@templates_app.command("reset")
def templates_reset(
    purpose: Annotated[str, typer.Argument()],
    channel: Annotated[str, typer.Option()] = "sms",
    language: Annotated[str, typer.Option()] = "en",
    practice: PracticeOpt = None,
) -> None:
    """Go back to frontdesk's wording for this purpose, channel and language."""
    from frontdesk.services.practices import resolve_practice
    from frontdesk.services.templates import reset

    with opened() as runtime, runtime.transaction() as session:
        removed = reset(
            session,
            resolve_practice(session, practice),
            purpose=purpose,
            channel=channel,
            language=language,
        )
    out.print("reset to the default" if removed else "already the default")


def _read(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {path}: {exc}")


channels_app = typer.Typer(
    help="Messaging providers per channel (Twilio, SMTP, WhatsApp Cloud, inbound email).",
    no_args_is_help=True,
)
app.add_typer(channels_app, name="channels")


@channels_app.command("list")
def channels_list(practice: PracticeOpt = None, as_json: JsonOpt = False) -> None:
    """Each connected channel, its provider and settings; secrets only masked."""
    from frontdesk.services.channel_accounts import list_accounts
    from frontdesk.services.practices import resolve_practice

    with opened() as runtime, runtime.transaction() as session:
        rows = list_accounts(session, resolve_practice(session, practice), runtime.cipher)
    if as_json:
        print_json(rows)
        return
    if not rows:
        out.print("every channel uses the local outbox")
    for row in rows:
        out.print(f"{row['channel']}: {row['provider']}  secrets: {row['secrets']}")


@channels_app.command("set")
def channels_set(
    channel: Annotated[str, typer.Argument(help="sms, email, whatsapp or email_inbound.")],
    provider: Annotated[str, typer.Option(help="twilio, smtp, whatsapp_cloud, mailgun, …")],
    settings_file: Annotated[
        Path | None,
        typer.Option("--settings-file", help="JSON object of the provider's settings."),
    ] = None,
    practice: PracticeOpt = None,
) -> None:
    """Connect a channel (secrets go in the file, never on the command line; they are sealed
    at rest and shown masked from then on). `--provider outbox` goes back to the outbox."""
    import json

    from frontdesk.services.channel_accounts import set_account
    from frontdesk.services.practices import resolve_practice

    text = _read(settings_file)
    try:
        values = json.loads(text) if text else {}
    except ValueError as exc:
        fail(f"{settings_file} is not JSON: {exc}")
    if not isinstance(values, dict):
        fail("the settings file must hold one JSON object")
    with opened() as runtime, runtime.transaction() as session:
        shown = set_account(
            session,
            runtime.cipher,
            resolve_practice(session, practice),
            channel,
            provider,
            values,
            actor="cli",
        )
    out.print(f"{shown['channel']}: {shown['provider']}  secrets: {shown['secrets']}")
