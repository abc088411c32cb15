"""The web chat widget's API: sessions, messages, CORS limited to the practice's sites, rate
limits, and a thread that survives reloads."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from frontdesk.adapters.db.models import Conversation, Practice
from frontdesk.bootstrap import Runtime
from frontdesk.services import webchat

SITE = "https://harborlight.example"


def _allow_site(runtime: Runtime) -> None:
    with runtime.transaction() as session:
        practice = session.scalars(select(Practice)).one()
        webchat.set_widget_config(practice, {"allowed_origins": [SITE], "color": "#ffd966"})


def test_the_script_carries_the_practice_configuration(
    app_client: TestClient, runtime: Runtime
) -> None:
    _allow_site(runtime)
    script = app_client.get("/widget.js?practice=default")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("application/javascript")
    assert '"color": "#ffd966"' in script.text and '"practice": "default"' in script.text
    assert SITE not in script.text  # the allowed sites are not advertised
    assert app_client.get("/widget.js?practice=nope").status_code == 404


def test_cors_is_limited_to_the_practices_sites(app_client: TestClient, runtime: Runtime) -> None:
    _allow_site(runtime)
    allowed = app_client.post("/widget/api/default/sessions", headers={"Origin": SITE})
    assert allowed.status_code == 201
    assert allowed.headers["access-control-allow-origin"] == SITE
    preflight = app_client.options(
        "/widget/api/default/messages",
        headers={"Origin": SITE, "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 204
    assert "POST" in preflight.headers["access-control-allow-methods"]
    other = app_client.post(
        "/widget/api/default/sessions", headers={"Origin": "https://evil.example"}
    )
    assert other.status_code == 403
    assert "access-control-allow-origin" not in other.headers


def test_a_visitor_chats_and_the_thread_survives_a_reload(
    app_client: TestClient, runtime: Runtime
) -> None:
    started = app_client.post("/widget/api/default/sessions").json()
    token = started["token"]
    [greeting] = started["messages"]
    assert greeting["from"] == "assistant" and "automated assistant" in greeting["text"]

    sent = app_client.post("/widget/api/default/messages", json={"token": token, "text": "hello"})
    assert sent.status_code == 202
    # A reload: the widget asks for the history with its stored token.
    history = app_client.get(f"/widget/api/default/messages?token={token}").json()
    assert [m["from"] for m in history["messages"]] == ["assistant", "visitor", "assistant"]
    assert history["messages"][1]["text"] == "hello"
    assert history["person_joined"] is False
    newer = app_client.get(
        f"/widget/api/default/messages?token={token}&after={history['messages'][1]['id']}"
    ).json()
    assert len(newer["messages"]) == 1

    assert app_client.get("/widget/api/default/messages?token=wc_forged").status_code == 404
    with runtime.transaction() as session:
        conversation = session.scalars(select(Conversation)).one()
        assert conversation.channel == "webchat" and token not in (
            conversation.address_lookup or ""
        )


def test_visitors_are_rate_limited_and_bad_input_is_a_clear_4xx(app_client: TestClient) -> None:
    token = app_client.post("/widget/api/default/sessions").json()["token"]
    assert (
        app_client.post(
            "/widget/api/default/messages", json={"token": token, "text": " "}
        ).status_code
        == 422
    )
    codes = [
        app_client.post(
            "/widget/api/default/messages", json={"token": token, "text": f"message {i}"}
        ).status_code
        for i in range(webchat.RATE_LIMIT + 1)
    ]
    assert codes[:-1] == [202] * webchat.RATE_LIMIT
    assert codes[-1] == 429


def test_widget_settings_are_validated(runtime: Runtime) -> None:
    with runtime.transaction() as session:
        practice = session.scalars(select(Practice)).one()
        try:
            webchat.set_widget_config(
                practice, {"color": "red", "allowed_origins": ["ftp://x", "https://ok.example/"]}
            )
        except webchat.ValidationFailed as exc:
            assert {e.loc for e in exc.errors} == {"color", "allowed_origins[0]"}
        else:
            raise AssertionError("invalid settings were accepted")


def test_widget_settings_over_the_api(client: TestClient) -> None:
    changed = client.patch("/api/v1/widget", json={"greeting": "Hello!", "language": "es"})
    assert changed.status_code == 200, changed.text
    assert client.get("/api/v1/widget").json()["greeting"] == "Hello!"
    bad = client.patch("/api/v1/widget", json={"colour": "#000000"})
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["loc"] == "colour"
