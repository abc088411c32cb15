"""Calendly webhooks (API v2): ``invitee.created`` and ``invitee.canceled``.

Envelope ``{event, created_at, created_by, payload}``; the payload is the Invitee. Current
deliveries embed its ``scheduled_event`` (start, end, location, hosts); older ones (and the
published example) only link it by ``payload.event``, and it is then read from the Calendly
API with the practice's token (``CalendlyClient``).

A reschedule fires ``invitee.canceled`` for the old invitee (``rescheduled: true``,
``new_invitee`` set) and ``invitee.created`` for the new one (``old_invitee`` set).
Appointments are keyed by the invitee's uuid (one invitee = one patient in one slot).
"""

from __future__ import annotations

from typing import Any

import httpx

from frontdesk.adapters.schedulers.bookings import (
    BookingEvent,
    optional_str,
    patient_key,
    require,
)
from frontdesk.adapters.schedulers.errors import PermanentSyncError, TransientSyncError
from frontdesk.domain.errors import FieldError, ValidationFailed

EVENTS = ("invitee.created", "invitee.canceled")
API_BASE = "https://api.calendly.com"


def uuid_of(uri: str) -> str:
    """The last path segment of a Calendly resource URI."""
    return uri.rstrip("/").rsplit("/", 1)[-1][:200]


def parse(document: Any) -> BookingEvent:
    """The booking event of a Calendly webhook body (already JSON-decoded)."""
    if not isinstance(document, dict):
        raise ValidationFailed([FieldError("body", "expected a JSON object")])
    event = require(document, "event", str)
    payload = require(document, "payload", dict)
    if event not in EVENTS:
        uri = optional_str(payload, "uri") or optional_str(document, "created_at") or "?"
        return BookingEvent("calendly", event, f"{event}:{uri}", "ignore", uuid_of(uri))
    invitee_uri = require(document, "payload.uri", str)
    external_id = uuid_of(invitee_uri)
    booking = BookingEvent(
        provider="calendly",
        event=event,
        dedupe_key=f"{event}:{invitee_uri}",
        action="book" if event == "invitee.created" else "cancel",
        external_id=external_id,
        replaces=_uuid_or_none(payload.get("old_invitee")),
        replaced_by=_uuid_or_none(payload.get("new_invitee")),
        rescheduled=bool(payload.get("rescheduled")),
        event_uri=optional_str(payload, "event"),
    )
    scheduled = payload.get("scheduled_event")
    if isinstance(scheduled, dict):
        return booking.with_record(record(payload, scheduled))
    return booking


def _uuid_or_none(value: Any) -> str | None:
    return uuid_of(value) if isinstance(value, str) and value.strip() else None


def record(invitee: dict[str, Any], scheduled: dict[str, Any]) -> dict[str, Any]:
    """The AppointmentIn payload of an invitee and its scheduled event."""
    email = optional_str(invitee, "email")
    patient: dict[str, Any] = {
        "external_id": patient_key(email, f"invitee-{uuid_of(str(invitee.get('uri', '')))}"),
        "name": optional_str(invitee, "name"),
        "email": email,
    }
    phone = optional_str(invitee, "text_reminder_number")
    if phone:
        patient["phone"] = phone
    zone = optional_str(invitee, "timezone")
    if zone:
        patient["timezone"] = zone
    canceled = invitee.get("status") == "canceled" or scheduled.get("status") == "canceled"
    out: dict[str, Any] = {
        "patient": {k: v for k, v in patient.items() if v is not None},
        "start": require({"scheduled_event": scheduled}, "scheduled_event.start_time", str),
        "end": require({"scheduled_event": scheduled}, "scheduled_event.end_time", str),
        "status": "cancelled" if canceled else "booked",
    }
    hosts = scheduled.get("event_memberships")
    if isinstance(hosts, list) and hosts and isinstance(hosts[0], dict):
        name = optional_str(hosts[0], "user_name")
        if name:
            out["clinician"] = {"name": name, "email": optional_str(hosts[0], "user_email")}
    place = scheduled.get("location")
    if isinstance(place, dict):
        join_url = optional_str(place, "join_url")
        where = optional_str(place, "location")
        if join_url and join_url.lower().startswith(("https://", "http://")):
            out["telehealth_url"] = join_url
        elif place.get("type") == "physical" and where:
            out["location"] = {"name": where[:200]}
    return out


class CalendlyClient:
    """Reads a scheduled event from the Calendly API (only URIs under ``base``: a payload
    cannot send our token elsewhere)."""

    def __init__(
        self, token: str, *, base: str = API_BASE, client: httpx.Client | None = None
    ) -> None:
        self.token = token
        self.base = base.rstrip("/")
        self.client = client or httpx.Client(timeout=10.0)

    def scheduled_event(self, uri: str) -> dict[str, Any]:
        if not uri.startswith(self.base + "/scheduled_events/"):
            raise PermanentSyncError("the scheduled event is not under the Calendly API base")
        try:
            response = self.client.get(uri, headers={"Authorization": f"Bearer {self.token}"})
        except httpx.TransportError as exc:
            raise TransientSyncError(f"Calendly API: {type(exc).__name__}") from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientSyncError(f"Calendly API answered {response.status_code}")
        if response.status_code != 200:
            raise PermanentSyncError(f"Calendly API answered {response.status_code}")
        try:
            resource = response.json()["resource"]
        except (ValueError, KeyError, TypeError) as exc:
            raise PermanentSyncError("Calendly API answered without a resource") from exc
        if not isinstance(resource, dict):
            raise PermanentSyncError("Calendly API answered without a resource")
        return resource
