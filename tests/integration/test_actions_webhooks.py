"""Webhook steps against a loopback server: signed, retried on 5xx / timeouts with one
idempotency key (one effect at the practice's end), failed on 4xx, captured, logged redacted."""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import select

from frontdesk.adapters.db.action_models import ActionEffect
from frontdesk.bootstrap import Runtime
from integration.action_support import (
    Patient1,
    add_spec,
    configure,
    conversation_owner,
    outbound,
    run_state,
    scheduler_server,
    seed,
    step_log,
)
from integration.test_reminders_flow import T0, Clock

SPEC = """
name: tell_scheduler
description: Tell the scheduling system, then say the reference.
trigger: {event: manual}
steps:
  - type: webhook
    id: book
    url: "{{ practice.webhook_url }}/book"
    timeout_seconds: %(timeout)s
    max_attempts: 3
    body:
      appointment: "{{ appointment.external_id }}"
      email: "{{ patient.email }}"
      api_token: "tok-should-not-be-logged"
    capture: {reference: reference}
  - type: send
    text:
      en: "Booked, reference {{ results.book.reference }}."
"""


def _setup(runtime: Runtime, url: str, timeout: float = 5) -> tuple[Patient1, Clock]:
    clock = Clock(T0)
    seed(runtime, clock)
    configure(runtime, url, builtins=False)
    add_spec(runtime, SPEC % {"timeout": timeout})
    patient = Patient1(runtime, clock)
    with runtime.transaction() as session:
        from frontdesk.adapters.db.models import Appointment

        appointment_id = session.scalars(select(Appointment.id)).one()
    patient.start("tell_scheduler", appointment_id=appointment_id)
    return patient, clock


def test_a_5xx_is_retried_with_the_same_key_and_books_once(runtime: Runtime) -> None:
    with scheduler_server([500]) as scheduler:
        patient, clock = _setup(runtime, scheduler.url)
        worker = patient.worker(rng=random.Random(1))
        assert worker.perform_effects() == 1
        assert worker.perform_effects() == 0  # backing off
        clock.now += timedelta(minutes=1)
        assert worker.perform_effects() == 1
        assert [r["key"] for r in scheduler.requests] == ["action-run-1-step-0"] * 2
        assert all(r["valid"] for r in scheduler.requests)
        assert len(scheduler.effects) == 1
    assert outbound(runtime)[-1][1] == "Booked, reference ref-1."
    assert run_state(runtime) == ("done", "completed")
    calls = [e for e in step_log(runtime) if e.kind == "webhook_call"]
    assert [(c.attempt, c.outcome) for c in calls] == [(1, "retrying"), (2, "ok")]
    assert calls[0].detail["response"]["status"] == 500
    body = calls[1].detail["request"]["body"]
    assert body["api_token"] == "[secret]" and body["email"] == "[redacted]"
    assert calls[1].detail["request"]["headers"]["Idempotency-Key"] == "action-run-1-step-0"


def test_a_timeout_is_retried_and_the_key_keeps_it_to_one_effect(runtime: Runtime) -> None:
    with scheduler_server(hang=True) as scheduler:
        patient, clock = _setup(runtime, scheduler.url, timeout=0.3)
        worker = patient.worker(rng=random.Random(1))
        worker.perform_effects()  # the server got it and applied it, but answered too late
        scheduler.release.set()
        clock.now += timedelta(minutes=1)
        worker.perform_effects()
        assert len(scheduler.requests) == 2
        assert len(scheduler.effects) == 1
    outcomes = [e.outcome for e in step_log(runtime) if e.kind == "webhook_call"]
    assert outcomes == ["retrying", "ok"]
    assert (
        next(e for e in step_log(runtime) if e.kind == "webhook_call").detail["error"]
        == "timed out"
    )


def test_a_4xx_fails_at_once_and_hands_off(runtime: Runtime) -> None:
    with scheduler_server([422]) as scheduler:
        patient, _clock = _setup(runtime, scheduler.url)
        assert patient.worker().perform_effects() == 1
        assert len(scheduler.requests) == 1
    assert run_state(runtime) == ("handed_off", "webhook_failed")
    assert conversation_owner(runtime) == ["staff"]
    with runtime.transaction() as session:
        assert session.scalars(select(ActionEffect.status)).one() == "failed"


def test_transient_failures_give_up_after_max_attempts(runtime: Runtime) -> None:
    with scheduler_server([503, 503, 503]) as scheduler:
        patient, clock = _setup(runtime, scheduler.url)
        worker = patient.worker(rng=random.Random(1))
        for _ in range(3):
            worker.perform_effects()
            clock.now += timedelta(hours=1)
        assert len(scheduler.requests) == 3
        assert scheduler.effects == {}
    assert run_state(runtime) == ("handed_off", "webhook_failed")
