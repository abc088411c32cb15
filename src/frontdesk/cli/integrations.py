"""`frontdesk integrations`: connect Calendly, Cal.com, FHIR servers and iCalendar feeds."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from frontdesk.cli.common import JsonOpt, PracticeOpt, app, opened, out, print_json

integrations_app = typer.Typer(
    help="Scheduling systems: Calendly, Cal.com, FHIR servers, iCalendar feeds.",
    no_args_is_help=True,
)
app.add_typer(integrations_app, name="integrations")
ACTOR = "cli"

SourceOpt = Annotated[
    str | None, typer.Option(help="Source name appointments are kept under (default: the kind).")
]
IntervalOpt = Annotated[int | None, typer.Option(min=30, max=86_400, help="Seconds between polls.")]


def _show(view: dict[str, object], as_json: bool) -> None:
    if as_json:
        print_json(view)
    else:
        out.print(f"{view['kind']} integration {view['source']!r} saved")


@integrations_app.command("set-calendly")
def set_calendly(
    signing_key: Annotated[
        str, typer.Option(prompt=True, hide_input=True, help="The webhook signing key.")
    ],
    api_token: Annotated[
        str | None,
        typer.Option(help="Personal access token, to read events a delivery only links to."),
    ] = None,
    source: SourceOpt = None,
    practice: PracticeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Receive Calendly webhooks at /webhooks/calendly/<practice slug>."""
    from frontdesk.services import integrations

    with opened() as runtime:
        practice_id = integrations.practice_id_of(runtime, practice)
        view = integrations.configure_webhook(
            runtime,
            practice_id,
            "calendly",
            secret=signing_key,
            token=api_token,
            source=source,
            actor=ACTOR,
        )
    _show(view, as_json)


