"""Per-practice API keys: shown once at creation, stored only as a hash."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from frontdesk.adapters.crypto import hash_token
from frontdesk.adapters.db.models import ApiKey, Practice
from frontdesk.domain.errors import NotFound, Unauthorized
from frontdesk.domain.times import now_utc
from frontdesk.services import audit

TOKEN_PREFIX = "fdk"
# Recording every use would turn each read into a write; once in a while is enough to audit.
LAST_USED_RESOLUTION = timedelta(minutes=5)


@dataclass(frozen=True)
class Caller:
    """Who an API request acts for."""

    practice_id: int
    key_id: int
    key_prefix: str
    can_write: bool

    @property
    def actor(self) -> str:
        return f"api_key:{self.key_prefix}"


def create_api_key(
    session: Session, practice: Practice, name: str, *, can_write: bool = True, actor: str = "cli"
) -> tuple[ApiKey, str]:
    """A new key and its token. The token is returned once and never stored."""
    prefix = secrets.token_hex(6)
    token = f"{TOKEN_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey(
        practice_id=practice.id,
        name=name,
        prefix=prefix,
        token_hash=hash_token(token),
        can_write=can_write,
    )
    session.add(key)
    session.flush()
    audit.record(
        session,
        practice_id=practice.id,
        actor=actor,
        action="api_key.created",
        entity_type="api_key",
        entity_id=key.id,
        details={"prefix": prefix, "can_write": can_write},
    )
    return key, token


def authenticate(session: Session, token: str) -> Caller:
    parts = token.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        raise Unauthorized("the API key is malformed")
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == parts[1]))
    if key is None or not hmac.compare_digest(key.token_hash, hash_token(token.strip())):
        raise Unauthorized("the API key is not valid")
    if key.revoked_at is not None:
        raise Unauthorized("the API key has been revoked")
    now = now_utc()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        key.last_used_at = now
    return Caller(
        practice_id=key.practice_id, key_id=key.id, key_prefix=key.prefix, can_write=key.can_write
    )


def list_api_keys(session: Session, practice: Practice) -> list[ApiKey]:
    return list(
        session.scalars(select(ApiKey).where(ApiKey.practice_id == practice.id).order_by(ApiKey.id))
    )


def revoke_api_key(session: Session, practice: Practice, prefix: str, *, actor: str) -> ApiKey:
    key = session.scalar(
        select(ApiKey).where(ApiKey.practice_id == practice.id, ApiKey.prefix == prefix)
    )
    if key is None:
        raise NotFound(f"no API key {prefix!r} in practice {practice.slug!r}")
    if key.revoked_at is None:
        key.revoked_at = now_utc()
        audit.record(
            session,
            practice_id=practice.id,
            actor=actor,
            action="api_key.revoked",
            entity_type="api_key",
            entity_id=key.id,
        )
    return key
