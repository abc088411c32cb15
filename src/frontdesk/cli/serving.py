"""`frontdesk serve` and `frontdesk worker`: the web app and the reminder dispatcher."""

from __future__ import annotations

import ipaddress
import threading
from datetime import timedelta
from typing import Annotated, Any

import typer
from rich.markup import escape

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
            err.print(f"Demo API key (shown once): [bold]{token}[/bold]", soft_wrap=True)
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
    """Dispatch due reminders until stopped (any number of workers may share PostgreSQL)."""
    import signal

    with opened() as runtime:
        configure_logging(runtime.settings.log_level)
        dispatcher = _dispatcher(
            runtime,
            concurrency=concurrency,
            rate_per_second=rate,
            batch_size=batch_size,
            max_unrecorded=max_unrecorded,
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
