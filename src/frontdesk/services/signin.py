"""Signing staff in and out: passwords and codes checked, failures counted and locked out,
server-side sessions with idle and absolute expiry.

An unknown email is handled exactly like a known one with a wrong password: one password
verification's worth of time (against a dummy hash), the same message, and the same lockout
counter (keyed by the email, whether or not an account has it).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from frontdesk.adapters.credentials import (
    burn_verification,
    hash_password,
    matching_totp_step,
    needs_rehash,
    verify_password,
)
from frontdesk.adapters.crypto import FieldCipher, hash_token
from frontdesk.adapters.db.models import Practice
from frontdesk.adapters.db.staff_models import SignInThrottle, StaffSession, StaffUser
from frontdesk.config import Settings
from frontdesk.domain.staff import (
    LockoutPolicy,
    Role,
    ThrottleState,
    after_failure,
    is_locked,
    normalize_staff_email,
)
from frontdesk.services import audit
from frontdesk.services.staff import Staff, hash_parameters

# Writing last_seen_at on every request would make each page view a write; once a minute is
# enough for idle expiry measured in minutes.
LAST_SEEN_RESOLUTION = timedelta(seconds=60)

FAILED = "The email, password or code is not right."
LOCKED = "Too many failed sign-ins. Wait a few minutes, then try again."


@dataclass(frozen=True)
class SignInResult:
    token: str | None = None
    user_id: int | None = None
    message: str | None = None

    @property
    def ok(self) -> bool:
        return self.token is not None


def account_policy(settings: Settings) -> LockoutPolicy:
    return LockoutPolicy(
        settings.staff_lockout_attempts,
        timedelta(minutes=settings.staff_lockout_window_minutes),
        timedelta(minutes=settings.staff_lockout_minutes),
    )


def ip_policy(settings: Settings) -> LockoutPolicy:
    return LockoutPolicy(
        settings.staff_lockout_ip_attempts,
        timedelta(minutes=settings.staff_lockout_window_minutes),
        timedelta(minutes=settings.staff_lockout_minutes),
    )


def _throttle(session: Session, scope: str, key: str) -> SignInThrottle | None:
    return session.scalar(
        select(SignInThrottle)
        .where(SignInThrottle.scope == scope, SignInThrottle.key_hash == key)
        .with_for_update()
    )


def _state(row: SignInThrottle | None) -> ThrottleState | None:
    if row is None:
        return None
    return ThrottleState(row.failures, row.window_started_at, row.locked_until)


def _count_failure(
    session: Session,
    row: SignInThrottle | None,
    scope: str,
    key: str,
    now: datetime,
    policy: LockoutPolicy,
) -> bool:
    state, locks = after_failure(_state(row), now, policy)
    if row is None:
        row = SignInThrottle(scope=scope, key_hash=key)
        session.add(row)
    row.failures = state.failures
    row.window_started_at = state.window_started_at
    row.locked_until = state.locked_until
    session.flush()
    return locks


def _audit_practice(
    session: Session, user: StaffUser | None, practice_slug: str | None
) -> int | None:
    """Where a sign-in event is recorded: the account's practice; for an unknown email, the
    practice named on the form or the only practice (otherwise it is only counted)."""
    if user is not None:
        return user.practice_id
    query = select(Practice.id).order_by(Practice.id).limit(2)
    if practice_slug:
        query = query.where(Practice.slug == practice_slug)
    ids = session.scalars(query).all()
    return ids[0] if len(ids) == 1 else None


def _record(
    session: Session, practice_id: int | None, user: StaffUser | None, action: str, **details: str
) -> None:
    if practice_id is None:
        return
    audit.record(
        session,
        practice_id=practice_id,
        actor=f"staff:{user.email}" if user else "anonymous",
        action=action,
        entity_type="staff_user",
        entity_id=user.id if user else None,
        details=dict(details),
    )


def sign_in(
    session: Session,
    cipher: FieldCipher,
    settings: Settings,
    *,
    email: str,
    password: str,
    code: str,
    ip: str,
    now: datetime,
    practice_slug: str | None = None,
    previous_token: str | None = None,
) -> SignInResult:
    """Check the credentials and open a session, or count the failure. Never raises for bad
    credentials: the caller commits either way, so failures are remembered."""
    params = hash_parameters(settings)
    address = normalize_staff_email(email)
    account_key = cipher.lookup_key(f"staff-account:{address}") or ""
    ip_key = cipher.lookup_key(f"staff-ip:{ip}") or ""
    account_row = _throttle(session, "account", account_key)
    ip_row = _throttle(session, "ip", ip_key)

    query = select(StaffUser).where(StaffUser.email == address).order_by(StaffUser.id)
    if practice_slug:
        query = query.join(Practice, Practice.id == StaffUser.practice_id).where(
            Practice.slug == practice_slug
        )
    candidates = list(session.scalars(query))

    if is_locked(_state(account_row), now) or is_locked(_state(ip_row), now):
        burn_verification(password, params)
        user = candidates[0] if candidates else None
        _record(
            session,
            _audit_practice(session, user, practice_slug),
            user,
            "staff.sign_in_refused",
            reason="locked",
            ip=ip,
        )
        return SignInResult(message=LOCKED)

    matched: StaffUser | None = None
    if not candidates:
        burn_verification(password, params)
    for candidate in candidates:
        if verify_password(candidate.password_hash, password, params):
            matched = candidate
            break

    reason = None
    step: int | None = None
    if matched is None:
        reason = "unknown_account" if not candidates else "bad_password"
    elif not matched.active:
        reason = "disabled"
    elif matched.totp_secret_sealed is not None:
        secret = cipher.open(matched.totp_secret_sealed) or ""
        step = matching_totp_step(secret, code, now.timestamp(), after=matched.totp_last_step)
        if step is None:
            reason = "bad_code"
        else:
            # Claim the step with a conditional write: two requests racing with one code
            # cannot both win.
            claimed = session.execute(
                update(StaffUser)
                .where(
                    StaffUser.id == matched.id,
                    or_(StaffUser.totp_last_step.is_(None), StaffUser.totp_last_step < step),
                )
                .values(totp_last_step=step)
                .execution_options(synchronize_session=False)
            )
            if getattr(claimed, "rowcount", 0) != 1:
                reason = "bad_code"

    user = matched or (candidates[0] if candidates else None)
    practice_id = _audit_practice(session, user, practice_slug)
    if reason is not None:
        _record(session, practice_id, user, "staff.sign_in_failed", reason=reason, ip=ip)
        account_locks = _count_failure(
            session, account_row, "account", account_key, now, account_policy(settings)
        )
        ip_locks = _count_failure(session, ip_row, "ip", ip_key, now, ip_policy(settings))
        if account_locks or ip_locks:
            _record(
                session,
                practice_id,
                user,
                "staff.locked_out",
                scope="account" if account_locks else "ip",
                ip=ip,
            )
        return SignInResult(message=FAILED)

    assert matched is not None
    if needs_rehash(matched.password_hash, params):
        matched.password_hash = hash_password(password, params)
    if account_row is not None:
        session.delete(account_row)
    if previous_token:
        session.execute(
            delete(StaffSession).where(StaffSession.token_hash == hash_token(previous_token))
        )
    _forget_expired(session, settings, now)
    token = secrets.token_urlsafe(32)
    session.add(
        StaffSession(
            user_id=matched.id,
            token_hash=hash_token(token),
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(hours=settings.staff_session_max_hours),
        )
    )
    matched.last_login_at = now
    _record(session, matched.practice_id, matched, "staff.signed_in", ip=ip)
    return SignInResult(token=token, user_id=matched.id)


def _forget_expired(session: Session, settings: Settings, now: datetime) -> None:
    idle = timedelta(minutes=settings.staff_session_idle_minutes)
    session.execute(
        delete(StaffSession).where(
            or_(StaffSession.expires_at <= now, StaffSession.last_seen_at <= now - idle)
        )
    )


def session_staff(session: Session, settings: Settings, token: str, now: datetime) -> Staff | None:
    """Who holds the session ``token``, or None (unknown, expired idle or absolute, or the
    user is disabled). Expired sessions are deleted when found."""
    row = session.scalar(select(StaffSession).where(StaffSession.token_hash == hash_token(token)))
    if row is None:
        return None
    user = row.user
    idle = timedelta(minutes=settings.staff_session_idle_minutes)
    if now >= row.expires_at or now - row.last_seen_at >= idle or not user.active:
        session.delete(row)
        return None
    if now - row.last_seen_at >= LAST_SEEN_RESOLUTION:
        row.last_seen_at = now
    return Staff(
        user_id=user.id,
        practice_id=user.practice_id,
        practice_slug=user.practice.slug,
        practice_name=user.practice.name,
        email=user.email,
        display_name=user.display_name,
        role=Role(user.role),
        clinician_id=user.clinician_id,
        totp_enabled=user.totp_secret_sealed is not None,
        session_id=row.id,
        csrf_token=row.csrf_token,
    )


def sign_out(session: Session, token: str, *, ip: str) -> None:
    row = session.scalar(select(StaffSession).where(StaffSession.token_hash == hash_token(token)))
    if row is None:
        return
    user = row.user
    session.delete(row)
    _record(session, user.practice_id, user, "staff.signed_out", ip=ip)
