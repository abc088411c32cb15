"""The outbox and the staff inbox in a real browser: a patient's reply typed on the outbox page
confirms their appointment; an urgent handoff appears live in an open inbox, with its banner."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from frontdesk.bootstrap import Runtime
from frontdesk.domain.times import now_utc
from integration.test_handoff import _receive
from integration.test_reminders_flow import Clock, dispatcher, drain, put, three_days_out_in_daytime
from integration.test_replies import _outbox

pytestmark = pytest.mark.browser


def _reminded(runtime: Runtime) -> None:
    now = now_utc()
    start = three_days_out_in_daytime(now)
    clock = Clock(now - timedelta(hours=1))
    put(runtime, clock, start, announce=False)
    clock.now = start - timedelta(hours=72) + timedelta(minutes=1)
    drain(dispatcher(runtime, clock, _outbox(runtime)))


def test_a_patient_confirms_from_the_outbox_page(
    staff_page: Any, live_server: str, live_runtime: Runtime
) -> None:
    page = staff_page
    _reminded(live_runtime)
    page.goto(f"{live_server}/outbox")
    assert "reminder of your appointment" in page.inner_text(".thread")
    page.fill("textarea[name=text]", "C")
    page.click("text=Send as patient")
    page.wait_for_selector("text=Thanks, you're confirmed")
    firsts = [b.strip().split("\n")[0] for b in page.locator(".msg").all_inner_texts()]
    # The patient's "C", then the receipt (the reminder's place depends on the send clock).
    assert firsts.index("C") < next(i for i, t in enumerate(firsts) if t.startswith("Thanks"))

    page.goto(f"{live_server}/inbox")
    page.click("text=Avery")
    assert "confirmed" in page.inner_text(".appointment")


def test_an_urgent_handoff_appears_live_with_a_banner(
    staff_page: Any, live_server: str, live_runtime: Runtime
) -> None:
    page = staff_page
    clock = Clock(now_utc())
    put(live_runtime, clock, clock.now + timedelta(days=3), announce=False)
    _receive(live_runtime, clock, "other: hello", "SM1")
    page.goto(f"{live_server}/inbox")
    page.wait_for_selector("#live:has-text('live')")
    assert page.locator("tr[data-urgent=yes]").count() == 0
    assert not page.is_visible("#urgent-banner")

    _receive(live_runtime, clock, "crisis: …", "SM2")
    page.wait_for_selector("#urgent-banner", state="visible")
    page.wait_for_selector("tr[data-urgent=yes]")
    assert "URGENT" in page.inner_text("tr[data-urgent=yes]")
    assert page.title().startswith("(URGENT)")

    page.click("tr[data-urgent=yes] a")
    page.click("#acknowledge")
    page.wait_for_selector("#acknowledge", state="detached")
    page.goto(f"{live_server}/inbox")
    assert page.locator("tr[data-urgent=yes]").count() == 0
