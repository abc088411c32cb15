"""Outbound events: written in the caller's transaction, delivered later by the worker.

``publish`` is called INSIDE the business transaction that makes the change (a confirmation, a
cancellation, a handoff…): the event and one delivery per subscribed, enabled endpoint commit
with the change or not at all, so an event is never lost nor announced for a change that rolled
back. Nothing is sent here; ``services/webhook_delivery.py`` sends after commit.

Payloads carry ids, times, states and codes: never contact data, names or message text. A key
that usually holds such data is refused (``PhiInPayload``), as a guard against a careless caller.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from frontdesk.adapters.db.models import Appointment, Patient, Reminder
from frontdesk.adapters.db.webhook_models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from frontdesk.domain.times import iso, now_utc
from frontdesk.domain.webhooks import EVENT_TYPES

# Keys whose values are contact data or free text: refused anywhere in a payload.
_PHI_KEYS = frozenset(
    {
        "name",
        "preferred_name",
        "first_name",
        "last_name",
        "phone",
        "email",
        "address",
        "date_of_birth",
        "dob",
        "body",
        "text",
        "message",
        "notes",
    }
)


class PhiInPayload(ValueError):
    """A caller put contact data or free text in an event payload."""


def publish(
    session: Session,
    practice_id: int,
    type: str,
    payload: Mapping[str, Any],
    appointment_id: int | None = None,
) -> WebhookEvent:
    """Record an event and one pending delivery per enabled endpoint that wants ``type``.

    Call inside the transaction that makes the change. ``appointment_id`` orders deliveries:
    an endpoint receives the events of one appointment in the order of their ids. Publish after
    writing the appointment row, so concurrent changes to one appointment (which wait on that
    row's lock) also take their event ids in commit order.
    """
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type!r}")
    data = dict(payload)
    _refuse_phi(data)
    json.dumps(data)  # fails now, in the caller's transaction, rather than in the worker
    now = now_utc()
    event = WebhookEvent(
        practice_id=practice_id,
        message_id=f"msg_{uuid.uuid4().hex}",
        type=type,
        payload=data,
        appointment_id=appointment_id,
        created_at=now,
    )
    session.add(event)
    session.flush()
    for endpoint in session.scalars(
        select(WebhookEndpoint).where(
            WebhookEndpoint.practice_id == practice_id, WebhookEndpoint.enabled.is_(True)
        )
    ):
        if wants(endpoint, type):
            session.add(
                WebhookDelivery(
                    practice_id=practice_id,
                    event_id=event.id,
                    endpoint_id=endpoint.id,
                    appointment_id=appointment_id,
                    state="pending",
                    attempts=0,
                    next_attempt_at=now,
                )
            )
    return event


def wants(endpoint: WebhookEndpoint, type: str) -> bool:
    return endpoint.event_types is None or type in endpoint.event_types.split(",")


def body_of(event: WebhookEvent) -> str:
    """The exact bytes sent for an event: the same on every attempt (compact, sorted keys)."""
    envelope = {
        "id": event.message_id,
        "type": event.type,
        "timestamp": iso(event.created_at),
        "data": event.payload,
    }
    return json.dumps(envelope, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def appointment_data(appointment: Appointment, **extra: Any) -> dict[str, Any]:
    """The usual ``data`` of an appointment event: ids, times and states only."""
    data: dict[str, Any] = {
        "appointment": {
            "id": appointment.id,
            "source": appointment.source,
            "external_id": appointment.external_id,
            "start": iso(appointment.start_at),
            "end": iso(appointment.end_at),
            "status": appointment.status,
            "confirmation": appointment.confirmation,
            "version": appointment.version,
            "clinician_id": appointment.clinician_id,
            "location_id": appointment.location_id,
        },
        "patient": _patient_ref(appointment),
    }
    data.update(extra)
    return data


def handoff_data(
    conversation_id: int, channel: str, patient: Patient | None, *, reason: str, urgent: bool
) -> dict[str, Any]:
    """``conversation.handoff``: ``reason`` is a code (``crisis``, ``clinical``, ``asked``…)."""
    return {
        "conversation": {"id": conversation_id, "channel": channel},
        "patient": patient_ref(patient) if patient is not None else None,
        "reason": reason,
        "urgent": urgent,
    }


def reminder_failed_data(reminder: Reminder, *, reason: str) -> dict[str, Any]:
    """``reminder.failed``: ``reason`` is a short code or provider error code, no PHI."""
    return appointment_data(
        reminder.appointment,
        reminder={"id": reminder.id, "stage": reminder.stage, "channel": reminder.channel},
        reason=reason,
    )


def opted_out_data(patient: Patient, channel: str) -> dict[str, Any]:
    """``patient.opted_out``."""
    return {"patient": patient_ref(patient), "channel": channel}


def action_completed_data(
    action_key: str, run_id: int, status: str, patient: Patient | None
) -> dict[str, Any]:
    """``action.completed``: the action's key, its run and how it ended."""
    return {
        "action": {"key": action_key, "run_id": run_id, "status": status},
        "patient": patient_ref(patient) if patient is not None else None,
    }


def patient_ref(patient: Patient) -> dict[str, Any]:
    return {"id": patient.id, "source": patient.source, "external_id": patient.external_id}


def _patient_ref(appointment: Appointment) -> dict[str, Any]:
    return patient_ref(appointment.patient)


def _refuse_phi(value: Any, path: str = "data") -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            if str(key).lower() in _PHI_KEYS:
                raise PhiInPayload(f"{path}.{key} looks like contact data or free text")
            _refuse_phi(item, f"{path}.{key}")
    elif isinstance(value, Iterable) and not isinstance(value, str | bytes):
        for index, item in enumerate(value):
            _refuse_phi(item, f"{path}[{index}]")
