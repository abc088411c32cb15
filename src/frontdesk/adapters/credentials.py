"""Staff credentials: argon2id password hashes and RFC 6238 time-based one-time codes."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from functools import lru_cache

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

TOTP_STEP_SECONDS = 30
TOTP_DIGITS = 6


@dataclass(frozen=True)
class HashParameters:
    time_cost: int
    memory_kib: int
    parallelism: int


@lru_cache(maxsize=8)
def _hasher(params: HashParameters) -> PasswordHasher:
    return PasswordHasher(
        time_cost=params.time_cost,
        memory_cost=params.memory_kib,
        parallelism=params.parallelism,
    )


@lru_cache(maxsize=8)
def _dummy_hash(params: HashParameters) -> str:
    return _hasher(params).hash(secrets.token_urlsafe(24))


def hash_password(password: str, params: HashParameters) -> str:
    return _hasher(params).hash(password)


def verify_password(stored: str, password: str, params: HashParameters) -> bool:
    """True when ``password`` matches ``stored`` (whatever parameters made it)."""
    try:
        return _hasher(params).verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str, params: HashParameters) -> bool:
    try:
        return _hasher(params).check_needs_rehash(stored)
    except InvalidHashError:
        return True


def burn_verification(password: str, params: HashParameters) -> None:
    """Spend the time of one verification against a hash no one has: an unknown email or a
    locked account answers as slowly as a known one."""
    verify_password(_dummy_hash(params), password, params)


# --- TOTP ----------------------------------------------------------------------------------------


def new_totp_secret() -> str:
    return pyotp.random_base32()  # 160 bits, as RFC 4226 recommends


def totp_uri(secret: str, account: str, issuer: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=issuer)


def totp_step(unix_seconds: float) -> int:
    return int(unix_seconds // TOTP_STEP_SECONDS)


def totp_code(secret: str, step: int) -> str:
    return pyotp.TOTP(secret).generate_otp(step)


def matching_totp_step(
    secret: str, code: str, unix_seconds: float, *, after: int | None
) -> int | None:
    """The time step (now, one before or one after) whose code is ``code``, if that step is
    later than ``after`` (a step already used is never accepted again); otherwise None."""
    code = "".join(code.split())
    if len(code) != TOTP_DIGITS or not code.isdigit():
        return None
    now = totp_step(unix_seconds)
    for step in (now - 1, now, now + 1):
        if after is not None and step <= after:
            continue
        if hmac.compare_digest(totp_code(secret, step), code):
            return step
    return None
