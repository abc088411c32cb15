"""A real server on loopback and headless Chromium driving it.

Chromium is Debian's (``/usr/bin/chromium``), driven by Playwright for Python; nothing is
downloaded. Outside CI a machine without it skips these tests with that reason; under CI
(``FRONTDESK_REQUIRE_BROWSER=1``) its absence fails the run.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from frontdesk.bootstrap import Runtime, build_runtime
from frontdesk.config import Settings
from frontdesk.services import practices
from frontdesk.web.app import create_app

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    if not CHROMIUM.exists():
        if os.environ.get("FRONTDESK_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{CHROMIUM} is missing but browser tests are required here")
        pytest.skip(f"{CHROMIUM} is absent: install Debian's chromium to run browser tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context()
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    try:
        yield tab
    finally:
        context.close()


@pytest.fixture
def live_runtime(tmp_path: Path) -> Iterator[Runtime]:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'live.db'}",
        secret_key="browser-test-secret-that-is-long-enough-0123456789",
    )
    runtime = build_runtime(settings, upgrade=True)
    with runtime.transaction() as session:
        practices.ensure_default_practice(session, "America/New_York")
    try:
        yield runtime
    finally:
        runtime.dispose()


@pytest.fixture
def live_server(live_runtime: Runtime) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = create_app(live_runtime.settings, live_runtime)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", log_config=None)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def staff_page(page: Any, live_server: str, live_runtime: Runtime) -> Any:
    """The browser tab, signed in as a front desk person."""
    from staff_support import PASSWORD, add_staff

    add_staff(live_runtime, "desk@example.com", role="front_desk")
    page.goto(f"{live_server}/login")
    page.fill("input[name=email]", "desk@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server}/")
    return page
