"""Each practice's provider accounts, and the senders built from them.

An account is a provider and its settings for one channel (``sms`` → Twilio, ``email`` → SMTP,
``whatsapp`` → WhatsApp Cloud API) or for inbound email (``email_inbound`` → Mailgun,
SendGrid or IMAP). Secret fields (tokens, passwords, signing keys) are sealed at rest and never
shown again in full; a channel without an account uses the local outbox.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from frontdesk.adapters.channels.base import ChannelSender
from frontdesk.adapters.channels.config import (
    ImapSettings,
    MailgunInboundSettings,
    SmtpSettings,
    TwilioSettings,
    WhatsAppSettings,
)
from frontdesk.adapters.channels.outbox import OutboxChannel
from frontdesk.adapters.channels.smtp import SmtpChannel
from frontdesk.adapters.channels.twilio_sms import TwilioSmsChannel
from frontdesk.adapters.channels.webchat import WebchatChannel
from frontdesk.adapters.channels.whatsapp import WhatsAppChannel
from frontdesk.adapters.crypto import FieldCipher
from frontdesk.adapters.db.channel_models import ChannelAccount
from frontdesk.adapters.db.models import Practice
from frontdesk.bootstrap import Runtime
from frontdesk.domain.channels import Channel
from frontdesk.domain.errors import FieldError, ValidationFailed
from frontdesk.services import audit


class SendgridInboundSettings(BaseModel):
    """SendGrid's Inbound Parse is unsigned: the webhook URL carries a secret path token."""

    url_token: SecretStr


PROVIDERS: dict[str, dict[str, type[BaseModel] | None]] = {
    "sms": {"outbox": None, "twilio": TwilioSettings},
    "email": {"outbox": None, "smtp": SmtpSettings},
    "whatsapp": {"outbox": None, "whatsapp_cloud": WhatsAppSettings},
    "email_inbound": {
        "mailgun": MailgunInboundSettings,
        "sendgrid": SendgridInboundSettings,
        "imap": ImapSettings,
    },
}


def _secret_fields(model: type[BaseModel]) -> set[str]:
    out = set()
    for name, info in model.model_fields.items():
        if "SecretStr" in str(info.annotation):
            out.add(name)
    return out


def set_account(
    session: Session,
    cipher: FieldCipher,
    practice: Practice,
    channel: str,
    provider: str,
    values: dict[str, Any],
    *,
    actor: str,
) -> dict[str, Any]:
    """Validate and store an account. Secrets left out keep their stored value, so an edit
    need not re-enter a token nobody can read back."""
    if channel not in PROVIDERS:
        raise ValidationFailed([FieldError("channel", f"one of {sorted(PROVIDERS)}")])
    if provider not in PROVIDERS[channel]:
        raise ValidationFailed(
            [FieldError("provider", f"for {channel}: one of {sorted(PROVIDERS[channel])}")]
        )
    row = session.scalar(
        select(ChannelAccount).where(
            ChannelAccount.practice_id == practice.id, ChannelAccount.channel == channel
        )
    )
    model = PROVIDERS[channel][provider]
    settings: dict[str, Any] = {}
    sealed: str | None = None
    if model is not None:
        merged = dict(values)
        if row is not None and row.provider == provider:
            kept = json.loads(cipher.open(row.secrets_sealed) or "{}")
            for name, value in kept.items():
                merged.setdefault(name, value)
        try:
            parsed = model.model_validate(merged)
        except ValidationError as exc:
            raise ValidationFailed(
                [
                    FieldError(".".join(str(p) for p in e["loc"]) or "settings", e["msg"])
                    for e in exc.errors()
                ]
            ) from None
        secrets_ = _secret_fields(model)
        dumped = parsed.model_dump(mode="json")
        settings = {k: v for k, v in dumped.items() if k not in secrets_}
        secret_values = {
            k: getattr(parsed, k).get_secret_value()
            for k in secrets_
            if getattr(parsed, k) is not None
        }
        sealed = cipher.seal(json.dumps(secret_values))
    if row is None:
        row = ChannelAccount(practice_id=practice.id, channel=channel, provider=provider)
        session.add(row)
    row.provider, row.settings, row.secrets_sealed, row.enabled = provider, settings, sealed, True
    session.flush()
    audit.record(
        session,
        practice_id=practice.id,
        actor=actor,
        action="channel_account.set",
        entity_type="channel_account",
        entity_id=row.id,
        details={"channel": channel, "provider": provider},
    )
    return view(row, cipher)


