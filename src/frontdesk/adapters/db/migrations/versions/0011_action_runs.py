"""custom actions: specs, runs and their step logs

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-28 13:15:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

TS = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "action_specs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("practice_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("trigger_event", sa.String(length=40), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("spec", JSON, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["practice_id"],
            ["practices.id"],
            name=op.f("fk_action_specs_practice_id_practices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_action_specs")),
        sa.UniqueConstraint("practice_id", "name", name=op.f("uq_action_specs_practice_id_name")),
    )
    op.create_table(
        "action_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("practice_id", sa.Integer(), nullable=False),
        sa.Column("action_name", sa.String(length=60), nullable=False),
        sa.Column("spec", JSON, nullable=False),
        sa.Column("trigger_key", sa.String(length=120), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("patient_id", sa.Integer(), nullable=True),
        sa.Column("appointment_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("pc", sa.Integer(), nullable=False),
        sa.Column("asking", sa.String(length=60), nullable=True),
        sa.Column("asks", sa.Integer(), nullable=False),
        sa.Column("language", sa.String(length=10), nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("signed_link", sa.Boolean(), nullable=False),
        sa.Column("fields_sealed", sa.Text(), nullable=True),
        sa.Column("results_sealed", sa.Text(), nullable=True),
        sa.Column("wait_until", TS, nullable=True),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("outcome", sa.String(length=60), nullable=True),
        sa.Column("started_by", sa.String(length=120), nullable=False),
        sa.Column("step_count", sa.Integer(), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointments.id"],
            name=op.f("fk_action_runs_appointment_id_appointments"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_action_runs_conversation_id_conversations"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_action_runs_patient_id_patients"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["practice_id"],
            ["practices.id"],
            name=op.f("fk_action_runs_practice_id_practices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_action_runs")),
        sa.UniqueConstraint(
            "practice_id",
            "action_name",
            "trigger_key",
            name=op.f("uq_action_runs_practice_id_action_name_trigger_key"),
        ),
    )
    op.create_index(
        "ix_action_runs_conversation", "action_runs", ["conversation_id", "state"], unique=False
    )
    op.create_index("ix_action_runs_due", "action_runs", ["state", "wait_until"], unique=False)
    op.create_index("ix_action_runs_patient", "action_runs", ["patient_id", "state"], unique=False)
    op.create_table(
        "identity_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("practice_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("identifier_lookup", sa.String(length=64), nullable=True),
        sa.Column("succeeded", sa.Boolean(), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_identity_attempts_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["practice_id"],
            ["practices.id"],
            name=op.f("fk_identity_attempts_practice_id_practices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_attempts")),
    )
    op.create_index(
        "ix_identity_attempts_conversation",
        "identity_attempts",
        ["practice_id", "conversation_id", "at"],
        unique=False,
    )
    op.create_index(
        "ix_identity_attempts_identifier",
        "identity_attempts",
        ["practice_id", "identifier_lookup", "at"],
        unique=False,
    )
    op.create_table(
        "action_effects",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("practice_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("pc", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=120), nullable=False),
        sa.Column("url", sa.String(length=1000), nullable=False),
        sa.Column("body_sealed", sa.Text(), nullable=False),
        sa.Column("timeout_seconds", sa.Double(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("claimed_by", sa.String(length=80), nullable=True),
        sa.Column("claim_expires_at", TS, nullable=True),
        sa.Column("error", sa.String(length=300), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["practice_id"],
            ["practices.id"],
            name=op.f("fk_action_effects_practice_id_practices"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["action_runs.id"],
            name=op.f("fk_action_effects_run_id_action_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_action_effects")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_action_effects_idempotency_key")),
    )
    op.create_index(
        "ix_action_effects_due", "action_effects", ["status", "next_attempt_at"], unique=False
    )
    op.create_table(
        "action_step_logs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("practice_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("pc", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=40), nullable=False),
        sa.Column("detail", JSON, nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["practice_id"],
            ["practices.id"],
            name=op.f("fk_action_step_logs_practice_id_practices"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["action_runs.id"],
            name=op.f("fk_action_step_logs_run_id_action_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_action_step_logs")),
    )
    op.create_index("ix_action_step_logs_run", "action_step_logs", ["run_id", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_action_step_logs_run", table_name="action_step_logs")
    op.drop_table("action_step_logs")
    op.drop_index("ix_action_effects_due", table_name="action_effects")
    op.drop_table("action_effects")
    op.drop_index("ix_identity_attempts_identifier", table_name="identity_attempts")
    op.drop_index("ix_identity_attempts_conversation", table_name="identity_attempts")
    op.drop_table("identity_attempts")
    op.drop_index("ix_action_runs_patient", table_name="action_runs")
    op.drop_index("ix_action_runs_due", table_name="action_runs")
    op.drop_index("ix_action_runs_conversation", table_name="action_runs")
    op.drop_table("action_runs")
    op.drop_table("action_specs")
