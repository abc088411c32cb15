"""Staff accounts: adding people, roles, disabling, passwords, two-step sign-in, and what a
clinician may see. Every change is audited (ids and codes only; never a password or code)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, false, func, select, true
from sqlalchemy.orm import Session

from frontdesk.adapters.credentials import (
    HashParameters,
    hash_password,
    matching_totp_step,
    new_totp_secret,
    verify_password,
)
from frontdesk.adapters.crypto import FieldCipher
from frontdesk.adapters.db.models import Appointment, Clinician, Practice
from frontdesk.adapters.db.staff_models import StaffSession, StaffUser
from frontdesk.config import Settings
from frontdesk.domain.errors import FieldError, NotFound, ValidationFailed
from frontdesk.domain.staff import (
    Role,
    email_problems,
    normalize_staff_email,
    password_problems,
    role_problems,
)
from frontdesk.services import audit

DEMO_ADMIN_EMAIL = "demo@harborlight.example"


@dataclass(frozen=True)
class Staff:
    """Who a signed-in request acts for (built fresh from the database on every request)."""

    user_id: int
    practice_id: int
    practice_slug: str
    practice_name: str
    email: str
    display_name: str
    role: Role
    clinician_id: int | None
    totp_enabled: bool
    session_id: int
    csrf_token: str

    @property
    def actor(self) -> str:
        return f"staff:{self.email}"


def hash_parameters(settings: Settings) -> HashParameters:
    return HashParameters(
        time_cost=settings.staff_password_time_cost,
        memory_kib=settings.staff_password_memory_kib,
        parallelism=settings.staff_password_parallelism,
    )


def generate_password() -> str:
    """A temporary password to hand to a person (about 120 bits)."""
    return secrets.token_urlsafe(15)


def user_view(user: StaffUser) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "display_name": user.display_name,
        "role": user.role,
        "clinician_id": user.clinician_id,
        "active": user.active,
        "totp_enabled": user.totp_secret_sealed is not None,
        "created_at": user.created_at,
        "last_login_at": user.last_login_at,
    }


def _record(session: Session, user: StaffUser, actor: str, action: str, **details: Any) -> None:
    audit.record(
        session,
        practice_id=user.practice_id,
        actor=actor,
        action=action,
        entity_type="staff_user",
        entity=user,
        details=details,
    )


def _check_clinician(session: Session, practice: Practice, clinician_id: int | None) -> None:
    if clinician_id is None:
        return
    found = session.scalar(
        select(Clinician.id).where(
            Clinician.id == clinician_id, Clinician.practice_id == practice.id
        )
    )
    if found is None:
        raise ValidationFailed([FieldError("clinician_id", "no such clinician in this practice")])


def list_users(session: Session, practice: Practice) -> list[StaffUser]:
    return list(
        session.scalars(
            select(StaffUser).where(StaffUser.practice_id == practice.id).order_by(StaffUser.email)
        )
    )


def find_user(session: Session, practice: Practice, email: str) -> StaffUser:
    user = session.scalar(
        select(StaffUser).where(
            StaffUser.practice_id == practice.id,
            StaffUser.email == normalize_staff_email(email),
        )
    )
    if user is None:
        raise NotFound(
            f"no staff user {normalize_staff_email(email)!r} in practice {practice.slug!r}"
        )
    return user


def get_user(session: Session, practice: Practice, user_id: int) -> StaffUser:
    user = session.get(StaffUser, user_id)
    if user is None or user.practice_id != practice.id:
        raise NotFound("no such staff user in this practice")
    return user


def create_user(
    session: Session,
    practice: Practice,
    *,
    email: str,
    display_name: str,
    role: str,
    password: str,
    params: HashParameters,
    clinician_id: int | None = None,
    actor: str,
) -> StaffUser:
    problems = email_problems(email) + role_problems(role, clinician_id)
    problems += password_problems(password)
    if not display_name.strip():
        problems.append(FieldError("display_name", "enter the person's name"))
    elif len(display_name.strip()) > 200:
        problems.append(FieldError("display_name", "use at most 200 characters"))
    if problems:
        raise ValidationFailed(problems)
    _check_clinician(session, practice, clinician_id)
    normalized = normalize_staff_email(email)
    exists = session.scalar(
        select(StaffUser.id).where(
            StaffUser.practice_id == practice.id, StaffUser.email == normalized
        )
    )
    if exists is not None:
        raise ValidationFailed([FieldError("email", "a staff user with this email exists")])
    user = StaffUser(
        practice_id=practice.id,
        email=normalized,
        display_name=display_name.strip(),
        role=role,
        clinician_id=clinician_id if role == Role.CLINICIAN else None,
        active=True,
        password_hash=hash_password(password, params),
    )
    session.add(user)
    session.flush()
    _record(session, user, actor, "staff.created", role=role, clinician_id=user.clinician_id)
    return user


def _active_admins(session: Session, practice_id: int) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(StaffUser)
            .where(
                StaffUser.practice_id == practice_id,
                StaffUser.role == Role.ADMIN,
                StaffUser.active.is_(True),
            )
        )
        or 0
    )


def _keep_an_admin(session: Session, user: StaffUser, field: str) -> None:
    if user.role == Role.ADMIN and user.active and _active_admins(session, user.practice_id) <= 1:
        raise ValidationFailed(
            [FieldError(field, "this is the practice's last active admin; add another first")]
        )


def change_role(
    session: Session,
    practice: Practice,
    user: StaffUser,
    role: str,
    clinician_id: int | None,
    *,
    actor: str,
) -> StaffUser:
    problems = role_problems(role, clinician_id)
    if problems:
        raise ValidationFailed(problems)
    _check_clinician(session, practice, clinician_id)
    if role != Role.ADMIN:
        _keep_an_admin(session, user, "role")
    before = user.role
    user.role = role
    user.clinician_id = clinician_id if role == Role.CLINICIAN else None
    _record(
        session,
        user,
        actor,
        "staff.role_changed",
        before=before,
        role=role,
        clinician_id=user.clinician_id,
    )
    return user


def revoke_sessions(session: Session, user_id: int, *, keep: int | None = None) -> None:
    statement = delete(StaffSession).where(StaffSession.user_id == user_id)
    if keep is not None:
        statement = statement.where(StaffSession.id != keep)
    session.execute(statement)


def set_active(session: Session, user: StaffUser, active: bool, *, actor: str) -> StaffUser:
    if user.active == active:
        return user
    if not active:
        _keep_an_admin(session, user, "active")
        revoke_sessions(session, user.id)
    user.active = active
    _record(session, user, actor, "staff.enabled" if active else "staff.disabled")
    return user


def set_password(
    session: Session,
    user: StaffUser,
    password: str,
    params: HashParameters,
    *,
    actor: str,
    action: str = "staff.password_reset",
    keep_session: int | None = None,
) -> None:
    """A new password; every session but ``keep_session`` ends (a reset signs out everywhere)."""
    problems = password_problems(password)
    if problems:
        raise ValidationFailed(problems)
    user.password_hash = hash_password(password, params)
    revoke_sessions(session, user.id, keep=keep_session)
    _record(session, user, actor, action)


def reset_password(
    session: Session, user: StaffUser, password: str, params: HashParameters, *, actor: str
) -> None:
    """An admin's reset, for a person who lost access: new password, every session signed
    out, and two-step sign-in off (they set it up again)."""
    set_password(session, user, password, params, actor=actor)
    clear_totp(session, user, actor=actor)


def change_own_password(
    session: Session,
    staff: Staff,
    current: str,
    new: str,
    params: HashParameters,
) -> None:
    user = session.get(StaffUser, staff.user_id)
    assert user is not None
    if not verify_password(user.password_hash, current, params):
        raise ValidationFailed([FieldError("current_password", "this is not your password")])
    problems = password_problems(new, "new_password")
    if problems:
        raise ValidationFailed(problems)
    set_password(
        session,
        user,
        new,
        params,
        actor=staff.actor,
        action="staff.password_changed",
        keep_session=staff.session_id,
    )


def enable_totp(
    session: Session,
    cipher: FieldCipher,
    staff: Staff,
    secret: str,
    code: str,
    now: datetime,
) -> None:
    """Turn on two-step sign-in with ``secret`` once the person proves their app has it."""
    user = session.get(StaffUser, staff.user_id)
    assert user is not None
    if len(secret) < 16 or not secret.isalnum():
        raise ValidationFailed([FieldError("secret", "start again from the account page")])
    step = matching_totp_step(secret, code, now.timestamp(), after=None)
    if step is None:
        raise ValidationFailed([FieldError("code", "that code does not match; try the next one")])
    user.totp_secret_sealed = cipher.seal(secret)
    user.totp_last_step = step
    _record(session, user, staff.actor, "staff.totp_enabled")


def disable_totp(
    session: Session, staff: Staff, password: str, params: HashParameters, *, actor: str | None
) -> None:
    user = session.get(StaffUser, staff.user_id)
    assert user is not None
    if not verify_password(user.password_hash, password, params):
        raise ValidationFailed([FieldError("password", "this is not your password")])
    clear_totp(session, user, actor=actor or staff.actor)


def clear_totp(session: Session, user: StaffUser, *, actor: str) -> None:
    if user.totp_secret_sealed is None:
        return
    user.totp_secret_sealed = None
    user.totp_last_step = None
    _record(session, user, actor, "staff.totp_disabled")


def begin_totp() -> str:
    return new_totp_secret()


def ensure_demo_admin(
    session: Session, practice: Practice, params: HashParameters
) -> tuple[StaffUser, str]:
    """The demo admin, created or reset to a fresh password (returned once, to print)."""
    password = generate_password()
    existing = session.scalar(
        select(StaffUser).where(
            StaffUser.practice_id == practice.id, StaffUser.email == DEMO_ADMIN_EMAIL
        )
    )
    if existing is None:
        user = create_user(
            session,
            practice,
            email=DEMO_ADMIN_EMAIL,
            display_name="Demo Admin",
            role=Role.ADMIN,
            password=password,
            params=params,
            actor="demo-seed",
        )
        return user, password
    existing.role = Role.ADMIN
    existing.clinician_id = None
    existing.active = True
    clear_totp(session, existing, actor="demo-seed")
    set_password(session, existing, password, params, actor="demo-seed")
    return existing, password


# --- what a clinician may see --------------------------------------------------------------------


def patient_filter(staff: Staff, patient_id: Any) -> ColumnElement[bool]:
    """A WHERE clause for ``patient_id`` (a column) limiting rows to what ``staff`` may see:
    everything in their practice for admins and front desk; for a clinician, the patients who
    have (or had) an appointment with them. Combine it with the query's practice filter."""
    if staff.role != Role.CLINICIAN:
        return true()
    if staff.clinician_id is None:  # the clinician's row is gone: nothing, not "no clinician"
        return false()
    own = select(Appointment.patient_id).where(
        Appointment.practice_id == staff.practice_id,
        Appointment.clinician_id == staff.clinician_id,
    )
    result: ColumnElement[bool] = patient_id.in_(own)
    return result


def visible_patient_ids(session: Session, staff: Staff) -> set[int] | None:
    """The patient ids a clinician may see; None means the whole practice (admin, front desk)."""
    if staff.role != Role.CLINICIAN:
        return None
    if staff.clinician_id is None:
        return set()
    return set(
        session.scalars(
            select(Appointment.patient_id)
            .where(
                Appointment.practice_id == staff.practice_id,
                Appointment.clinician_id == staff.clinician_id,
            )
            .distinct()
        )
    )
