"""Benchmark: reminder planning.

1. The pure ``plan()`` (domain/reminders.py) over N appointments built in memory: a mix of
   patient timezones, channels, consent, confirmations, statuses, booking times and start
   times over the next 30 days, all planned against one ``now`` with the default policy.
   Best of ``--runs`` runs.
2. (unless ``--replan 0``) End to end through ``frontdesk.services.reminders.replan`` on a
   fresh SQLite file: M appointments planned into rows in one transaction (every row new), the
   same again with nothing changed, and again after every appointment moved by a day.

    .venv/bin/python bench/plan_reminders.py [--appointments N] [--runs R] [--replan M]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench_support import machine, source_version
from frontdesk.domain.appointments import AppointmentStatus, Confirmation
from frontdesk.domain.channels import Channel, ConsentStatus
from frontdesk.domain.reminders import (
    AppointmentFacts,
    PatientFacts,
    ReminderPolicy,
    plan,
)

TIMEZONES = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
    "Europe/London",
    "Europe/Berlin",
    "Asia/Kolkata",
    "Australia/Sydney",
)
SECRET = "benchmark-secret-key-0123456789-abcdefghij"


def pick(rng: random.Random, weighted: dict[Any, float]) -> Any:
    return rng.choices(list(weighted), weights=list(weighted.values()))[0]


def make_case(
    rng: random.Random, now: datetime
) -> tuple[AppointmentFacts, PatientFacts, dict[str, Any]]:
    """One appointment and its patient, drawn from a plausible practice's mix."""
    start = now + timedelta(minutes=rng.randrange(5, 30 * 24 * 60))
    start = start.replace(second=0, microsecond=0)
    # Most were booked days or weeks ahead; some late (inside the stage offsets), some moved.
    lead = pick(
        rng,
        {
            timedelta(days=rng.uniform(3, 45)): 0.7,
            timedelta(hours=rng.uniform(2, 72)): 0.2,
            timedelta(minutes=rng.uniform(5, 120)): 0.1,
        },
    )
    time_set_at = min(start - lead, now - timedelta(minutes=rng.uniform(0, 30)))
    status = pick(
        rng,
        {
            AppointmentStatus.BOOKED: 0.9,
            AppointmentStatus.CANCELLED: 0.06,
            AppointmentStatus.PENDING: 0.04,
        },
    )
    confirmation = pick(
        rng,
        {
            Confirmation.UNCONFIRMED: 0.7,
            Confirmation.CONFIRMED: 0.25,
            Confirmation.RESCHEDULE_REQUESTED: 0.03,
            Confirmation.DECLINED: 0.02,
        },
    )
    appointment = AppointmentFacts(
        start=start,
        status=status,
        confirmation=confirmation,
        time_set_at=time_set_at,
        status_changed_at=time_set_at,
    )
    has_phone = rng.random() < 0.93
    has_email = rng.random() < 0.7 or not has_phone
    consent: dict[Channel, ConsentStatus] = {}
    if rng.random() < 0.03:
        consent[Channel.SMS] = ConsentStatus.REVOKED
    if rng.random() < 0.2:
        consent[Channel.EMAIL] = ConsentStatus.GRANTED
    patient = PatientFacts(
        timezone=rng.choice(TIMEZONES),
        reminders_enabled=rng.random() < 0.98,
        preferred_channel=pick(
            rng, {None: 0.6, Channel.SMS: 0.2, Channel.EMAIL: 0.15, Channel.WHATSAPP: 0.05}
        ),
        has_phone=has_phone,
        has_email=has_email,
        consent=consent,
    )
    row = {
        "start": start,
        "status": status,
        "confirmation": confirmation,
        "time_set_at": time_set_at,
        "patient": patient,
    }
    return appointment, patient, row


