"""`frontdesk webhooks …` and `frontdesk worker --once` delivering to a loopback endpoint."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from standardwebhooks import Webhook
from typer.testing import CliRunner, Result

from conftest import TEST_SECRET, make_settings
from frontdesk.adapters.db.models import Practice
from frontdesk.bootstrap import build_runtime
from frontdesk.cli import app
from frontdesk.config import Settings
from frontdesk.services import events
from webhook_receiver import receiving

Cli = Callable[..., Result]


@pytest.fixture
def cli(runtime: Any, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.chdir(tmp_path)
    env: dict[str, str | None] = {f"FRONTDESK_{n.upper()}": None for n in Settings.model_fields}
    env["FRONTDESK_DATABASE_URL"] = database_url
    env["FRONTDESK_SECRET_KEY"] = TEST_SECRET
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(app, list(args), env=env)

    return run


def ok(result: Result) -> Result:
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return result


def publish(database_url: str) -> str:
    runtime = build_runtime(make_settings(database_url))
    try:
        with runtime.transaction() as session:
            practice_id = session.scalars(select(Practice.id)).one()
            return events.publish(
                session, practice_id, "patient.opted_out", {"patient": {"id": 1}}
            ).message_id
    finally:
        runtime.dispose()


def test_add_list_deliver_and_redeliver_from_the_command_line(cli: Cli, database_url: str) -> None:
    with receiving() as receiver:
        added = ok(cli("webhooks", "add", receiver.url, "--events", "patient.opted_out"))
        secret = added.stdout.strip()
        assert secret.startswith("whsec_") and "shown once" in added.stderr
        [endpoint] = json.loads(ok(cli("webhooks", "list", "--json")).stdout)
        assert endpoint["url"] == receiver.url and endpoint["event_types"] == ["patient.opted_out"]
        assert "secret" not in endpoint and secret not in ok(cli("webhooks", "list")).stdout

        message_id = publish(database_url)
        report = json.loads(ok(cli("worker", "--once", "--json")).stdout)
        assert report["webhooks_delivered"] == 1
        [received] = receiver.received
        assert received.webhook_id == message_id
        Webhook(secret).verify(received.body, received.headers)

        listed = json.loads(ok(cli("webhooks", "deliveries", "--json")).stdout)
        [delivery] = listed["deliveries"]
        assert delivery["state"] == "delivered" and len(delivery["attempt_log"]) == 1
        ok(cli("webhooks", "deliveries"))
        ok(cli("webhooks", "redeliver", str(delivery["id"])))
        assert json.loads(ok(cli("worker", "--once", "--json")).stdout)["webhooks_delivered"] == 1
        assert receiver.ids() == [message_id, message_id]

        ok(cli("webhooks", "update", str(endpoint["id"]), "--disable"))
        [off] = json.loads(ok(cli("webhooks", "list", "--json")).stdout)
        assert off["enabled"] is False
        ok(cli("webhooks", "remove", str(endpoint["id"])))
        assert json.loads(ok(cli("webhooks", "list", "--json")).stdout) == []


def test_bad_input_exits_2_with_the_field(cli: Cli) -> None:
    result = cli("webhooks", "add", "ftp://nowhere.example")
    assert result.exit_code == 2
    assert "body.url" in result.stderr
    result = cli("webhooks", "add", "https://a.example/", "--events", "nope.never")
    assert result.exit_code == 2 and "unknown event type" in " ".join(result.stderr.split())
    assert cli("webhooks", "redeliver", "12345").exit_code == 2


def test_inbound_secret_is_printed_once(cli: Cli) -> None:
    first = ok(cli("webhooks", "inbound-secret")).stdout.strip()
    assert first.startswith("whsec_")
    second = json.loads(ok(cli("webhooks", "inbound-secret", "--json")).stdout)
    assert second["secret"] != first and second["url_path"] == "/webhooks/generic/default"
