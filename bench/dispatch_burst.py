"""Benchmark: a burst of reminders all due in the same minute, through the real dispatcher.

Sets up N stage reminders ("-24h", one per patient and appointment, each appointment a day
ahead) with SQLAlchemy Core bulk inserts, every one due a minute ago, under a practice policy
that holds nothing back (quiet hours 00:00-23:59, caps of 1000), beside a message history of
as many earlier conversations and messages (``--history``). Then, for each case, the rows
are reset to ``scheduled`` and W worker processes (multiprocessing, each with its own
``build_runtime``) run ``Dispatcher.dispatch_due`` with a no-op channel until nothing is left
to claim. Measured: wall time to drain, reminders/s, lateness (sent_at - due_at, from the
rows; the rows were due 60 s before the workers start, so that is in it — ``since_start`` is
sent_at - the moment the workers were let go), and CPU seconds of the workers and of the
PostgreSQL backends serving them.

The floor: on the same freshly reset rows, one process with plain psycopg / sqlite3 doing only
the claim (SELECT … FOR UPDATE SKIP LOCKED LIMIT batch + UPDATE to claimed, one transaction)
and the mark-sent (UPDATE … SET state='sent', sent_at=now WHERE id IN batch) per batch.
frontdesk's cost per reminder is reported as a multiple of that floor.

    .venv/bin/python bench/dispatch_burst.py [--reminders N] [--pg-workers 1,2,4]
        [--sqlite-workers 1] [--postgres-url URL | --no-postgres] [--no-sqlite]
        [--history H] [--what-if indexes,custom-plans]

The PostgreSQL URL names a server and a database to connect to for CREATE DATABASE: the
benchmark creates its own database (fd_bench_<random>) there and drops it at the end.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import resource
import secrets
import shlex
import signal
import sqlite3
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench_support import machine, source_version

SECRET = "benchmark-secret-key-0123456789-abcdefghij"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
TIMEZONES = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "Europe/London",
    "Europe/Berlin",
    "Australia/Sydney",
)
POLICY = {
    "quiet_hours_start": "00:00",
    "quiet_hours_end": "23:59",
    "max_per_day": 1000,
    "max_per_week": 1000,
}
HEAD_START = timedelta(minutes=1)  # the rows were due this long before the workers start
CHUNK = 5000
HISTORY_PREFIX = "history-"


# --- the channel ------------------------------------------------------------------------------


class NoopChannel:
    """Accepts every message at once: the dispatcher's own cost, without a provider's."""

    def send(self, message: Any) -> Any:
        from frontdesk.adapters.channels.base import SendResult

        return SendResult(provider_message_id=f"noop-{message.idempotency_key}", status="sent")


# --- setup and reset --------------------------------------------------------------------------


def settings_for(url: str) -> Any:
    from frontdesk.config import Settings

    return Settings(database_url=url, secret_key=SECRET)


def populate(url: str, n: int, seed: int, history: int) -> dict[str, Any]:
    """Schema, one practice with a permissive policy, N patients / appointments / reminders,
    and ``history`` earlier conversations with one message each (other patients)."""
    from sqlalchemy import insert

    from frontdesk.adapters.db.models import (
        Appointment,
        Conversation,
        Message,
        Patient,
        Practice,
        Reminder,
    )
    from frontdesk.bootstrap import build_runtime
    from frontdesk.services.reminders import set_policy

    started = time.perf_counter()
    runtime = build_runtime(settings_for(url), upgrade=True)
    cipher = runtime.cipher
    rng = random.Random(seed)
    now = datetime.now(UTC)
    with runtime.transaction() as session:
        practice = Practice(
            slug="bench",
            name="Bench Practice",
            timezone="America/New_York",
            booking_url="https://example.org/book",
            settings={},
        )
        set_policy(practice, dict(POLICY))
        session.add(practice)
        session.flush()
        practice_id = practice.id
    channels = Counter[str]()
    with runtime.engine.begin() as conn:
        for first in range(0, n, CHUNK):
            indexes = range(first, min(first + CHUNK, n))
            patients = []
            for i in indexes:
                channel = rng.choices(["sms", "email", "whatsapp"], weights=[80, 15, 5])[0]
                channels[channel] += 1
                patients.append(
                    {
                        "practice_id": practice_id,
                        "source": "bench",
                        "external_id": f"p{i}",
                        "name": f"Patient {i}",
                        "phone_sealed": cipher.seal(f"+1555{i:07d}"),
                        "phone_lookup": cipher.lookup_key(f"+1555{i:07d}"),
                        "email_sealed": cipher.seal(f"p{i}@example.org"),
                        "email_lookup": cipher.lookup_key(f"p{i}@example.org"),
                        "preferred_channel": channel,
                        "language": rng.choice(["en", "en", "en", "es"]),
                        "timezone": rng.choice(TIMEZONES),
                        "reminders_enabled": True,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
            patient_ids = list(
                conn.scalars(
                    insert(Patient).returning(Patient.id, sort_by_parameter_order=True), patients
                )
            )
            starts = [
                (now + timedelta(hours=24) - HEAD_START).replace(second=0, microsecond=0)
                + timedelta(minutes=rng.randrange(0, 60))
                for _ in indexes
            ]
            appointment_ids = list(
                conn.scalars(
                    insert(Appointment).returning(Appointment.id, sort_by_parameter_order=True),
                    [
                        {
                            "practice_id": practice_id,
                            "source": "bench",
                            "external_id": f"a{i}",
                            "patient_id": patient_id,
                            "start_at": start,
                            "end_at": start + timedelta(minutes=50),
                            "status": "booked",
                            "confirmation": "unconfirmed",
                            "version": 1,
                            "time_set_at": now - timedelta(days=7),
                            "status_changed_at": now - timedelta(days=7),
                            "created_at": now - timedelta(days=7),
                            "updated_at": now - timedelta(days=7),
                        }
                        for i, patient_id, start in zip(indexes, patient_ids, starts, strict=True)
                    ],
                )
            )
            conn.execute(
                insert(Reminder),
                [
                    {
                        "practice_id": practice_id,
                        "appointment_id": appointment_id,
                        "patient_id": patient_id,
                        "kind": "stage",
                        "stage": "-24h",
                        "planned_start": start,
                        "channel": patient["preferred_channel"],
                        "due_at": now - HEAD_START,
                        "state": "scheduled",
                        "attempts": 0,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for appointment_id, patient_id, start, patient in zip(
                        appointment_ids, patient_ids, starts, patients, strict=True
                    )
                ],
            )
        # Message history: a deployment that sends 50,000 reminders has logged messages
        # before, and its planner statistics know it. (--history 0: the first burst of a new
        # deployment, with empty conversations and messages tables.)
        earlier = now - timedelta(days=30)
        for first in range(0, history, CHUNK):
            indexes = range(first, min(first + CHUNK, history))
            patient_ids = list(
                conn.scalars(
                    insert(Patient).returning(Patient.id, sort_by_parameter_order=True),
                    [
                        {
                            "practice_id": practice_id,
                            "source": "bench-history",
                            "external_id": f"h{i}",
                            "phone_sealed": cipher.seal(f"+1556{i:07d}"),
                            "preferred_channel": "sms",
                            "timezone": rng.choice(TIMEZONES),
                            "created_at": earlier,
                            "updated_at": earlier,
                        }
                        for i in indexes
                    ],
                )
            )
            conversation_ids = list(
                conn.scalars(
                    insert(Conversation).returning(Conversation.id, sort_by_parameter_order=True),
                    [
                        {
                            "practice_id": practice_id,
                            "patient_id": patient_id,
                            "channel": "sms",
                            "status": "open",
                            "created_at": earlier,
                            "last_message_at": earlier,
                        }
                        for patient_id in patient_ids
                    ],
                )
            )
            conn.execute(
                insert(Message),
                [
                    {
                        "practice_id": practice_id,
                        "conversation_id": conversation_id,
                        "channel": "sms",
                        "direction": "outbound",
                        "body": "Bench Practice: reminder of your appointment.",
                        "provider_message_id": f"{HISTORY_PREFIX}{i}",
                        "delivery_status": "delivered",
                        "created_at": earlier,
                    }
                    for i, conversation_id in zip(indexes, conversation_ids, strict=True)
                ],
            )
    runtime.dispose()
    return {
        "seconds": round(time.perf_counter() - started, 1),
        "channels": dict(channels),
        "history_conversations_and_messages": history,
    }


WHAT_IF_INDEXES = (
    "CREATE INDEX ix_bench_conversations_patient ON conversations (patient_id)",
    "CREATE INDEX ix_bench_messages_provider_id ON messages (provider_message_id)",
)


def apply_what_if(url: str, dbname: str | None, what_if: list[str]) -> list[str]:
    """Changes to the benchmark database only (never to src): the indexes the message log's
    lookups need, and on PostgreSQL plans made for each execution instead of generic plans
    cached while the tables were still empty."""
    done: list[str] = []
    if "indexes" in what_if:
        path = settings_for(url).sqlite_path()
        if path is not None:
            raw = sqlite3.connect(path, isolation_level=None)
            for statement in WHAT_IF_INDEXES:
                raw.execute(statement)
            raw.close()
        else:
            import psycopg

            with psycopg.connect(url, autocommit=True) as conn:
                for statement in WHAT_IF_INDEXES:
                    conn.execute(statement)
        done += list(WHAT_IF_INDEXES)
    if "custom-plans" in what_if and dbname is not None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("ALTER DATABASE {} SET plan_cache_mode = force_custom_plan").format(
                    sql.Identifier(dbname)
                )
            )
        done.append(f"ALTER DATABASE {dbname} SET plan_cache_mode = force_custom_plan")
    return done


def reset(url: str) -> datetime:
    """Every reminder back to scheduled, due HEAD_START ago; what sending wrote is removed."""
    from sqlalchemy import delete, select, text, update

    from frontdesk.adapters.db.engine import make_engine
    from frontdesk.adapters.db.models import (
        Conversation,
        Message,
        OutboxMessage,
        Reminder,
        ReviewItem,
    )

    engine = make_engine(settings_for(url).sqlalchemy_url)
    due = datetime.now(UTC) - HEAD_START
    with engine.begin() as conn:
        # What the previous case sent goes; the message history stays.
        conn.execute(
            delete(Message).where(Message.provider_message_id.notlike(f"{HISTORY_PREFIX}%"))
        )
        conn.execute(
            delete(Conversation).where(
                Conversation.id.notin_(select(Message.conversation_id).scalar_subquery())
            )
        )
        for model in (ReviewItem, OutboxMessage):
            conn.execute(delete(model))
        conn.execute(
            update(Reminder).values(
                state="scheduled",
                due_at=due,
                attempts=0,
                reason=None,
                claimed_by=None,
                claim_expires_at=None,
                sent_at=None,
                provider_message_id=None,
                failed_channels=None,
            )
        )
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM (ANALYZE) reminders, messages, conversations"))
    engine.dispose()
    path = settings_for(url).sqlite_path()
    if path is not None:
        raw = sqlite3.connect(path, isolation_level=None)
        raw.execute("ANALYZE")
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        raw.close()
    return due


# --- the real dispatcher, in worker processes -------------------------------------------------


def worker_main(
    url: str,
    index: int,
    options: dict[str, Any],
    ready: Any,
    go: Any,
    results: Any,
) -> None:
    from frontdesk.bootstrap import build_runtime
    from frontdesk.domain.channels import Channel
    from frontdesk.services.dispatcher import Dispatcher, DispatchSettings

    runtime = build_runtime(settings_for(url))
    channel = NoopChannel()
    dispatcher = Dispatcher(
        runtime,
        {Channel.SMS: channel, Channel.EMAIL: channel, Channel.WHATSAPP: channel},
        worker_id=f"bench-{index}-{os.getpid()}",
        settings=DispatchSettings(
            batch_size=options["batch_size"],
            concurrency=options["concurrency"],
            rate_per_second=options["rate"],
            max_unrecorded=options["max_unrecorded"],
        ),
    )
    # Open the connections the threads will use before the clock starts.
    conns = [runtime.engine.connect() for _ in range(options["concurrency"] + 1)]
    for conn in conns:
        conn.close()
    sql_seconds: Counter[str] = Counter()
    if options.get("sql_times") and index == 0:
        watch_statements(runtime.engine, sql_seconds)
    phases: dict[str, list[float]] = {}
    if options.get("phases") and index == 0:
        time_phases(dispatcher, phases)
    ready.release()
    go.wait()
    profiler = None
    if options.get("profile") and index == 0:
        import cProfile

        profiler = cProfile.Profile(time.process_time)  # CPU, not waiting
        profiler.enable()
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.monotonic()
    totals: Counter[str] = Counter()
    rounds: list[float] = []
    while True:
        began = time.monotonic()
        report = dispatcher.dispatch_due()
        rounds.append(time.monotonic() - began)
        totals.update({k: v for k, v in vars(report).items() if v})
        if report.claimed == 0:
            break
    ended = time.monotonic()
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(f"{options['profile']}.{workers_label(url)}")
    runtime.dispose()
    results.put(
        {
            "index": index,
            "started": started,
            "ended": ended,
            "rounds": rounds,
            "report": dict(totals),
            "sql_seconds": {k: round(v, 3) for k, v in sql_seconds.most_common(12)},
            "phases": {k: [round(x, 3) for x in v] for k, v in phases.items()},
            "cpu_seconds": (cpu_after.ru_utime - cpu_before.ru_utime)
            + (cpu_after.ru_stime - cpu_before.ru_stime),
        }
    )


def time_phases(dispatcher: Any, phases: dict[str, list[float]]) -> None:
    """Wall and CPU seconds (the whole process's, so the send threads count) of each step of a
    batch: claim, prepare (read and re-check, render), send and record."""
    for name in ("claim", "prepare", "_send_and_record"):
        method = getattr(dispatcher, name)

        def timed(*args: Any, _method: Any = method, _name: str = name) -> Any:
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return _method(*args)
            finally:
                spent = phases.setdefault(_name.strip("_"), [0.0, 0.0])
                spent[0] += time.perf_counter() - wall
                spent[1] += time.process_time() - cpu

        setattr(dispatcher, name, timed)


def watch_statements(engine: Any, seconds: Counter[str]) -> None:
    """Wall time per statement kind (its first words): while the worker waits, the server
    works, so this splits the backends' time by statement."""
    from sqlalchemy import event

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        conn.info["fd_started"] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        key = " ".join(statement.split())[:70]
        seconds[key] += time.perf_counter() - conn.info.pop("fd_started", time.perf_counter())


class BackendCpu:
    """Samples the CPU time of the PostgreSQL backends serving one database (same machine)."""

    def __init__(self, dbname: str | None) -> None:
        self.dbname = dbname
        self.ticks: dict[int, int] = {}
        self.baseline: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.hz = os.sysconf("SC_CLK_TCK")

    def _sample(self) -> dict[int, int]:
        found: dict[int, int] = {}
        if self.dbname is None:
            return found
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
                if not cmdline.startswith(b"postgres:") or f" {self.dbname} ".encode() not in (
                    cmdline.replace(b"\0", b" ") + b" "
                ):
                    continue
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                found[int(entry)] = int(fields[11]) + int(fields[12])
            except (OSError, IndexError, ValueError):
                continue
        return found

    def _loop(self) -> None:
        while not self._stop.wait(0.25):
            for pid, ticks in self._sample().items():
                self.ticks[pid] = max(ticks, self.ticks.get(pid, 0))

    def start(self) -> None:
        self.baseline = self._sample()
        self._thread.start()

    def stop(self) -> float | None:
        self._stop.set()
        self._thread.join()
        for pid, ticks in self._sample().items():
            self.ticks[pid] = max(ticks, self.ticks.get(pid, 0))
        if self.dbname is None:
            return None
        used = sum(t - self.baseline.get(pid, 0) for pid, t in self.ticks.items())
        return round(used / self.hz, 1)


def table_scans(url: str) -> dict[str, dict[str, int]]:
    import psycopg

    libpq = url.replace("postgresql+psycopg://", "postgresql://")
    # The statistics collector reports with a delay; ask for a fresh snapshot.
    with psycopg.connect(libpq, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        time.sleep(0.6)  # PGSTAT_MIN_INTERVAL: the backends flush their counts at most this often
        rows = conn.execute(
            "SELECT relname, seq_scan, seq_tup_read, idx_scan FROM pg_stat_user_tables "
            "WHERE relname IN ('reminders', 'messages', 'conversations', 'appointments', "
            "'patients', 'patient_consents')"
        ).fetchall()
    return {
        name: {"seq_scan": seq or 0, "seq_tup_read": read or 0, "idx_scan": idx or 0}
        for name, seq, read, idx in rows
    }


def machine_busy_seconds() -> float:
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def workers_label(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgresql"


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    rank = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[rank]


def row_stats(url: str, go_at: datetime) -> dict[str, Any]:
    from sqlalchemy import func, select

    from frontdesk.adapters.db.engine import make_engine
    from frontdesk.adapters.db.models import Message, Reminder

    engine = make_engine(settings_for(url).sqlalchemy_url)
    with engine.connect() as conn:
        states = dict(
            conn.execute(select(Reminder.state, func.count()).group_by(Reminder.state)).all()
        )
        reasons = dict(
            conn.execute(
                select(Reminder.reason, func.count())
                .where(Reminder.state.notin_(["sent", "delivered"]))
                .group_by(Reminder.reason)
            ).all()
        )
        pairs = conn.execute(
            select(Reminder.due_at, Reminder.sent_at).where(Reminder.sent_at.is_not(None))
        ).all()
        messages = conn.scalar(
            select(func.count())
            .select_from(Message)
            .where(Message.provider_message_id.notlike(f"{HISTORY_PREFIX}%"))
        )
    engine.dispose()
    late = sorted((sent - due).total_seconds() for due, sent in pairs)
    since = sorted((sent - go_at).total_seconds() for _due, sent in pairs)
    return {
        "states": states,
        "not_sent_reasons": {str(k): v for k, v in reasons.items()},
        "messages_logged": messages,
        "lateness_seconds": {
            "p50": round(percentile(late, 0.5), 2),
            "p99": round(percentile(late, 0.99), 2),
            "max": round(late[-1], 2) if late else None,
        },
        "since_start_seconds": {
            "p50": round(percentile(since, 0.5), 2),
            "p99": round(percentile(since, 0.99), 2),
            "max": round(since[-1], 2) if since else None,
        },
    }


def run_case(
    url: str, workers: int, n: int, options: dict[str, Any], dbname: str | None
) -> dict[str, Any]:
    due = reset(url)
    ctx = mp.get_context("spawn")
    ready = ctx.Semaphore(0)
    go = ctx.Event()
    results = ctx.Queue()
    procs = [
        ctx.Process(target=worker_main, args=(url, i, options, ready, go, results), daemon=True)
        for i in range(workers)
    ]
    for proc in procs:
        proc.start()
    for _ in procs:
        if not ready.acquire(timeout=120):
            raise SystemExit("a worker did not start")
    scans_before = table_scans(url) if dbname else {}
    cpu = BackendCpu(dbname)
    cpu.start()
    busy_before = machine_busy_seconds()
    go_at = datetime.now(UTC)
    go_mono = time.monotonic()
    go.set()
    reports = [results.get(timeout=3600) for _ in procs]
    busy = machine_busy_seconds() - busy_before
    backend_cpu = cpu.stop()
    for proc in procs:
        proc.join()
    wall = max(r["ended"] for r in reports) - go_mono
    scans: dict[str, dict[str, int]] = {}
    if dbname:
        for table, counts in table_scans(url).items():
            before = scans_before.get(table, {})
            scans[table] = {k: v - before.get(k, 0) for k, v in counts.items()}
    stats = row_stats(url, go_at)
    sent = stats["states"].get("sent", 0) + stats["states"].get("delivered", 0)
    left = stats["states"].get("scheduled", 0) + stats["states"].get("claimed", 0)
    reports_by_index = {r["index"]: r for r in reports}
    total: Counter[str] = Counter()
    for report in reports:
        total.update(report["report"])
    worker_cpu = sum(r["cpu_seconds"] for r in reports)
    return {
        "workers": workers,
        "reminders": n,
        "drained": left == 0,
        "wall_seconds": round(wall, 2),
        "reminders_per_second": round(sent / wall),
        "ms_per_reminder": round(wall / n * 1000, 3),
        "due_at_to_start_seconds": round((go_at - due).total_seconds(), 2),
        **stats,
        "dispatch_reports": dict(total),
        "rounds": sum(len(r["rounds"]) for r in reports),
        **(
            {"sql_seconds_worker_0": reports_by_index[0]["sql_seconds"]}
            if reports_by_index[0]["sql_seconds"]
            else {}
        ),
        **(
            {"phases_worker_0_wall_cpu": reports_by_index[0]["phases"]}
            if reports_by_index[0]["phases"]
            else {}
        ),
        # Seconds per dispatch_due() round of worker 0 (a full batch each but the last):
        # growth from first to last means a cost that rises with the rows already sent.
        "round_seconds_worker_0": {
            "first_3": [round(x, 2) for x in reports_by_index[0]["rounds"][:3]],
            "last_3_full": [round(x, 2) for x in reports_by_index[0]["rounds"][-4:-1]],
        },
        # Sequential scans and rows they read per table during the case (PostgreSQL): a plan
        # that scans a growing table shows here first.
        "table_scans": scans,
        "cpu_seconds": {
            "workers": round(worker_cpu, 1),
            "postgres_backends": backend_cpu,
            "whole_machine": round(busy, 1),
            "machine_capacity": round(wall * (os.cpu_count() or 1), 1),
        },
    }


# --- the floor: bare SQL, one process ---------------------------------------------------------


def floor_postgres(url: str, n: int, batch: int, dbname: str | None = None) -> dict[str, Any]:
    import psycopg

    reset(url)
    libpq = url.replace("postgresql+psycopg://", "postgresql://")
    backend = BackendCpu(dbname)
    backend.start()
    started = time.perf_counter()
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    batches = 0
    with psycopg.connect(libpq, autocommit=True) as conn:
        while True:
            now = datetime.now(UTC)
            with conn.transaction():
                ids = [
                    row[0]
                    for row in conn.execute(
                        "SELECT id FROM reminders WHERE state = 'scheduled' AND due_at <= %s "
                        "ORDER BY due_at LIMIT %s FOR UPDATE SKIP LOCKED",
                        (now, batch),
                    )
                ]
                if ids:
                    conn.execute(
                        "UPDATE reminders SET state = 'claimed', claimed_by = 'floor', "
                        "claim_expires_at = %s, attempts = attempts + 1 WHERE id = ANY(%s)",
                        (now + timedelta(minutes=5), ids),
                    )
            if not ids:
                break
            batches += 1
            with conn.transaction():
                conn.execute(
                    "UPDATE reminders SET state = 'sent', sent_at = %s, claimed_by = NULL "
                    "WHERE id = ANY(%s)",
                    (datetime.now(UTC), ids),
                )
    result = _floor_result(started, cpu_before, batches, n, "psycopg 3")
    result["postgres_backend_cpu_seconds"] = backend.stop()
    return result


def floor_sqlite(path: Path, n: int, batch: int) -> dict[str, Any]:
    reset(f"sqlite:///{path}")
    fmt = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores a DateTime in SQLite (naive UTC)
    started = time.perf_counter()
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    batches = 0
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    try:
        while True:
            now = datetime.now(UTC).replace(tzinfo=None)
            conn.execute("BEGIN IMMEDIATE")
            ids = [
                row[0]
                for row in conn.execute(
                    "SELECT id FROM reminders WHERE state = 'scheduled' AND due_at <= ? "
                    "ORDER BY due_at LIMIT ?",
                    (now.strftime(fmt), batch),
                )
            ]
            marks = ",".join("?" * len(ids))
            if ids:
                conn.execute(
                    "UPDATE reminders SET state = 'claimed', claimed_by = 'floor', "
                    f"claim_expires_at = ?, attempts = attempts + 1 WHERE id IN ({marks})",
                    ((now + timedelta(minutes=5)).strftime(fmt), *ids),
                )
            conn.execute("COMMIT")
            if not ids:
                break
            batches += 1
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "UPDATE reminders SET state = 'sent', sent_at = ?, claimed_by = NULL "
                f"WHERE id IN ({marks})",
                (datetime.now(UTC).replace(tzinfo=None).strftime(fmt), *ids),
            )
            conn.execute("COMMIT")
    finally:
        conn.close()
    return _floor_result(started, cpu_before, batches, n, "sqlite3")


def _floor_result(
    started: float, cpu_before: Any, batches: int, n: int, driver: str
) -> dict[str, Any]:
    wall = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "driver": driver,
        "batches": batches,
        "wall_seconds": round(wall, 3),
        "reminders_per_second": round(n / wall),
        "ms_per_reminder": round(wall / n * 1000, 4),
        "client_cpu_seconds": round(
            (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime),
            2,
        ),
    }


def cpu_ms(case_or_floor: dict[str, Any], n: int) -> float | None:
    """CPU milliseconds per reminder, client and database server together (the SQLite
    engine runs inside the client)."""
    if "cpu_seconds" in case_or_floor:  # a case
        cpu = case_or_floor["cpu_seconds"]
        total = cpu["workers"] + (cpu["postgres_backends"] or 0.0)
    else:
        total = case_or_floor["client_cpu_seconds"] + (
            case_or_floor.get("postgres_backend_cpu_seconds") or 0.0
        )
    return round(total / n * 1000, 4) if total else None


def run_floor(measure: Any, runs: int, n: int) -> dict[str, Any]:
    """The floor ``runs`` times (it is short, so one busy moment of the machine weighs on it):
    every run is kept, and the median is the yardstick."""
    results = [measure() for _ in range(max(1, runs))]
    for result in results:
        result["cpu_ms_per_reminder"] = cpu_ms(result, n)
    ordered = sorted(results, key=lambda r: r["ms_per_reminder"])
    median = ordered[len(ordered) // 2]
    cpus = sorted(r["cpu_ms_per_reminder"] or 0.0 for r in results)
    return {
        **median,
        "runs": [
            {k: r[k] for k in ("wall_seconds", "ms_per_reminder", "cpu_ms_per_reminder")}
            for r in results
        ],
        "cpu_ms_per_reminder": cpus[len(cpus) // 2] or None,
        "yardstick": f"median of {len(results)} runs",
    }


def add_ratios(cases: list[dict[str, Any]], floor: dict[str, Any]) -> dict[str, Any]:
    per = floor["ms_per_reminder"]
    floor_cpu = floor.get("cpu_ms_per_reminder")
    for case in cases:
        case["x_floor"] = round(case["ms_per_reminder"] / per, 1)
        case["cpu_ms_per_reminder"] = cpu_ms(case, case["reminders"])
        if floor_cpu and case["cpu_ms_per_reminder"]:
            # CPU against CPU: what the machine's other work does to wall times cancels out.
            case["x_floor_cpu"] = round(case["cpu_ms_per_reminder"] / floor_cpu, 1)
    by_workers = {case["workers"]: case for case in cases}
    summary: dict[str, Any] = {"floor_ms_per_reminder": per, "floor_cpu_ms_per_reminder": floor_cpu}
    for workers, case in sorted(by_workers.items()):
        summary[f"{workers}_worker{'s' if workers > 1 else ''}"] = {
            "x_floor": case["x_floor"],
            "x_floor_cpu": case.get("x_floor_cpu"),
        }
    return summary


# --- driver -----------------------------------------------------------------------------------


def run_sqlite(args: argparse.Namespace, options: dict[str, Any]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        url = f"sqlite:///{path}"
        setup = populate(url, args.reminders, args.seed, args.history)
        setup["what_if"] = apply_what_if(url, None, args.what_if)
        cases = [run_case(url, w, args.reminders, options, None) for w in args.sqlite_workers]
        floor = run_floor(
            lambda: floor_sqlite(path, args.reminders, args.batch_size),
            args.floor_runs,
            args.reminders,
        )
    return {
        "database": "sqlite (WAL), temp file",
        "setup": setup,
        "cases": cases,
        "floor": floor,
        "cost_vs_floor": add_ratios(cases, floor),
    }


def run_postgres(args: argparse.Namespace, options: dict[str, Any]) -> dict[str, Any]:
    import psycopg
    from psycopg import sql

    admin = args.postgres_url
    dbname = f"fd_bench_{secrets.token_hex(4)}"
    base, _, _ = admin.rpartition("/")
    url = f"{base}/{dbname}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        server = conn.execute("SHOW server_version").fetchone()
    try:
        setup = populate(url, args.reminders, args.seed, args.history)
        setup["what_if"] = apply_what_if(url, dbname, args.what_if)
        cases = [run_case(url, w, args.reminders, options, dbname) for w in args.pg_workers]
        floor = run_floor(
            lambda: floor_postgres(url, args.reminders, args.batch_size, dbname),
            args.floor_runs,
            args.reminders,
        )
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
            )
    return {
        "database": f"postgresql {server[0] if server else '?'} on loopback (database {dbname})",
        "setup": setup,
        "cases": cases,
        "floor": floor,
        "cost_vs_floor": add_ratios(cases, floor),
        "target_50k_under_60s": {
            f"{case['workers']}_workers": case["wall_seconds"] < 60
            for case in cases
            if case["reminders"] >= 50_000
        },
    }


def ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reminders", type=int, default=50_000, help="burst size (50000)")
    parser.add_argument("--pg-workers", type=ints, default=[1, 2, 4], help="cases (1,2,4)")
    parser.add_argument("--sqlite-workers", type=ints, default=[1], help="cases (1)")
    parser.add_argument("--postgres-url", default=DEFAULT_PG, help=f"default {DEFAULT_PG}")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--floor-runs", type=int, default=3, help="floor runs, median kept (3)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--max-unrecorded", type=int, default=64, help="sent but not yet recorded, at most (64)"
    )
    parser.add_argument("--rate", type=float, default=1_000_000.0, help="per channel per second")
    parser.add_argument("--seed", type=int, default=20260101)
    parser.add_argument(
        "--profile",
        metavar="PATH",
        help="run worker 0 of each case under cProfile; stats go to PATH.<database> "
        "(read with python -m pstats); slows that worker down",
    )
    parser.add_argument(
        "--sql-times",
        action="store_true",
        help="time worker 0's statements by kind (reported per case as sql_seconds)",
    )
    parser.add_argument(
        "--phases",
        action="store_true",
        help="wall and CPU seconds of worker 0's claim, prepare and send-and-record steps",
    )
    parser.add_argument(
        "--history",
        type=int,
        help="earlier conversations + messages already in the database (default: as many as "
        "reminders; 0 = the first burst of a new deployment, empty message tables)",
    )
    parser.add_argument(
        "--what-if",
        type=lambda text: [part for part in text.split(",") if part],
        default=[],
        metavar="indexes,custom-plans",
        help="measure a possible fix in the benchmark database only: 'indexes' adds "
        "conversations(patient_id) and messages(provider_message_id); 'custom-plans' sets "
        "plan_cache_mode=force_custom_plan (PostgreSQL)",
    )
    args = parser.parse_args()
    # Stopped from outside: unwind, so the benchmark database is dropped, the temp folder
    # removed and the (daemonic) worker processes ended.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.history is None:
        args.history = args.reminders
    if unknown := set(args.what_if) - {"indexes", "custom-plans"}:
        parser.error(f"unknown --what-if {', '.join(sorted(unknown))}")
    options = {
        "batch_size": args.batch_size,
        "concurrency": args.concurrency,
        "rate": args.rate,
        "max_unrecorded": args.max_unrecorded,
        "profile": args.profile,
        "sql_times": args.sql_times,
        "phases": args.phases,
    }
    out: dict[str, Any] = {
        "benchmark": "dispatch_burst",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "command": shlex.join([os.path.relpath(sys.executable), *sys.argv]),
        "source": source_version(),
        "dispatch_settings": options,
        "what_if": args.what_if,
        "history": args.history,
    }
    if not args.no_sqlite:
        out["sqlite"] = run_sqlite(args, options)
    if not args.no_postgres:
        out["postgresql"] = run_postgres(args, options)
    out["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out, indent=2, default=str))


if __name__ == "__main__":
    main()
