"""The template editor in a real browser: typing updates the preview and the SMS segment count
live (htmx), a broken draft shows why, and saving keeps the wording."""

from __future__ import annotations

from typing import Any

import pytest

from frontdesk.bootstrap import Runtime
from staff_support import PASSWORD, add_staff

pytestmark = pytest.mark.browser


def test_the_template_preview_follows_typing(
    page: Any, live_server: str, live_runtime: Runtime
) -> None:
    add_staff(live_runtime, "admin@example.com", role="admin")
    page.goto(f"{live_server}/login")
    page.fill("input[name=email]", "admin@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server}/")

    page.goto(f"{live_server}/inbox")
    page.click("nav.top >> text=Settings")
    page.wait_for_url(f"{live_server}/settings/practice")
    page.goto(f"{live_server}/settings/templates/reminder/sms/en")
    page.fill("textarea[name=body]", "Hello {{ first_name }}, see you {{ when }}.")
    page.wait_for_selector("#preview-body:has-text('Hello Alex, see you')")
    assert "1 SMS segment" in page.inner_text("#sms-length")

    page.fill("textarea[name=body]", "Hi {{ first_name }} " + "ą" * 80)
    page.wait_for_selector("#sms-length:has-text('2 SMS segments')")

    page.fill("textarea[name=body]", "Hi {{ nobody }}")
    page.wait_for_selector("#preview .field-error:has-text('nobody')")

    page.fill("textarea[name=body]", "Hello {{ first_name }}!")
    page.wait_for_selector("#preview-body:has-text('Hello Alex!')")
    page.click("#template-form button[type=submit]")
    page.wait_for_selector("text=Saved. New messages use this wording.")
    assert page.input_value("textarea[name=body]") == "Hello {{ first_name }}!"
