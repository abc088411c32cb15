"""The ways frontdesk can reach a patient."""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    SMS = "sms"
    EMAIL = "email"
    WHATSAPP = "whatsapp"
    WEBCHAT = "webchat"


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class ConsentStatus(StrEnum):
    GRANTED = "granted"
    REVOKED = "revoked"


def default_channel(*, has_phone: bool, has_email: bool) -> Channel | None:
    """The channel to use when the patient has not chosen one: SMS is read soonest."""
    if has_phone:
        return Channel.SMS
    if has_email:
        return Channel.EMAIL
    return None
