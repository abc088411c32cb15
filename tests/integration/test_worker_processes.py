"""Real `frontdesk worker` processes sharing one database: scale-out and crash safety.

These drive the command line as an operator would — separate OS processes, each with its own
connections — so what they prove is what a deployment gets: ``FOR UPDATE SKIP LOCKED`` shares
the table among workers without a double send, and a worker killed with SIGKILL mid-batch
loses nothing (its lease expires, another worker takes its rows) and duplicates nothing (the
retry carries the same idempotency key, which the outbox absorbs).

Patients here are synthetic (numbered, no names) and nothing patient-identifying is printed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import pytest
from sqlalchemy import func, insert, select

from conftest import TEST_SECRET
from frontdesk.adapters.db.models import Appointment, Message, OutboxMessage, Patient, Reminder
from frontdesk.bootstrap import Runtime
from frontdesk.domain.reminders import ReminderKind, ReminderState
from frontdesk.services import practices
from frontdesk.services.reminders import set_policy

WORKER_TIMEOUT = 300.0  # seconds: generous, so a slow CI machine fails loudly, not flakily
INSERT_CHUNK = 2000


# --- setting up a backlog of due reminders ---------------------------------------------------


def seed_due_reminders(runtime: Runtime, count: int) -> list[int]:
    """``count`` patients, each with its own phone and one appointment tomorrow, and one due
    ``-24h`` SMS reminder per appointment (due a minute ago). Returns the reminder ids.

    One reminder per patient keeps the per-patient caps out of the way; the practice's policy
    holds no channel to quiet hours, so nothing is deferred whatever the wall clock says.
    """
    now = datetime.now(UTC)
    due = now - timedelta(minutes=1)
    start = due + timedelta(hours=24)  # the -24h stage of this start is due a minute ago
    with runtime.transaction() as session:
        practice = practices.resolve_practice(session, "default")
        practice_id = practice.id
        set_policy(practice, {"quiet_hours_channels": []})
    cipher = runtime.cipher
    for first in range(0, count, INSERT_CHUNK):
        numbers = range(first, min(first + INSERT_CHUNK, count))
        with runtime.transaction() as session:
            session.execute(
                insert(Patient),
                [
                    {
                        "practice_id": practice_id,
                        "source": "load",
                        "external_id": f"p{i}",
                        "phone_sealed": cipher.seal(_phone(i)),
                        "phone_lookup": cipher.lookup_key(_phone(i)),
                        "timezone": "America/New_York",
                    }
                    for i in numbers
                ],
            )
            patient_ids = dict(
                session.execute(
                    select(Patient.external_id, Patient.id).where(
                        Patient.external_id.in_([f"p{i}" for i in numbers])
                    )
                ).all()
            )
            session.execute(
                insert(Appointment),
                [
                    {
                        "practice_id": practice_id,
                        "source": "load",
                        "external_id": f"a{i}",
                        "patient_id": patient_ids[f"p{i}"],
                        "start_at": start,
                        "end_at": start + timedelta(minutes=50),
                        "time_set_at": now - timedelta(days=3),
                        "status_changed_at": now - timedelta(days=3),
                    }
                    for i in numbers
                ],
            )
            appointment_ids = dict(
                session.execute(
                    select(Appointment.external_id, Appointment.id).where(
                        Appointment.external_id.in_([f"a{i}" for i in numbers])
                    )
                ).all()
            )
            session.execute(
                insert(Reminder),
                [
                    {
                        "practice_id": practice_id,
                        "appointment_id": appointment_ids[f"a{i}"],
                        "patient_id": patient_ids[f"p{i}"],
                        "kind": ReminderKind.STAGE.value,
                        "stage": "-24h",
                        "planned_start": start,
                        "channel": "sms",
                        "due_at": due,
                        "state": ReminderState.SCHEDULED.value,
                        "attempts": 0,
                    }
                    for i in numbers
                ],
            )
    with runtime.transaction() as session:
        ids = list(session.scalars(select(Reminder.id).order_by(Reminder.id)))
    assert len(ids) == count
    return ids


def _phone(i: int) -> str:
    """A distinct synthetic US number per patient."""
    return f"+1202{2_000_000 + i:07d}"


# --- running workers ---------------------------------------------------------------------------


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path
    handles: tuple[IO[bytes], IO[bytes]]

    def report(self) -> dict[str, int]:
        text = self.stdout_path.read_text()
        try:
            value: dict[str, int] = json.loads(text)
        except json.JSONDecodeError:
            pytest.fail(f"worker printed no JSON report; stderr tail:\n{self.stderr_tail()}")
        return value

    def stderr_tail(self, lines: int = 30) -> str:
        return "\n".join(self.stderr_path.read_text(errors="replace").splitlines()[-lines:])


def worker_env(database_url: str) -> dict[str, str]:
    """The caller's environment without any FRONTDESK_* setting, plus the test database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDESK_")}
    env["FRONTDESK_DATABASE_URL"] = database_url
    env["FRONTDESK_SECRET_KEY"] = TEST_SECRET
    return env


