"""`frontdesk webhooks`: outbound endpoints, their deliveries, and the inbound secret."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from rich.table import Table

from frontdesk.cli.common import JsonOpt, PracticeOpt, app, err, opened, out, print_json

webhooks_app = typer.Typer(
    help="Outbound webhooks (signed events to your systems) and the generic inbound webhook.",
    no_args_is_help=True,
)
app.add_typer(webhooks_app, name="webhooks")

EventsOpt = Annotated[
    str | None,
    typer.Option(
        "--events",
        help="Comma-separated event types (default: all), e.g. "
        "appointment.confirmed,appointment.cancelled.",
    ),
]


def _types(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value is not None else None


@webhooks_app.command("add")
def webhooks_add(
    url: Annotated[str, typer.Argument(help="Where to POST events (https://…).")],
    events: EventsOpt = None,
    description: Annotated[str | None, typer.Option(help="What this endpoint is.")] = None,
    practice: PracticeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add an endpoint. Its signing secret (whsec_…) is printed once: store it now."""
    from frontdesk.domain.webhooks import EndpointIn
    from frontdesk.services import webhooks
    from frontdesk.services.practices import resolve_practice

    with opened() as runtime:
        payload: dict[str, Any] = {"url": url}
        if events is not None:
            payload["event_types"] = _types(events)
        if description is not None:
            payload["description"] = description
        data = webhooks.parse_endpoint(
            EndpointIn, payload, allow_http=runtime.settings.webhook_allow_http
        )
        with runtime.transaction() as session:
            chosen = resolve_practice(session, practice)
            endpoint, secret = webhooks.create_endpoint(
                session, runtime.cipher, chosen, data, actor="cli"
            )
            view = webhooks.endpoint_view(endpoint)
    if as_json:
        print_json({**view, "secret": secret})
        return
    err.print(
        f"endpoint {view['id']} added; its signing secret (shown once; store it now):",
        markup=False,
    )
    sys.stdout.write(secret + "\n")


@webhooks_app.command("list")
def webhooks_list(practice: PracticeOpt = None, as_json: JsonOpt = False) -> None:
    """List endpoints and their health (never their secrets)."""
    from frontdesk.services import webhooks
    from frontdesk.services.practices import resolve_practice

    with opened() as runtime, runtime.transaction() as session:
        rows = [
            webhooks.endpoint_view(e)
            for e in webhooks.list_endpoints(session, resolve_practice(session, practice))
        ]
    if as_json:
        print_json(rows)
        return
    table = Table("id", "url", "events", "enabled", "failures", "disabled because")
    for r in rows:
        table.add_row(
            str(r["id"]),
            r["url"],
            ",".join(r["event_types"]) if r["event_types"] else "all",
            "yes" if r["enabled"] else "no",
            str(r["consecutive_failures"]),
            r["disabled_reason"] or "",
        )
    out.print(table)


