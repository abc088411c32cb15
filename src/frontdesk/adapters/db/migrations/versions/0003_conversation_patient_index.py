"""conversations by patient and channel

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 04:25:00

Every message the dispatcher logs looks up the patient's thread on its channel; without this
index that lookup scanned the table, so sending slowed as threads accumulated.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_conversations_patient_channel", ["patient_id", "channel"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_index("ix_conversations_patient_channel")