@integrations_app.command("set-calcom")
def set_calcom(
    secret: Annotated[str, typer.Option(prompt=True, hide_input=True, help="The webhook secret.")],
    source: SourceOpt = None,
    practice: PracticeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Receive Cal.com webhooks at /webhooks/calcom/<practice slug>."""
    from frontdesk.services import integrations

    with opened() as runtime:
        practice_id = integrations.practice_id_of(runtime, practice)
        view = integrations.configure_webhook(
            runtime, practice_id, "calcom", secret=secret, source=source, actor=ACTOR
        )
    _show(view, as_json)


@integrations_app.command("set-acuity")
def set_acuity(
    user_id: Annotated[str, typer.Option(help="The Acuity user id (Integrations > API).")],
    api_key: Annotated[str, typer.Option(prompt=True, hide_input=True, help="The Acuity API key.")],
    source: SourceOpt = None,
    practice: PracticeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Receive Acuity Scheduling webhooks at /webhooks/acuity/<practice slug>."""
    from frontdesk.services import integrations

    with opened() as runtime:
        practice_id = integrations.practice_id_of(runtime, practice)
        view = integrations.configure_webhook(
            runtime,
            practice_id,
            "acuity",
            secret=api_key,
            token=user_id,
            source=source,
            actor=ACTOR,
        )
    _show(view, as_json)


@integrations_app.command("add-fhir")
def add_fhir(
    url: Annotated[str, typer.Argument(help="The FHIR R4 base URL, e.g. https://ehr/fhir.")],
    token: Annotated[str | None, typer.Option(help="Bearer token for the server.")] = None,
    source: SourceOpt = None,
    interval: IntervalOpt = None,
    practice: PracticeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Poll a FHIR R4 server's Appointments (and write the patients' answers back)."""
    from frontdesk.services import integrations

    with opened() as runtime:
        practice_id = integrations.practice_id_of(runtime, practice)
        view = integrations.configure_polled(
            runtime,
            practice_id,
            "fhir",
            url,
            source=source,
            token=token,
            interval_seconds=interval,
            actor=ACTOR,
        )
    _show(view, as_json)


@integrations_app.command("add-ics")
def add_ics(
    url: Annotated[str, typer.Argument(help="The iCalendar feed URL (kept sealed).")],
    source: SourceOpt = None,
    interval: IntervalOpt = None,
    practice: PracticeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Poll an iCalendar feed (conditional GET: unchanged feeds cost one 304)."""
    from frontdesk.services import integrations

    with opened() as runtime:
        practice_id = integrations.practice_id_of(runtime, practice)
        view = integrations.configure_polled(
            runtime, practice_id, "ics", url, source=source, interval_seconds=interval, actor=ACTOR
        )
    _show(view, as_json)


@integrations_app.command("list")
def list_(practice: PracticeOpt = None, as_json: JsonOpt = False) -> None:
    """The practice's integrations, their sync state and last error (never their secrets)."""
    from frontdesk.services import integrations

    with opened() as runtime:
        views = integrations.list_views(runtime, integrations.practice_id_of(runtime, practice))
    if as_json:
        print_json(views)
        return
    table = Table("source", "kind", "endpoint", "secret", "last success", "failures", "error")
    for v in views:
        table.add_row(
            str(v["source"]),
            str(v["kind"]),
            str(v["endpoint"] or ""),
            "set" if v["secret_set"] or v["token_set"] else "",
            str(v["last_success_at"] or ""),
            str(v["consecutive_failures"]),
            str(v["last_error"] or ""),
        )
    out.print(table)


@integrations_app.command("remove")
def remove(
    source: Annotated[str, typer.Argument(help="The integration's source name.")],
    practice: PracticeOpt = None,
) -> None:
    """Remove an integration (its appointments stay)."""
    from frontdesk.services import integrations

    with opened() as runtime:
        integrations.remove_source(
            runtime, integrations.practice_id_of(runtime, practice), source, actor=ACTOR
        )
    out.print(f"removed {source!r}")


@integrations_app.command("sync")
def sync(
    source: Annotated[str | None, typer.Argument(help="Only this source.")] = None,
    practice: PracticeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Poll the FHIR servers and iCalendar feeds now, then write back what is queued."""
    from frontdesk.services import fhir_writeback, integrations, scheduler_sync

    with opened() as runtime:
        practice_id = integrations.practice_id_of(runtime, practice)
        reports = [r.as_dict() for r in scheduler_sync.sync_now(runtime, practice_id, source)]
        written = fhir_writeback.process_writebacks(runtime)
    if as_json:
        print_json({"polls": reports, "writebacks": written})
        return
    for report in reports:
        line = f"{report['source']}: {report['state']} {report['summary']}"
        out.print(line + (f" ({report['error']})" if report["error"] else ""))
    if written:
        out.print("write-backs: " + ", ".join(f"{k} {v}" for k, v in written.items()))


@integrations_app.command("writebacks")
def writebacks(
    state: Annotated[
        str | None, typer.Option(help="pending, sending, done, superseded, failed")
    ] = None,
    retry: Annotated[bool, typer.Option("--retry", help="Queue the failed ones again.")] = False,
    practice: PracticeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """FHIR write-backs and their state; `--retry` queues the failed ones again."""
    from frontdesk.domain.times import now_utc
    from frontdesk.services import fhir_writeback, integrations

    with opened() as runtime:
        practice_id = integrations.practice_id_of(runtime, practice)
        with runtime.transaction() as session:
            if retry:
                count = fhir_writeback.retry_failed(session, practice_id, now=now_utc())
                out.print(f"{count} write-back(s) queued again")
                return
            rows = fhir_writeback.list_writebacks(session, practice_id, state=state)
    if as_json:
        print_json(rows)
        return
    table = Table("id", "appointment", "change", "state", "attempts", "error", "result")
    for r in rows:
        table.add_row(
            str(r["id"]),
            str(r["appointment_id"]),
            str(r["change"]),
            str(r["state"]),
            str(r["attempts"]),
            str(r["last_error"] or ""),
            str(r["result"] or ""),
        )
    out.print(table)
