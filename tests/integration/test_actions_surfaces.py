"""Custom actions through the CLI and the API, on both databases: validate with line and
column, store, list, switch on and off, start from the inbox, read a run step by step."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from frontdesk.bootstrap import Runtime
from frontdesk.services.actions import builtin_sources
from integration.action_support import seed
from integration.test_cli import Cli, cli, empty_database_url, failed, ok_json  # noqa: F401
from integration.test_reminders_flow import T0, Clock

BROKEN = "name: x\ntrigger: {event: nope}\nsteps:\n  - type: handoff\n    urgent: maybe\n"
GOOD = """name: call_back
trigger: {event: manual}
fields:
  - {name: channel, kind: channel, prompt: {en: "Email, text or WhatsApp?"}}
steps:
  - type: handoff
"""


def test_cli_validate_reports_every_error_with_line_and_column(
    cli: Cli,  # noqa: F811
    tmp_path: Path,
) -> None:
    spec = tmp_path / "broken.yaml"
    spec.write_text(BROKEN)
    result = cli("actions", "validate", spec)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith(f"{spec}: line 2, column 18: trigger.event: Input should be")
    assert lines[1].startswith(f"{spec}: line 5, column 13: steps[0].urgent:")
    as_json = ok_json(cli("actions", "validate", spec, "--json"), 2)
    assert [e["loc"] for e in as_json["errors"]] == [
        "line 2, column 18: trigger.event",
        "line 5, column 13: steps[0].urgent",
    ]
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    assert cli("actions", "validate", good).exit_code == 0


def test_cli_add_list_enable_disable_and_webhook(cli: Cli, tmp_path: Path) -> None:  # noqa: F811
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    assert cli("actions", "add", good).exit_code == 0
    rows = ok_json(cli("actions", "list", "--json"))
    assert [(r["name"], r["enabled"], r["fields"]) for r in rows] == [
        ("call_back", False, ["channel"])
    ]
    assert cli("actions", "enable", "call_back").exit_code == 0
    assert ok_json(cli("actions", "list", "--json"))[0]["enabled"] is True
    assert cli("actions", "disable", "call_back").exit_code == 0
    assert "no action named 'nope'" in failed(cli("actions", "enable", "nope"), 2)
    broken = tmp_path / "broken.yaml"
    broken.write_text(BROKEN)
    assert cli("actions", "add", broken).exit_code == 2
    made = cli("actions", "webhook", "--url", "https://ehr.example/hooks/", "--new-secret")
    assert made.exit_code == 0 and "https://ehr.example/hooks" in made.stdout
    assert "signing secret" in made.stdout
    assert ok_json(cli("actions", "runs", "--json")) == []


def test_api_validates_stores_starts_and_shows_runs(client: TestClient, runtime: Runtime) -> None:
    bad = client.post("/api/v1/actions/validate", json={"yaml": BROKEN})
    assert bad.status_code == 422
    assert [f["loc"] for f in bad.json()["error"]["fields"]] == [
        "line 2, column 18: trigger.event",
        "line 5, column 13: steps[0].urgent",
    ]
    assert client.put("/api/v1/actions", json={"yaml": BROKEN}).status_code == 422
    assert client.post("/api/v1/actions/validate", json={"yaml": GOOD}).json() == {
        "valid": True,
        "name": "call_back",
    }
    stored = client.put("/api/v1/actions", json={"yaml": GOOD, "enabled": True})
    assert stored.status_code == 200 and stored.json()["enabled"] is True
    for text in builtin_sources().values():
        assert client.put("/api/v1/actions", json={"yaml": text}).status_code == 200
    names = [a["name"] for a in client.get("/api/v1/actions").json()["items"]]
    assert names == ["call_back", "missed_session_followup", "no_show_reminder"]
    assert client.post("/api/v1/actions/call_back/disable").json()["enabled"] is False
    assert client.post("/api/v1/actions/nope/enable").status_code == 404
    seed(runtime, Clock(T0))
    missing = client.post("/api/v1/actions/call_back/start", json={})
    assert missing.status_code == 422
    started = client.post("/api/v1/actions/call_back/start", json={"patient_id": 1})
    assert started.status_code == 200, started.text
    run = started.json()
    assert run["state"] == "collecting"
    assert [s["kind"] for s in run["steps"]] == ["start", "ask"]
    assert client.get("/api/v1/actions/runs").json()["items"][0]["id"] == run["id"]
    shown = client.get(f"/api/v1/actions/runs/{run['id']}").json()
    assert shown["action"] == "call_back"
    assert client.get("/api/v1/actions/runs/999").status_code == 404
