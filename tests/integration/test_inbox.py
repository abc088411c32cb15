"""The staff inbox over HTTP: urgent threads pinned on top, one thread with everything, staff
actions, the review queue, and live updates."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from frontdesk.adapters.db.handoff_models import ConversationNote
from frontdesk.adapters.db.models import Appointment, Conversation, Message, OutboxMessage
from frontdesk.bootstrap import Runtime
from frontdesk.domain.times import now_utc
from integration.test_handoff import _receive
from integration.test_reminders_flow import Clock, put
from staff_support import add_staff, signed_in


@pytest.fixture
def desk(app_client: TestClient, runtime: Runtime) -> str:
    """A signed-in front desk person; returns their CSRF token."""
    add_staff(runtime, role="front_desk")
    return signed_in(app_client)


def _two_patients(runtime: Runtime) -> Clock:
    """Avery writes something ordinary; Blake, later, writes something that is a crisis."""
    clock = Clock(now_utc() - timedelta(minutes=30))
    put(runtime, clock, clock.now + timedelta(days=3), announce=False)
    put(
        runtime,
        clock,
        clock.now + timedelta(days=4),
        external_id="a2",
        announce=False,
        patient={"external_id": "p2", "name": "Blake", "phone": "+12025550102", "email": None},
    )
    _receive(runtime, clock, "other: can I bring my partner?", "SM1")
    clock.now += timedelta(minutes=5)
    _receive(runtime, clock, "crisis: …", "SM2", sender="+12025550102")
    clock.now += timedelta(minutes=5)
    _receive(runtime, clock, "other: also, where do I park?", "SM3")
    return clock


def _conversation_of(runtime: Runtime, phone_suffix: str) -> int:
    with runtime.transaction() as session:
        for conversation in session.scalars(select(Conversation)):
            if conversation.urgent == (phone_suffix == "0102"):
                return conversation.id
    raise AssertionError("no such conversation")


def test_urgent_threads_are_pinned_on_top_until_acknowledged(
    app_client: TestClient, runtime: Runtime, desk: str
) -> None:
    _two_patients(runtime)
    page = app_client.get("/inbox").text
    rows = page.split('class="thread ')[1:]
    assert 'data-urgent="yes"' in rows[0] and "Blake" in rows[0]
    assert "URGENT" in rows[0] and "min unacknowledged" in rows[0]
    assert "Avery" in rows[1]
    assert "Blake" in app_client.get("/inbox?view=urgent").text
    assert "Avery" not in app_client.get("/inbox?view=urgent").text
    assert "Avery" in app_client.get("/inbox?q=aver").text
    assert "Blake" not in app_client.get("/inbox?q=aver").text

    blake = _conversation_of(runtime, "0102")
    thread = app_client.get(f"/inbox/{blake}").text
    assert "since escalation" in thread and "988" in thread
    acked = app_client.post(
        f"/inbox/{blake}/state", data={"action": "acknowledge", "csrf_token": desk}
    )
    assert acked.status_code == 200  # followed the redirect back to the thread
    assert "since escalation" not in acked.text
    page = app_client.get("/inbox").text
    assert 'data-urgent="yes"' not in page


def test_staff_reply_note_answer_and_hand_back(
    app_client: TestClient, runtime: Runtime, desk: str
) -> None:
    _two_patients(runtime)
    avery = _conversation_of(runtime, "0101")
    refused = app_client.post(f"/inbox/{avery}/note", data={"body": "x"})
    assert refused.status_code == 403  # no CSRF token: not from our page

    app_client.post(
        f"/inbox/{avery}/reply",
        data={"text": "Of course, see you Thursday.", "channel": "sms", "csrf_token": desk},
    )
    app_client.post(
        f"/inbox/{avery}/note", data={"body": "Asked about partner", "csrf_token": desk}
    )
    with runtime.transaction() as session:
        sent = session.scalars(select(OutboxMessage.body)).all()
        assert "Of course, see you Thursday." in sent
        staff = session.scalars(select(Message).where(Message.purpose == "staff_reply")).one()
        assert staff.delivery_status == "delivered"
        assert session.scalars(select(ConversationNote.body)).all() == ["Asked about partner"]
        appointment = session.scalars(
            select(Appointment).where(Appointment.external_id == "a1")
        ).one()
    thread = app_client.get(f"/inbox/{avery}").text
    assert "Asked about partner" in thread and "private note" in thread

    app_client.post(
        f"/inbox/{avery}/appointments/{appointment.id}",
        data={"answer": "confirm", "csrf_token": desk},
    )
    with runtime.transaction() as session:
        assert session.get(Appointment, appointment.id).confirmation == "confirmed"  # type: ignore[union-attr]

    blake = _conversation_of(runtime, "0102")
    app_client.post(f"/inbox/{blake}/state", data={"action": "hand_back", "csrf_token": desk})
    with runtime.transaction() as session:
        conversation = session.get(Conversation, blake)
        assert conversation is not None and conversation.owner == "agent"
        assert conversation.urgent is False


def test_the_live_stream_says_when_an_urgent_thread_arrives(
    app_client: TestClient, runtime: Runtime, desk: str
) -> None:
    clock = Clock(now_utc())
    put(runtime, clock, clock.now + timedelta(days=3), announce=False)
    with app_client.stream("GET", "/inbox/events?interval=0.2") as stream:
        lines = stream.iter_lines()
        assert next(lines) == "event: hello"
        _receive(runtime, clock, "crisis: …", "SM9")
        for line in lines:
            if line.startswith("event: change"):
                data = next(lines)
                assert data == 'data: {"urgent": 1, "new_urgent": true}'
                break
        else:
            raise AssertionError("the stream ended without a change event")


def test_the_review_queue_lists_and_resolves(
    app_client: TestClient, runtime: Runtime, desk: str
) -> None:
    clock = Clock(now_utc())
    put(runtime, clock, clock.now + timedelta(days=3), announce=False)
    _receive(runtime, clock, "reschedule: R", "SM1")
    page = app_client.get("/inbox/review").text
    assert "Wants another time" in page and "Avery" in page
    item = int(page.split('action="/inbox/review/', 1)[1].split("/", 1)[0])
    app_client.post(f"/inbox/review/{item}/resolve", data={"csrf_token": desk})
    assert "Nothing to review" in app_client.get("/inbox/review").text


def test_a_clinician_sees_only_their_own_patients_threads(
    app_client: TestClient, runtime: Runtime
) -> None:
    from frontdesk.adapters.db.models import Clinician, Practice

    _two_patients(runtime)
    with runtime.transaction() as session:
        practice = session.scalars(select(Practice)).one()
        other = Clinician(practice_id=practice.id, match_key="x", name="Dr. Other")
        session.add(other)
        session.flush()
        clinician_id = other.id
    add_staff(runtime, "doc@example.com", role="clinician", clinician_id=clinician_id)
    signed_in(app_client, "doc@example.com")
    listing = app_client.get("/inbox").text
    assert "Avery" not in listing and "Blake" not in listing
    avery = _conversation_of(runtime, "0101")
    assert app_client.get(f"/inbox/{avery}").status_code == 404  # not even "forbidden"
    assert app_client.get("/dashboard").status_code == 403
    assert app_client.get("/inbox/review").status_code == 403


def test_the_inbox_needs_a_signed_in_person(app_client: TestClient) -> None:
    page = app_client.get("/inbox", follow_redirects=False)
    assert page.status_code in (302, 303, 307) and "/login" in page.headers["location"]
    assert (
        app_client.get("/inbox/events", headers={"Accept": "application/json"}).status_code == 401
    )


def test_a_thread_is_assigned_to_a_colleague_who_can_see_it(
    app_client: TestClient, runtime: Runtime, desk: str
) -> None:
    from frontdesk.adapters.db.models import AuditEvent, Clinician, Practice
    from frontdesk.adapters.db.staff_models import StaffUser

    _two_patients(runtime)
    with runtime.transaction() as session:
        practice = session.scalars(select(Practice)).one()
        other = Clinician(practice_id=practice.id, match_key="x", name="Dr. Other")
        session.add(other)
        session.flush()
        clinician_id = other.id
    add_staff(runtime, "sam@example.com", role="front_desk", name="Sam Colleague")
    add_staff(runtime, "gone@example.com", role="front_desk", name="Gone Person")
    add_staff(runtime, "doc@example.com", role="clinician", clinician_id=clinician_id, name="Doc")
    with runtime.transaction() as session:
        gone = session.scalars(select(StaffUser).where(StaffUser.email == "gone@example.com"))
        gone.one().active = False
    avery = _conversation_of(runtime, "0101")
    thread = app_client.get(f"/inbox/{avery}").text
    options = thread.split('id="assignee"')[1].split("</select>")[0]
    assert "Sam Colleague" in options
    # Not offered: a disabled account, a clinician who is not this patient's (they could not
    # open the thread).
    assert "Gone Person" not in options and "Doc" not in options

    for refused in ("doc@example.com", "gone@example.com", "nobody@example.com"):
        answer = app_client.post(
            f"/inbox/{avery}/state",
            data={"action": "assign", "assignee": refused, "csrf_token": desk},
        )
        assert answer.status_code == 422
    with runtime.transaction() as session:
        assert session.get(Conversation, avery).assigned_to is None  # type: ignore[union-attr]

    given = app_client.post(
        f"/inbox/{avery}/state",
        data={"action": "assign", "assignee": "SAM@example.com", "csrf_token": desk},
    )
    assert given.status_code == 200 and "→ sam@example.com" in given.text
    with runtime.transaction() as session:
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "conversation.assign")
        ).one()
        assert event.actor == "desk@example.com"
        assert event.details["assignee"] == "sam@example.com"

    # Sam finds it under "mine"; the person who gave it away does not.
    assert "Avery" not in app_client.get("/inbox?view=mine").text
    signed_in(app_client, "sam@example.com")
    assert "Avery" in app_client.get("/inbox?view=mine").text
    token = signed_in(app_client, "desk@example.com")
    app_client.post(
        f"/inbox/{avery}/state", data={"action": "assign", "assignee": "", "csrf_token": token}
    )
    with runtime.transaction() as session:
        assert session.get(Conversation, avery).assigned_to is None  # type: ignore[union-attr]
