"""The shape of an appointment or patient as any source hands it to us.

REST, CSV, iCalendar and FHIR all translate their input into these records, so validation (and
its error messages) is written once. Fields the source leaves out keep their stored value on an
update; ``None`` clears an optional field.

Validation context (``model_validate(..., context=...)``):
- ``default_region``: country used to read phone numbers written without ``+``.
- ``default_timezone``: zone for wall-clock times without an offset (file imports only; the API
  requires an offset or an explicit ``timezone``).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from frontdesk.domain.appointments import AppointmentStatus, Confirmation, time_problem
from frontdesk.domain.channels import Channel
from frontdesk.domain.contact import normalize_email, normalize_language, normalize_phone
from frontdesk.domain.errors import FieldError
from frontdesk.domain.times import NonexistentLocalTime, is_valid_zone, localize

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Identifier = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=r"^\S+$")
]
SourceName = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, to_lower=True, min_length=1, max_length=40, pattern=r"^[a-z0-9_.-]+$"
    ),
]
# Names a scheduling system (part of every record's key): "calendly", "ehr-main", "csv".
SOURCE_PATTERN = re.compile(r"^[a-z0-9_.-]{1,40}$")
SOURCE_RULE = "use 1-40 lower-case letters, digits, '.', '_' or '-'"
_URL = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)


class IntakeOutcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class PatientIn(_Record):
    name: Name | None = None
    preferred_name: Name | None = None
    date_of_birth: date | None = None
    phone: str | None = None
    email: str | None = None
    preferred_channel: Channel | None = None
    language: str | None = None
    timezone: str | None = None
    consent: dict[Channel, bool] | None = None
    reminders_enabled: bool | None = None

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or not value.strip():
            return None
        region = (info.context or {}).get("default_region", "US")
        return normalize_phone(value, region)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return normalize_email(value)

    @field_validator("language")
    @classmethod
    def _language(cls, value: str | None) -> str | None:
        return None if value is None or not value.strip() else normalize_language(value)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not is_valid_zone(value):
            raise ValueError(f"unknown IANA timezone {value!r} (use e.g. 'America/Chicago')")
        return value

    @field_validator("date_of_birth")
    @classmethod
    def _dob(cls, value: date | None) -> date | None:
        if value is not None and not date(1900, 1, 1) <= value <= date.today():  # noqa: DTZ011
            raise ValueError("date of birth must be between 1900-01-01 and today")
        return value


class PatientRef(PatientIn):
    """The patient of an appointment: who it is (source + id), optionally with their details."""

    external_id: Identifier
    source: SourceName | None = None

    def details(self) -> PatientIn:
        """The patient fields the source actually sent (for an upsert alongside the appointment)."""
        sent = self.model_fields_set - {"external_id", "source"}
        return PatientIn.model_construct(
            _fields_set=set(sent), **{k: getattr(self, k) for k in PatientIn.model_fields}
        )


class ClinicianIn(_Record):
    name: Name
    external_id: Identifier | None = None
    email: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return None if value is None or not value.strip() else normalize_email(value)


class LocationIn(_Record):
    name: Name
    address: Annotated[str, StringConstraints(max_length=500)] | None = None
    timezone: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is not None and not is_valid_zone(value):
            raise ValueError(f"unknown IANA timezone {value!r}")
        return value


class AppointmentIn(_Record):
    """An appointment as a scheduling system describes it.

    ``start`` (and ``end``) need a UTC offset, unless ``timezone`` names the zone of the wall
    time or the import supplies a default zone. Without ``end``, ``duration_minutes`` (or the
    practice's default session length, applied by the service) sets it.
    """

    patient: PatientRef
    # Before start and end: their validators read it (fields validate in this order).
    timezone: str | None = None
    start: datetime
    end: datetime | None = None
    duration_minutes: int | None = Field(default=None, ge=1, le=24 * 60)
    status: AppointmentStatus = AppointmentStatus.BOOKED
    confirmation: Confirmation | None = None
    clinician: ClinicianIn | None = None
    location: LocationIn | None = None
    telehealth_url: str | None = None

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is not None and not is_valid_zone(value):
            raise ValueError(f"unknown IANA timezone {value!r} (use e.g. 'America/Chicago')")
        return value

    @field_validator("telehealth_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not _URL.match(value) or len(value) > 1000:
            raise ValueError("telehealth_url must be an http(s) URL")
        return value

    @field_validator("start", "end")
    @classmethod
    def _in_utc(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is not None:
            return value.astimezone(UTC)
        zone_name = info.data.get("timezone") or (info.context or {}).get("default_timezone")
        if zone_name is None:
            raise ValueError(
                "no UTC offset: add one (e.g. 2026-03-02T15:00:00-05:00) "
                "or give the appointment a 'timezone'"
            )
        try:
            return localize(value, zone_name)
        except NonexistentLocalTime as exc:
            raise ValueError(str(exc)) from exc

    @field_validator("end")
    @classmethod
    def _after_start(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        start = info.data.get("start")
        if value is not None and start is not None:
            problem = time_problem(start, value)
            if problem:
                raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _one_length(self) -> AppointmentIn:
        if (
            self.end is not None
            and self.duration_minutes is not None
            and self.end - self.start != timedelta(minutes=self.duration_minutes)
        ):
            raise ValueError("end and duration_minutes disagree; send only one")
        return self

    def resolved_end(self, default_minutes: int) -> datetime:
        if self.end is not None:
            return self.end
        return self.start + timedelta(minutes=self.duration_minutes or default_minutes)


def field_errors(exc: ValidationError, prefix: str = "") -> list[FieldError]:
    """Pydantic's errors as our ``FieldError``s, with dotted locations under ``prefix``."""
    out: list[FieldError] = []
    for err in exc.errors(include_url=False):
        parts = [str(p) for p in err["loc"]]
        loc = ".".join(p for p in [prefix, *parts] if p)
        message = err["msg"]
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        out.append(FieldError(loc=loc or "record", message=message))
    return out
