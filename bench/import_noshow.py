"""Benchmark: import the public no-show dataset (110,527 rows) through the CSV importer.

Runs the real CLI in a child process (so peak memory is the whole program's) twice: a first
import into an empty database, then the same file again (every row unchanged).

    .venv/bin/python bench/import_noshow.py [--database-url URL] [--rows N]

Prints one JSON object; docs/PERFORMANCE.md records the results.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

DATASET = Path(__file__).resolve().parents[2] / "shared/external/noshow/KaggleV2-May-2016.csv"
COLUMN_MAP = (
    "AppointmentID=appointment_id,PatientId=patient_id,AppointmentDay=start,Neighbourhood=location"
)


def run_import(path: Path, env: dict[str, str], cwd: Path) -> dict[str, object]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "frontdesk", "import", str(path), "--map", COLUMN_MAP, "--json"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 3):
        raise SystemExit(f"import failed ({proc.returncode}): {proc.stderr[-2000:]}")
    summary = json.loads(proc.stdout)
    return {
        "seconds": round(elapsed, 2),
        "rows_per_second": round(
            (summary["created"] + summary["updated"] + summary["unchanged"] + summary["rejected"])
            / elapsed
        ),
        # ru_maxrss is the largest child so far (KiB on Linux): the import is the largest one.
        "peak_rss_mib": round(max(after.ru_maxrss, before.ru_maxrss) / 1024, 1),
        "created": summary["created"],
        "updated": summary["updated"],
        "unchanged": summary["unchanged"],
        "rejected": summary["rejected"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", help="default: a fresh SQLite file in a temp folder")
    parser.add_argument("--rows", type=int, help="only the first N rows")
    args = parser.parse_args()
    if not DATASET.exists():
        raise SystemExit(f"{DATASET} is absent (../shared/external is not beside this checkout)")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        source = DATASET
        if args.rows:
            source = work / "subset.csv"
            with DATASET.open() as full, source.open("w") as part:
                for index, line in enumerate(full):
                    if index > args.rows:
                        break
                    part.write(line)
        env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDESK_")}
        if args.database_url:
            env["FRONTDESK_DATABASE_URL"] = args.database_url
            env["FRONTDESK_SECRET_KEY"] = "benchmark-secret-key-0123456789-abcdefghij"
            subprocess.run(
                [sys.executable, "-m", "frontdesk", "db", "upgrade"],
                env=env,
                cwd=work,
                check=True,
                capture_output=True,
            )
        first = run_import(source, env, work)
        second = run_import(source, env, work)
    print(
        json.dumps(
            {
                "benchmark": "import_noshow",
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": f"{platform.machine()}, {os.cpu_count()} cpu, "
                f"{platform.python_implementation()} {platform.python_version()}, "
                f"{platform.platform()}",
                "database": "postgresql" if args.database_url else "sqlite (WAL)",
                "first_import": first,
                "reimport_unchanged": second,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
