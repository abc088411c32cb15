"""Acuity Scheduling webhooks: ``scheduled``, ``rescheduled``, ``canceled``, ``changed``.

Acuity POSTs a form (``application/x-www-form-urlencoded``) carrying only ids: ``action``,
``id`` (the appointment), ``calendarID`` and ``appointmentTypeID``; dynamic webhooks name the
action ``appointment.scheduled`` and so on. The body is signed with the account's API key:
``X-Acuity-Signature: base64(HMAC-SHA256(api key, raw body))``. The appointment itself is read
from ``GET /api/v1/appointments/{id}`` with HTTP Basic auth (user id, API key).

Because a delivery names no time, an Acuity event is a *state sync*: whatever the API says now
is applied. A reschedule keeps the appointment id (the session moves in place), so unlike
Cal.com and Calendly there are no two halves to link.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import httpx

from frontdesk.adapters.schedulers.bookings import BookingEvent, optional_str, patient_key
from frontdesk.adapters.schedulers.errors import PermanentSyncError, TransientSyncError
from frontdesk.domain.errors import FieldError, Unauthorized, ValidationFailed

API_BASE = "https://acuityscheduling.com/api/v1"
HEADER = "X-Acuity-Signature"
ACTIONS = ("scheduled", "rescheduled", "canceled", "changed")


@dataclass(frozen=True)
class Notification:
    """What one Acuity delivery says: an action on an appointment id."""

    action: str
    appointment_id: str
    calendar_id: str | None = None
    appointment_type_id: str | None = None

    @property
    def relevant(self) -> bool:
        return self.action in ACTIONS


def signature(api_key: str, body: bytes) -> str:
    """The header value Acuity sends (for tests and for documentation)."""
    digest = hmac.new(api_key.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify(header: str | None, body: bytes, api_key: str) -> None:
    """Raise ``Unauthorized`` unless ``header`` signs ``body`` with ``api_key``. Acuity signs no
    timestamp: replays are stopped by the inbound store's dedupe key, not here."""
    if not header:
        raise Unauthorized(f"missing {HEADER} header")
    if not hmac.compare_digest(signature(api_key, body), header.strip()):
        raise Unauthorized(f"{HEADER} does not match the body")


def parse_notification(body: bytes | str) -> Notification:
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    form = {k: v[0].strip() for k, v in parse_qs(text, keep_blank_values=True).items() if v}
    errors = []
    action = form.get("action", "")
    if not action:
        errors.append(FieldError("body.action", "missing"))
    appointment_id = form.get("id", "")
    if not appointment_id:
        errors.append(FieldError("body.id", "missing"))
    elif not appointment_id.isdigit() or len(appointment_id) > 20:
        errors.append(FieldError("body.id", "must be a number"))
    if errors:
        raise ValidationFailed(errors)
    return Notification(
        action=action.removeprefix("appointment."),
        appointment_id=appointment_id,
        calendar_id=form.get("calendarID") or None,
        appointment_type_id=form.get("appointmentTypeID") or None,
    )


def dedupe_key(notification: Notification, appointment: dict[str, Any] | None) -> str:
    """One key per state the delivery reports: a second delivery of the same change is a
    duplicate, a later reschedule of the same appointment is not (its ``datetime`` differs)."""
    if appointment is None:
        return f"{notification.action}:{notification.appointment_id}"
    state = "canceled" if _canceled(notification, appointment) else "active"
    when = optional_str(appointment, "datetime") or "?"
    return f"{notification.action}:{notification.appointment_id}:{when}:{state}"


