"""The dashboard counts what happened in a period, from stored rows, and exports it as CSV."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import time_machine
from fastapi.testclient import TestClient
from sqlalchemy import select

from frontdesk.adapters.db.models import Conversation, Practice
from frontdesk.bootstrap import Runtime
from frontdesk.domain.channels import Channel
from frontdesk.services import dashboard, inbox
from integration.test_handoff import _receive
from integration.test_reminders_flow import T0, Clock, dispatcher, drain, put
from integration.test_replies import _outbox, _reply
from staff_support import add_staff, signed_in


def test_the_dashboard_counts_a_week_of_front_desk_work(runtime: Runtime) -> None:
    # The audit trail stamps answers with the real clock: run this week at T0.
    with time_machine.travel(T0, tick=True):
        _a_week_of_work(runtime)


def _a_week_of_work(runtime: Runtime) -> None:
    clock = Clock(T0)
    # Session 1: reminded by SMS, confirmed by reply.
    put(runtime, clock, T0 + timedelta(days=3), announce=False)
    clock.now = T0 + timedelta(minutes=5)
    drain(dispatcher(runtime, clock, _outbox(runtime)))
    clock.now += timedelta(minutes=10)
    _reply(runtime, clock, "C")
    # Session 2 (another patient) was yesterday: recorded as a no-show.
    put(
        runtime,
        clock,
        T0 - timedelta(days=1),
        external_id="a2",
        announce=False,
        status="noshow",
        patient={"external_id": "p2", "name": "Blake", "phone": "+12025550102", "email": None},
    )
    # A crisis, answered by staff 12 minutes later.
    _receive(runtime, clock, "crisis: …", "SM9")
    clock.now += timedelta(minutes=12)
    with runtime.transaction() as session:
        practice = session.scalars(select(Practice)).one()
        conversation = session.scalars(select(Conversation)).first()
        assert conversation is not None
        inbox.reply(
            session,
            practice,
            conversation.id,
            text="We're here. Calling you now.",
            channel=Channel.SMS,
            who="staff:1",
            cipher=runtime.cipher,
            now=clock.now,
        )
        dashboard.set_prices(practice, {"sms_segment": 0.01})
    from frontdesk.services.outgoing import MessageSender, fixed_senders

    outbox = _outbox(runtime)
    MessageSender(runtime, fixed_senders({Channel.SMS: outbox}), clock=clock).send_due()

    with runtime.transaction() as session:
        practice = session.scalars(select(Practice)).one()
        start, end = dashboard.period(
            practice, (T0 - timedelta(days=3)).date(), (T0 + timedelta(days=4)).date(), T0.date()
        )
        board = dashboard.build(session, practice, start, end, clock.now)

    assert board.reminders == {"sms": {"delivered": 1}}
    assert (board.appointments, board.confirmed) == (2, 1)
    assert (board.past_appointments, board.no_shows) == (1, 1)
    assert board.answers == {"confirm": {"reply": 1}}
    assert board.escalations == {"crisis": 1}
    assert board.first_response_minutes == [12.0]
    # Reminder (1 segment), receipt (1), crisis message (2: it is long), staff reply (1).
    assert board.usage["sms_segments"] == 5
    assert board.cost["sms_segments"] == 0.05

    rows = list(csv.reader(io.StringIO(dashboard.to_csv(board))))
    assert rows[0] == ["metric", "dimension", "value"]
    assert ["no_show_rate", "", "1.0000"] in rows
    assert ["escalations", "crisis", "1"] in rows
    assert ["estimated_cost_usd", "sms_segments", "0.05"] in rows


def test_dashboard_page_and_csv_download(client: TestClient, runtime: Runtime) -> None:
    add_staff(runtime)
    signed_in(client)
    page = client.get("/dashboard")
    assert page.status_code == 200 and "Confirmation rate" in page.text
    download = client.get("/dashboard.csv?start=2026-11-01&end=2026-11-30")
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/csv")
    assert (
        "frontdesk-dashboard-2026-11-01-2026-12-01.csv" in download.headers["content-disposition"]
    )
    assert client.get("/dashboard?start=2026-12-01&end=2026-11-01").status_code == 422
    assert client.put("/api/v1/prices", json={"sms_segment": -1}).status_code == 422
    assert client.put("/api/v1/prices", json={"email": 0.002}).json()["email"] == 0.002
