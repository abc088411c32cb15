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
from frontdesk.adapters.crypto import hash_token
from frontdesk.adapters.db.models import Practice
from frontdesk.adapters.db.staff_models import SignInThrottle, StaffSession, StaffUser
from frontdesk.bootstrap import Runtime
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


SCOPES = ("account", "ip")


def _throttle(session: Session, scope: str, key: str, lock: bool) -> SignInThrottle | None:
    query = select(SignInThrottle).where(
        SignInThrottle.scope == scope, SignInThrottle.key_hash == key
    )
    return session.scalar(query.with_for_update() if lock else query)


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


@dataclass(frozen=True)
class _Candidate:
    id: int
    practice_id: int
    email: str
    password_hash: str
    active: bool
    totp_secret_sealed: str | None
    totp_last_step: int | None


def sign_in(
    runtime: Runtime,
    *,
    email: str,
    password: str,
    code: str,
    ip: str,
    now: datetime,
    practice_slug: str | None = None,
    previous_token: str | None = None,
    settings: Settings | None = None,
) -> SignInResult:
    """Check the credentials and open a session, or count the failure (committed either way).

    The slow part, argon2, runs between two short transactions, never inside one: on SQLite a
    transaction holds the database's write lock, and sign-in attempts must not stall the rest.
    """
    settings = settings or runtime.settings
    params = hash_parameters(settings)
    address = normalize_staff_email(email)
    keys = (
        runtime.cipher.lookup_key(f"staff-account:{address}") or "",
        runtime.cipher.lookup_key(f"staff-ip:{ip}") or "",
    )

    with runtime.transaction() as session:
        locked = _locked(session, keys, now, lock_rows=False)
        query = select(StaffUser).where(StaffUser.email == address).order_by(StaffUser.id)
        if practice_slug:
            query = query.join(Practice, Practice.id == StaffUser.practice_id).where(
                Practice.slug == practice_slug
            )
        candidates = [
            _Candidate(
                u.id,
                u.practice_id,
                u.email,
                u.password_hash,
                u.active,
                u.totp_secret_sealed,
                u.totp_last_step,
            )
            for u in session.scalars(query)
        ]

    matched: _Candidate | None = None
    if locked or not candidates:
        burn_verification(password, params)
    else:
        matched = next(
            (c for c in candidates if verify_password(c.password_hash, password, params)), None
        )
    reason: str | None = None
    step: int | None = None
    new_hash: str | None = None
    if locked:
        reason = "locked"
    elif matched is None:
        reason = "unknown_account" if not candidates else "bad_password"
    elif not matched.active:
        reason = "disabled"
    elif matched.totp_secret_sealed is not None:
        secret = runtime.cipher.open(matched.totp_secret_sealed) or ""
        step = matching_totp_step(secret, code, now.timestamp(), after=matched.totp_last_step)
        if step is None:
            reason = "bad_code"
    if reason is None and matched is not None and needs_rehash(matched.password_hash, params):
        new_hash = hash_password(password, params)
    user_id = matched.id if matched else (candidates[0].id if candidates else None)

    def settle(session: Session) -> SignInResult:
        return _settle(
            session,
            settings,
            keys,
            now,
            ip,
            practice_slug,
            user_id,
            reason,
            step,
            new_hash,
            previous_token,
        )

    return runtime.retrying(settle)


def _locked(session: Session, keys: tuple[str, str], now: datetime, *, lock_rows: bool) -> bool:
    rows = [
        _throttle(session, scope, key, lock_rows) for scope, key in zip(SCOPES, keys, strict=True)
    ]
    return any(is_locked(_state(row), now) for row in rows)


def _settle(
    session: Session,
    settings: Settings,
    keys: tuple[str, str],
    now: datetime,
    ip: str,
    practice_slug: str | None,
    user_id: int | None,
    reason: str | None,
    step: int | None,
    new_hash: str | None,
    previous_token: str | None,
) -> SignInResult:
    """Record the outcome of one attempt, in one short transaction."""
    _forget_stale_throttles(session, settings, now)
    account_row, ip_row = (
        _throttle(session, scope, key, True) for scope, key in zip(SCOPES, keys, strict=True)
    )
    user = session.get(StaffUser, user_id) if user_id is not None else None
    practice_id = _audit_practice(session, user, practice_slug)
    if reason == "locked" or (
        is_locked(_state(account_row), now) or is_locked(_state(ip_row), now)
    ):
        _record(session, practice_id, user, "staff.sign_in_refused", reason="locked", ip=ip)
        return SignInResult(message=LOCKED)
    if reason is None and step is not None and user is not None:
        # Claim the code's time step with a conditional write: two requests racing with one
        # code cannot both win.
        claimed = session.execute(
            update(StaffUser)
            .where(
                StaffUser.id == user.id,
                or_(StaffUser.totp_last_step.is_(None), StaffUser.totp_last_step < step),
            )
            .values(totp_last_step=step)
            .execution_options(synchronize_session=False)
        )
        if getattr(claimed, "rowcount", 0) != 1:
            reason = "bad_code"
    if reason is not None or user is None:
        _record(
            session, practice_id, user, "staff.sign_in_failed", reason=reason or "unknown", ip=ip
        )
        account_locks = _count_failure(
            session, account_row, "account", keys[0], now, account_policy(settings)
        )
        ip_locks = _count_failure(session, ip_row, "ip", keys[1], now, ip_policy(settings))
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

    if new_hash is not None:
        user.password_hash = new_hash
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
            user_id=user.id,
            token_hash=hash_token(token),
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(hours=settings.staff_session_max_hours),
        )
    )
    user.last_login_at = now
    _record(session, user.practice_id, user, "staff.signed_in", ip=ip)
    return SignInResult(token=token, user_id=user.id)


def _forget_stale_throttles(session: Session, settings: Settings, now: datetime) -> None:
    """Counters whose window has passed and that lock nothing are the same as no counter:
    delete them, so guessed emails and addresses do not pile up."""
    window = timedelta(minutes=settings.staff_lockout_window_minutes)
    session.execute(
        delete(SignInThrottle).where(
            SignInThrottle.window_started_at <= now - window,
            or_(SignInThrottle.locked_until.is_(None), SignInThrottle.locked_until <= now),
        )
    )


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
