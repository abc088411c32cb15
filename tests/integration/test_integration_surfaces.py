"""`frontdesk integrations …` and `/api/v1/integrations`: configure, list (never a secret), sync,
remove; field-level errors for bad input."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner, Result

from conftest import TEST_SECRET, new_api_key
from frontdesk.adapters.db.scheduler_models import Integration
from frontdesk.bootstrap import Runtime
from frontdesk.cli import app
from frontdesk.config import Settings
from scheduler_fakes import fake_schedulers, fhir_appointment, fhir_patient


@pytest.fixture
def cli(
    runtime: Runtime, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Any:
    monkeypatch.chdir(tmp_path)
    env: dict[str, str | None] = {f"FRONTDESK_{n.upper()}": None for n in Settings.model_fields}
    env["FRONTDESK_DATABASE_URL"] = database_url
    env["FRONTDESK_SECRET_KEY"] = TEST_SECRET
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(app, list(args), env=env)

    return run


def ok(result: Result) -> Any:
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return json.loads(result.stdout) if result.stdout.strip().startswith(("[", "{")) else None


def test_the_command_line_configures_and_syncs(cli: Any, runtime: Runtime) -> None:
    view = ok(cli("integrations", "set-calendly", "--signing-key", "k" * 20, "--json"))
    assert view["kind"] == "calendly" and view["secret_set"] is True
    ok(cli("integrations", "set-calcom", "--secret", "s" * 20, "--json"))
    with fake_schedulers() as (base, state):
        state.put(fhir_patient("p1", "Ann Lee", "+14155550101"))
        state.put(fhir_appointment("a1", "p1", datetime.now(UTC) + timedelta(days=2)))
        added = ok(cli("integrations", "add-fhir", f"{base}/fhir", "--token", "tok-123", "--json"))
        assert (added["source"], added["endpoint"], added["token_set"]) == ("fhir", base, True)
        synced = ok(cli("integrations", "sync", "--json"))
        assert synced["polls"][0]["state"] == "synced"
        assert synced["polls"][0]["summary"]["created"] == 2
    listed = ok(cli("integrations", "list", "--json"))
    assert [v["source"] for v in listed] == ["calcom", "calendly", "fhir"]
    text = json.dumps(listed)
    assert "k" * 20 not in text and "tok-123" not in text and "s" * 20 not in text
    with runtime.transaction() as session:
        sealed = " ".join(
            f"{r.secret_sealed} {r.token_sealed}" for r in session.scalars(select(Integration))
        )
    assert "k" * 20 not in sealed and "tok-123" not in sealed
    assert ok(cli("integrations", "writebacks", "--json")) == []
    ok(cli("integrations", "remove", "fhir"))
    assert len(ok(cli("integrations", "list", "--json"))) == 2


def test_bad_input_on_the_command_line_names_the_field(cli: Any) -> None:
    result = cli("integrations", "add-ics", "ftp://example.com/x.ics")
    assert result.exit_code == 2
    assert "url: must be an http(s) URL" in " ".join(result.stderr.split())
    result = cli("integrations", "set-calcom", "--secret", "short")
    assert result.exit_code == 2 and "secret" in result.stderr
    result = cli("integrations", "sync", "nothing-here")
    assert result.exit_code == 2


def test_the_api_configures_integrations(client: TestClient, runtime: Runtime) -> None:
    answer = client.put("/api/v1/integrations/calendly", json={"signing_key": "k" * 20})
    assert answer.status_code == 200 and answer.json()["secret_set"] is True
    answer = client.post(
        "/api/v1/integrations/ics",
        json={"url": "https://calendar.example/private/abc123/basic.ics", "interval_seconds": 600},
    )
    assert answer.status_code == 201
    assert answer.json()["endpoint"] == "https://calendar.example"
    listed = client.get("/api/v1/integrations").json()
    assert [v["source"] for v in listed] == ["calendly", "ics"]
    assert "abc123" not in json.dumps(listed)
    bad = client.post("/api/v1/integrations/fhir", json={"url": "not a url at all"})
    assert bad.status_code == 422
    assert bad.json()["error"]["fields"] == [{"loc": "url", "message": "must be an http(s) URL"}]
    bad = client.post("/api/v1/integrations/fhir", json={"url": "https://x.example", "x": 1})
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["loc"] == "body.x"
    taken = client.post(
        "/api/v1/integrations/ics", json={"url": "https://b.example/f.ics", "source": "ics"}
    )
    assert taken.status_code == 422 and taken.json()["error"]["fields"][0]["loc"] == "source"
    assert client.post("/api/v1/integrations/calendly/sync").status_code == 422
    assert client.delete("/api/v1/integrations/ics").status_code == 204
    assert client.delete("/api/v1/integrations/ics").status_code == 404
    assert client.get("/api/v1/integrations/writebacks").json() == []


def test_the_integrations_api_needs_a_key_and_write_access(
    app_client: TestClient, runtime: Runtime
) -> None:
    assert app_client.get("/api/v1/integrations").status_code == 401
    reader = new_api_key(runtime, "default", can_write=False)
    headers = {"Authorization": f"Bearer {reader}"}
    assert app_client.get("/api/v1/integrations", headers=headers).status_code == 200
    answer = app_client.put(
        "/api/v1/integrations/calcom", json={"secret": "s" * 20}, headers=headers
    )
    assert answer.status_code == 403
