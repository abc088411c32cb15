"""Tables of staff accounts: users, their server-side sessions, and sign-in throttles."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from frontdesk.adapters.db.models import Base, Practice, utcnow


class StaffUser(Base):
    """A person at the practice who signs in: admin, front desk, or clinician.

    ``email`` is stored lower-cased, so uniqueness per practice is case-insensitive. A clinician
    user is linked to the practice's ``clinicians`` row and sees only that clinician's patients.
    """

    __tablename__ = "staff_users"
    __table_args__ = (UniqueConstraint("practice_id", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320))
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    clinician_id: Mapped[int | None] = mapped_column(
        ForeignKey("clinicians.id", ondelete="SET NULL")
    )
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    # The TOTP secret sealed with runtime.cipher; the last time step accepted (a code is
    # accepted once: a replay of the same step is refused).
    totp_secret_sealed: Mapped[str | None] = mapped_column(Text)
    totp_last_step: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    last_login_at: Mapped[datetime | None]

    practice: Mapped[Practice] = relationship()


class StaffSession(Base):
    """One signed-in browser. The cookie holds a random token; only its hash is stored."""

    __tablename__ = "staff_sessions"
    __table_args__ = (Index("ix_staff_sessions_user", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # Sent back in forms (hidden field) and by scripts (X-CSRF-Token); useless without the
    # cookie, which another site cannot read.
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]

    user: Mapped[StaffUser] = relationship()


class SignInThrottle(Base):
    """Failed sign-ins counted per account (keyed hash of the email, known or not) and per
    client address, and the lockout they lead to."""

    __tablename__ = "sign_in_throttles"
    __table_args__ = (UniqueConstraint("scope", "key_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(10))  # account | ip
    key_hash: Mapped[str] = mapped_column(String(64))
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[datetime] = mapped_column(default=utcnow)
    locked_until: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
