"""The reminder policy API, the dry-run plan, and /metrics — on both databases."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from conftest import TEST_SECRET
from frontdesk.adapters.db.models import Reminder
from frontdesk.bootstrap import Runtime
from frontdesk.cli import app as cli_app
from frontdesk.web.app import create_app


def noon_in_new_york(days_ahead: int) -> datetime:
    """A start at 12:00 New York time, so no stage falls in the patient's quiet hours."""
    day = (datetime.now(UTC) + timedelta(days=days_ahead)).date()
    return datetime(day.year, day.month, day.day, 17, 0, tzinfo=UTC)


def book(client: TestClient, start: datetime, external_id: str = "a1", **extra: Any) -> None:
    body = {
        "patient": {"external_id": "p1", "name": "Avery", "phone": "+12025550101"},
        "start": start.isoformat(),
        **extra,
    }
    response = client.put(f"/api/v1/appointments/ehr/{external_id}", json=body)
    assert response.status_code in (200, 201), response.text


def test_policy_defaults_then_practice_policy_replans_upcoming(
    client: TestClient, runtime: Runtime
) -> None:
    got = client.get("/api/v1/reminder-policy").json()
    assert got["practice_specific"] is False
    assert [s["offset"] for s in got["policy"]["stages"]] == ["-72h", "-24h", "-2h"]

    start = noon_in_new_york(6)
    book(client, start)
    new_policy = {
        "stages": [{"offset": "-48h", "condition": "always"}],
        "max_per_day": 2,
        "max_per_week": 4,
    }
    response = client.put("/api/v1/reminder-policy", json=new_policy)
    assert response.status_code == 200, response.text
    assert response.json()["replanned"] == 1
    assert client.get("/api/v1/reminder-policy").json()["practice_specific"] is True
    with runtime.transaction() as session:
        scheduled = {
            r.stage: r.due_at
            for r in session.scalars(select(Reminder).where(Reminder.state == "scheduled"))
        }
        cancelled = {
            r.stage for r in session.scalars(select(Reminder).where(Reminder.state == "cancelled"))
        }
    assert scheduled["-48h"] == start - timedelta(hours=48)
    assert {"-72h", "-24h", "-2h"} <= cancelled


def test_a_bad_policy_is_422_with_paths_and_changes_nothing(client: TestClient) -> None:
    bad = {
        "stages": [{"offset": "+2h"}],
        "quiet_hours_start": "22:00",
        "quiet_hours_end": "08:00",
        "surprise": True,
    }
    response = client.put("/api/v1/reminder-policy", json=bad)
    assert response.status_code == 422
    locs = {f["loc"] for f in response.json()["error"]["fields"]}
    assert "body.stages.0.offset" in locs and "body.surprise" in locs
    assert client.get("/api/v1/reminder-policy").json()["practice_specific"] is False


def test_reminders_plan_cli_prints_the_schedule_as_json(
    client: TestClient, database_url: str
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    start = noon_in_new_york(5)
    book(client, start, "soon")
    book(client, now + timedelta(minutes=50), "late")  # a late booking
    result = CliRunner().invoke(
        cli_app,
        [
            "reminders",
            "plan",
            "--from",
            (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S"),
            "--to",
            (now + timedelta(days=10)).strftime("%Y-%m-%dT%H:%M:%S"),
            "--json",
        ],
        env={"FRONTDESK_DATABASE_URL": database_url, "FRONTDESK_SECRET_KEY": TEST_SECRET},
    )
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    by_key = {(p["external_id"], p["stage"]): p for p in plan}
    soon = by_key[("soon", "-24h")]
    assert soon["action"] == "send" and soon["channel"] == "sms"
    assert soon["due_at"] == (start - timedelta(hours=24)).isoformat().replace("+00:00", "Z")
    assert {"source", "external_id", "stage", "channel", "due_at", "action", "reason"} <= set(soon)
    late = by_key[("late", "-72h")]
    assert late["action"] == "skip" and late["reason"] == "booked too late for this reminder"


def test_metrics_expose_reminders_by_state_and_channel(
    client: TestClient, runtime: Runtime
) -> None:
    book(client, noon_in_new_york(5))  # 3 stages, the booking confirmation, the follow-up
    text = client.get("/metrics").text
    assert 'frontdesk_reminders{channel="sms",state="scheduled"} 5.0' in text
    assert "frontdesk_dispatch_lag_seconds 0.0" in text


def test_metrics_can_require_the_scrapers_bearer_token(runtime: Runtime) -> None:
    settings = runtime.settings.model_copy(update={"metrics_token": "scrape-me"})
    with TestClient(create_app(settings, runtime)) as client:
        refused = client.get("/metrics")
        wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
        allowed = client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
    assert refused.status_code == wrong.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    assert "frontdesk_reminders" not in refused.text
    assert allowed.status_code == 200 and "frontdesk_dispatch_lag_seconds" in allowed.text
