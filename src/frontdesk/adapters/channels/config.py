"""The settings each provider adapter needs, as pydantic models. Where they are stored (settings
file, environment, a per-practice table) is decided by whoever builds the adapters; secrets are
``SecretStr`` so they never print."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SmtpSecurity(StrEnum):
    STARTTLS = "starttls"  # plain connection upgraded with STARTTLS (usually port 587)
    SSL = "ssl"  # TLS from the first byte, "SMTPS" (usually port 465)
    NONE = "none"  # no TLS: only for a relay on localhost


class SmtpSettings(_Settings):
    host: str
    port: int = Field(587, ge=1, le=65535)
    security: SmtpSecurity = SmtpSecurity.STARTTLS
    username: str | None = None
    password: SecretStr | None = None
    from_address: str = Field(description="The From address, e.g. 'Sunrise Therapy <hi@x.org>'")
    reply_to: str | None = None
    message_id_domain: str | None = Field(
        None, description="Right-hand side of Message-IDs; the From address's domain by default"
    )
    timeout_seconds: float = Field(20.0, gt=0)
    ca_file: Path | None = Field(None, description="Extra CA bundle to trust (self-hosted relay)")
    verify_tls: bool = True
    auto_submitted: bool = Field(
        True, description="Add 'Auto-Submitted: auto-generated' (RFC 3834) to every message"
    )

    @model_validator(mode="after")
    def _auth_is_complete(self) -> Self:
        if (self.username is None) != (self.password is None):
            raise ValueError("set both username and password, or neither")
        return self


class ImapSecurity(StrEnum):
    SSL = "ssl"  # usually port 993
    STARTTLS = "starttls"  # usually port 143


class ImapSettings(_Settings):
    host: str
    port: int = Field(993, ge=1, le=65535)
    security: ImapSecurity = ImapSecurity.SSL
    username: str
    password: SecretStr
    mailbox: str = "INBOX"
    timeout_seconds: float = Field(30.0, gt=0)
    ca_file: Path | None = None
    verify_tls: bool = True
    max_messages_per_poll: int = Field(100, ge=1)


class MailgunInboundSettings(_Settings):
    signing_key: SecretStr = Field(description="Mailgun's HTTP webhook signing key")
    max_age_seconds: int = Field(300, ge=1, description="Reject older timestamps (replays)")


class TwilioSettings(_Settings):
    account_sid: str = Field(pattern=r"^AC[0-9a-fA-F]{32}$")
    auth_token: SecretStr = Field(description="Signs webhooks; authenticates REST calls by default")
    api_key_sid: str | None = Field(None, pattern=r"^SK[0-9a-fA-F]{32}$")
    api_key_secret: SecretStr | None = None
    from_number: str | None = Field(None, description="E.164 sender, e.g. +15005550006")
    messaging_service_sid: str | None = Field(None, pattern=r"^MG[0-9a-fA-F]{32}$")
    status_callback_url: str | None = Field(
        None, description="Public URL of our status-callback webhook (per message if unset)"
    )
    base_url: str = "https://api.twilio.com"
    timeout_seconds: float = Field(15.0, gt=0)

    @model_validator(mode="after")
    def _sender_and_key(self) -> Self:
        if not self.from_number and not self.messaging_service_sid:
            raise ValueError("set from_number or messaging_service_sid")
        if (self.api_key_sid is None) != (self.api_key_secret is None):
            raise ValueError("set both api_key_sid and api_key_secret, or neither")
        return self


class WhatsAppSettings(_Settings):
    phone_number_id: str = Field(pattern=r"^[0-9]+$")
    access_token: SecretStr
    app_secret: SecretStr = Field(description="Signs webhooks (X-Hub-Signature-256)")
    verify_token: SecretStr = Field(description="Our secret for the GET subscription handshake")
    base_url: str = "https://graph.facebook.com"
    api_version: str = Field("v23.0", pattern=r"^v[0-9]+\.[0-9]+$")
    timeout_seconds: float = Field(15.0, gt=0)
    service_window_hours: int = Field(24, ge=1, le=24)
    templates: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="Approved template names per purpose and language code: "
        '{"reminder_24h": {"en_US": "reminder_24h_en", "es": "reminder_24h_es"}}',
    )

    def template_name(self, purpose: str, language: str) -> str | None:
        """The approved template for a purpose in a language: the exact code ("es_MX"), else
        its base language ("es"), else None."""
        names = self.templates.get(purpose)
        if names is None:
            return None
        found = names.get(language)
        if found is None:
            found = names.get(language.split("_")[0])
        return found
