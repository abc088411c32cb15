"""handoffs and staff alerts

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28 13:10:00

Reserved so work on several issues can add migrations side by side; empty until filled.
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
