"""Staff accounts as rules: roles, acceptable emails and passwords, and the lockout counter."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from frontdesk.domain.errors import FieldError


class Role(StrEnum):
    ADMIN = "admin"
    FRONT_DESK = "front_desk"
    CLINICIAN = "clinician"


PASSWORD_MIN = 12
# argon2 hashes anything, but a megabyte "password" is a way to burn our CPU.
PASSWORD_MAX = 256
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


def normalize_staff_email(value: str) -> str:
    return value.strip().lower()


def email_problems(value: str) -> list[FieldError]:
    email = normalize_staff_email(value)
    if not email or len(email) > 320 or not _EMAIL.match(email):
        return [FieldError("email", "enter an email address like name@example.com")]
    return []


def password_problems(value: str, loc: str = "password") -> list[FieldError]:
    if len(value) < PASSWORD_MIN:
        return [FieldError(loc, f"use at least {PASSWORD_MIN} characters")]
    if len(value) > PASSWORD_MAX:
        return [FieldError(loc, f"use at most {PASSWORD_MAX} characters")]
    if not value.strip():
        return [FieldError(loc, "a password cannot be only spaces")]
    return []


def role_problems(role: str, clinician_id: int | None) -> list[FieldError]:
    if role not in {r.value for r in Role}:
        return [FieldError("role", "choose admin, front_desk or clinician")]
    if role == Role.CLINICIAN and clinician_id is None:
        return [FieldError("clinician_id", "a clinician user must be linked to a clinician")]
    return []


@dataclass(frozen=True)
class LockoutPolicy:
    attempts: int
    window: timedelta
    lockout: timedelta


@dataclass(frozen=True)
class ThrottleState:
    failures: int
    window_started_at: datetime
    locked_until: datetime | None


def is_locked(state: ThrottleState | None, now: datetime) -> bool:
    return state is not None and state.locked_until is not None and now < state.locked_until


def after_failure(
    state: ThrottleState | None, now: datetime, policy: LockoutPolicy
) -> tuple[ThrottleState, bool]:
    """The counter after one more failure, and whether this failure starts a lockout.

    Failures count within a window that starts at the first failure; the Nth failure inside it
    locks for ``policy.lockout`` and starts the count afresh.
    """
    if state is None or now - state.window_started_at >= policy.window:
        state = ThrottleState(0, now, state.locked_until if state else None)
    failures = state.failures + 1
    if failures >= policy.attempts:
        return ThrottleState(0, now, now + policy.lockout), True
    return ThrottleState(failures, state.window_started_at, state.locked_until), False
