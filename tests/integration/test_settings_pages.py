"""The admin settings pages over HTTP: each renders for an admin and refuses the front desk,
saves valid input through the services, shows field errors inline (never a 500 or JSON), keeps
secrets out of the HTML after saving, and refuses a form without its CSRF token. The audit log
lists, filters and exports what they did, with the browser's address."""

from __future__ import annotations

import csv
import io

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from conftest import make_settings
from frontdesk.adapters.db.channel_models import MessageTemplate
from frontdesk.adapters.db.models import ApiKey, AuditEvent, Practice
from frontdesk.bootstrap import Runtime
from frontdesk.config import Settings
from frontdesk.services import dashboard, handoff, reminders, templates, webchat
from staff_support import FAST_HASHING, add_staff, signed_in

PAGES = [
    "/settings/practice",
    "/settings/reminders",
    "/settings/templates",
    "/settings/templates/reminder/sms/en",
    "/settings/channels",
    "/settings/knowledge",
    "/settings/on-call",
    "/settings/api-keys",
    "/settings/webhooks",
    "/settings/widget",
    "/settings/audit",
]
TWILIO_TOKEN = "f00dfacecafebeef0123456789abcdef"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, **FAST_HASHING)


@pytest.fixture
def admin(app_client: TestClient, runtime: Runtime) -> str:
    add_staff(runtime, "admin@example.com", role="admin")
    return signed_in(app_client, "admin@example.com")


def _practice(runtime: Runtime) -> Practice:
    with runtime.transaction() as session:
        practice = session.scalars(select(Practice)).one()
        session.expunge(practice)
        return practice


def test_every_page_renders_for_an_admin_and_not_for_the_front_desk(
    app_client: TestClient, runtime: Runtime, admin: str
) -> None:
    for path in PAGES:
        page = app_client.get(path)
        assert page.status_code == 200, (path, page.text[:500])
        assert 'href="/settings"' in page.text  # the nav's Settings link, for admins
        assert "Inbox" in page.text and "sign out" in page.text  # the nav and the staff bar
    assert app_client.get("/settings", follow_redirects=False).headers["location"] == (
        "/settings/practice"
    )
    app_client.cookies.clear()
    add_staff(runtime, "desk@example.com", role="front_desk")
    desk = signed_in(app_client, "desk@example.com")
    assert 'href="/settings"' not in app_client.get("/inbox").text
    for path in PAGES:
        page = app_client.get(path, headers={"accept": "text/html"})
        assert page.status_code == 403, path
    refused = app_client.post("/settings/practice", data={"name": "X", "csrf_token": desk})
    assert refused.status_code == 403
    assert _practice(runtime).name != "X"


def test_a_form_without_its_csrf_token_is_refused(
    app_client: TestClient, runtime: Runtime, admin: str
) -> None:
    for path, data in [
        ("/settings/practice", {"name": "Changed"}),
        ("/settings/api-keys", {"name": "robot"}),
        ("/settings/practice/privacy", {}),
    ]:
        assert app_client.post(path, data=data).status_code == 403
        assert app_client.post(path, data={**data, "csrf_token": "wrong"}).status_code == 403
    assert _practice(runtime).name != "Changed"
    with runtime.transaction() as session:
        assert session.scalars(select(ApiKey)).all() == []


