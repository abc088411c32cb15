"""dispatcher recording speed: one conversation per (practice, patient, channel)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 12:55:00

The dispatcher logs sent messages with ``INSERT … ON CONFLICT`` on this key instead of looking
the thread up first. Threads that two workers created for the same patient and channel before
the key existed are merged first: every row pointing at a duplicate (messages, and any other
table with a foreign key to conversations) moves to the oldest thread, which keeps the latest
``last_message_at``; the duplicates are then removed. Threads without a patient are not
constrained (NULLs are distinct).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The oldest thread with the same practice, patient and channel as ``c`` (itself if none is older).
_KEEPER = (
    "(SELECT MIN(k.id) FROM conversations k WHERE k.practice_id = c.practice_id "
    "AND k.patient_id = c.patient_id AND k.channel = c.channel)"
)


def upgrade() -> None:
    bind = op.get_bind()
    duplicates = bind.execute(
        sa.text(
            f"SELECT c.id, {_KEEPER} FROM conversations c "
            f"WHERE c.patient_id IS NOT NULL AND c.id <> {_KEEPER}"
        )
    ).all()
    if duplicates:
        inspector = sa.inspect(bind)
        referencing = [
            (table, fk["constrained_columns"][0])
            for table in inspector.get_table_names()
            for fk in inspector.get_foreign_keys(table)
            if fk["referred_table"] == "conversations" and len(fk["constrained_columns"]) == 1
        ]
        quote = bind.dialect.identifier_preparer.quote
        for duplicate, keeper in duplicates:
            for table, column in referencing:
                bind.execute(
                    sa.text(
                        f"UPDATE {quote(table)} SET {quote(column)} = :keeper "
                        f"WHERE {quote(column)} = :duplicate"
                    ),
                    {"keeper": keeper, "duplicate": duplicate},
                )
            bind.execute(
                sa.text(
                    "UPDATE conversations SET last_message_at = (SELECT MAX(d.last_message_at) "
                    "FROM conversations d WHERE d.id IN (:keeper, :duplicate)) WHERE id = :keeper"
                ),
                {"keeper": keeper, "duplicate": duplicate},
            )
            bind.execute(
                sa.text("DELETE FROM conversations WHERE id = :duplicate"),
                {"duplicate": duplicate},
            )
    op.create_index(
        "ux_conversations_thread",
        "conversations",
        ["practice_id", "patient_id", "channel"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("ux_conversations_thread", table_name="conversations")
