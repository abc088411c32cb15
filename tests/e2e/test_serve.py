"""`frontdesk serve --demo` as a person runs it: a real process, a real port, real HTTP.

The demo seeds a week of sessions at fixed wall-clock hours in America/New_York
(``frontdesk.services.demo.SCHEDULE``); the schedule page must show each at that hour, not at
its UTC hour (which differs by four or five hours).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from conftest import TEST_SECRET
from frontdesk.bootstrap import Runtime
from frontdesk.services.demo import SCHEDULE
from staff_support import sign_in

STARTUP_SECONDS = 30.0
POLL_STEP_SECONDS = 0.2
TOKEN = re.compile(r"fdk_[0-9a-f]{12}_[A-Za-z0-9_-]{20,}")
SIGN_IN = re.compile(r"Demo sign-in \(shown once\): (\S+) password (\S+)")
ROW = re.compile(
    r'<tr class="appointment" data-external-id="demo/demo-(\d\d)">\s*<td>(\d\d:\d\d)</td>'
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    stderr_path: Path

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")


@contextmanager
def serving(cwd: Path, env_overrides: dict[str, str]) -> Iterator[Server]:
    """``python -m frontdesk serve --demo`` in ``cwd``, until it answers /healthz; always
    terminated afterwards. Its stderr goes to a file, so a chatty server never blocks on a
    full pipe and the output can be read while it runs."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDESK_")}
    env.update(env_overrides)
    stderr_path = cwd / "serve.stderr"
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "frontdesk", "serve", "--demo", "--port", str(port)],
            cwd=cwd,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    server = Server(f"http://127.0.0.1:{port}", process, stderr_path)
    try:
        wait_until_healthy(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def wait_until_healthy(server: Server) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(
                f"serve exited with {server.process.returncode} before answering:\n"
                + server.stderr()
            )
        try:
            response = httpx.get(f"{server.url}/healthz", timeout=1.0)
        except httpx.TransportError:
            time.sleep(POLL_STEP_SECONDS)
            continue
        assert response.status_code == 200, response.text
        assert response.json() == {"status": "ok", "database": "ok"}
        return
    pytest.fail(f"serve did not answer /healthz within {STARTUP_SECONDS} s:\n" + server.stderr())


def demo_token(server: Server) -> str:
    """The demo API key, as printed once on stderr."""
    output = server.stderr()
    assert "Demo API key (shown once)" in output, output
    tokens = TOKEN.findall(output)
    assert len(tokens) == 1, output
    return str(tokens[0])


def demo_sign_in(server: Server) -> tuple[str, str]:
    """The demo admin's email and password, as printed once on stderr."""
    found = SIGN_IN.findall(server.stderr())
    assert len(found) == 1, server.stderr()
    email, password = found[0]
    return str(email), str(password)


def check_demo(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=10.0) as client:
        # The schedule and the outbox are for signed-in staff only.
        for path in ("/", "/outbox"):
            refused = client.get(path)
            assert refused.status_code == 303, refused.text
            assert refused.headers["location"].startswith("/login?next=")
        email, password = demo_sign_in(server)
        assert email == "demo@harborlight.example"
        assert sign_in(client, email, "not the demo password").status_code == 401
        assert sign_in(client, email, password).status_code == 303
        assert client.get("/outbox").status_code == 200
        home = client.get("/")
        assert home.status_code == 200
        page = home.text
        assert "Harbor Light Counseling" in page
        assert "Schedule in America/New_York" in page
        # Each row shows its session at the hour the demo booked it in New York. Today and
        # the next six days are on the page: every seeded session with day offset 0-6.
        rows = {int(index): shown for index, shown in ROW.findall(page)}
        assert rows, page
        expected = {i: f"{hour:02d}:00" for i, (day, hour, *_) in enumerate(SCHEDULE) if day >= 0}
        assert rows == expected

        docs = client.get("/docs")
        assert docs.status_code == 200
        assert "swagger" in docs.text.lower()

        token = demo_token(server)
        listed = client.get("/api/v1/appointments", headers={"Authorization": f"Bearer {token}"})
        assert listed.status_code == 200, listed.text
        assert listed.json()["total"] == len(SCHEDULE) + 1  # and the reminded session
        # The guard: the same request without the key, or with a wrong one, is refused.
        assert client.get("/api/v1/appointments").status_code == 401
        wrong = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        refused = client.get("/api/v1/appointments", headers={"Authorization": f"Bearer {wrong}"})
        assert refused.status_code == 401


def test_serve_demo_on_sqlite_in_the_working_directory(tmp_path: Path) -> None:
    with serving(tmp_path, {}) as server:
        check_demo(server)
    # No FRONTDESK_DATABASE_URL: the database and its key file are made where it was started.
    assert (tmp_path / "frontdesk.db").is_file()
    assert (tmp_path / ".frontdesk-secret").is_file()


def test_serve_demo_on_postgresql(database_url: str, runtime: Runtime, tmp_path: Path) -> None:
    # ``runtime`` empties the session's PostgreSQL database (one practice, no rows) first.
    if not database_url.startswith("postgresql"):
        pytest.skip("the SQLite run is test_serve_demo_on_sqlite_in_the_working_directory")
    env = {"FRONTDESK_DATABASE_URL": database_url, "FRONTDESK_SECRET_KEY": TEST_SECRET}
    with serving(tmp_path, env) as server:
        check_demo(server)
    assert not (tmp_path / "frontdesk.db").exists()
