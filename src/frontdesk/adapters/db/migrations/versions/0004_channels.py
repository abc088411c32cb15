"""channels: inbound webhooks, templates, consent ledger, one-click links, provider accounts,
and the outbound message queue

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 12:55:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

TS = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inbound_webhooks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("practice_id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("dedupe_key", sa.String(length=300), nullable=False),
        sa.Column("content_type", sa.String(length=200), nullable=True),
        sa.Column("raw_sealed", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["practice_id"],
            ["practices.id"],
            name=op.f("fk_inbound_webhooks_practice_id_practices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_webhooks")),
        sa.UniqueConstraint(
            "practice_id",
            "provider",
            "dedupe_key",
            name=op.f("uq_inbound_webhooks_practice_id_provider_dedupe_key"),
        ),
    )
    op.create_index(
        "ix_inbound_webhooks_state", "inbound_webhooks", ["state", "received_at"], unique=False
    )

    op.create_table(
        "channel_accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("practice_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("provider", sa.String(length=30), nullable=False),
        sa.Column("settings", JSON, nullable=False),
        sa.Column("secrets_sealed", sa.Text(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["practice_id"],
            ["practices.id"],
            name=op.f("fk_channel_accounts_practice_id_practices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channel_accounts")),
        sa.UniqueConstraint(
            "practice_id", "channel", name=op.f("uq_channel_accounts_practice_id_channel")
        ),
    )
    op.create_table(
        "message_templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("practice_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=60), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("language", sa.String(length=10), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=True),
        sa.Column("whatsapp_template", sa.String(length=200), nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["practice_id"],
            ["practices.id"],
            name=op.f("fk_message_templates_practice_id_practices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_templates")),
        sa.UniqueConstraint(
            "practice_id",
            "purpose",
            "channel",
            "language",
            name=op.f("uq_message_templates_practice_id_purpose_channel_language"),
        ),
    )
    op.create_table(
        "action_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("practice_id", sa.Integer(), nullable=False),
        sa.Column("appointment_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("used_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointments.id"],
            name=op.f("fk_action_links_appointment_id_appointments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["practice_id"],
            ["practices.id"],
            name=op.f("fk_action_links_practice_id_practices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_action_links")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_action_links_token_hash")),
    )
    op.create_table(
        "consent_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("practice_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("action", sa.String(length=10), nullable=False),
        sa.Column("source", sa.String(length=60), nullable=False),
        sa.Column("evidence_message_id", sa.Integer(), nullable=True),
        sa.Column("detail", sa.String(length=300), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["evidence_message_id"],
            ["messages.id"],
            name=op.f("fk_consent_events_evidence_message_id_messages"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_consent_events_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["practice_id"],
            ["practices.id"],
            name=op.f("fk_consent_events_practice_id_practices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_events")),
    )
    op.create_index(
        "ix_consent_events_patient", "consent_events", ["patient_id", "created_at"], unique=False
    )
    op.add_column(
        "conversations",
        sa.Column("owner", sa.String(length=10), nullable=False, server_default="agent"),
    )
    op.add_column(
        "conversations",
        sa.Column("urgent", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column("conversations", sa.Column("escalated_at", TS, nullable=True))
    op.add_column("conversations", sa.Column("acknowledged_at", TS, nullable=True))
    op.add_column("conversations", sa.Column("address_sealed", sa.Text(), nullable=True))
    op.add_column("conversations", sa.Column("address_lookup", sa.String(length=64), nullable=True))
    op.add_column("conversations", sa.Column("last_inbound_at", TS, nullable=True))
    op.add_column("messages", sa.Column("purpose", sa.String(length=40), nullable=True))
    op.add_column("messages", sa.Column("subject", sa.String(length=300), nullable=True))
    op.add_column("messages", sa.Column("html_body", sa.Text(), nullable=True))
    op.add_column("messages", sa.Column("in_reply_to", sa.String(length=300), nullable=True))
    op.add_column(
        "messages", sa.Column("attempts", sa.Integer(), nullable=False, server_default="0")
    )
    op.add_column("messages", sa.Column("next_attempt_at", TS, nullable=True))
    op.add_column("messages", sa.Column("claimed_by", sa.String(length=80), nullable=True))
    op.add_column("messages", sa.Column("claim_expires_at", TS, nullable=True))
    op.add_column("messages", sa.Column("error", sa.String(length=300), nullable=True))
    op.add_column("messages", sa.Column("sent_at", TS, nullable=True))
    op.add_column("messages", sa.Column("status_updated_at", TS, nullable=True))
    op.create_index(
        "ix_messages_pending", "messages", ["delivery_status", "next_attempt_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_messages_pending", table_name="messages")
    for column in (
        "status_updated_at",
        "sent_at",
        "error",
        "claim_expires_at",
        "claimed_by",
        "next_attempt_at",
        "attempts",
        "in_reply_to",
        "html_body",
        "subject",
        "purpose",
    ):
        op.drop_column("messages", column)
    for column in (
        "last_inbound_at",
        "address_lookup",
        "address_sealed",
        "acknowledged_at",
        "escalated_at",
        "urgent",
        "owner",
    ):
        op.drop_column("conversations", column)
    op.drop_index("ix_consent_events_patient", table_name="consent_events")
    op.drop_table("consent_events")
    op.drop_table("action_links")
    op.drop_table("message_templates")
    op.drop_table("channel_accounts")
    op.drop_index("ix_inbound_webhooks_state", table_name="inbound_webhooks")
    op.drop_table("inbound_webhooks")
