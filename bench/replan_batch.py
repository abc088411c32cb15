"""Benchmark: re-planning a practice's whole schedule (a policy change), one appointment at a
time as before versus ``replan_practice`` (rows loaded a chunk at a time).

N appointments in the next 30 days (the mix of bench/plan_reminders.py), each with its own
patient. "one at a time" is the loop ``replan_practice`` used to run: each appointment's
reminder rows and patient looked up on their own. Each way is timed twice: the first plan
(every row new) and a re-plan where nothing changed; the reminder rows are removed between the
two ways.

    .venv/bin/python bench/replan_batch.py [--appointments N] [--database-url URL]

With a PostgreSQL URL naming a server and database, the benchmark creates its own database
there and drops it at the end. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shlex
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench_support import machine, source_version
from plan_reminders import make_case

SECRET = "benchmark-secret-key-0123456789-abcdefghij"


def measure(url: str, n: int, seed: int) -> dict[str, Any]:
    from sqlalchemy import delete, func, insert, select
    from sqlalchemy.orm import Session

    from frontdesk.adapters.db.models import Appointment, Patient, Practice, Reminder
    from frontdesk.bootstrap import build_runtime
    from frontdesk.config import Settings
    from frontdesk.services.reminders import Planning, replan, replan_practice

    now = datetime.now(UTC).replace(microsecond=0)
    rng = random.Random(seed)
    cases = [make_case(rng, now) for _ in range(n)]
    runtime = build_runtime(Settings(database_url=url, secret_key=SECRET), upgrade=True)
    with runtime.transaction() as session:
        practice = Practice(slug="bench", name="Bench", timezone="America/New_York", settings={})
        session.add(practice)
        session.flush()
        practice_id = practice.id
    with runtime.engine.begin() as conn:
        patient_ids = list(
            conn.scalars(
                insert(Patient).returning(Patient.id, sort_by_parameter_order=True),
                [
                    {
                        "practice_id": practice_id,
                        "source": "bench",
                        "external_id": f"p{i}",
                        "phone_sealed": runtime.cipher.seal(f"+1555{i:07d}")
                        if patient.has_phone
                        else None,
                        "email_sealed": runtime.cipher.seal(f"p{i}@example.org")
                        if patient.has_email
                        else None,
                        "preferred_channel": patient.preferred_channel.value
                        if patient.preferred_channel
                        else None,
                        "timezone": patient.timezone,
                        "reminders_enabled": patient.reminders_enabled,
                        "language": "en",
                    }
                    for i, (_appointment, patient, _extra) in enumerate(cases)
                ],
            )
        )
        conn.execute(
            insert(Appointment),
            [
                {
                    "practice_id": practice_id,
                    "source": "bench",
                    "external_id": f"a{i}",
                    "patient_id": patient_ids[i],
                    "start_at": appointment.start,
                    "end_at": appointment.start + timedelta(minutes=50),
                    "status": appointment.status.value,
                    "confirmation": appointment.confirmation.value,
                    "time_set_at": appointment.time_set_at,
                    "status_changed_at": appointment.status_changed_at,
                }
                for i, (appointment, _patient, _extra) in enumerate(cases)
            ],
        )
    planning = Planning(default_policy=runtime.settings.reminder_policy, now=now)

    def one_at_a_time(session: Session, practice: Practice) -> None:
        for appointment in session.scalars(
            select(Appointment).where(
                Appointment.practice_id == practice.id, Appointment.start_at > now
            )
        ).all():
            replan(session, practice, appointment, planning)

    def batched(session: Session, practice: Practice) -> None:
        replan_practice(session, practice, planning)

    results: dict[str, Any] = {}
    for label, way in (("one_at_a_time", one_at_a_time), ("replan_practice", batched)):
        for case in ("first_plan", "nothing_changed"):
            started = time.perf_counter()
            with runtime.transaction() as session:
                found = session.get(Practice, practice_id)
                assert found is not None
                way(session, found)
            results[f"{label}.{case}_seconds"] = round(time.perf_counter() - started, 2)
        with runtime.transaction() as session:
            results[f"{label}.rows"] = session.scalar(select(func.count()).select_from(Reminder))
            session.execute(delete(Reminder))
    runtime.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--appointments", type=int, default=5000, help="default 5000")
    parser.add_argument("--database-url", help="PostgreSQL server URL; default a SQLite file")
    parser.add_argument("--seed", type=int, default=20260101)
    args = parser.parse_args()
    out: dict[str, Any] = {
        "benchmark": "replan_batch",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "command": shlex.join([os.path.relpath(sys.executable), *sys.argv]),
        "source": source_version(),
        "appointments": args.appointments,
    }
    if args.database_url:
        import psycopg
        from psycopg import sql

        dbname = f"fd_bench_{secrets.token_hex(4)}"
        base, _, _ = args.database_url.rpartition("/")
        with psycopg.connect(args.database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        try:
            out["database"] = "postgresql"
            out["results"] = measure(f"{base}/{dbname}", args.appointments, args.seed)
        finally:
            with psycopg.connect(args.database_url, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(dbname)
                    )
                )
    else:
        with tempfile.TemporaryDirectory() as tmp:
            out["database"] = "sqlite (WAL), temp file"
            out["results"] = measure(
                f"sqlite:///{Path(tmp) / 'bench.db'}", args.appointments, args.seed
            )
    out["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
