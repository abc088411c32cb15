"""The demo practice ships the built-in actions switched on, with a signing secret, and a
re-seed keeps what the practice changed."""

from __future__ import annotations

from datetime import UTC, datetime

from frontdesk.bootstrap import Runtime
from frontdesk.services import actions, practices
from frontdesk.services.demo import seed_demo


def test_the_demo_has_the_built_in_actions_on(runtime: Runtime) -> None:
    now = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
    with runtime.transaction() as session:
        practice = practices.resolve_practice(session, "default")
        seed_demo(session, runtime.cipher, practice, now, runtime.settings.reminder_policy)
        rows = actions.list_actions(session, practice)
        assert [(r["name"], r["enabled"]) for r in rows] == [
            ("missed_session_followup", False),
            ("no_show_reminder", True),
        ]
        assert practice.settings["action_webhook_secret"]
        assert practice.settings["action_webhook_url"] == actions.DEMO_RECEIVER_URL
        actions.set_enabled(session, practice, "no_show_reminder", False, actor="test")
    with runtime.transaction() as session:
        practice = practices.resolve_practice(session, "default")
        seed_demo(session, runtime.cipher, practice, now, runtime.settings.reminder_policy)
        enabled = {r["name"]: r["enabled"] for r in actions.list_actions(session, practice)}
        assert enabled["no_show_reminder"] is False
