"""The chat widget on a page served from another origin, in a real browser: it holds a
conversation, survives a reload, and shows when a person joins."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select

from frontdesk.adapters.db.models import Conversation, Practice
from frontdesk.bootstrap import Runtime
from frontdesk.domain.channels import Channel
from frontdesk.domain.times import now_utc
from frontdesk.services import inbox, webchat
from frontdesk.services.chores import message_sender

pytestmark = pytest.mark.browser


@pytest.fixture
def practice_site(live_server: str) -> Iterator[str]:
    """A practice's own website, on another origin, with the one-line embed."""
    page = (
        "<!doctype html><html lang='en'><head><title>Harbor Light</title></head><body>"
        "<h1>Harbor Light Counseling</h1>"
        f"<script src='{live_server}/widget.js?practice=default' async></script>"
        "</body></html>"
    ).encode()

    class Site(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: Any) -> None:
            pass

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadingHTTPServer(("127.0.0.1", port), Site)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_widget_holds_a_conversation_across_a_reload_and_shows_the_handoff(
    page: Any, live_runtime: Runtime, practice_site: str
) -> None:
    with live_runtime.transaction() as session:
        practice = session.scalars(select(Practice)).one()
        webchat.set_widget_config(practice, {"allowed_origins": [practice_site]})

    page.goto(practice_site)
    page.click("button[aria-haspopup=dialog]")
    page.wait_for_selector(".m.assistant")
    assert "automated assistant" in page.inner_text(".m.assistant")
    assert page.get_attribute(".log", "aria-live") == "polite"
    # Keyboard only: the message box has focus when the chat opens; Enter sends.
    page.keyboard.type("Do you have parking?")
    page.keyboard.press("Enter")
    page.wait_for_selector(".m.visitor")
    page.wait_for_selector(".m.assistant >> nth=1")

    page.reload()
    page.wait_for_selector(".m.visitor")  # reopened with its history
    assert page.locator(".m").count() == 3

    with live_runtime.transaction() as session:
        practice = session.scalars(select(Practice)).one()
        conversation = session.scalars(select(Conversation)).one()
        inbox.set_state(session, practice, conversation.id, action="take", who="sam", now=now_utc())
        reply = inbox.reply(
            session,
            practice,
            conversation.id,
            text="Hi, this is Sam at the front desk: yes, behind the building.",
            channel=Channel.WEBCHAT,
            who="sam",
            cipher=live_runtime.cipher,
            now=now_utc(),
        )
        session.flush()
        reply_id = reply.id
    message_sender(live_runtime).send_now([reply_id])
    page.wait_for_selector("text=A person from the practice has joined the chat.")
    page.wait_for_selector(".m.staff")
    assert "behind the building" in page.inner_text(".m.staff")

    page.keyboard.press("Escape")
    assert page.get_attribute("button[aria-haspopup=dialog]", "aria-expanded") == "false"


def test_the_widget_shows_the_crisis_message_at_once_and_staff_are_alerted(
    page: Any, live_runtime: Runtime, practice_site: str
) -> None:
    with live_runtime.transaction() as session:
        practice = session.scalars(select(Practice)).one()
        webchat.set_widget_config(practice, {"allowed_origins": [practice_site]})

    page.goto(practice_site)
    page.click("button[aria-haspopup=dialog]")
    page.wait_for_selector(".m.assistant")
    page.keyboard.type("I don't want to be alive anymore")
    page.keyboard.press("Enter")
    # The practice's crisis message, in the reply to the visitor's own request: no polling,
    # no waiting for a person.
    crisis = page.wait_for_selector(".m.crisis", timeout=5000)
    assert crisis is not None
    text = crisis.inner_text()
    assert "988" in text and "911" in text
    assert crisis.get_attribute("role") == "alert"  # read out at once by screen readers

    with live_runtime.transaction() as session:
        conversation = session.scalars(select(Conversation)).one()
        assert conversation.urgent and conversation.owner == "staff"
