"""channels: inbound webhooks stored raw before processing

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 12:55:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

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


def downgrade() -> None:
    op.drop_index("ix_inbound_webhooks_state", table_name="inbound_webhooks")
    op.drop_table("inbound_webhooks")
