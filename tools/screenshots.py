"""Screenshots of the inbox, a thread, the dashboard and the chat widget for the README.

Runs the demo practice in-process on a temporary SQLite database (the same seeding and demo
traffic as `make run`), signs in, and saves PNGs under docs/screenshots/. Needs Debian's
chromium (/usr/bin/chromium): `.venv/bin/python tools/screenshots.py`.
"""

from __future__ import annotations

import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import uvicorn
from playwright.sync_api import sync_playwright

from frontdesk.bootstrap import build_runtime
from frontdesk.config import Settings
from frontdesk.domain.times import now_utc
from frontdesk.services import practices, staff
from frontdesk.services import demo as demo_seed
from frontdesk.services.chores import message_sender
from frontdesk.services.demo_traffic import LIVE, DemoTraffic
from frontdesk.web.app import create_app

OUT = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(database_url=f"sqlite:///{tmp}/demo.db", demo=True)
        runtime = build_runtime(settings, upgrade=True)
        with runtime.transaction() as session:
            practices.ensure_default_practice(session, settings.default_timezone)
            practice = practices.resolve_practice(session, None)
            demo_seed.seed_demo(
                session, runtime.cipher, practice, now_utc(), settings.reminder_policy
            )
            admin, password = staff.ensure_demo_admin(
                session, practice, staff.hash_parameters(settings)
            )
            email, practice_id = admin.email, practice.id
        traffic = DemoTraffic(runtime, message_sender(runtime), practice_id)
        traffic.warm_up()
        for _ in LIVE[:4]:
            traffic.step()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(settings, runtime), host="127.0.0.1", port=port, log_level="warning"
            )
        )
        threading.Thread(target=server.run, daemon=True).start()
        while not server.started:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.goto(f"{base}/login")
            page.fill("input[name=email]", email)
            page.fill("input[name=password]", password)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/")
            page.goto(f"{base}/inbox")
            page.screenshot(path=str(OUT / "inbox.png"))
            page.click("tr[data-urgent=yes] a")
            page.screenshot(path=str(OUT / "thread.png"), full_page=True)
            page.goto(f"{base}/dashboard")
            page.screenshot(path=str(OUT / "dashboard.png"), full_page=True)
            chat = browser.new_page(viewport={"width": 900, "height": 700})
            chat.goto(f"{base}/chat-demo")
            chat.click("button[aria-haspopup=dialog]")
            chat.wait_for_selector(".m.assistant")
            chat.keyboard.type("What's your late cancellation fee?")
            chat.keyboard.press("Enter")
            chat.wait_for_selector(".m.assistant >> nth=1")
            chat.screenshot(path=str(OUT / "widget.png"))
            browser.close()
        server.should_exit = True
        runtime.dispose()
    print(f"screenshots in {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