def test_profile_and_privacy_save_and_show_field_errors(
    app_client: TestClient, runtime: Runtime, admin: str
) -> None:
    bad = app_client.post(
        "/settings/practice",
        data={
            "name": "Sunrise Therapy",
            "timezone": "Mars/Olympus",
            "email": "not an email",
            "booking_url": "ftp://x",
            "csrf_token": admin,
        },
    )
    assert bad.status_code == 422 and "text/html" in bad.headers["content-type"]
    assert 'id="err-timezone"' in bad.text and "unknown IANA timezone" in bad.text
    assert 'id="err-booking_url"' in bad.text and 'id="err-email"' in bad.text
    assert 'value="Mars/Olympus"' in bad.text  # what was typed stays in the form
    assert _practice(runtime).name == "My Practice"  # nothing half-saved

    ok = app_client.post(
        "/settings/practice",
        data={
            "name": "Sunrise Therapy",
            "timezone": "America/Chicago",
            "phone": "(202) 555-0100",
            "email": "hello@sunrise.example",
            "booking_url": "https://sunrise.example/book",
            "csrf_token": admin,
        },
    )
    assert ok.status_code == 200 and "Saved the practice profile" in ok.text
    practice = _practice(runtime)
    assert (practice.name, practice.timezone, practice.phone) == (
        "Sunrise Therapy",
        "America/Chicago",
        "+12025550100",
    )

    hidden = app_client.post(
        "/settings/practice/privacy", data={"show_clinician_name": "true", "csrf_token": admin}
    )
    assert hidden.status_code == 200
    assert templates.privacy(_practice(runtime)) == {
        "show_practice_name": False,
        "show_clinician_name": True,
    }
    preview = app_client.get("/settings/templates/reminder/sms/en").text
    assert "Your care team" in preview and "Sunrise Therapy</div>" not in preview


def test_reminder_policy_json_with_inline_errors(
    app_client: TestClient, runtime: Runtime, admin: str
) -> None:
    page = app_client.get("/settings/reminders").text
    assert "stages" in page or "{" in page
    broken = app_client.post("/settings/reminders", data={"policy": "{nope", "csrf_token": admin})
    assert broken.status_code == 422 and "not valid JSON" in broken.text
    assert "{nope" in broken.text
    wrong = app_client.post(
        "/settings/reminders", data={"policy": '{"no_such_field": 1}', "csrf_token": admin}
    )
    assert wrong.status_code == 422 and 'class="field-error"' in wrong.text
    current = reminders.policy_for(_practice(runtime), runtime.settings.reminder_policy)
    saved = app_client.post(
        "/settings/reminders",
        data={"policy": current.model_dump_json(), "csrf_token": admin},
    )
    assert saved.status_code == 200 and "Saved the reminder policy" in saved.text
    assert reminders.POLICY_KEY in (_practice(runtime).settings or {})


def test_template_editor_previews_saves_and_resets(
    app_client: TestClient, runtime: Runtime, admin: str
) -> None:
    base = "/settings/templates/reminder/sms/en"
    listing = app_client.get("/settings/templates").text
    assert f'href="{base}"' in listing
    editor = app_client.get(base).text
    assert 'hx-post="/settings/templates/reminder/sms/en/preview"' in editor
    assert "SMS segment" in editor

    preview = app_client.post(
        f"{base}/preview", data={"body": "Hi {{ first_name }}: " + "ą" * 80, "csrf_token": admin}
    )
    assert preview.status_code == 200 and "Hi Alex:" in preview.text
    assert "2 SMS segments" in preview.text and "UCS-2" in preview.text.upper()
    broken = app_client.post(
        f"{base}/preview", data={"body": "Hi {{ nobody }}", "csrf_token": admin}
    )
    assert broken.status_code == 200 and "field-error" in broken.text and "nobody" in broken.text

    refused = app_client.post(base, data={"body": "{{ ''.__class__ }}", "csrf_token": admin})
    assert refused.status_code == 422 and 'id="err-body"' in refused.text
    saved = app_client.post(
        base, data={"body": "See you {{ when }}, {{ first_name }}.", "csrf_token": admin}
    )
    assert saved.status_code == 200 and "Saved" in saved.text and "own wording" in saved.text
    with runtime.transaction() as session:
        row = session.scalars(select(MessageTemplate)).one()
        assert row.body == "See you {{ when }}, {{ first_name }}."
    assert "own wording" in app_client.get("/settings/templates").text
    reset = app_client.post(f"{base}/reset", data={"csrf_token": admin})
    assert reset.status_code == 200 and "Back to frontdesk" in reset.text
    with runtime.transaction() as session:
        assert session.scalars(select(MessageTemplate)).all() == []
    assert app_client.get("/settings/templates/nothing/sms/en").status_code == 404


