"""Staff account rules without a database: lockout counting, passwords, argon2, TOTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyotp
import pytest

from frontdesk.adapters.credentials import (
    HashParameters,
    hash_password,
    matching_totp_step,
    needs_rehash,
    totp_code,
    totp_step,
    verify_password,
)
from frontdesk.domain.staff import (
    LockoutPolicy,
    ThrottleState,
    after_failure,
    email_problems,
    is_locked,
    password_problems,
    role_problems,
)

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
POLICY = LockoutPolicy(attempts=3, window=timedelta(minutes=15), lockout=timedelta(minutes=10))
CHEAP = HashParameters(time_cost=1, memory_kib=1024, parallelism=1)


def fail_at(state: ThrottleState | None, minutes: float) -> tuple[ThrottleState, bool]:
    return after_failure(state, T0 + timedelta(minutes=minutes), POLICY)


def test_the_nth_failure_in_the_window_locks_for_the_cooling_off_period() -> None:
    state, locked = fail_at(None, 0)
    assert (state.failures, locked) == (1, False)
    state, locked = fail_at(state, 5)
    assert (state.failures, locked) == (2, False)
    state, locked = fail_at(state, 6)
    assert locked and state.locked_until == T0 + timedelta(minutes=16)
    assert is_locked(state, T0 + timedelta(minutes=15, seconds=59))
    assert not is_locked(state, T0 + timedelta(minutes=16))
    # After the lockout the count starts again: one more failure does not lock at once.
    state, locked = fail_at(state, 17)
    assert (state.failures, locked) == (1, False)
    assert not is_locked(state, T0 + timedelta(minutes=17))


def test_failures_outside_the_window_start_a_new_count() -> None:
    state, _ = fail_at(None, 0)
    state, _ = fail_at(state, 1)
    state, locked = fail_at(state, 16)  # the window (15 min from the first) has passed
    assert (state.failures, locked) == (1, False)
    assert state.window_started_at == T0 + timedelta(minutes=16)


@pytest.mark.parametrize(
    ("password", "ok"),
    [("short", False), ("x" * 11, False), ("x" * 12, True), (" " * 20, False), ("y" * 257, False)],
)
def test_password_rules(password: str, ok: bool) -> None:
    assert (password_problems(password) == []) is ok


def test_email_and_role_rules() -> None:
    assert email_problems(" Desk@Example.COM ") == []
    assert email_problems("not an email") != []
    assert role_problems("admin", None) == []
    assert [p.loc for p in role_problems("clinician", None)] == ["clinician_id"]
    assert [p.loc for p in role_problems("owner", None)] == ["role"]


def test_argon2_hash_verify_and_rehash_when_parameters_change() -> None:
    stored = hash_password("a long enough password", CHEAP)
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, "a long enough password", CHEAP)
    assert not verify_password(stored, "a long enough passworD", CHEAP)
    assert not verify_password("not a hash", "anything", CHEAP)
    assert not needs_rehash(stored, CHEAP)
    stronger = HashParameters(time_cost=2, memory_kib=2048, parallelism=1)
    assert needs_rehash(stored, stronger)
    # A hash made with other parameters still verifies (the parameters are in the hash).
    assert verify_password(stored, "a long enough password", stronger)


def test_totp_codes_match_rfc_6238_and_pyotp() -> None:
    # RFC 6238 appendix B, SHA-1, 8 digits, secret "12345678901234567890" at T=59 s.
    import base64

    secret = base64.b32encode(b"12345678901234567890").decode()
    assert pyotp.TOTP(secret, digits=8).at(59) == "94287082"
    assert totp_code(secret, totp_step(59)) == "94287082"[-6:]


def test_totp_accepts_one_step_either_side_and_never_a_used_step() -> None:
    secret = pyotp.random_base32()
    now = 1_800_000_015.0
    step = totp_step(now)
    for offset in (-1, 0, 1):
        assert matching_totp_step(secret, totp_code(secret, step + offset), now, after=None) == (
            step + offset
        )
    assert matching_totp_step(secret, totp_code(secret, step + 2), now, after=None) is None
    assert matching_totp_step(secret, totp_code(secret, step - 2), now, after=None) is None
    # A code already used (its step, or any earlier one) is refused.
    assert matching_totp_step(secret, totp_code(secret, step), now, after=step) is None
    assert matching_totp_step(secret, totp_code(secret, step - 1), now, after=step) is None
    assert matching_totp_step(secret, totp_code(secret, step + 1), now, after=step) == step + 1
    code = totp_code(secret, step)
    assert matching_totp_step(secret, f"{code[:3]} {code[3:]}", now, after=None) == step
    assert matching_totp_step(secret, "12345", now, after=None) is None
    assert matching_totp_step(secret, "abcdef", now, after=None) is None