def bench_pure(
    n: int, runs: int, seed: int, now: datetime
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    rng = random.Random(seed)
    cases = [make_case(rng, now) for _ in range(n)]
    policy = ReminderPolicy()
    timings: list[float] = []
    produced: Counter[str] = Counter()
    for run in range(runs):
        started = time.perf_counter()
        for appointment, patient, _row in cases:
            planned = plan(appointment, patient, policy, now)
            if run == 0:
                for item in planned:
                    produced[item.action] += 1
        timings.append(time.perf_counter() - started)
    best = min(timings)
    result = {
        "appointments": n,
        "runs_seconds": [round(t, 3) for t in timings],
        "best_seconds": round(best, 3),
        "appointments_per_second": round(n / best),
        "microseconds_per_appointment": round(best / n * 1e6, 2),
        "planned_items": dict(produced),
    }
    return result, [row for _a, _p, row in cases]


def bench_replan(rows: list[dict[str, Any]], now: datetime) -> dict[str, Any]:
    """replan() for each appointment, in one transaction, the way a bulk change re-plans."""
    from sqlalchemy import bindparam, func, insert, select, update

    from frontdesk.adapters.db.models import Appointment, Patient, Practice, Reminder
    from frontdesk.bootstrap import build_runtime
    from frontdesk.config import Settings
    from frontdesk.services.reminders import Planning, replan

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        runtime = build_runtime(Settings(database_url=url, secret_key=SECRET), upgrade=True)
        cipher = runtime.cipher
        with runtime.transaction() as session:
            practice = Practice(
                slug="bench", name="Bench Practice", timezone="America/New_York", settings={}
            )
            session.add(practice)
            session.flush()
            practice_id = practice.id
        with runtime.engine.begin() as conn:
            patient_rows = []
            for index, row in enumerate(rows):
                p: PatientFacts = row["patient"]
                patient_rows.append(
                    {
                        "practice_id": practice_id,
                        "source": "bench",
                        "external_id": f"p{index}",
                        "phone_sealed": cipher.seal(f"+1555{index:07d}") if p.has_phone else None,
                        "email_sealed": cipher.seal(f"p{index}@example.org")
                        if p.has_email
                        else None,
                        "preferred_channel": p.preferred_channel.value
                        if p.preferred_channel
                        else None,
                        "timezone": p.timezone,
                        "reminders_enabled": p.reminders_enabled,
                        "language": "en",
                    }
                )
            patient_ids = list(
                conn.scalars(
                    insert(Patient).returning(Patient.id, sort_by_parameter_order=True),
                    patient_rows,
                )
            )
            conn.execute(
                insert(Appointment),
                [
                    {
                        "practice_id": practice_id,
                        "source": "bench",
                        "external_id": f"a{index}",
                        "patient_id": patient_ids[index],
                        "start_at": row["start"],
                        "end_at": row["start"] + timedelta(minutes=50),
                        "status": row["status"].value,
                        "confirmation": row["confirmation"].value,
                        "time_set_at": row["time_set_at"],
                        "status_changed_at": row["time_set_at"],
                    }
                    for index, row in enumerate(rows)
                ],
            )
        planning = Planning(default_policy=runtime.settings.reminder_policy, now=now)

        def run(label: str) -> dict[str, Any]:
            started = time.perf_counter()
            with runtime.transaction() as session:
                practice = session.get(Practice, practice_id)
                assert practice is not None
                appointments = session.scalars(
                    select(Appointment).where(Appointment.practice_id == practice_id)
                ).all()
                for appointment in appointments:
                    replan(session, practice, appointment, planning)
            elapsed = time.perf_counter() - started
            with runtime.transaction() as session:
                states = dict(
                    session.execute(
                        select(Reminder.state, func.count()).group_by(Reminder.state)
                    ).all()
                )
            return {
                "case": label,
                "seconds": round(elapsed, 3),
                "appointments_per_second": round(len(rows) / elapsed),
                "microseconds_per_appointment": round(elapsed / len(rows) * 1e6),
                "reminder_rows_by_state": states,
            }

        results = [run("first plan (every row new)"), run("re-plan, nothing changed")]
        with runtime.engine.begin() as conn:
            table = Appointment.__table__
            moves = [
                {
                    "b_id": a_id,
                    "b_start": start + timedelta(days=1),
                    "b_end": end + timedelta(days=1),
                }
                for a_id, start, end in conn.execute(
                    select(table.c.id, table.c.start_at, table.c.end_at)
                )
            ]
            conn.execute(
                update(table)
                .where(table.c.id == bindparam("b_id"))
                .values(start_at=bindparam("b_start"), end_at=bindparam("b_end"), time_set_at=now),
                moves,
            )
        results.append(run("re-plan after every appointment moved a day"))
        runtime.dispose()
    return {"database": "sqlite (WAL), temp file", "appointments": len(rows), "runs": results}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--appointments", type=int, default=100_000, help="default 100000")
    parser.add_argument("--runs", type=int, default=3, help="best of R runs (default 3)")
    parser.add_argument(
        "--replan",
        type=int,
        default=10_000,
        help="appointments for the end-to-end replan() on SQLite (default 10000; 0 skips it)",
    )
    parser.add_argument("--seed", type=int, default=20260101)
    args = parser.parse_args()
    now = datetime.now(UTC).replace(microsecond=0)
    started = datetime.now(UTC)
    pure, rows = bench_pure(args.appointments, args.runs, args.seed, now)
    out: dict[str, Any] = {
        "benchmark": "plan_reminders",
        "date": started.isoformat(timespec="seconds"),
        "machine": machine(),
        "command": shlex.join([os.path.relpath(sys.executable), *sys.argv]),
        "source": source_version(),
        "pure_plan": pure,
    }
    if args.replan:
        out["replan_sqlite"] = bench_replan(rows[: args.replan], now)
    print(json.dumps(out, indent=2, default=str))


if __name__ == "__main__":
    main()
