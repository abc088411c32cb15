"""Practices: the tenant every other row belongs to."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from frontdesk.adapters.db.models import Practice
from frontdesk.domain.contact import normalize_email, normalize_phone, region_of_locale
from frontdesk.domain.errors import FieldError, NotFound, PracticeNotChosen, ValidationFailed
from frontdesk.domain.times import is_valid_zone

DEFAULT_SLUG = "default"
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,59}$")


@dataclass(frozen=True)
class PracticeProfile:
    """Editable practice fields; None means 'leave as it is'."""

    name: str | None = None
    timezone: str | None = None
    locale: str | None = None
    phone: str | None = None
    email: str | None = None
    booking_url: str | None = None


def ensure_default_practice(session: Session, timezone: str) -> None:
    """A fresh database gets one practice, so everything works before any set-up."""
    if session.scalar(select(func.count()).select_from(Practice)) == 0:
        session.add(Practice(slug=DEFAULT_SLUG, name="My Practice", timezone=timezone))
        session.flush()


def resolve_practice(session: Session, slug: str | None) -> Practice:
    """The practice named ``slug``, or the only practice when no slug is given."""
    if slug:
        practice = session.scalar(select(Practice).where(Practice.slug == slug))
        if practice is None:
            raise NotFound(f"no practice with slug {slug!r}")
        return practice
    practices = session.scalars(select(Practice).order_by(Practice.id).limit(2)).all()
    if not practices:
        raise NotFound("the database has no practice yet; run 'frontdesk db upgrade'")
    if len(practices) > 1:
        raise PracticeNotChosen("several practices exist: choose one with --practice SLUG")
    return practices[0]


def list_practices(session: Session) -> list[Practice]:
    return list(session.scalars(select(Practice).order_by(Practice.slug)))


def create_practice(
    session: Session,
    slug: str,
    profile: PracticeProfile,
    *,
    default_timezone: str = "America/New_York",
) -> Practice:
    if not _SLUG.match(slug):
        raise ValidationFailed(
            [FieldError("slug", "use lower-case letters, digits and dashes (max 60)")]
        )
    if session.scalar(select(Practice).where(Practice.slug == slug)) is not None:
        raise ValidationFailed([FieldError("slug", f"a practice {slug!r} already exists")])
    practice = Practice(
        slug=slug,
        name=profile.name or slug,
        timezone=profile.timezone or default_timezone,
        locale=profile.locale or "en-US",
    )
    apply_profile(practice, profile)
    session.add(practice)
    session.flush()
    return practice


def apply_profile(practice: Practice, profile: PracticeProfile) -> None:
    errors: list[FieldError] = []
    if profile.timezone is not None and not is_valid_zone(profile.timezone):
        errors.append(FieldError("timezone", f"unknown IANA timezone {profile.timezone!r}"))
    phone = email = None
    if profile.phone:
        try:
            phone = normalize_phone(
                profile.phone, region_of_locale(profile.locale or practice.locale)
            )
        except ValueError as exc:
            errors.append(FieldError("phone", str(exc)))
    if profile.email:
        try:
            email = normalize_email(profile.email)
        except ValueError as exc:
            errors.append(FieldError("email", str(exc)))
    if profile.booking_url and not profile.booking_url.startswith(("https://", "http://")):
        errors.append(FieldError("booking_url", "must be an http(s) URL"))
    if errors:
        raise ValidationFailed(errors)
    if profile.name:
        practice.name = profile.name
    if profile.timezone:
        practice.timezone = profile.timezone
    if profile.locale:
        practice.locale = profile.locale
    if phone:
        practice.phone = phone
    if email:
        practice.email = email
    if profile.booking_url:
        practice.booking_url = profile.booking_url
