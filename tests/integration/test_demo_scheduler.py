"""The demo's stand-in scheduling system: signed action webhooks are accepted (each
Idempotency-Key applied once), unsigned ones refused, and outside demo mode it is not there."""

from __future__ import annotations

import secrets
import time

from fastapi.testclient import TestClient
from sqlalchemy import select

from conftest import make_settings
from frontdesk.adapters.db.models import Practice
from frontdesk.bootstrap import Runtime
from frontdesk.services import actions
from frontdesk.web.app import create_app


def test_the_demo_scheduler_checks_signatures(runtime: Runtime, database_url: str) -> None:
    secret = secrets.token_urlsafe(16)
    with runtime.transaction() as session:
        practice = session.scalars(select(Practice)).one()
        actions.set_webhook_secret(practice, runtime.cipher.seal(secret))
    body = '{"event": "no_show_reminder"}'
    headers = {
        actions.SIGNATURE_HEADER: actions.sign(secret, body, int(time.time())),
        "Idempotency-Key": "action-run-1-step-2",
        "Content-Type": "application/json",
    }
    demo = create_app(make_settings(database_url, demo=True), runtime)
    with TestClient(demo) as client:
        first = client.post("/demo/scheduler/default/no-show", content=body, headers=headers)
        again = client.post("/demo/scheduler/default/no-show", content=body, headers=headers)
        assert first.json()["applied"] is True and again.json()["applied"] is False
        forged = dict(headers, **{actions.SIGNATURE_HEADER: "t=1,v1=00"})
        assert (
            client.post("/demo/scheduler/default/x", content=body, headers=forged).status_code
            == 401
        )
    with TestClient(create_app(make_settings(database_url), runtime)) as client:
        assert (
            client.post("/demo/scheduler/default/x", content=body, headers=headers).status_code
            == 404
        )
