"""`frontdesk serve` and `frontdesk worker`: the web app and the reminder dispatcher."""

from __future__ import annotations

import ipaddress
import threading
from datetime import timedelta
from typing import Annotated, Any

import typer
from rich.markup import escape

from frontdesk.agent import understand
from frontdesk.bootstrap import Runtime
from frontdesk.cli.common import (
    JsonOpt,
    PracticeOpt,
    app,
    err,
    load_settings,
    opened,
    out,
    print_json,
)
from frontdesk.domain.times import now_utc
from frontdesk.logs import configure_logging


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

    from frontdesk.services import apikeys, practices, staff
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
                admin, password = staff.ensure_demo_admin(
                    session, chosen, staff.hash_parameters(settings)
                )
                name, admin_email = chosen.name, admin.email
                demo_practice_id = chosen.id
                # The demo's custom actions call a stand-in scheduling system served here.
                from frontdesk.services import actions

                actions.configure_webhook(
                    chosen,
                    runtime.cipher,
                    url=f"http://{bind_host}:{bind_port}/demo/scheduler/{chosen.slug}",
                    new_secret=False,
                )
            err.print(f"Demo practice [bold]{escape(name)}[/bold]: {count} appointments this week.")
            err.print(f"Demo API key (shown once): [bold]{token}[/bold]", soft_wrap=True)
            err.print(
                f"Demo sign-in (shown once): [bold]{admin_email}[/bold] "
                f"password [bold]{password}[/bold]",
                soft_wrap=True,
            )
        if not _is_loopback(bind_host) and not settings.public_url.startswith("https://"):
            err.print(
                "[yellow]warning:[/yellow] serving beyond this machine without https: set "
                "FRONTDESK_PUBLIC_URL=https://… behind a TLS proxy so sign-in cookies are Secure."
            )
        err.print(f"frontdesk is at http://{bind_host}:{bind_port}  (API docs: /docs)")
        stop = threading.Event()
        web = create_app(settings, runtime)
        threads = _start_worker(runtime, stop, web.state.dispatch_metrics) if worker else []
        if demo and settings.demo_traffic_seconds > 0:
            threads.append(
                _start_demo_traffic(runtime, stop, demo_practice_id, settings.demo_traffic_seconds)
            )
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
            for thread in threads:
                thread.join(timeout=30)


def _dispatcher(runtime: Runtime, **overrides: Any) -> Any:
    import os
    import socket

    from frontdesk.services.chores import senders_for
    from frontdesk.services.dispatcher import Dispatcher, DispatchSettings

    metrics = overrides.pop("metrics", None)
    values = {k: v for k, v in overrides.items() if v is not None}
    return Dispatcher(
        runtime,
        senders_for(runtime),
        worker_id=f"{socket.gethostname()}:{os.getpid()}",
        settings=DispatchSettings(**values),
        metrics=metrics,
    )


def _start_demo_traffic(
    runtime: Runtime, stop: threading.Event, practice_id: int, interval: float
) -> threading.Thread:
    from frontdesk.services.chores import message_sender
    from frontdesk.services.demo_traffic import DemoTraffic

    traffic = DemoTraffic(runtime, message_sender(runtime), practice_id)

    def play() -> None:
        # The first lines are classified inside a transaction: wait until the models are
        # trained (by the warm-up thread; seconds on a cold model cache), or on SQLite that
        # transaction would hold every other writer, /healthz included, for as long.
        understand.ready(runtime.settings.crisis_screen)
        traffic.warm_up()
        traffic.run(stop, interval)

    thread = threading.Thread(target=play, name="frontdesk-demo-traffic", daemon=True)
    thread.start()
    return thread


def _start_webhooks(runtime: Runtime, stop: threading.Event) -> threading.Thread:
    from frontdesk.services.webhook_delivery import start_thread

    return start_thread(runtime, stop)


def _start_worker(runtime: Runtime, stop: threading.Event, metrics: Any) -> list[threading.Thread]:
    """The reminder dispatcher, the outbound webhook deliverer, and the other chores (queued
    messages, staff alerts, inbound retries), each in its own thread so a slow provider on one
    never holds up the others."""
    from frontdesk.services.chores import Chores

    dispatcher = _dispatcher(runtime, metrics=metrics)
    chores = Chores(runtime)
    threads = [
        threading.Thread(
            target=dispatcher.run, args=(stop,), name="frontdesk-dispatcher", daemon=True
        ),
        threading.Thread(target=chores.run, args=(stop,), name="frontdesk-chores", daemon=True),
    ]
    for thread in threads:
        thread.start()
    threads.append(_start_webhooks(runtime, stop))
    threads.append(_start_integrations(runtime, stop))
    return threads


def _start_integrations(runtime: Runtime, stop: threading.Event) -> threading.Thread:
    """Scheduler polls, webhook retries and FHIR write-backs: one ``run_round`` per round, in
    a thread of their own so a slow EHR never holds up reminders."""
    from frontdesk.services.scheduler_sync import run_forever

    thread = threading.Thread(
        target=run_forever, args=(runtime, stop), name="frontdesk-integrations", daemon=True
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
    max_unrecorded: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=10000,
            help="Messages sent but not yet recorded, at most: what a killed worker can re-send "
            "(default 64; never below --concurrency).",
        ),
    ] = None,
    lease_seconds: Annotated[
        float | None,
        typer.Option(
            min=1, help="How long a claim holds before another worker may take it (default 300)."
        ),
    ] = None,
    poll_interval: Annotated[float, typer.Option(min=0.05, help="Seconds between polls.")] = 2.0,
    as_json: JsonOpt = False,
) -> None:
    """Dispatch due reminders, queued messages and outbound webhooks until stopped (any number
    of workers may share PostgreSQL)."""
    import signal

    from frontdesk.services.chores import Chores

    with opened() as runtime:
        configure_logging(runtime.settings.log_level)
        # The worker reads patients' messages too (retries, mailboxes): ready the screens now.
        understand.warm_in_background(runtime.settings.crisis_screen)
        dispatcher = _dispatcher(
            runtime,
            concurrency=concurrency,
            rate_per_second=rate,
            batch_size=batch_size,
            max_unrecorded=max_unrecorded,
            lease=timedelta(seconds=lease_seconds) if lease_seconds else None,
        )
        if once:
            from frontdesk.services.scheduler_sync import run_round

            run_round(runtime)
            total: dict[str, int] = {}
            while True:
                report = dispatcher.dispatch_due()
                for key, value in vars(report).items():
                    total[key] = total.get(key, 0) + value
                if report.claimed == 0:
                    break
            chores = Chores(runtime)
            total["messages"] = 0
            while (done := chores.run_once()) > 0:
                total["messages"] += done
            from frontdesk.services.webhook_delivery import deliver_due

            total["webhooks_delivered"] = deliver_due(runtime).delivered
            if as_json:
                print_json(total)
            else:
                out.print(", ".join(f"{k} {v}" for k, v in total.items()))
            return
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        err.print(f"worker {dispatcher.worker_id} dispatching; Ctrl-C to stop", markup=False)
        chores_thread = threading.Thread(
            target=Chores(runtime).run, args=(stop, poll_interval), name="frontdesk-chores"
        )
        chores_thread.start()
        hooks = _start_webhooks(runtime, stop)
        _start_integrations(runtime, stop)
        try:
            dispatcher.run(stop, poll_interval)
        except KeyboardInterrupt:
            stop.set()
        finally:
            stop.set()
            chores_thread.join(timeout=30)
            hooks.join(timeout=30)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --- db ----------------------------------------------------------------------------------------