@contextmanager
def workers(tmp_path: Path, database_url: str) -> Iterator[Any]:
    """A factory for worker processes; every process it started is killed and reaped on exit,
    whatever happened."""
    started: list[Worker] = []

    def start(*args: str) -> Worker:
        n = len(started)
        out_path, err_path = tmp_path / f"worker{n}.out", tmp_path / f"worker{n}.err"
        out, err = out_path.open("wb"), err_path.open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "frontdesk", "worker", *args],
            cwd=tmp_path,
            env=worker_env(database_url),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )
        worker = Worker(process, out_path, err_path, (out, err))
        started.append(worker)
        return worker

    try:
        yield start
    finally:
        for worker in started:
            if worker.process.poll() is None:
                worker.process.kill()
        for worker in started:
            try:
                worker.process.wait(timeout=30)
            finally:
                for handle in worker.handles:
                    handle.close()


def wait_all(procs: list[Worker], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for worker in procs:
        remaining = max(deadline - time.monotonic(), 0.1)
        try:
            worker.process.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            pytest.fail(f"a worker was still running after {timeout:.0f} s")
        assert worker.process.returncode == 0, (
            f"worker exited {worker.process.returncode}; stderr tail:\n{worker.stderr_tail()}"
        )


def count(runtime: Runtime, model: Any) -> int:
    with runtime.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def states(runtime: Runtime) -> dict[str, int]:
    with runtime.transaction() as session:
        return {
            state: int(n)
            for state, n in session.execute(
                select(Reminder.state, func.count()).group_by(Reminder.state)
            )
        }


def outbox_by_key(runtime: Runtime) -> dict[str, int]:
    """idempotency key → attempts, for every outbox row (asserting the keys are unique)."""
    with runtime.transaction() as session:
        found = session.execute(select(OutboxMessage.idempotency_key, OutboxMessage.attempts)).all()
    by_key = {key: attempts for key, attempts in found}
    assert len(by_key) == len(found), "two outbox rows share an idempotency key"
    return by_key


# --- the tests -----------------------------------------------------------------------------------


def test_four_workers_send_twenty_thousand_due_reminders_exactly_once(
    database_url: str, runtime: Runtime, tmp_path: Path
) -> None:
    if runtime.settings.is_sqlite:
        pytest.skip(
            "SQLite has one writer: this is the FOR UPDATE SKIP LOCKED scale-out test, "
            "PostgreSQL only"
        )
    total = 20_000
    began = time.monotonic()
    ids = seed_due_reminders(runtime, total)
    seeded = time.monotonic()

    with workers(tmp_path, database_url) as start:
        procs = [
            start(
                "--once",
                "--json",
                "--concurrency",
                "8",
                "--batch-size",
                "200",
                "--rate",
                "100000",
            )
            for _ in range(4)
        ]
        wait_all(procs, WORKER_TIMEOUT)
        reports = [worker.report() for worker in procs]
    dispatched = time.monotonic()

    assert states(runtime) == {ReminderState.DELIVERED.value: total}
    by_key = outbox_by_key(runtime)
    assert len(by_key) == total
    assert set(by_key) == {f"reminder-{reminder_id}" for reminder_id in ids}
    handed_twice = sum(1 for attempts in by_key.values() if attempts != 1)
    assert handed_twice == 0, f"{handed_twice} messages were handed to the channel twice"
    assert count(runtime, Message) == total  # one line in each patient's thread

    sent = [report["sent"] for report in reports]
    assert sum(sent) == total
    assert sum(1 for n in sent if n > 0) > 1, f"one worker did all the work: {sent}"
    for report in reports:
        assert report["lost_claims"] == 0
        assert report["failed"] == report["skipped"] == report["deferred"] == 0

    print(
        f"\n{total} reminders: seeding {seeded - began:.1f} s, "
        f"4 workers {dispatched - seeded:.1f} s "
        f"({total / (dispatched - seeded):.0f}/s); sent per worker {sent}"
    )


def test_a_worker_killed_mid_batch_loses_nothing_and_duplicates_nothing(
    database_url: str, runtime: Runtime, tmp_path: Path
) -> None:
    total = 300 if runtime.settings.is_sqlite else 2_000
    lease = 3.0
    ids = seed_due_reminders(runtime, total)

    with workers(tmp_path, database_url) as start:
        doomed = start("--rate", "50", "--lease-seconds", str(int(lease)))
        # Poll (bounded) until it has sent some but not all, then kill it without warning.
        deadline = time.monotonic() + 60
        sent_before_kill = 0
        while time.monotonic() < deadline:
            assert doomed.process.poll() is None, (
                f"the worker exited early ({doomed.process.returncode}):\n{doomed.stderr_tail()}"
            )
            sent_before_kill = count(runtime, OutboxMessage)
            if sent_before_kill >= 25:
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"the worker sent only {sent_before_kill} messages in 60 s")
        os.kill(doomed.process.pid, signal.SIGKILL)
        doomed.process.wait(timeout=30)
        killed_at = time.monotonic()

        at_kill = states(runtime)
        outbox_at_kill = count(runtime, OutboxMessage)
        claimed_at_kill = at_kill.get(ReminderState.CLAIMED.value, 0)
        waiting_at_kill = at_kill.get(ReminderState.SCHEDULED.value, 0)
        delivered_at_kill = at_kill.get(ReminderState.DELIVERED.value, 0)
        assert 0 < outbox_at_kill < total
        assert claimed_at_kill + waiting_at_kill > 0, f"nothing left to recover: {at_kill}"
        assert sum(at_kill.values()) == total

        # The lease under test: the killed worker's claims must expire before anyone retakes
        # them. This wait is bounded (a little over the lease), not a poll.
        time.sleep(max(lease + 0.5 - (time.monotonic() - killed_at), 0))

        rescuer = start("--once", "--json", "--lease-seconds", str(int(lease)), "--rate", "100000")
        wait_all([rescuer], WORKER_TIMEOUT)
        report = rescuer.report()

    final = states(runtime)
    assert set(final) <= {ReminderState.DELIVERED.value, ReminderState.SENT.value}, final
    assert sum(final.values()) == total

    by_key = outbox_by_key(runtime)
    assert set(by_key) == {f"reminder-{reminder_id}" for reminder_id in ids}, (
        "a reminder is missing from the outbox, or the outbox has one that is not ours"
    )
    absorbed = sum(by_key.values()) - len(by_key)
    assert 0 <= absorbed <= claimed_at_kill, (
        f"{absorbed} re-sends, but only {claimed_at_kill} reminders were claimed at the kill"
    )
    assert all(attempts <= 2 for attempts in by_key.values())
    assert count(runtime, Message) == total  # the re-send did not double the patient's thread

    # The rescuer sent exactly what the killed worker had not recorded.
    assert report["sent"] == total - delivered_at_kill
    assert report["lost_claims"] == report["failed"] == report["skipped"] == 0

    print(
        f"\nkilled after {outbox_at_kill}/{total} outbox rows "
        f"(claimed {claimed_at_kill}, scheduled {waiting_at_kill}, delivered {delivered_at_kill}); "
        f"the rescuer sent {report['sent']}, re-sends absorbed by the idempotency key: {absorbed}"
    )


def test_a_worker_that_finishes_while_the_screen_still_trains_exits_cleanly(
    tmp_path: Path,
) -> None:
    # With an empty model cache the crisis screen trains in a background thread for seconds,
    # through RE2's C++ code; `worker --once` on an empty database is done long before. When
    # that thread was a daemon, exiting aborted the process ("terminate called without an
    # active exception", exit -6).
    env = worker_env(f"sqlite:///{tmp_path / 'fresh.db'}")
    env["FRONTDESK_CACHE_DIR"] = str(tmp_path / "model-cache")
    done = subprocess.run(
        [sys.executable, "-m", "frontdesk", "worker", "--once", "--json"],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=WORKER_TIMEOUT,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    assert json.loads(done.stdout)["claimed"] == 0
    assert list((tmp_path / "model-cache").glob("crisis_model.json"))
