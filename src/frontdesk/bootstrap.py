"""The one place that builds real adapters from settings and wires them together."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from frontdesk.adapters.crypto import FieldCipher
from frontdesk.adapters.db import migrate
from frontdesk.adapters.db.engine import make_engine, make_session_factory
from frontdesk.config import Settings
from frontdesk.domain.errors import ConfigurationError
from frontdesk.services import audit

SECRET_FILE_NAME = ".frontdesk-secret"
T = TypeVar("T")


@dataclass
class Runtime:
    """What every entry point needs: settings, the database, and the contact-data cipher."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    cipher: FieldCipher

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: committed when the block ends, rolled back if it raises."""
        with self.sessions() as session, session.begin():
            yield session

    def retrying(self, work: Callable[[Session], T], *, attempts: int = 3) -> T:
        """Run ``work`` in a transaction, again from the start if a concurrent writer won a
        unique-key race (the next attempt then sees that writer's row)."""
        for attempt in range(1, attempts + 1):
            try:
                with self.transaction() as session:
                    return work(session)
            except IntegrityError:
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")

    def dispose(self) -> None:
        self.engine.dispose()


def resolve_secret(settings: Settings) -> str:
    """The secret that protects contact data at rest.

    PostgreSQL deployments must set FRONTDESK_SECRET_KEY (fail closed: several processes must
    share it). A laptop on SQLite gets a random key in a 0600 file beside the database, so
    frontdesk works out of the box without ever using a guessable default.
    """
    if settings.secret_key:
        return settings.secret_key
    if not settings.is_sqlite:
        raise ConfigurationError(
            "FRONTDESK_SECRET_KEY must be set when using PostgreSQL "
            "(generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))')"
        )
    db_path = settings.sqlite_path()
    if db_path is None:
        return secrets.token_urlsafe(48)  # in-memory database: nothing outlives the process
    key_file = db_path.resolve().parent / SECRET_FILE_NAME
    if key_file.exists():
        stored = key_file.read_text().strip()
        if len(stored) < 32:
            # An empty or cut file (a crash while writing it, a stray `touch`) must never
            # become the secret: refuse and let a person look.
            raise ConfigurationError(
                f"{key_file} holds no usable secret key; restore it from backup, or delete it "
                "only if this database holds no patient data yet"
            )
        return stored
    key_file.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    # Written whole under a private name, then linked into place: two processes starting at
    # once agree on one key, and no one ever reads a half-written file.
    draft = key_file.with_name(f"{key_file.name}.{secrets.token_hex(6)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    try:
        os.link(draft, key_file)
    except FileExistsError:
        return resolve_secret(settings)
    finally:
        draft.unlink()
    return value


def build_runtime(settings: Settings, *, upgrade: bool = False) -> Runtime:
    path = settings.sqlite_path()
    if path is not None:
        Path(path).resolve().parent.mkdir(parents=True, exist_ok=True)
    cipher = FieldCipher(resolve_secret(settings))
    engine = make_engine(settings.sqlalchemy_url)
    if upgrade:
        migrate.upgrade(engine)
    sessions = make_session_factory(engine)
    audit.install(sessions)
    return Runtime(settings=settings, engine=engine, sessions=sessions, cipher=cipher)