@webhooks_app.command("update")
def webhooks_update(
    endpoint_id: Annotated[int, typer.Argument(help="The endpoint's id (see webhooks list).")],
    url: Annotated[str | None, typer.Option(help="A new URL.")] = None,
    events: EventsOpt = None,
    all_events: Annotated[
        bool, typer.Option("--all-events", help="Receive every event type again.")
    ] = False,
    enabled: Annotated[
        bool | None, typer.Option("--enable/--disable", help="Turn delivery on or off.")
    ] = None,
    practice: PracticeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Change an endpoint; --enable resumes a disabled one (what waited is sent, in order)."""
    from frontdesk.domain.webhooks import EndpointPatch
    from frontdesk.services import webhooks
    from frontdesk.services.practices import resolve_practice

    payload: dict[str, Any] = {}
    if url is not None:
        payload["url"] = url
    if events is not None:
        payload["event_types"] = _types(events)
    if all_events:
        payload["event_types"] = None
    if enabled is not None:
        payload["enabled"] = enabled
    with opened() as runtime:
        data = webhooks.parse_endpoint(
            EndpointPatch, payload, allow_http=runtime.settings.webhook_allow_http
        )
        with runtime.transaction() as session:
            chosen = resolve_practice(session, practice)
            view = webhooks.endpoint_view(
                webhooks.update_endpoint(session, chosen, endpoint_id, data, actor="cli")
            )
    print_json(view) if as_json else out.print(f"updated endpoint {endpoint_id}")


@webhooks_app.command("remove")
def webhooks_remove(
    endpoint_id: Annotated[int, typer.Argument(help="The endpoint's id.")],
    practice: PracticeOpt = None,
) -> None:
    """Remove an endpoint, with its deliveries and their log."""
    from frontdesk.services import webhooks
    from frontdesk.services.practices import resolve_practice

    with opened() as runtime, runtime.transaction() as session:
        webhooks.delete_endpoint(
            session, resolve_practice(session, practice), endpoint_id, actor="cli"
        )
    out.print(f"removed endpoint {endpoint_id}")


@webhooks_app.command("deliveries")
def webhooks_deliveries(
    endpoint: Annotated[int | None, typer.Option(help="Only this endpoint's.")] = None,
    event: Annotated[int | None, typer.Option(help="Only this event's.")] = None,
    state: Annotated[
        str | None, typer.Option(help="pending, delivering, delivered, failed or dead.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    practice: PracticeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Deliveries, newest first, with their attempts (--json shows requests and responses)."""
    from frontdesk.services import webhooks
    from frontdesk.services.practices import resolve_practice

    with opened() as runtime, runtime.transaction() as session:
        result = webhooks.list_deliveries(
            session,
            resolve_practice(session, practice),
            endpoint_id=endpoint,
            event_id=event,
            state=state,
            limit=limit,
        )
    if as_json:
        print_json(result)
        return
    table = Table("id", "endpoint", "event", "type", "state", "attempts", "last", "next attempt")
    for d in result["deliveries"]:
        last = d["attempt_log"][-1] if d["attempt_log"] else None
        table.add_row(
            str(d["id"]),
            str(d["endpoint_id"]),
            str(d["event"]["id"]),
            d["event"]["type"],
            d["state"],
            str(d["attempts"]),
            (f"{last['response_status'] or last['error']} in {last['latency_ms']} ms")
            if last
            else "",
            d["next_attempt_at"] or "",
        )
    out.print(table)


@webhooks_app.command("redeliver")
def webhooks_redeliver(
    delivery_id: Annotated[
        int, typer.Argument(help="The delivery's id (see webhooks deliveries).")
    ],
    practice: PracticeOpt = None,
) -> None:
    """Send a delivery again (same webhook-id and body), with a fresh retry budget."""
    from frontdesk.domain.times import now_utc
    from frontdesk.services import webhooks
    from frontdesk.services.practices import resolve_practice

    with opened() as runtime, runtime.transaction() as session:
        webhooks.redeliver(
            session, resolve_practice(session, practice), delivery_id, actor="cli", now=now_utc()
        )
    out.print(f"delivery {delivery_id} queued; the worker sends it next")


@webhooks_app.command("inbound-secret")
def webhooks_inbound_secret(practice: PracticeOpt = None, as_json: JsonOpt = False) -> None:
    """Create (or replace) the secret a custom system signs /webhooks/generic/PRACTICE with.
    Printed once; the old secret stops working at once."""
    from frontdesk.services import webhooks
    from frontdesk.services.practices import resolve_practice

    with opened() as runtime, runtime.transaction() as session:
        chosen = resolve_practice(session, practice)
        secret = webhooks.rotate_inbound_secret(session, runtime.cipher, chosen, actor="cli")
        status = webhooks.inbound_secret_status(session, chosen)
    if as_json:
        print_json({**status, "secret": secret})
        return
    err.print(
        f"inbound secret for POST {status['url_path']} (shown once; store it now):", markup=False
    )
    sys.stdout.write(secret + "\n")
