"""FHIR R4 polling and write-back, and iCalendar feeds, against a server on loopback: paging,
_include and its fallback, ETags, 412 on a stale update, 500s, timeouts and slow answers.
No event lost, none applied twice, ordering per appointment kept (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from frontdesk.adapters.db.models import Appointment, Conversation, Message, Patient
from frontdesk.adapters.db.scheduler_models import FhirWriteback, Integration
from frontdesk.adapters.schedulers.clients import HttpClients
from frontdesk.bootstrap import Runtime
from frontdesk.domain.fhir_writeback import CommunicationSent, ParticipantAnswer, StatusChange
from frontdesk.services import fhir_writeback, integrations, scheduler_sync
from frontdesk.services.fhir_writeback import queue_fhir_writeback
from scheduler_fakes import FakeState, Fault, fake_schedulers, fhir_appointment, fhir_patient

NOW = datetime.now(UTC).replace(microsecond=0)
DAY = NOW.replace(hour=15, minute=0, second=0) + timedelta(days=3)


@pytest.fixture
def ehr() -> Iterator[tuple[str, FakeState]]:
    with fake_schedulers() as (base, state):
        for n in range(1, 6):
            state.put(fhir_patient(f"p{n}", f"Pat Number{n}", f"+1415555010{n}"))
            state.put(fhir_appointment(f"a{n}", f"p{n}", DAY + timedelta(hours=n)))
        yield base, state


# Short timeouts and no waiting between retries: a test never sleeps on our side.
CLIENTS = HttpClients(fhir_timeout=0.3, fhir_attempts=3, fhir_backoff=0.0, sleep=lambda _: None)


def _connect(runtime: Runtime, base: str) -> int:
    practice_id = integrations.practice_id_of(runtime, "default")
    integrations.configure_polled(
        runtime, practice_id, "fhir", f"{base}/fhir", source="ehr", token="ehr-token", actor="t"
    )
    with runtime.transaction() as session:
        row = integrations.find(session, practice_id, "ehr")
        assert row is not None
        return row.id


def _poll(runtime: Runtime, integration_id: int, now: datetime = NOW) -> Any:
    return scheduler_sync.poll_integration(runtime, integration_id, now=now, clients=CLIENTS)


def _stored(runtime: Runtime) -> dict[str, tuple[datetime, str, int]]:
    with runtime.transaction() as session:
        return {
            a.external_id: (a.start_at, a.status, a.version)
            for a in session.scalars(select(Appointment))
        }


def _integration(runtime: Runtime, integration_id: int) -> Integration:
    with runtime.transaction() as session:
        row = session.get(Integration, integration_id)
        assert row is not None
        session.expunge(row)
        return row


def _searches(state: FakeState) -> list[dict[str, list[str]]]:
    out = []
    for seen in state.log:
        if seen.method == "GET" and seen.path == "/fhir/Appointment":
            params: dict[str, list[str]] = {}
            for name, value in seen.query:
                params.setdefault(name, []).append(value)
            out.append(params)
    return out


# --- polling -----------------------------------------------------------------------------------


def test_a_poll_pages_through_every_appointment_with_its_patient(
    runtime: Runtime, ehr: tuple[str, FakeState]
) -> None:
    base, state = ehr
    integration_id = _connect(runtime, base)
    report = _poll(runtime, integration_id)
    assert report.state == "synced", report.error
    assert report.summary["created"] == 10  # 5 patients, 5 appointments
    assert sorted(_stored(runtime)) == ["a1", "a2", "a3", "a4", "a5"]
    searches = _searches(state)
    assert len(searches) == 3  # pages of 2, followed through Bundle.link "next"
    assert searches[0]["_include"] == ["Appointment:patient"]
    assert "_lastUpdated" not in searches[0]
    assert all(s.headers.get("authorization") == "Bearer ehr-token" for s in state.log)
    with runtime.transaction() as session:
        patient = session.scalar(select(Patient).where(Patient.external_id == "p3"))
        assert patient is not None and patient.name == "Pat Number3"
    row = _integration(runtime, integration_id)
    assert row.cursor == state.get("Appointment", "a5")["meta"]["lastUpdated"]
    assert row.last_error is None and row.next_poll_at == NOW + timedelta(seconds=300)


def test_the_next_poll_asks_only_for_changes_and_applies_each_once(
    runtime: Runtime, ehr: tuple[str, FakeState]
) -> None:
    base, state = ehr
    integration_id = _connect(runtime, base)
    _poll(runtime, integration_id)
    first = _stored(runtime)
    again = _poll(runtime, integration_id, NOW + timedelta(minutes=5))
    assert again.summary["created"] == 0 and again.summary["updated"] == 0
    assert _stored(runtime) == first
    cursor = _integration(runtime, integration_id).cursor
    assert _searches(state)[-1]["_lastUpdated"] == [f"ge{cursor}"]

    moved = state.get("Appointment", "a2") | {"start": (DAY + timedelta(days=1)).isoformat()}
    moved["end"] = (DAY + timedelta(days=1, minutes=50)).isoformat()
    state.put(moved)
    third = _poll(runtime, integration_id, NOW + timedelta(minutes=10))
    assert third.summary["updated"] == 1
    after = _stored(runtime)
    assert after["a2"][0] == DAY + timedelta(days=1) and after["a2"][2] == 2
    assert {k: v for k, v in after.items() if k != "a2"} == {
        k: v for k, v in first.items() if k != "a2"
    }


def test_without_include_the_patients_are_read_one_by_one(
    runtime: Runtime, ehr: tuple[str, FakeState]
) -> None:
    base, state = ehr
    state.include_supported = False
    report = _poll(runtime, _connect(runtime, base))
    assert report.state == "synced" and report.summary["created"] == 10
    reads = sorted(s.path for s in state.log if s.path.startswith("/fhir/Patient/"))
    assert reads == [f"/fhir/Patient/p{n}" for n in range(1, 6)]


def test_500s_and_slow_answers_are_retried_and_nothing_is_lost(
    runtime: Runtime, ehr: tuple[str, FakeState]
) -> None:
    base, state = ehr
    state.faults += [
        Fault("GET", "/fhir/Appointment", "500"),
        Fault("GET", "/fhir/Appointment", "slow"),  # answers after the client's timeout
    ]
    state.slow_seconds = 1.0
    report = _poll(runtime, _connect(runtime, base))
    assert report.state == "synced", report.error
    assert sorted(_stored(runtime)) == ["a1", "a2", "a3", "a4", "a5"]


def test_a_server_that_keeps_failing_is_recorded_and_polled_again_sooner(
    runtime: Runtime, ehr: tuple[str, FakeState]
) -> None:
    base, state = ehr
    integration_id = _connect(runtime, base)
    state.faults += [Fault("GET", "/fhir/Appointment", "500") for _ in range(3)]
    report = _poll(runtime, integration_id)
    assert report.state == "failed"
    row = _integration(runtime, integration_id)
    assert row.last_error == "GET Appointment: the server answered 500 (after 3 attempts)"
    assert row.consecutive_failures == 1 and row.cursor is None
    assert row.next_poll_at == NOW + timedelta(seconds=30)
    assert _stored(runtime) == {}
    # Due again: the worker's poll picks it up and recovers.
    reports = scheduler_sync.poll_due(runtime, now=NOW + timedelta(seconds=31), clients=CLIENTS)
    assert [r.state for r in reports] == ["synced"]
    assert len(_stored(runtime)) == 5
    assert _integration(runtime, integration_id).consecutive_failures == 0


def test_a_next_link_to_another_server_is_not_followed(
    runtime: Runtime, ehr: tuple[str, FakeState]
) -> None:
    base, _ = ehr
    integration_id = _connect(runtime, base)
    with runtime.transaction() as session:
        row = session.get(Integration, integration_id)
        assert row is not None
        # The same server under another name: a different origin as far as the token goes.
        row.endpoint_sealed = runtime.cipher.seal(base.replace("127.0.0.1", "localhost") + "/fhir")
    report = _poll(runtime, integration_id)
    assert report.state == "failed"
    assert report.error == "the next page is on another server: not followed"


# --- write-back --------------------------------------------------------------------------------


def _appointment_id(runtime: Runtime, external_id: str) -> int:
    with runtime.transaction() as session:
        found = session.scalar(select(Appointment.id).where(Appointment.external_id == external_id))
        assert found is not None
        return found


def _queue(runtime: Runtime, external_id: str, *changes: Any) -> list[int | None]:
    appointment_id = _appointment_id(runtime, external_id)
    with runtime.transaction() as session:
        return [queue_fhir_writeback(session, appointment_id, c) for c in changes]


def _process(runtime: Runtime, now: datetime | None = None) -> dict[str, int]:
    when = now or datetime.now(UTC) + timedelta(seconds=1)
    return fhir_writeback.process_writebacks(runtime, now=when, clients=CLIENTS)


def _rows(runtime: Runtime) -> list[tuple[str, dict[str, Any], str | None]]:
    with runtime.transaction() as session:
        return [
            (r.state, r.change, r.last_error)
            for r in session.scalars(select(FhirWriteback).order_by(FhirWriteback.id))
        ]


@pytest.fixture
def synced(runtime: Runtime, ehr: tuple[str, FakeState]) -> FakeState:
    base, state = ehr
    assert _poll(runtime, _connect(runtime, base)).state == "synced"
    return state


def test_the_patients_answer_is_written_with_if_match(runtime: Runtime, synced: FakeState) -> None:
    _queue(runtime, "a1", ParticipantAnswer("accepted"))
    assert _process(runtime) == {"done": 1}
    resource = synced.get("Appointment", "a1")
    assert resource["participant"][0]["status"] == "accepted"
    assert resource["meta"]["versionId"] == "2"
    [put] = synced.writes("PUT")
    assert put.headers["if-match"] == 'W/"1"'
    assert _process(runtime) == {}  # done is done


def test_a_412_rereads_and_keeps_the_ehrs_own_change(runtime: Runtime, synced: FakeState) -> None:
    def ehr_edit(resource: dict[str, Any]) -> None:
        resource["comment"] = "room changed by the front desk"

    synced.faults.append(Fault("PUT", "/fhir/Appointment/a1", "edit", ehr_edit))
    _queue(runtime, "a1", ParticipantAnswer("accepted"))
    assert _process(runtime) == {"done": 1}
    resource = synced.get("Appointment", "a1")
    assert resource["comment"] == "room changed by the front desk"  # theirs kept
    assert resource["participant"][0]["status"] == "accepted"  # ours re-applied
    assert [p.headers["if-match"] for p in synced.writes("PUT")] == ['W/"1"', 'W/"2"']


def test_a_412_that_finds_the_session_cancelled_leaves_it_alone(
    runtime: Runtime, synced: FakeState
) -> None:
    def ehr_cancels(resource: dict[str, Any]) -> None:
        resource["status"] = "cancelled"

    synced.faults.append(Fault("PUT", "/fhir/Appointment/a1", "edit", ehr_cancels))
    _queue(runtime, "a1", ParticipantAnswer("accepted"))
    assert _process(runtime) == {"superseded": 1}
    resource = synced.get("Appointment", "a1")
    assert resource["status"] == "cancelled"
    assert resource["participant"][0]["status"] == "needs-action"
    assert len(synced.writes("PUT")) == 1  # the refused one only
    [(state, _, _)] = _rows(runtime)
    assert state == "superseded"


def test_changes_to_one_appointment_are_written_in_order(
    runtime: Runtime, synced: FakeState
) -> None:
    _queue(runtime, "a1", ParticipantAnswer("accepted"), StatusChange("cancelled"))
    _queue(runtime, "a2", ParticipantAnswer("declined"))
    synced.faults += [Fault("GET", "/fhir/Appointment/a1", "500") for _ in range(3)]
    now = datetime.now(UTC) + timedelta(seconds=1)
    # a1's first change fails (retried later); its second waits behind it; a2 goes on.
    assert _process(runtime, now) == {"pending": 1, "done": 1}
    assert [p.path for p in synced.writes("PUT")] == ["/fhir/Appointment/a2"]
    states = [s for s, _, _ in _rows(runtime)]
    assert states == ["pending", "pending", "done"]
    assert _rows(runtime)[0][2] == "GET Appointment: the server answered 500 (after 3 attempts)"
    assert _process(runtime, now) == {}  # backing off
    later = now + timedelta(minutes=1)
    assert _process(runtime, later) == {"done": 1}
    assert _process(runtime, later) == {"done": 1}
    puts = [(p.path, p.body["status"], p.body["participant"][0]["status"]) for p in synced.writes()]
    assert puts == [
        ("/fhir/Appointment/a2", "booked", "declined"),
        ("/fhir/Appointment/a1", "booked", "accepted"),
        ("/fhir/Appointment/a1", "cancelled", "declined"),
    ]


def test_a_lost_answer_to_an_update_is_not_applied_twice(
    runtime: Runtime, synced: FakeState
) -> None:
    # The server applies the PUT but the answer comes too late: the retry sends the old ETag,
    # gets 412, re-reads, and finds the change already there.
    synced.faults.append(Fault("PUT", "/fhir/Appointment/a1", "late"))
    _queue(runtime, "a1", ParticipantAnswer("accepted"))
    assert _process(runtime) == {"done": 1}
    assert synced.get("Appointment", "a1")["meta"]["versionId"] == "2"
    with runtime.transaction() as session:
        row = session.scalar(select(FhirWriteback))
        assert row is not None and row.result == "participant already accepted"


def test_each_message_sent_is_recorded_once_as_a_communication(
    runtime: Runtime, synced: FakeState
) -> None:
    appointment_id = _appointment_id(runtime, "a3")
    with runtime.transaction() as session:
        appointment = session.get(Appointment, appointment_id)
        assert appointment is not None
        conversation = Conversation(
            practice_id=appointment.practice_id,
            patient_id=appointment.patient_id,
            channel="sms",
            status="open",
        )
        message = Message(
            practice_id=appointment.practice_id,
            conversation=conversation,
            appointment_id=appointment_id,
            channel="sms",
            direction="outbound",
            body="Reminder: your session is on Thursday at 3 pm.",
        )
        session.add_all([conversation, message])
        session.flush()
        message_id = message.id
    _queue(runtime, "a3", CommunicationSent(message_id))
    _queue(runtime, "a3", CommunicationSent(message_id))  # queued twice by mistake
    assert _process(runtime) == {"done": 1}
    assert _process(runtime) == {"done": 1}
    [communication] = synced.of_type("Communication")
    assert communication["basedOn"] == [{"reference": "Appointment/a3"}]
    assert communication["subject"] == {"reference": "Patient/p3"}
    assert communication["payload"][0]["contentString"].startswith("Reminder:")


def test_a_permanent_failure_is_visible_without_phi_and_can_be_retried(
    runtime: Runtime, synced: FakeState
) -> None:
    del synced.resources[("Appointment", "a4")]  # the EHR deleted it
    _queue(runtime, "a4", ParticipantAnswer("declined"), StatusChange("noshow"))
    assert _process(runtime) == {"failed": 1}
    (state, _, error), (waiting, _, _) = _rows(runtime)
    assert (state, error) == ("failed", "GET Appointment: the server answered 404")
    assert waiting == "pending"  # never overtakes the failed change
    assert _process(runtime) == {}
    synced.put(fhir_appointment("a4", "p4", DAY))
    with runtime.transaction() as session:
        practice_id = integrations.practice_id_of(runtime, "default")
        assert fhir_writeback.retry_failed(session, practice_id, now=datetime.now(UTC)) == 1
    assert _process(runtime) == {"done": 1}
    assert _process(runtime) == {"done": 1}
    assert synced.get("Appointment", "a4")["status"] == "noshow"


def test_only_fhir_appointments_are_queued(runtime: Runtime, client: Any) -> None:
    client.put(
        "/api/v1/appointments/csv/x1",
        json={
            "patient": {"external_id": "q1", "name": "Q", "phone": "+14155550100"},
            "start": "2030-01-01T15:00:00Z",
        },
    )
    assert _queue(runtime, "x1", ParticipantAnswer("accepted")) == [None]


def test_a_claimed_write_back_is_not_claimed_twice_until_its_lease_ends(
    runtime: Runtime, synced: FakeState
) -> None:
    _queue(runtime, "a1", ParticipantAnswer("accepted"))
    now = datetime.now(UTC) + timedelta(seconds=1)
    assert len(fhir_writeback._claim(runtime, now, 10)) == 1
    assert fhir_writeback._claim(runtime, now, 10) == []  # another worker finds nothing
    # The first worker died: after the lease, the row is taken over and written once.
    later = now + fhir_writeback.LEASE + timedelta(seconds=1)
    assert _process(runtime, later) == {"done": 1}
    assert len(synced.writes("PUT")) == 1


# --- iCalendar feeds ---------------------------------------------------------------------------


def _calendar(*events: str) -> bytes:
    body = "".join(f"BEGIN:VEVENT\n{e.strip()}\nEND:VEVENT\n" for e in events)
    text = f"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//frontdesk tests//EN\n{body}END:VCALENDAR\n"
    return text.replace("\n", "\r\n").encode()


def _event(uid: str, start: datetime) -> str:
    stamp = start.strftime("%Y%m%dT%H%M%SZ")
    end = (start + timedelta(minutes=50)).strftime("%Y%m%dT%H%M%SZ")
    return f"""
