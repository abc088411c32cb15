"""CSV imports through the real service: batches, rejections, audit, concurrency, real data."""

from __future__ import annotations

import csv
import threading
from pathlib import Path

from sqlalchemy import func, select

from conftest import shared_file
from frontdesk.adapters.db.models import Appointment, AuditEvent, IntakeRejection, Patient
from frontdesk.adapters.importers.csv_file import parse_column_map, read_csv
from frontdesk.bootstrap import Runtime
from frontdesk.services.imports import BATCH_SIZE, ImportSummary, run_import

CONTEXT = {"default_region": "US", "default_timezone": "America/New_York"}
HEADER = ["appointment_id", "patient_id", "patient_name", "phone", "start", "status"]


def write_csv(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def import_csv(
    runtime: Runtime, path: Path, mapping: dict[str, str] | None = None
) -> ImportSummary:
    rows = read_csv(path, source="csv", context=CONTEXT, column_map=mapping)
    return run_import(runtime, rows, practice_slug="default", channel="import.csv", actor="test")


def count(runtime: Runtime, model: type) -> int:
    with runtime.transaction() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_more_rows_than_a_batch_land_with_bad_rows_kept_and_every_change_audited(
    runtime: Runtime, tmp_path: Path
) -> None:
    total = BATCH_SIZE + 37
    rows = []
    for i in range(total):
        phone = "555-CALL" if i in (3, BATCH_SIZE + 5) else f"(202) 555-{i % 300:04d}"
        status = "maybe" if i == 10 else "booked"
        rows.append(
            [
                f"a{i}",
                f"p{i % 300}",
                f"Patient {i % 300}",
                phone,
                f"2026-12-{1 + i % 28:02d} {9 + i % 8:02d}:00",
                status,
            ]
        )
    path = write_csv(tmp_path / "big.csv", rows)

    summary = import_csv(runtime, path)
    assert (summary.created, summary.rejected) == (total - 3, 3)
    # A rejected row wrote nothing at all: its patient is created only by its good rows.
    assert count(runtime, Appointment) == total - 3
    assert count(runtime, Patient) == 300
    refs = {r["reference"]: r["errors"][0] for r in summary.rejections}
    assert set(refs) == {"line 5", "line 12", f"line {BATCH_SIZE + 7}"}
    assert refs["line 5"]["loc"] == "column 'phone'"
    assert refs["line 12"]["loc"] == "column 'status'"
    assert count(runtime, IntakeRejection) == 3
    with runtime.transaction() as session:
        created = session.execute(
            select(AuditEvent.action, func.count(), func.count(AuditEvent.entity_id))
            .where(AuditEvent.action.in_(["appointment.created", "patient.created"]))
            .group_by(AuditEvent.action)
        ).all()
    # One audit event per created row, each pointing at its row.
    assert dict((a, (n, ids)) for a, n, ids in created) == {
        "appointment.created": (total - 3, total - 3),
        "patient.created": (300, 300),
    }

    again = import_csv(runtime, path)
    assert (again.created, again.updated, again.unchanged, again.rejected) == (0, 0, total - 3, 3)


def test_a_changed_file_moves_and_cancels(runtime: Runtime, tmp_path: Path) -> None:
    first = [
        ["a1", "p1", "Avery", "2025550101", "2026-12-01 09:00", "booked"],
        ["a2", "p1", "Avery", "2025550101", "2026-12-02 09:00", "booked"],
    ]
    import_csv(runtime, write_csv(tmp_path / "v1.csv", first))
    second = [
        ["a1", "p1", "Avery", "2025550101", "2026-12-01 10:30", "booked"],
        ["a2", "p1", "Avery", "2025550101", "2026-12-02 09:00", "cancelled"],
    ]
    summary = import_csv(runtime, write_csv(tmp_path / "v2.csv", second))
    assert (summary.created, summary.updated, summary.unchanged) == (0, 2, 0)
    with runtime.transaction() as session:
        stored = {a.external_id: a for a in session.scalars(select(Appointment))}
        assert stored["a1"].start_at.isoformat() == "2026-12-01T15:30:00+00:00"  # EST = UTC-5
        assert stored["a2"].status == "cancelled"


def test_concurrent_imports_of_one_file_make_no_duplicates(
    runtime: Runtime, tmp_path: Path
) -> None:
    rows = [
        [f"a{i}", f"p{i % 50}", f"P{i % 50}", "", f"2026-12-03 {9 + i % 8:02d}:00", ""]
        for i in range(400)
    ]
    path = write_csv(tmp_path / "same.csv", rows)
    summaries: list[ImportSummary] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            summaries.append(import_csv(runtime, path))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert len(summaries) == 3
    assert count(runtime, Appointment) == 400
    assert count(runtime, Patient) == 50
    assert sum(s.created for s in summaries) == 400
    assert all(s.rejected == 0 for s in summaries)
    assert sum(s.created + s.updated + s.unchanged for s in summaries) == 1200


def test_public_no_show_dataset_imports_with_a_column_map(runtime: Runtime, tmp_path: Path) -> None:
    source = shared_file("noshow", "KaggleV2-May-2016.csv")
    head = tmp_path / "head.csv"
    with source.open() as full, head.open("w") as part:
        for index, line in enumerate(full):
            if index > 1500:
                break
            part.write(line)
    with head.open() as handle:
        records = list(csv.DictReader(handle))
    mapping = parse_column_map(
        [
            "AppointmentID=appointment_id,PatientId=patient_id",
            "AppointmentDay=start,Neighbourhood=location",
        ]
    )
    summary = import_csv(runtime, head, mapping)
    assert (summary.created, summary.rejected) == (1500, 0)
    assert count(runtime, Patient) == len({r["PatientId"] for r in records})
    with runtime.transaction() as session:
        first = session.scalars(
            select(Appointment).where(Appointment.external_id == records[0]["AppointmentID"])
        ).one()
        assert first.start_at.isoformat() == "2016-04-29T00:00:00+00:00"
        assert first.location is not None and first.location.name == "JARDIM DA PENHA"
