"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from frontdesk.adapters.db.models import Base
from frontdesk.bootstrap import Runtime


def test_migrations_match_the_models(runtime: Runtime) -> None:
    with runtime.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": False, "compare_server_default": False}
        )
        differences = compare_metadata(context, Base.metadata)
    assert differences == []
