"""The staff side of a crisis, in a real browser: a crisis SMS arrives through the Twilio
webhook, appears live in the open inbox as urgent with the crisis message already sent; staff
reply (it goes out through Twilio and shows in the outbox) and hand the thread back."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode

import httpx
import pytest
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from frontdesk.adapters.db.models import Practice
from frontdesk.bootstrap import Runtime
from frontdesk.domain.times import now_utc
from frontdesk.services import channel_accounts
from integration.test_reminders_flow import Clock, put
from provider_fakes import Reply, recording_server

pytestmark = pytest.mark.browser

SID = "AC" + "b" * 32
TOKEN = "browser-twilio-token"


def test_a_crisis_sms_appears_live_and_staff_answer_it(
    staff_page: Any, live_server: str, live_runtime: Runtime
) -> None:
    page = staff_page
    replies = [
        Reply(201, json.dumps({"sid": f"SM{n:032d}", "status": "queued"}).encode())
        for n in range(1, 10)
    ]
    with recording_server(*replies) as twilio:
        with live_runtime.transaction() as session:
            practice = session.scalars(select(Practice)).one()
            channel_accounts.set_account(
                session,
                live_runtime.cipher,
                practice,
                "sms",
                "twilio",
                {
                    "account_sid": SID,
                    "auth_token": TOKEN,
                    "from_number": "+12025550100",
                    "base_url": twilio.base_url,
                },
                actor="test",
            )
        put(live_runtime, Clock(now_utc()), now_utc() + timedelta(days=2), announce=False)

        page.goto(f"{live_server}/inbox")
        page.wait_for_selector("#live:has-text('live')")

        # Twilio signs the URL configured at Twilio: our public URL (the default here).
        public = live_runtime.settings.public_url.rstrip("/")
        fields = {
            "MessageSid": "SMcrisis1",
            "From": "+12025550101",
            "To": "+12025550100",
            "Body": "I took too many of my pills",
        }
        path = "/webhooks/twilio/default/sms"
        signature = RequestValidator(TOKEN).compute_signature(f"{public}{path}", fields)
        answer = httpx.post(
            f"{live_server}{path}",
            content=urlencode(fields),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": signature,
            },
        )
        assert answer.status_code == 200

        page.wait_for_selector("#urgent-banner", state="visible")
        page.click("tr[data-urgent=yes] a")
        thread = page.inner_text("#messages")
        assert "I took too many of my pills" in thread
        assert "988" in thread  # the crisis message went out at once
        sent = [parse_qs(r.body.decode())["Body"][0] for r in twilio.requests]
        assert any("988" in body for body in sent)

        page.fill("#reply-form textarea", "This is Sam from the practice. I'm calling you now.")
        page.click("#reply-form button[type=submit]")
        page.wait_for_selector("text=I'm calling you now.")
        assert "calling you now" in parse_qs(twilio.requests[-1].body.decode())["Body"][0]

        page.goto(f"{live_server}/outbox")
        assert "calling you now" in page.inner_text(".thread")

        page.goto(f"{live_server}/inbox")
        page.click("tr[data-urgent=yes] a")
        page.click("text=Hand back to the agent")
        page.wait_for_selector("text=Take over from the agent")