UID:{uid}
SUMMARY:Ann Lee
ATTENDEE;CN=Ann Lee:mailto:ann@example.com
DTSTART:{stamp}
DTEND:{end}
"""


def test_an_ics_feed_is_fetched_conditionally(runtime: Runtime) -> None:
    with fake_schedulers() as (base, state):
        state.feed = _calendar(_event("e1", DAY), _event("e2", DAY + timedelta(days=1)))
        practice_id = integrations.practice_id_of(runtime, "default")
        view = integrations.configure_polled(
            runtime, practice_id, "ics", f"{base}/feed.ics?token=s3cret", actor="t"
        )
        assert view["endpoint"] == base  # the secret URL is never shown
        integration_id = integrations.integration_id(runtime, practice_id, "ics")
        first = scheduler_sync.poll_integration(runtime, integration_id, now=NOW, clients=CLIENTS)
        assert (first.state, first.summary["created"]) == ("synced", 2)
        second = scheduler_sync.poll_integration(runtime, integration_id, now=NOW, clients=CLIENTS)
        assert second.state == "unchanged" and second.summary == {
            "created": 0,
            "updated": 0,
            "unchanged": 0,
            "rejected": 0,
        }
        feeds = [s for s in state.log if s.path == "/feed.ics"]
        assert feeds[1].headers["if-none-match"] == '"v1"'
        assert feeds[1].headers["if-modified-since"] == state.feed_last_modified

        state.feed = _calendar(_event("e1", DAY + timedelta(hours=2)), _event("e2", DAY))
        state.feed_etag = '"v2"'
        third = scheduler_sync.poll_integration(runtime, integration_id, now=NOW, clients=CLIENTS)
        assert (third.state, third.summary["updated"]) == ("synced", 2)
    with runtime.transaction() as session:
        row = session.get(Integration, integration_id)
        assert row is not None and row.etag == '"v2"'
        assert "s3cret" not in (row.endpoint_sealed or "")


def test_one_worker_round_polls_what_is_due_and_writes_back(
    runtime: Runtime, ehr: tuple[str, FakeState]
) -> None:
    base, state = ehr
    _connect(runtime, base)  # due at once
    now = datetime.now(UTC) + timedelta(seconds=1)
    first = scheduler_sync.run_round(runtime, now=now, clients=CLIENTS)
    assert [p["state"] for p in first["polls"]] == ["synced"]
    assert first["writebacks"] == {}
    _queue(runtime, "a5", ParticipantAnswer("accepted"))
    second = scheduler_sync.run_round(runtime, now=now + timedelta(seconds=5), clients=CLIENTS)
    assert second["polls"] == []  # not due again for 300 s
    assert second["writebacks"] == {"done": 1}
    assert state.get("Appointment", "a5")["participant"][0]["status"] == "accepted"
    # The write-back shows up in the next poll as an EHR change that changes nothing here.
    third = scheduler_sync.run_round(runtime, now=now + timedelta(seconds=301), clients=CLIENTS)
    assert third["polls"][0]["summary"]["updated"] == 0
