"""Cal.com webhooks: ``BOOKING_CREATED``, ``BOOKING_RESCHEDULED``, ``BOOKING_CANCELLED``.

Envelope ``{triggerEvent, createdAt, payload}``; the payload is the booking (``uid``,
``startTime``, ``endTime``, ``organizer``, ``attendees``, ``location``, ``status``, …).
A reschedule is a new booking (new ``uid``) whose ``rescheduleUid`` names the booking it
replaces. Appointments are keyed by the booking ``uid``; the first attendee is the patient
(a booking with several attendees is a group session, refused like FHIR's).
"""

from __future__ import annotations

from typing import Any

from frontdesk.adapters.schedulers.bookings import (
    BookingEvent,
    optional_str,
    patient_key,
    require,
)
from frontdesk.domain.errors import FieldError, ValidationFailed

EVENTS = ("BOOKING_CREATED", "BOOKING_RESCHEDULED", "BOOKING_CANCELLED")
_STATUS = {
    "ACCEPTED": "booked",
    "PENDING": "pending",
    "AWAITING_HOST": "pending",
    "CANCELLED": "cancelled",
    "REJECTED": "cancelled",
}


def parse(document: Any) -> BookingEvent:
    if not isinstance(document, dict):
        raise ValidationFailed([FieldError("body", "expected a JSON object")])
    trigger = require(document, "triggerEvent", str)
    if trigger not in EVENTS:
        payload = document.get("payload") if isinstance(document.get("payload"), dict) else {}
        uid = optional_str(payload, "uid") or optional_str(document, "createdAt") or "?"
        return BookingEvent("calcom", trigger, f"{trigger}:{uid}", "ignore", uid[:200])
    payload = require(document, "payload", dict)
    uid = require(document, "payload.uid", str).strip()[:200]
    start = require(document, "payload.startTime", str)
    end = require(document, "payload.endTime", str)
    cancelled = trigger == "BOOKING_CANCELLED"
    old_uid = optional_str(payload, "rescheduleUid") if trigger == "BOOKING_RESCHEDULED" else None
    return BookingEvent(
        provider="calcom",
        event=trigger,
        # uid and start: a booking cancelled, or moved in place, twice is two events.
        dedupe_key=f"{trigger}:{uid}:{start}",
        action="cancel" if cancelled else "book",
        external_id=uid,
        record=record(payload, start, end, cancelled=cancelled),
        replaces=old_uid if old_uid and old_uid != uid else None,
    )


def record(payload: dict[str, Any], start: str, end: str, *, cancelled: bool) -> dict[str, Any]:
    attendees = payload.get("attendees")
    if not isinstance(attendees, list) or not attendees or not isinstance(attendees[0], dict):
        raise ValidationFailed([FieldError("body.payload.attendees", "no attendee")])
    if len(attendees) > 1:
        raise ValidationFailed(
            [
                FieldError(
                    "body.payload.attendees",
                    "more than one attendee (group sessions are not supported)",
                )
            ]
        )
    person = attendees[0]
    email = optional_str(person, "email")
    patient: dict[str, Any] = {
        "external_id": patient_key(email, f"booking-{payload.get('uid')}"),
        "name": optional_str(person, "name"),
        "email": email,
        "timezone": optional_str(person, "timeZone"),
        "phone": optional_str(person, "phoneNumber") or _response(payload, "attendeePhoneNumber"),
    }
    language = person.get("language")
    if isinstance(language, dict) and optional_str(language, "locale"):
        patient["language"] = optional_str(language, "locale")
    status = "cancelled" if cancelled else _STATUS.get(str(payload.get("status") or ""), "booked")
    out: dict[str, Any] = {
        "patient": {k: v for k, v in patient.items() if v is not None},
        "start": start,
        "end": end,
        "status": status,
    }
    organizer = payload.get("organizer")
    if isinstance(organizer, dict) and optional_str(organizer, "name"):
        out["clinician"] = {
            "name": optional_str(organizer, "name"),
            "email": optional_str(organizer, "email"),
        }
    metadata = payload.get("metadata")
    video = optional_str(metadata, "videoCallUrl") if isinstance(metadata, dict) else None
    where = optional_str(payload, "location")
    if video and video.lower().startswith(("https://", "http://")):
        out["telehealth_url"] = video
    elif where and where.lower().startswith(("https://", "http://")):
        out["telehealth_url"] = where
    elif where and not where.startswith("integrations:"):
        out["location"] = {"name": where[:200]}
    return out


def _response(payload: dict[str, Any], name: str) -> str | None:
    responses = payload.get("responses")
    if not isinstance(responses, dict) or not isinstance(responses.get(name), dict):
        return None
    value = responses[name].get("value")
    return value.strip() if isinstance(value, str) and value.strip() else None
