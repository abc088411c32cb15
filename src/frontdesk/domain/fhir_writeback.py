"""What frontdesk writes back to a FHIR R4 server, and when a change is still right to write.

A change is applied to the resource as the server holds it *now*: after a 412 (the EHR changed
it meanwhile) the resource is read again and the same rules decide whether the change still
applies, is already there, or no longer makes sense (superseded: left alone, shown to staff).
Pure functions of plain dicts; the HTTP side lives in adapters/schedulers/fhir.py.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

PARTICIPANT_STATUSES = ("accepted", "declined", "tentative")
APPOINTMENT_STATUSES = ("cancelled", "noshow")
CANCELLATION_REASONS = "http://terminology.hl7.org/CodeSystem/appointment-cancellation-reason"
PARTICIPATION_MODE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode"
MESSAGE_IDENTIFIER_SYSTEM = "urn:frontdesk:message"

# A patient's answer is about a session still to come; once the EHR has closed the session
# (or withdrawn it) the answer must not reopen it.
_CLOSED = frozenset(
    {"cancelled", "noshow", "fulfilled", "entered-in-error", "arrived", "checked-in"}
)
_MEDIUM = {"email": "EMAILWRIT"}  # SMS, WhatsApp and web chat: WRITTEN


@dataclass(frozen=True)
class ParticipantAnswer:
    """The patient's answer: their participant status on the Appointment."""

    status: Literal["accepted", "declined", "tentative"]
    kind: Literal["participant"] = "participant"


@dataclass(frozen=True)
class StatusChange:
    """The Appointment's own status: cancelled (by the patient) or noshow."""

    status: Literal["cancelled", "noshow"]
    kind: Literal["status"] = "status"


@dataclass(frozen=True)
class CommunicationSent:
    """A message frontdesk sent about the appointment (``messages.id``); its text is read from
    the message at write time, so the queue never holds it."""

    message_id: int
    kind: Literal["communication"] = "communication"


Change = ParticipantAnswer | StatusChange | CommunicationSent


def change_from_dict(data: dict[str, Any]) -> Change:
    kind = data.get("kind")
    if kind == "participant" and data.get("status") in PARTICIPANT_STATUSES:
        return ParticipantAnswer(status=data["status"])
    if kind == "status" and data.get("status") in APPOINTMENT_STATUSES:
        return StatusChange(status=data["status"])
    if kind == "communication" and isinstance(data.get("message_id"), int):
        return CommunicationSent(message_id=data["message_id"])
    raise ValueError(f"not a FHIR write-back change: {kind!r}")


def change_as_dict(change: Change) -> dict[str, Any]:
    if isinstance(change, CommunicationSent):
        return {"kind": change.kind, "message_id": change.message_id}
    return {"kind": change.kind, "status": change.status}


@dataclass(frozen=True)
class Decision:
    """``write`` the new resource, or nothing to write: ``already`` so, or ``superseded``."""

    action: Literal["write", "already", "superseded"]
    resource: dict[str, Any] | None = None
    reason: str = ""


def decide(
    appointment: dict[str, Any], change: ParticipantAnswer | StatusChange, patient_id: str
) -> Decision:
    """Apply ``change`` to the server's current ``appointment`` (never mutated)."""
    status = appointment.get("status")
    if isinstance(change, ParticipantAnswer):
        index = _patient_participant(appointment, patient_id)
        if index is None:
            return Decision("superseded", reason="the appointment no longer lists the patient")
        current = appointment["participant"][index].get("status")
        if current == change.status:
            return Decision("already", reason=f"participant already {current}")
        if status in _CLOSED:
            return Decision("superseded", reason=f"the appointment is {status} in the EHR")
        updated = copy.deepcopy(appointment)
        updated["participant"][index]["status"] = change.status
        return Decision("write", updated)
    if status == change.status:
        return Decision("already", reason=f"appointment already {status}")
    if status in _CLOSED:
        return Decision("superseded", reason=f"the appointment is {status} in the EHR")
    updated = copy.deepcopy(appointment)
    updated["status"] = change.status
    if change.status == "cancelled" and not updated.get("cancelationReason"):
        updated["cancelationReason"] = {
            "coding": [{"system": CANCELLATION_REASONS, "code": "pat", "display": "Patient"}]
        }
    if change.status == "cancelled":
        index = _patient_participant(updated, patient_id)
        if index is not None:
            updated["participant"][index]["status"] = "declined"
    return Decision("write", updated)


def _patient_participant(appointment: dict[str, Any], patient_id: str) -> int | None:
    for index, participant in enumerate(appointment.get("participant") or []):
        reference = ((participant or {}).get("actor") or {}).get("reference") or ""
        if reference == f"Patient/{patient_id}" or reference.endswith(f"/Patient/{patient_id}"):
            return index
    return None


def communication(
    *,
    identifier: str,
    appointment_id: str,
    patient_id: str,
    channel: str,
    text: str,
    sent: datetime,
) -> dict[str, Any]:
    """A completed Communication recording one message sent to the patient about the
    appointment; ``identifier`` makes its conditional create idempotent."""
    return {
        "resourceType": "Communication",
        "identifier": [{"system": MESSAGE_IDENTIFIER_SYSTEM, "value": identifier}],
        "basedOn": [{"reference": f"Appointment/{appointment_id}"}],
        "status": "completed",
        "medium": [
            {
                "coding": [{"system": PARTICIPATION_MODE, "code": _MEDIUM.get(channel, "WRITTEN")}],
                "text": channel,
            }
        ],
        "subject": {"reference": f"Patient/{patient_id}"},
        "recipient": [{"reference": f"Patient/{patient_id}"}],
        "sent": sent.isoformat(),
        "payload": [{"contentString": text}],
    }
