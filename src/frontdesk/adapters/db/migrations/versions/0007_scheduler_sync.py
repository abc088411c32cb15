"""scheduler sync state (FHIR, iCalendar feeds, Calendly, Cal.com)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 12:55:00

Integrations and their sync state, appointment aliases left by reschedules, and the durable
queue of FHIR write-backs.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "integrations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("practice_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("endpoint_sealed", sa.Text(), nullable=True),
        sa.Column("endpoint_hint", sa.String(length=300), nullable=True),
        sa.Column("secret_sealed", sa.Text(), nullable=True),
        sa.Column("token_sealed", sa.Text(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("poll_interval_seconds", sa.Integer(), nullable=True),
        sa.Column("next_poll_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cursor", sa.String(length=100), nullable=True),
        sa.Column("etag", sa.String(length=300), nullable=True),
        sa.Column("last_modified", sa.String(length=100), nullable=True),
        sa.Column("last_polled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["practice_id"],
            ["practices.id"],
            name=op.f("fk_integrations_practice_id_practices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_integrations")),
        sa.UniqueConstraint(
            "practice_id", "source", name=op.f("uq_integrations_practice_id_source")
        ),
    )
    op.create_table(
        "appointment_aliases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("practice_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=False),
        sa.Column("appointment_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointments.id"],
            name=op.f("fk_appointment_aliases_appointment_id_appointments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["practice_id"],
            ["practices.id"],
            name=op.f("fk_appointment_aliases_practice_id_practices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appointment_aliases")),
        sa.UniqueConstraint(
            "practice_id",
            "source",
            "external_id",
            name=op.f("uq_appointment_aliases_practice_id_source_external_id"),
        ),
    )
    op.create_index(
        op.f("ix_appointment_aliases_appointment_id"),
        "appointment_aliases",
        ["appointment_id"],
        unique=False,
    )
    op.create_table(
        "fhir_writebacks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("practice_id", sa.Integer(), nullable=False),
        sa.Column("integration_id", sa.Integer(), nullable=False),
        sa.Column("appointment_id", sa.Integer(), nullable=False),
        sa.Column("change", _JSON, nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("result", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointments.id"],
            name=op.f("fk_fhir_writebacks_appointment_id_appointments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["integration_id"],
            ["integrations.id"],
            name=op.f("fk_fhir_writebacks_integration_id_integrations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["practice_id"],
            ["practices.id"],
            name=op.f("fk_fhir_writebacks_practice_id_practices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fhir_writebacks")),
    )
    op.create_index(
        "ix_fhir_writebacks_due", "fhir_writebacks", ["state", "next_attempt_at"], unique=False
    )
    op.create_index(
        "ix_fhir_writebacks_appointment", "fhir_writebacks", ["appointment_id", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_fhir_writebacks_appointment", table_name="fhir_writebacks")
    op.drop_index("ix_fhir_writebacks_due", table_name="fhir_writebacks")
    op.drop_table("fhir_writebacks")
    op.drop_index(op.f("ix_appointment_aliases_appointment_id"), table_name="appointment_aliases")
    op.drop_table("appointment_aliases")
    op.drop_table("integrations")
