"""Wall-clock times and UTC: the conversions every importer needs, DST included."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class NonexistentLocalTime(ValueError):
    """A wall-clock time skipped by a DST change (e.g. 02:30 on a spring-forward night)."""


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    """The IANA zone called ``name``; ValueError with a readable message when unknown.
    Cached: ZoneInfo's own strong cache keeps only 8 zones, and planning asks for many."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA timezone {name!r}") from exc


def is_valid_zone(name: str) -> bool:
    try:
        zone(name)
    except ValueError:
        return False
    return True


def localize(naive: datetime, tz_name: str) -> datetime:
    """Attach ``tz_name`` to a wall-clock time and return it in UTC.

    An ambiguous time (the repeated hour in autumn) means its first occurrence, as calendar
    programs do. A time that does not exist (the skipped hour in spring) is refused rather than
    shifted: a silently moved session is worse than a clear error.
    """
    if naive.tzinfo is not None:
        return naive.astimezone(UTC)
    tz = zone(tz_name)
    aware = naive.replace(tzinfo=tz, fold=0)
    round_trip = aware.astimezone(UTC).astimezone(tz)
    if round_trip.replace(tzinfo=None) != naive:
        raise NonexistentLocalTime(
            f"{naive.isoformat()} does not exist in {tz_name} (skipped by a daylight-saving change)"
        )
    return aware.astimezone(UTC)


def to_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("datetime must carry a UTC offset")
    return value.astimezone(UTC)


def now_utc() -> datetime:
    return datetime.now(UTC)


def iso(value: datetime | None) -> str | None:
    """An instant as ISO 8601 in UTC with a ``Z``, the one way our JSON writes times."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None
