"""One shape for a booking event from any scheduler webhook (Calendly, Cal.com)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import Any, Literal

from frontdesk.domain.errors import FieldError, ValidationFailed

Action = Literal["book", "cancel", "ignore"]


@dataclass(frozen=True)
class BookingEvent:
    """What a scheduler told us about one booking.

    ``external_id`` keys the appointment. A reschedule is linked both ways: the new booking
    names the one it ``replaces``; the cancelled old one is ``rescheduled`` (and may name the
    booking it was ``replaced_by``). ``record`` is an AppointmentIn payload, or None when the
    event does not say when the session is (a Calendly payload without its scheduled event).
    """

    provider: str
    event: str
    dedupe_key: str
    action: Action
    external_id: str
    record: dict[str, Any] | None = None
    replaces: str | None = None
    replaced_by: str | None = None
    rescheduled: bool = False
    event_uri: str | None = None  # Calendly: where to read the scheduled event

    def with_record(self, record: dict[str, Any]) -> BookingEvent:
        return replace(self, record=record)


def patient_key(email: str | None, fallback: str) -> str:
    """A patient id for schedulers that have none: a digest of the e-mail address (the same
    person booking twice is one patient; the address itself never becomes a key)."""
    if email and email.strip():
        digest = hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()[:40]
        return f"email-{digest}"
    return fallback


def require(data: Any, path: str, kind: type) -> Any:
    """The value at dotted ``path`` of ``data``, which must be a ``kind``; field errors else."""
    value = data
    walked: list[str] = []
    for part in path.split("."):
        walked.append(part)
        if not isinstance(value, dict) or part not in value or value[part] is None:
            raise ValidationFailed([FieldError("body." + ".".join(walked), "missing")])
        value = value[part]
    if not isinstance(value, kind):
        raise ValidationFailed(
            [FieldError("body." + path, f"expected {kind.__name__}, got {type(value).__name__}")]
        )
    return value


def optional_str(data: Any, key: str) -> str | None:
    value = data.get(key) if isinstance(data, dict) else None
    return value.strip() if isinstance(value, str) and value.strip() else None
