"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from frontdesk.adapters.db import migrate
from frontdesk.adapters.db.engine import make_engine
from frontdesk.adapters.db.models import Base
from frontdesk.bootstrap import Runtime


def test_migrations_match_the_models(runtime: Runtime) -> None:
    with runtime.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": False, "compare_server_default": False}
        )
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_upgrading_a_database_with_data_keeps_every_row(tmp_path: Path) -> None:
    """Adding columns must not rebuild tables: on SQLite a rebuilt ``conversations`` table would
    cascade-delete every message (this happened once, in a migration that used batch mode)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        migrate.upgrade(engine, "0003")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO practices (slug, name, timezone, locale, settings, created_at, "
                    "updated_at) VALUES ('p', 'P', 'UTC', 'en-US', '{}', '2026-01-01', "
                    "'2026-01-01')"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO conversations (practice_id, channel, status, created_at, "
                    "last_message_at) VALUES (1, 'sms', 'open', '2026-01-01', '2026-01-01')"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO messages (practice_id, conversation_id, channel, direction, body, "
                    "created_at) VALUES (1, 1, 'sms', 'outbound', 'hi', '2026-01-01')"
                )
            )
        migrate.upgrade(engine)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM messages")).scalar() == 1
            assert conn.execute(text("SELECT count(*) FROM conversations")).scalar() == 1
    finally:
        engine.dispose()
