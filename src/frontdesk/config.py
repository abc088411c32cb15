"""One typed settings object, from ``FRONTDESK_*`` variables and an optional ``frontdesk.toml``.

Nothing here runs at import time: callers build ``Settings()`` (or ``load_settings``) when they
need one, so tests can hand each app its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from frontdesk.domain.reminders import ReminderPolicy

DEFAULT_DATABASE_URL = "sqlite:///./frontdesk.db"

# Values people paste from examples; outside demo mode they are refused rather than used.
PLACEHOLDER_SECRETS = frozenset(
    {"", "changeme", "change-me", "changethis", "secret", "password", "placeholder", "xxx"}
)


class Settings(BaseSettings):
    """Every knob frontdesk reads. Each field is documented in docs/CONFIGURATION.md."""

    model_config = SettingsConfigDict(
        env_prefix="FRONTDESK_",
        toml_file="frontdesk.toml",
        extra="forbid",
        validate_default=True,
    )

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description="SQLAlchemy URL of the database: sqlite:///PATH or postgresql://…",
    )
    secret_key: str | None = Field(
        default=None,
        description=(
            "Key that protects patient contact data at rest. Required for PostgreSQL; on SQLite a "
            "key file is created beside the database when unset."
        ),
    )
    demo: bool = Field(default=False, description="Demo mode: allows placeholder secrets.")
    host: str = Field(default="127.0.0.1", description="Address `frontdesk serve` binds to.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port `frontdesk serve` binds to.")
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Address patients and providers reach this server at (links, signatures).",
    )
    metrics_token: str | None = Field(
        default=None,
        description=(
            "When set, /metrics answers only requests with `Authorization: Bearer <token>` "
            "(for a Prometheus scraper outside a private network). Unset: open, as a liveness "
            "probe is."
        ),
    )
    max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="Largest request body the API accepts (bytes)."
    )
    default_session_minutes: int = Field(
        default=50,
        ge=5,
        le=600,
        description="Length of an appointment whose source gives a start but no end.",
    )
    import_window_past_days: int = Field(
        default=30, ge=0, description="iCalendar import: expand recurrences this far back."
    )
    import_window_future_days: int = Field(
        default=180, ge=1, description="iCalendar import: expand recurrences this far ahead."
    )
    default_timezone: str = Field(
        default="America/New_York", description="Timezone given to a newly created practice."
    )
    log_level: str = Field(default="INFO", description="Python logging level.")
    kb_max_document_bytes: int = Field(
        default=20_000_000, ge=1024, description="Largest file `frontdesk kb add` accepts."
    )
    kb_embeddings: bool = Field(
        default=True,
        description="Fuse sentence embeddings with BM25 when the embeddings extra is installed.",
    )
    crisis_screen: bool = Field(
        default=True,
        description=(
            "Crisis screens after the rules: the lexical model, and the semantic one when "
            "the embeddings extra is installed. False: the rules alone."
        ),
    )
    webhook_timeout_seconds: float = Field(
        default=15.0,
        gt=0,
        le=120,
        description="Outbound webhooks: how long to wait for an endpoint to answer (seconds).",
    )
    webhook_max_attempts: int = Field(
        default=16,
        ge=1,
        le=100,
        description="Outbound webhooks: attempts per delivery before it is marked dead.",
    )
    webhook_backoff_base_seconds: float = Field(
        default=10.0,
        gt=0,
        description="Outbound webhooks: delay before the first retry; doubles with each retry.",
    )
    webhook_backoff_max_seconds: float = Field(
        default=21600.0,
        gt=0,
        description="Outbound webhooks: longest delay between two retries (seconds).",
    )
    webhook_disable_after_failures: int = Field(
        default=20,
        ge=1,
        description="Outbound webhooks: consecutive failed attempts that disable an endpoint "
        "(together with webhook_disable_after_hours).",
    )
    webhook_disable_after_hours: float = Field(
        default=24.0,
        ge=0,
        description="Outbound webhooks: an endpoint is disabled only once it has been failing "
        "for at least this long.",
    )
    webhook_allow_http: bool = Field(
        default=False,
        description="Outbound webhooks: allow plain http:// endpoint URLs beyond loopback.",
    )
    webhook_inbound_tolerance_seconds: int = Field(
        default=300,
        ge=1,
        le=3600,
        description="Signed inbound webhooks: how far a webhook-timestamp may be from our clock.",
    )
    reminder_policy: ReminderPolicy = Field(
        default_factory=ReminderPolicy,
        description="Default reminder policy for practices that have not set their own.",
    )
    demo_traffic_seconds: float = Field(
        default=45.0,
        ge=0,
        description="Demo mode: seconds between scripted patient messages (0: none).",
    )
    sms_cancel_is_opt_out: bool = Field(
        default=True,
        description=(
            "A bare CANCEL by SMS is the carrier's opt-out keyword (Twilio blocks the number): "
            "record it as an SMS opt-out. False only for providers without that rule."
        ),
    )
    # Staff accounts (docs/STAFF.md).
    staff_session_idle_minutes: int = Field(
        default=30, ge=1, le=1440, description="A staff session ends after this long unused."
    )
    staff_session_max_hours: int = Field(
        default=12, ge=1, le=720, description="A staff session ends this long after sign-in."
    )
    staff_lockout_attempts: int = Field(
        default=5, ge=1, le=100, description="Failed sign-ins for one email before lockout."
    )
    staff_lockout_ip_attempts: int = Field(
        default=20, ge=1, le=10000, description="Failed sign-ins from one address before lockout."
    )
    staff_lockout_window_minutes: int = Field(
        default=15, ge=1, le=1440, description="Failures count within this window."
    )
    staff_lockout_minutes: int = Field(
        default=15, ge=1, le=1440, description="How long a lockout refuses further attempts."
    )
    staff_password_time_cost: int = Field(
        default=3, ge=1, le=20, description="argon2id passes over memory per password hash."
    )
    staff_password_memory_kib: int = Field(
        default=65536, ge=8, le=4_194_304, description="argon2id memory per password hash (KiB)."
    )
    staff_password_parallelism: int = Field(
        default=4, ge=1, le=64, description="argon2id lanes per password hash."
    )

    action_run_ttl_minutes: int = Field(
        default=1440,
        ge=5,
        le=60 * 24 * 30,
        description=(
            "A custom action waiting on a patient expires after this many minutes without "
            "activity (a wait_for_reply step's own timeout is kept)."
        ),
    )
    action_identity_max_failures: int = Field(
        default=3,
        ge=1,
        le=20,
        description=(
            "Failed identity checks in one conversation within 24 hours before it is locked and "
            "handed to a person (one identifier may fail this many plus 2 across conversations)."
        ),
    )

    llm_base_url: str | None = Field(
        default=None,
        description=(
            "Base URL of an OpenAI-compatible chat-completions endpoint (OpenAI, Ollama, vLLM, "
            "llama.cpp server). Unset: no language model is used."
        ),
    )
    llm_model: str = Field(default="gpt-4o-mini", description="Model name sent to the endpoint.")
    llm_api_key: str | None = Field(
        default=None, description="Bearer key for the endpoint (none for a local server)."
    )
    llm_timeout_seconds: float = Field(
        default=10.0, gt=0, le=120, description="Timeout of one language-model call."
    )
    llm_max_tokens: int = Field(
        default=300, ge=16, le=4000, description="Most tokens one language-model answer may use."
    )
    llm_answers_unmatched: bool = Field(
        default=True,
        description=(
            "With a language model: a question the extractive answer declined is offered to "
            "the model with the nearest passages; its answer is sent only when every sentence "
            "is supported by them (otherwise the decline stands)."
        ),
    )
    llm_monthly_token_budget: int | None = Field(
        default=None,
        ge=0,
        description=(
            "Tokens (prompt + completion) each practice may use per calendar month; once used, "
            "the deterministic agent answers alone until the month ends. Unset: no limit."
        ),
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment beats the file, the file beats defaults.
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:", "postgres:")):
            raise ValueError("database_url must be a sqlite:/// or postgresql:// URL")
        return value

    @field_validator("default_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA timezone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _secrets_fail_closed(self) -> Settings:
        if self.secret_key is not None and not self.demo:
            if self.secret_key.strip().lower() in PLACEHOLDER_SECRETS:
                raise ValueError("secret_key is a placeholder; set a real random value")
            if len(self.secret_key) < 32:
                raise ValueError("secret_key must be at least 32 characters")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def sqlalchemy_url(self) -> str:
        """The URL with the driver made explicit (psycopg 3 for PostgreSQL)."""
        url = self.database_url
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url

    def sqlite_path(self) -> Path | None:
        """Filesystem path of an on-disk SQLite database, or None (memory or PostgreSQL)."""
        if not self.is_sqlite:
            return None
        raw = self.database_url.split("///", 1)[1] if "///" in self.database_url else ""
        if raw in ("", ":memory:"):
            return None
        return Path(raw)


def load_settings(**overrides: Any) -> Settings:
    return Settings(**overrides)
