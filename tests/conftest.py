"""Fixtures shared by the suite: a real database per test on SQLite and on PostgreSQL.

Every test that asks for ``runtime`` (or anything built on it) runs twice: on SQLite, and on
PostgreSQL when ``FRONTDESK_TEST_POSTGRES_URL`` is set. Each session makes its own PostgreSQL
database with a unique name and drops it at the end; each test starts from empty tables.

Under CI (``FRONTDESK_REQUIRE_POSTGRES=1``) the run fails if no PostgreSQL test passed or any
was skipped.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from frontdesk.adapters.db.models import Base
from frontdesk.bootstrap import Runtime, build_runtime
from frontdesk.config import Settings
from frontdesk.services import apikeys, practices
from frontdesk.web.app import create_app

POSTGRES_ENV = "FRONTDESK_TEST_POSTGRES_URL"
TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "external"


def shared_file(*parts: str) -> Path:
    """A file of ../shared/external, or skip the test saying it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared/external is not beside this checkout)")
    return path


def everything_stored(runtime: Runtime) -> str:
    """Every plaintext value of every table, as text: what a leak of clinical words would show.

    Sealed columns (``*_sealed``) are left out: they hold ciphertext, readable only with the
    key, and their random base64 spells any three letters ("MRI") by chance now and then."""
    chunks: list[str] = []
    with runtime.transaction() as session:
        for table in Base.metadata.sorted_tables:
            columns = [c for c in table.columns if not c.name.endswith("_sealed")]
            for row in session.execute(select(*columns)):
                chunks.extend(str(value) for value in row if value is not None)
    return "\n".join(chunks)


# --- PostgreSQL: one database per test session -------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def agent_models_ready() -> None:
    """The agent's models trained (or read from the model cache) once, before any test. On a
    cold model cache (a new package version) the crisis screen trains for about 8 s; without
    this, the first test to post a patient message paid it inside its HTTP request and could
    time out, and servers the tests start in other processes trained again."""
    from frontdesk.agent.understand import ready

    ready(crisis_screen=True)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"{POSTGRES_ENV} is not set: PostgreSQL tests skipped (CI sets it)")
    import psycopg

    name = f"frontdesk_test_{uuid.uuid4().hex[:12]}"
    admin = make_url(base).set(drivername="postgresql")
    conninfo = admin.render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_migrated(postgres_url: str) -> str:
    runtime = build_runtime(
        Settings(database_url=postgres_url, secret_key=TEST_SECRET), upgrade=True
    )
    runtime.dispose()
    return postgres_url


def _truncate_all(runtime: Runtime) -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with runtime.engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


# --- SQLite: migrate once, copy the file per test ----------------------------------------------


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    runtime = build_runtime(
        Settings(database_url=f"sqlite:///{path}", secret_key=TEST_SECRET), upgrade=True
    )
    # Fold the WAL into the main file so a plain copy carries the whole schema. Run on the
    # driver connection: the engine's BEGIN IMMEDIATE hook would otherwise lock the table.
    raw = runtime.engine.raw_connection()
    try:
        raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]
    finally:
        raw.close()
    runtime.dispose()
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "frontdesk.db"
        shutil.copyfile(template, target)
        return f"sqlite:///{target}"
    url: str = request.getfixturevalue("postgres_migrated")
    return url


def make_settings(database_url: str, **overrides: Any) -> Settings:
    return Settings(database_url=database_url, secret_key=TEST_SECRET, **overrides)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = build_runtime(settings, upgrade=not settings.is_sqlite)
    if not settings.is_sqlite:
        _truncate_all(rt)
    with rt.transaction() as session:
        practices.ensure_default_practice(session, "America/New_York")
    try:
        yield rt
    finally:
        rt.dispose()


@pytest.fixture
def app_client(settings: Settings, runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(settings, runtime)) as client:
        yield client


def new_api_key(runtime: Runtime, slug: str | None = None, *, can_write: bool = True) -> str:
    with runtime.transaction() as session:
        practice = practices.resolve_practice(session, slug)
        _, token = apikeys.create_api_key(session, practice, "test", can_write=can_write)
    return token


@pytest.fixture
def api_key(runtime: Runtime) -> str:
    return new_api_key(runtime, "default")


@pytest.fixture
def client(app_client: TestClient, api_key: str) -> TestClient:
    """A client that sends the default practice's API key."""
    app_client.headers["Authorization"] = f"Bearer {api_key}"
    return app_client


# --- CI: the PostgreSQL suite must have run ----------------------------------------------------

_pg_outcomes: dict[str, int] = {"passed": 0, "skipped": 0, "failed": 0}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "postgres" not in report.keywords:
        return
    if report.when == "call" and report.passed:
        _pg_outcomes["passed"] += 1
    elif report.skipped:
        _pg_outcomes["skipped"] += 1
    elif report.failed:
        _pg_outcomes["failed"] += 1


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("FRONTDESK_REQUIRE_POSTGRES") != "1":
        return
    if _pg_outcomes["passed"] == 0 or _pg_outcomes["skipped"] > 0:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = (
            f"FRONTDESK_REQUIRE_POSTGRES=1 but PostgreSQL tests passed={_pg_outcomes['passed']} "
            f"skipped={_pg_outcomes['skipped']}: the PostgreSQL suite did not run"
        )
        if reporter is not None:
            reporter.write_line(message, red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
