"""What a practice may say about its webhook endpoints, validated once for the API and the CLI."""

from __future__ import annotations

import ipaddress
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationInfo, field_validator

EVENT_TYPES: tuple[str, ...] = (
    "appointment.confirmed",
    "appointment.cancelled",
    "appointment.reschedule_requested",
    "appointment.missed",
    "conversation.handoff",
    "reminder.failed",
    "patient.opted_out",
    "action.completed",
)

Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]


def is_loopback_host(host: str) -> bool:
    if host in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(value: str, *, allow_http: bool) -> str:
    """An endpoint URL: absolute http(s), no credentials; https unless loopback or allowed."""
    value = value.strip()
    if len(value) > 1000:
        raise ValueError("the URL is longer than 1000 characters")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("use an absolute http:// or https:// URL")
    if parts.username or parts.password:
        raise ValueError("do not put credentials in the URL; the signature authenticates us")
    if parts.scheme == "http" and not allow_http and not is_loopback_host(parts.hostname):
        raise ValueError(
            "use https:// (plain http is accepted only for loopback, or with "
            "FRONTDESK_WEBHOOK_ALLOW_HTTP=true)"
        )
    return value


def check_event_types(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    cleaned = sorted({item.strip() for item in value if item.strip()})
    unknown = [item for item in cleaned if item not in EVENT_TYPES]
    if unknown:
        raise ValueError(
            f"unknown event type(s) {', '.join(unknown)}; known: {', '.join(EVENT_TYPES)}"
        )
    if not cleaned:
        raise ValueError("list at least one event type, or leave the field out for all")
    return cleaned


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("url", check_fields=False)
    @classmethod
    def _url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        return check_url(value, allow_http=bool((info.context or {}).get("allow_http")))

    @field_validator("event_types", check_fields=False)
    @classmethod
    def _types(cls, value: list[str] | None) -> list[str] | None:
        return check_event_types(value)


class EndpointIn(_Input):
    """A new endpoint. Without ``event_types`` it receives every event type."""

    url: str
    event_types: list[str] | None = None
    description: Description | None = None
    enabled: bool = True


class EndpointPatch(_Input):
    """Changes to an endpoint; fields left out keep their value. ``event_types: null`` means
    every type again. Enabling a disabled endpoint resumes its waiting deliveries."""

    url: str | None = None
    event_types: list[str] | None = None
    description: Description | None = None
    enabled: bool | None = None