def booking(notification: Notification, appointment: dict[str, Any] | None) -> BookingEvent:
    """The booking event of a delivery, with the appointment read from the API (None when it
    could not be read: a cancellation of an appointment we know is still applied)."""
    key = dedupe_key(notification, appointment)
    external_id = notification.appointment_id
    if not notification.relevant:
        return BookingEvent("acuity", notification.action, key, "ignore", external_id)
    if appointment is not None and str(appointment.get("id", external_id)) != external_id:
        raise ValidationFailed([FieldError("appointment.id", "does not match the delivery's id")])
    canceled = _canceled(notification, appointment)
    return BookingEvent(
        provider="acuity",
        event=notification.action,
        dedupe_key=key,
        action="cancel" if canceled else "book",
        external_id=external_id,
        record=record(appointment, canceled=canceled) if appointment is not None else None,
    )


def _canceled(notification: Notification, appointment: dict[str, Any] | None) -> bool:
    if appointment is not None and isinstance(appointment.get("canceled"), bool):
        # ``changed`` fires for every change: the appointment itself says what it is now.
        return bool(appointment["canceled"])
    return notification.action == "canceled"


def record(appointment: dict[str, Any], *, canceled: bool) -> dict[str, Any]:
    """An AppointmentIn payload from Acuity's appointment object."""
    when = optional_str(appointment, "datetime")
    if when is None:
        raise ValidationFailed([FieldError("appointment.datetime", "missing")])
    try:
        start = datetime.fromisoformat(when)
    except ValueError as exc:
        raise ValidationFailed(
            [FieldError("appointment.datetime", "not an ISO 8601 date and time")]
        ) from exc
    if start.tzinfo is None:
        raise ValidationFailed([FieldError("appointment.datetime", "has no UTC offset")])
    duration = appointment.get("duration")
    minutes = int(duration) if isinstance(duration, int | str) and str(duration).isdigit() else 0
    email = optional_str(appointment, "email")
    name = " ".join(
        part
        for part in (optional_str(appointment, "firstName"), optional_str(appointment, "lastName"))
        if part
    )
    patient: dict[str, Any] = {
        "external_id": patient_key(email, f"acuity-{appointment.get('id')}"),
        "name": name or None,
        "email": email,
        "phone": optional_str(appointment, "phone"),
        "timezone": optional_str(appointment, "timezone"),
    }
    out: dict[str, Any] = {
        "patient": {k: v for k, v in patient.items() if v is not None},
        "start": start.isoformat(),
        "status": "cancelled" if canceled else "booked",
    }
    if minutes > 0:
        out["end"] = (start + timedelta(minutes=minutes)).isoformat()
    calendar = optional_str(appointment, "calendar")
    if calendar:
        out["clinician"] = {"name": calendar[:200]}
    where = optional_str(appointment, "location")
    if where and where.lower().startswith(("https://", "http://")):
        out["telehealth_url"] = where
    elif where:
        out["location"] = {"name": where[:200]}
    return out


class AcuityClient:
    """Reads one appointment from the Acuity API."""

    def __init__(
        self,
        user_id: str,
        api_key: str,
        *,
        base: str = API_BASE,
        client: httpx.Client | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.auth = (user_id, api_key)
        self.base = base.rstrip("/")
        self.client = client
        self.timeout = timeout

    def appointment(self, appointment_id: str) -> dict[str, Any]:
        if not appointment_id.isdigit():
            raise PermanentSyncError("an Acuity appointment id is a number")
        url = f"{self.base}/appointments/{appointment_id}"
        try:
            if self.client is not None:
                response = self.client.get(url, auth=self.auth, timeout=self.timeout)
            else:
                with httpx.Client(timeout=self.timeout) as client:
                    response = client.get(url, auth=self.auth)
        except httpx.TransportError as exc:
            raise TransientSyncError(f"Acuity API: {type(exc).__name__}") from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientSyncError(f"Acuity API answered {response.status_code}")
        if response.status_code != 200:
            raise PermanentSyncError(f"Acuity API answered {response.status_code}")
        try:
            resource = response.json()
        except ValueError as exc:
            raise PermanentSyncError("Acuity API answered without JSON") from exc
        if not isinstance(resource, dict):
            raise PermanentSyncError("Acuity API answered without an appointment")
        return resource
