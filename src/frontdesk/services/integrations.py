"""Per-practice integration configuration: which scheduling systems a practice connected.

Secrets (Calendly signing key and API token, Cal.com secret, FHIR token) and endpoints (an
iCalendar feed URL usually embeds a private token) are sealed with the runtime cipher; views
show only the endpoint's scheme and host and whether a secret is set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from frontdesk.adapters.crypto import FieldCipher
from frontdesk.adapters.db.models import Practice
from frontdesk.adapters.db.scheduler_models import Integration
from frontdesk.bootstrap import Runtime
from frontdesk.domain.errors import FieldError, NotFound, ValidationFailed
from frontdesk.domain.intake import SOURCE_PATTERN, SOURCE_RULE
from frontdesk.domain.times import iso, now_utc
from frontdesk.services import audit

KINDS = ("calendly", "calcom", "acuity", "fhir", "ics")
DEFAULT_INTERVAL = {"fhir": 300, "ics": 900}
MIN_INTERVAL, MAX_INTERVAL = 30, 86_400
_SECRET_MIN = 8
_HTTP_URL = re.compile(r"^https?://[^\s/?#]+[^\s]*$", re.IGNORECASE)


@dataclass(frozen=True)
class Opened:
    """An integration with its secrets opened, for the code that talks to the system."""

    id: int
    practice_id: int
    kind: str
    source: str
    endpoint: str | None
    secret: str | None
    token: str | None
    cursor: str | None
    etag: str | None
    last_modified: str | None


def opened(cipher: FieldCipher, row: Integration) -> Opened:
    return Opened(
        id=row.id,
        practice_id=row.practice_id,
        kind=row.kind,
        source=row.source,
        endpoint=cipher.open(row.endpoint_sealed),
        secret=cipher.open(row.secret_sealed),
        token=cipher.open(row.token_sealed),
        cursor=row.cursor,
        etag=row.etag,
        last_modified=row.last_modified,
    )


def view(row: Integration) -> dict[str, Any]:
    return {
        "source": row.source,
        "kind": row.kind,
        "endpoint": row.endpoint_hint,
        "secret_set": row.secret_sealed is not None,
        "token_set": row.token_sealed is not None,
        "enabled": row.enabled,
        "poll_interval_seconds": row.poll_interval_seconds,
        "next_poll_at": iso(row.next_poll_at),
        "last_polled_at": iso(row.last_polled_at),
        "last_success_at": iso(row.last_success_at),
        "consecutive_failures": row.consecutive_failures,
        "last_error": row.last_error,
        "cursor": row.cursor,
    }


def list_integrations(session: Session, practice: Practice) -> list[Integration]:
    return list(
        session.scalars(
            select(Integration)
            .where(Integration.practice_id == practice.id)
            .order_by(Integration.kind, Integration.source)
        )
    )


def find(session: Session, practice_id: int, source: str) -> Integration | None:
    return session.scalar(
        select(Integration).where(
            Integration.practice_id == practice_id, Integration.source == source
        )
    )


def of_kind(
    session: Session, practice_id: int, kind: str, *, lock: bool = False
) -> Integration | None:
    """The practice's (enabled) webhook integration of ``kind`` (one Calendly, one Cal.com).
    ``lock`` holds its row for the transaction: events of one integration are then applied
    one at a time (the two halves of a reschedule touch the same appointment)."""
    query = select(Integration).where(
        Integration.practice_id == practice_id,
        Integration.kind == kind,
        Integration.enabled.is_(True),
    )
    return session.scalar(query.with_for_update() if lock else query)


def set_webhook(
    session: Session,
    cipher: FieldCipher,
    practice: Practice,
    kind: str,
    *,
    secret: str,
    token: str | None = None,
    source: str | None = None,
    actor: str,
) -> Integration:
    """Create or update the practice's Calendly, Cal.com or Acuity integration (one of each).
    Acuity signs with its API key (``secret``) and is read with it and the user id (``token``)."""
    if kind not in ("calendly", "calcom", "acuity"):
        raise ValidationFailed([FieldError("kind", "must be calendly, calcom or acuity")])
    errors = []
    if len(secret.strip()) < _SECRET_MIN:
        label = {"calendly": "signing_key", "acuity": "api_key"}.get(kind, "secret")
        errors.append(FieldError(label, f"must be at least {_SECRET_MIN} characters"))
    if kind == "acuity" and not (token or "").strip().isdigit():
        errors.append(FieldError("user_id", "must be the Acuity user id (a number)"))
    source = _checked_source(source or kind, errors)
    if errors:
        raise ValidationFailed(errors)
    row = of_kind(session, practice.id, kind)
    if row is None:
        _refuse_taken(session, practice.id, source)
        row = Integration(practice_id=practice.id, kind=kind, source=source, enabled=True)
        session.add(row)
        action = "integration.created"
    else:
        action = "integration.updated"
    row.secret_sealed = cipher.seal(secret.strip())
    if token is not None:
        row.token_sealed = cipher.seal(token.strip()) if token.strip() else None
    session.flush()
    audit.record(
        session,
        practice_id=practice.id,
        actor=actor,
        action=action,
        entity_type="integration",
        entity_id=row.id,
        details={"kind": kind, "source": row.source},
    )
    return row


def add_polled(
    session: Session,
    cipher: FieldCipher,
    practice: Practice,
    kind: str,
    url: str,
    *,
    source: str | None = None,
    token: str | None = None,
    interval_seconds: int | None = None,
    now: datetime,
    actor: str,
) -> Integration:
    """Add a FHIR server or an iCalendar feed to poll; it is first polled at once."""
    if kind not in ("fhir", "ics"):
        raise ValidationFailed([FieldError("kind", "must be fhir or ics")])
    errors: list[FieldError] = []
    url = url.strip()
    if not _HTTP_URL.match(url) or len(url) > 2000:
        errors.append(FieldError("url", "must be an http(s) URL"))
    interval = interval_seconds or DEFAULT_INTERVAL[kind]
    if not MIN_INTERVAL <= interval <= MAX_INTERVAL:
        errors.append(
            FieldError("interval_seconds", f"must be between {MIN_INTERVAL} and {MAX_INTERVAL}")
        )
    source = _checked_source(source or _default_source(session, practice.id, kind), errors)
    if errors:
        raise ValidationFailed(errors)
    _refuse_taken(session, practice.id, source)
    parts = urlsplit(url)
    row = Integration(
        practice_id=practice.id,
        kind=kind,
        source=source,
        endpoint_sealed=cipher.seal(url),
        endpoint_hint=f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"[:300],
        token_sealed=cipher.seal(token.strip()) if token and token.strip() else None,
        enabled=True,
        poll_interval_seconds=interval,
        next_poll_at=now,
        consecutive_failures=0,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        practice_id=practice.id,
        actor=actor,
        action="integration.created",
        entity_type="integration",
        entity_id=row.id,
        details={"kind": kind, "source": source},
    )
    return row


def remove(session: Session, practice: Practice, source: str, *, actor: str) -> None:
    row = find(session, practice.id, source)
    if row is None:
        raise NotFound(f"no integration {source!r}")
    audit.record(
        session,
        practice_id=practice.id,
        actor=actor,
        action="integration.removed",
        entity_type="integration",
        entity_id=row.id,
        details={"kind": row.kind, "source": row.source},
    )
    session.delete(row)


def _checked_source(source: str, errors: list[FieldError]) -> str:
    cleaned = source.strip().lower()
    if not SOURCE_PATTERN.match(cleaned):
        errors.append(FieldError("source", SOURCE_RULE))
    return cleaned


def _refuse_taken(session: Session, practice_id: int, source: str) -> None:
    if find(session, practice_id, source) is not None:
        raise ValidationFailed(
            [FieldError("source", f"{source!r} is already an integration of this practice")]
        )


def _default_source(session: Session, practice_id: int, kind: str) -> str:
    """``fhir``, then ``fhir-2``, … for a practice's second server or feed."""
    taken = set(
        session.scalars(select(Integration.source).where(Integration.practice_id == practice_id))
    )
    if kind not in taken:
        return kind
    number = 2
    while f"{kind}-{number}" in taken:
        number += 1
    return f"{kind}-{number}"