def test_channel_secrets_are_masked_and_a_blank_secret_keeps_the_stored_one(
    app_client: TestClient, runtime: Runtime, admin: str
) -> None:
    form = {
        "account_sid": "AC" + "0" * 32,
        "auth_token": TWILIO_TOKEN,
        "from_number": "+15005550006",
        "csrf_token": admin,
    }
    missing = app_client.post("/settings/channels/sms/twilio", data={**form, "account_sid": "nope"})
    assert missing.status_code == 422 and 'id="err-account_sid"' in missing.text
    assert TWILIO_TOKEN not in missing.text  # not even echoed back in the failed form

    saved = app_client.post("/settings/channels/sms/twilio", data=form)
    assert saved.status_code == 200 and "Saved the sms account" in saved.text
    assert TWILIO_TOKEN not in saved.text and "…cdef" in saved.text
    assert TWILIO_TOKEN not in app_client.get("/settings/channels").text

    # Change a setting, leave the secret blank: the stored token is kept.
    again = app_client.post(
        "/settings/channels/sms/twilio",
        data={**form, "auth_token": "", "from_number": "+15005550007"},
    )
    assert again.status_code == 200, again.text
    with runtime.transaction() as session:
        from frontdesk.services import channel_accounts

        found = channel_accounts.account(session, runtime.cipher, _practice(runtime).id, "sms")
        assert found is not None and found[0] == "twilio"
        settings = found[1]
        assert settings is not None
        assert settings.auth_token.get_secret_value() == TWILIO_TOKEN  # type: ignore[attr-defined]
        assert settings.from_number == "+15005550007"  # type: ignore[attr-defined]
    assert TWILIO_TOKEN not in again.text


def test_knowledge_upload_shows_each_documents_status(
    app_client: TestClient, runtime: Runtime, admin: str
) -> None:
    uploaded = app_client.post(
        "/settings/knowledge",
        data={"csrf_token": admin},
        files=[
            (
                "files",
                ("parking.md", b"# Parking\n\nPark behind the building, spot 4.", "text/markdown"),
            ),
            ("files", ("broken.pdf", b"not a pdf at all", "application/pdf")),
        ],
    )
    assert uploaded.status_code == 200, uploaded.text
    assert "parking.md: added" in uploaded.text and "broken.pdf: failed" in uploaded.text
    assert 'data-status="ready"' in uploaded.text and 'data-status="failed"' in uploaded.text
    nothing = app_client.post("/settings/knowledge", data={"csrf_token": admin})
    assert nothing.status_code == 422 and "choose at least one file" in nothing.text
    page = app_client.get("/settings/knowledge").text
    doc_id = page.split("/settings/knowledge/")[1].split("/remove")[0]
    removed = app_client.post(f"/settings/knowledge/{doc_id}/remove", data={"csrf_token": admin})
    assert removed.status_code == 200 and "Removed" in removed.text


def test_on_call_list_keeps_masked_addresses(
    app_client: TestClient, runtime: Runtime, admin: str
) -> None:
    added = app_client.post(
        "/settings/on-call",
        data={"name_0": "Dana", "phone_0": "(202) 555-0199", "csrf_token": admin},
    )
    assert added.status_code == 200 and "…0199" in added.text
    assert "5550199" not in added.text
    bad = app_client.post(
        "/settings/on-call",
        data={"name_0": "Dana", "name_1": "Eli", "email_1": "nope", "csrf_token": admin},
    )
    assert bad.status_code == 422 and "on_call[1].email" in bad.text
    renamed = app_client.post("/settings/on-call", data={"name_0": "Dana R.", "csrf_token": admin})
    assert renamed.status_code == 200
    practice = _practice(runtime)
    assert handoff.on_call_view(practice, runtime.cipher) == [
        {"name": "Dana R.", "phone": "…0199", "email": ""}
    ]
    gone = app_client.post(
        "/settings/on-call", data={"name_0": "x", "remove_0": "1", "csrf_token": admin}
    )
    assert gone.status_code == 200
    assert handoff.on_call_view(_practice(runtime), runtime.cipher) == []


