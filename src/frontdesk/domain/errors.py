"""Our own small error hierarchy; entry points translate it to HTTP codes or exit codes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    """One problem with one piece of input. ``loc`` is a dotted path, JSON path or line/column."""

    loc: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"loc": self.loc, "message": self.message}


class FrontdeskError(Exception):
    code = "error"


class ValidationFailed(FrontdeskError):
    code = "validation_error"

    def __init__(self, errors: list[FieldError], message: str = "The input is not valid.") -> None:
        super().__init__(message)
        self.errors = errors
        self.message = message


class NotFound(FrontdeskError):
    code = "not_found"


class Unauthorized(FrontdeskError):
    code = "unauthorized"


class Forbidden(FrontdeskError):
    code = "forbidden"


class PracticeNotChosen(FrontdeskError):
    """Several practices exist and the caller did not say which one."""

    code = "practice_not_chosen"


class ConfigurationError(FrontdeskError):
    code = "configuration_error"


class DeliveryError(FrontdeskError):
    """A channel could not take a message. Adapters raise one of the two kinds below, translated
    from their vendor's errors, so retry rules live in one place (the dispatcher)."""

    code = "delivery_error"
    #: The provider's own error code when there is one (e.g. Twilio "21610", WhatsApp "131047").
    provider_code: str | None = None


class TransientError(DeliveryError):
    """Worth retrying later: timeouts, 5xx, rate limits."""

    code = "transient_delivery_error"


class PermanentError(DeliveryError):
    """Retrying will not help: invalid number, opted out, blocked. Try another channel."""

    code = "permanent_delivery_error"


class RecipientOptedOut(PermanentError):
    """The recipient has opted out at the provider (Twilio 21610, WhatsApp 131050): record the
    revocation in the consent ledger and use another consented channel."""

    code = "recipient_opted_out"


class OutsideServiceWindow(PermanentError):
    """WhatsApp refuses free-form text more than 24 hours after the patient's last message
    (131047): send an approved template instead, or use another channel."""

    code = "outside_service_window"


class ChannelMisconfigured(PermanentError):
    """The practice's provider settings are wrong (bad credentials, unknown sender or template,
    suspended account): no message on this channel will go until someone fixes them."""

    code = "channel_misconfigured"