# --- use cases for the API and the command line ----------------------------------------------


def practice_id_of(runtime: Runtime, slug: str | None) -> int:
    from frontdesk.services.practices import resolve_practice

    with runtime.transaction() as session:
        return resolve_practice(session, slug).id


def _practice(session: Session, practice_id: int) -> Practice:
    practice = session.get(Practice, practice_id)
    if practice is None:
        raise NotFound("the practice no longer exists")
    return practice


def list_views(runtime: Runtime, practice_id: int) -> list[dict[str, Any]]:
    with runtime.transaction() as session:
        return [view(r) for r in list_integrations(session, _practice(session, practice_id))]


def configure_webhook(
    runtime: Runtime,
    practice_id: int,
    kind: str,
    *,
    secret: str,
    token: str | None = None,
    source: str | None = None,
    actor: str,
) -> dict[str, Any]:
    with runtime.transaction() as session:
        row = set_webhook(
            session,
            runtime.cipher,
            _practice(session, practice_id),
            kind,
            secret=secret,
            token=token,
            source=source,
            actor=actor,
        )
        return view(row)


def configure_polled(
    runtime: Runtime,
    practice_id: int,
    kind: str,
    url: str,
    *,
    source: str | None = None,
    token: str | None = None,
    interval_seconds: int | None = None,
    actor: str,
) -> dict[str, Any]:
    with runtime.transaction() as session:
        row = add_polled(
            session,
            runtime.cipher,
            _practice(session, practice_id),
            kind,
            url,
            source=source,
            token=token,
            interval_seconds=interval_seconds,
            now=now_utc(),
            actor=actor,
        )
        return view(row)


def remove_source(runtime: Runtime, practice_id: int, source: str, *, actor: str) -> None:
    with runtime.transaction() as session:
        remove(session, _practice(session, practice_id), source, actor=actor)


def integration_id(runtime: Runtime, practice_id: int, source: str) -> int:
    with runtime.transaction() as session:
        row = find(session, practice_id, source)
        if row is None:
            raise NotFound(f"no integration {source!r}")
        if row.kind not in ("fhir", "ics"):
            raise ValidationFailed(
                [FieldError("source", f"{source!r} receives webhooks; only fhir and ics poll")]
            )
        return row.id