def test_api_keys_are_shown_once_and_can_be_revoked(
    app_client: TestClient, runtime: Runtime, admin: str
) -> None:
    empty = app_client.post("/settings/api-keys", data={"name": " ", "csrf_token": admin})
    assert empty.status_code == 422 and 'id="err-name"' in empty.text
    created = app_client.post("/settings/api-keys", data={"name": "EHR sync", "csrf_token": admin})
    assert created.status_code == 200 and created.headers["cache-control"] == "no-store"
    token = created.text.split('id="one-time-secret">')[1].split("<")[0]
    assert token.startswith("fdk_")
    assert (
        app_client.get(
            "/api/v1/appointments", headers={"authorization": f"Bearer {token}"}
        ).status_code
        == 200
    )
    listing = app_client.get("/settings/api-keys").text
    assert token not in listing and "EHR sync" in listing
    prefix = token.split("_")[1]
    revoked = app_client.post(f"/settings/api-keys/{prefix}/revoke", data={"csrf_token": admin})
    assert revoked.status_code == 200 and "revoked" in revoked.text
    assert (
        app_client.get(
            "/api/v1/appointments", headers={"authorization": f"Bearer {token}"}
        ).status_code
        == 401
    )


def test_webhook_endpoints_secret_once_toggle_and_delete(
    app_client: TestClient, runtime: Runtime, admin: str
) -> None:
    bad = app_client.post(
        "/settings/webhooks",
        data={"url": "http://example.com/hook", "event_types": ["nope"], "csrf_token": admin},
    )
    assert (
        bad.status_code == 422 and 'id="err-url"' in bad.text and 'id="err-event_types"' in bad.text
    )
    created = app_client.post(
        "/settings/webhooks",
        data={
            "url": "https://example.com/hook",
            "event_types": ["appointment.confirmed"],
            "csrf_token": admin,
        },
    )
    assert created.status_code == 200
    secret = created.text.split('id="one-time-secret">')[1].split("<")[0]
    assert secret.startswith("whsec_")
    listing = app_client.get("/settings/webhooks").text
    assert secret not in listing and "https://example.com/hook" in listing
    endpoint_id = listing.split('class="endpoint" data-id="')[1].split('"')[0]
    off = app_client.post(
        f"/settings/webhooks/{endpoint_id}/enabled", data={"enabled": "false", "csrf_token": admin}
    )
    assert off.status_code == 200 and "disabled" in off.text
    deleted = app_client.post(
        f"/settings/webhooks/{endpoint_id}/delete", data={"csrf_token": admin}
    )
    assert deleted.status_code == 200 and "No endpoints" in deleted.text


def test_widget_and_prices(app_client: TestClient, runtime: Runtime, admin: str) -> None:
    bad = app_client.post(
        "/settings/widget",
        data={
            "title": "Chat",
            "color": "blue",
            "language": "fr",
            "allowed_origins": "nope",
            "csrf_token": admin,
        },
    )
    assert (
        bad.status_code == 422 and 'id="err-color"' in bad.text and 'id="err-language"' in bad.text
    )
    ok = app_client.post(
        "/settings/widget",
        data={
            "title": "Chat with us",
            "greeting": "Hello!",
            "color": "#123456",
            "language": "es",
            "allowed_origins": "https://sunrise.example\nhttps://www.sunrise.example/",
            "csrf_token": admin,
        },
    )
    assert ok.status_code == 200
    config = webchat.widget_config(_practice(runtime))
    assert config.color == "#123456" and config.allowed_origins == (
        "https://sunrise.example",
        "https://www.sunrise.example",
    )
    wrong = app_client.post(
        "/settings/prices", data={"sms_segment": "-1", "email": "x", "csrf_token": admin}
    )
    assert (
        wrong.status_code == 422
        and 'id="err-sms_segment"' in wrong.text
        and 'id="err-email"' in wrong.text
    )
    priced = app_client.post("/settings/prices", data={"sms_segment": "0.01", "csrf_token": admin})
    assert priced.status_code == 200
    assert dashboard.prices_of(_practice(runtime))["sms_segment"] == 0.01