def view(row: ChannelAccount, cipher: FieldCipher) -> dict[str, Any]:
    secrets_ = json.loads(cipher.open(row.secrets_sealed) or "{}")
    return {
        "channel": row.channel,
        "provider": row.provider,
        "enabled": row.enabled,
        "settings": row.settings,
        # Never shown again in full: that a secret is set, and its last four characters.
        "secrets": {k: f"…{str(v)[-4:]}" for k, v in secrets_.items()},
        "updated_at": row.updated_at,
    }


def list_accounts(
    session: Session, practice: Practice, cipher: FieldCipher
) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(ChannelAccount).where(ChannelAccount.practice_id == practice.id)
    ).all()
    return [view(r, cipher) for r in rows]


def settings_of(row: ChannelAccount, cipher: FieldCipher) -> BaseModel | None:
    model = PROVIDERS.get(row.channel, {}).get(row.provider)
    if model is None:
        return None
    secrets_ = json.loads(cipher.open(row.secrets_sealed) or "{}")
    return model.model_validate({**row.settings, **secrets_})


def account(
    session: Session, cipher: FieldCipher, practice_id: int, channel: str
) -> tuple[str, BaseModel | None] | None:
    row = session.scalar(
        select(ChannelAccount).where(
            ChannelAccount.practice_id == practice_id,
            ChannelAccount.channel == channel,
            ChannelAccount.enabled.is_(True),
        )
    )
    if row is None:
        return None
    return row.provider, settings_of(row, cipher)


# --- senders -----------------------------------------------------------------------------------


@dataclass
class _Cached:
    built_at: float
    updated: object
    sender: ChannelSender


class SenderDirectory:
    """The sender for a practice and channel: its provider account's, else the local outbox.
    Built senders are kept (their HTTP clients reused) and rebuilt when the account changes."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        recheck_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.runtime = runtime
        self.recheck_seconds = recheck_seconds
        self.clock = clock
        self._outbox = OutboxChannel(runtime.sessions, runtime.cipher)
        self._webchat = WebchatChannel()
        self._cache: dict[tuple[int, Channel], _Cached] = {}
        self._lock = threading.Lock()

    def __call__(self, practice_id: int, channel: Channel) -> ChannelSender | None:
        if channel == Channel.WEBCHAT:
            return self._webchat
        key = (practice_id, channel)
        now = self.clock()
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and now - cached.built_at < self.recheck_seconds:
                return cached.sender
        with self.runtime.transaction() as session:
            row = session.scalar(
                select(ChannelAccount).where(
                    ChannelAccount.practice_id == practice_id,
                    ChannelAccount.channel == channel.value,
                    ChannelAccount.enabled.is_(True),
                )
            )
            updated = (row.provider, row.updated_at) if row is not None else None
            if cached is not None and cached.updated == updated:
                sender = cached.sender
            else:
                sender = self._build(row)
        with self._lock:
            self._cache[key] = _Cached(now, updated, sender)
        return sender

    def _build(self, row: ChannelAccount | None) -> ChannelSender:
        if row is None or row.provider == "outbox":
            return self._outbox
        settings = settings_of(row, self.runtime.cipher)
        if isinstance(settings, TwilioSettings):
            return TwilioSmsChannel(settings)
        if isinstance(settings, SmtpSettings):
            return SmtpChannel(settings)
        if isinstance(settings, WhatsAppSettings):
            return WhatsAppChannel(settings)
        return self._outbox
