"""Re-booking links: follow-ups carry the booking URL with a tracking token, and the booking
that follows is credited to them (and shown on the dashboard)."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select

from frontdesk.adapters.db.handoff_models import RebookingLink
from frontdesk.adapters.db.models import OutboxMessage, Practice
from frontdesk.bootstrap import Runtime
from frontdesk.services import dashboard
from integration.test_reminders_flow import T0, Clock, dispatcher, drain, put
from integration.test_replies import _outbox


def _booking_url(runtime: Runtime) -> None:
    with runtime.transaction() as session:
        practice = session.scalars(select(Practice)).one()
        practice.booking_url = "https://book.example/harbor?ref=site"


def test_a_missed_session_follow_up_invites_a_booking_that_is_credited_to_it(
    runtime: Runtime,
) -> None:
    _booking_url(runtime)
    clock = Clock(T0)
    start = T0 + timedelta(days=1)
    put(runtime, clock, start, announce=False)
    clock.now = start + timedelta(minutes=20)  # the patient never arrived
    drain(dispatcher(runtime, clock, _outbox(runtime)))
    with runtime.transaction() as session:
        (followup,) = [m for m in session.scalars(select(OutboxMessage)) if "missed you" in m.body]
        link = session.scalars(select(RebookingLink)).one()
    url = next(word for word in followup.body.split() if word.startswith("https://book.example"))
    query = parse_qs(urlsplit(url.rstrip(",.")).query)
    assert query["ref"] == ["site"] and query["utm_source"] == ["frontdesk"]
    assert query["utm_content"] == [f"fd_{link.token}"]
    assert "name" not in query and "email" not in query  # no contact data in URLs by default

    # Two days later the patient books again, through any integration.
    clock.now = start + timedelta(days=2)
    put(runtime, clock, start + timedelta(days=7), external_id="a2", announce=True)
    with runtime.transaction() as session:
        link = session.scalars(select(RebookingLink)).one()
        assert link.booked_appointment_id is not None and link.booked_at == clock.now
        practice = session.scalars(select(Practice)).one()
        first, last = dashboard.period(
            practice, start.date() - timedelta(days=1), clock.now.date(), clock.now.date()
        )
        board = dashboard.build(session, practice, first, last, clock.now)
    assert (board.rebooking_links, board.rebooked) == (1, 1)


def test_prefill_is_opt_in(runtime: Runtime) -> None:
    _booking_url(runtime)
    with runtime.transaction() as session:
        practice = session.scalars(select(Practice)).one()
        practice.settings = {**practice.settings, "rebooking": {"prefill": True}}
    clock = Clock(T0)
    start = T0 + timedelta(days=1)
    put(runtime, clock, start, announce=False)
    clock.now = start + timedelta(minutes=20)
    drain(dispatcher(runtime, clock, _outbox(runtime)))
    with runtime.transaction() as session:
        body = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()[-1].body
    url = next(word for word in body.split() if word.startswith("https://book.example"))
    query = parse_qs(urlsplit(url.rstrip(",.")).query)
    assert query["name"] == ["Avery"] and query["email"] == ["avery@example.com"]