def test_audit_log_lists_filters_and_exports_with_the_address(
    app_client: TestClient, runtime: Runtime, admin: str
) -> None:
    app_client.post("/settings/practice", data={"name": "Sunrise", "csrf_token": admin})
    app_client.post("/settings/api-keys", data={"name": "robot", "csrf_token": admin})
    page = app_client.get("/settings/audit")
    assert page.status_code == 200
    assert (
        'data-action="practice.updated"' in page.text
        and 'data-action="api_key.created"' in page.text
    )
    assert "testclient" in page.text  # the browser's address (TestClient's is 'testclient')
    only = app_client.get("/settings/audit?action=api_key").text
    assert 'data-action="api_key.created"' in only and 'data-action="practice.updated"' not in only
    assert (
        'data-action="practice.updated"' not in app_client.get("/settings/audit?actor=nobody").text
    )
    assert "No events match" in app_client.get("/settings/audit?since=2999-01-01").text
    bad = app_client.get("/settings/audit?since=yesterday")
    assert bad.status_code == 422 and 'id="err-since"' in bad.text

    exported = app_client.get("/settings/audit.csv?action=practice")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [r["action"] for r in rows] == ["practice.updated"]
    assert rows[0]["actor"] == "staff:admin@example.com" and rows[0]["ip"] == "testclient"
    with runtime.transaction() as session:
        actions = set(session.scalars(select(AuditEvent.action)))
    assert "audit.exported" in actions


def test_opening_a_thread_is_audited_without_phi(
    app_client: TestClient, runtime: Runtime, admin: str
) -> None:
    from datetime import timedelta

    from frontdesk.adapters.db.models import Conversation
    from frontdesk.domain.times import now_utc
    from integration.test_handoff import _receive
    from integration.test_reminders_flow import Clock, put

    clock = Clock(now_utc() - timedelta(minutes=5))
    put(runtime, clock, clock.now + timedelta(days=2), announce=False)
    _receive(runtime, clock, "other: is there parking?", "SM1")
    with runtime.transaction() as session:
        conversation_id = session.scalars(select(Conversation.id)).one()
    assert app_client.get(f"/inbox/{conversation_id}").status_code == 200
    with runtime.transaction() as session:
        viewed = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "conversation.viewed")
        ).one()
        assert (viewed.actor, viewed.entity_type, viewed.entity_id) == (
            "staff:admin@example.com",
            "conversation",
            conversation_id,
        )
        assert viewed.details == {"ip": "testclient"}
    log = app_client.get("/settings/audit?action=conversation.viewed").text
    assert 'data-action="conversation.viewed"' in log and "Avery" not in log


def test_the_actions_editor_shows_errors_with_line_and_column(
    app_client: TestClient, runtime: Runtime
) -> None:
    add_staff(runtime, "boss@example.com", role="admin")
    csrf = signed_in(app_client, "boss@example.com")
    broken = "name: broken\ntrigger:\n  event: nope\nsteps: []\n"
    page = app_client.post("/settings/actions", data={"source": broken, "csrf_token": csrf})
    assert page.status_code == 422
    assert "line 3, column" in page.text
    good = (
        "name: say_hello\n"
        "description: greet\n"
        "trigger:\n  event: manual\n"
        "steps:\n  - type: handoff\n    reason: action\n"
    )
    saved = app_client.post(
        "/settings/actions", data={"source": good, "csrf_token": csrf, "enabled": "1"}
    )
    assert saved.status_code == 200, saved.text
    assert "Saved say_hello" in saved.text
    off = app_client.post(
        "/settings/actions/say_hello/enabled", data={"enabled": "0", "csrf_token": csrf}
    )
    assert "say_hello is off" in off.text
