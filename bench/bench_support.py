"""What every benchmark reports about where it ran and which frontdesk it measured."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def source_version() -> dict[str, Any]:
    """Which frontdesk was measured: its path, and the commit of the checkout it lives in."""
    import frontdesk

    where = Path(frontdesk.__file__).resolve().parent
    info: dict[str, Any] = {"frontdesk": str(where)}
    try:
        head = subprocess.run(
            ["git", "-C", str(where), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(where), "status", "--porcelain", "--", "."],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        info["git"] = head + (" (src modified)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        info["git"] = os.environ.get("FRONTDESK_BENCH_REVISION", "unknown (not a git checkout)")
    return info
