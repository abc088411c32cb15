"""Statements over a whole group of rows whose text does not grow with the group.

``column.in_(ids)`` renders one placeholder per id, so a statement for 500 rows is a new, long
text every time: SQLAlchemy caches one compiled form per length, but psycopg parses again any
statement longer than 4 KiB or with more than 50 parameters, and PostgreSQL parses and plans it
again. On PostgreSQL the list therefore goes as ONE array parameter (``= ANY(:ids)``,
``unnest(:a, :b, …)``): one short text, parsed once, prepared by psycopg after a few uses. SQLite
(an in-process library: no parsing in the driver, no round trips) keeps plain ``IN`` lists.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Integer, Text, any_, bindparam, cast, func
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def one_of(session: Session, column: Any, ids: Sequence[int]) -> ColumnElement[bool]:
    """``column IN ids`` (integer ids), as one parameter on PostgreSQL."""
    if is_postgres(session):
        array = cast(bindparam(None, list(ids), type_=ARRAY(Integer)), ARRAY(Integer))
        return column == any_(array)  # type: ignore[no-any-return]
    return column.in_(list(ids))  # type: ignore[no-any-return]


def int_array(name: str) -> Any:
    """A bound list of integers, typed for ``unnest`` (PostgreSQL)."""
    return cast(bindparam(name, type_=ARRAY(Integer)), ARRAY(Integer))


def text_array(name: str) -> Any:
    """A bound list of strings, typed for ``unnest`` (PostgreSQL)."""
    return cast(bindparam(name, type_=ARRAY(Text)), ARRAY(Text))


def unnest(*columns: tuple[str, Any]) -> Any:
    """``unnest(:a, :b, …) AS v(a, b, …)``: the rows of a group, one array per column."""
    return (
        func.unnest(*(array for _name, array in columns))
        .table_valued(*(name for name, _array in columns))
        .render_derived()
    )
