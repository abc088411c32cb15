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


class TransientError(DeliveryError):
    """Worth retrying later: timeouts, 5xx, rate limits."""

    code = "transient_delivery_error"


class PermanentError(DeliveryError):
    """Retrying will not help: invalid number, opted out, blocked. Try another channel."""

    code = "permanent_delivery_error"
