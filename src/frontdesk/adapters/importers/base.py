"""What every file importer produces: rows ready for the intake services, or their errors.

Importers are generators so a large file is read as it is stored, not held in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from frontdesk.domain.errors import FieldError
from frontdesk.domain.intake import (
    SOURCE_PATTERN,
    SOURCE_RULE,
    AppointmentIn,
    PatientIn,
    field_errors,
)

RecordKind = Literal["appointment", "patient"]


@dataclass
class ImportRow:
    """One record of a file. ``reference`` tells a person where it is (``line 12``,
    ``entry[3].resource``, ``UID@occurrence``); ``raw`` is its text, kept when rejected."""

    reference: str
    raw: str
    kind: RecordKind
    source: str
    external_id: str
    record: AppointmentIn | PatientIn | None
    errors: list[FieldError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.record is not None and not self.errors


def build_row(
    *,
    reference: str,
    raw: str,
    kind: RecordKind,
    source: str,
    external_id: str,
    payload: dict[str, Any],
    context: dict[str, Any],
    loc_prefix: str = "",
) -> ImportRow:
    """Validate ``payload`` as the record ``kind``; errors are located under ``loc_prefix``."""
    if not SOURCE_PATTERN.match(source):
        return rejected(
            reference,
            raw,
            kind,
            source,
            external_id,
            FieldError("source", SOURCE_RULE),
        )
    model: type[AppointmentIn] | type[PatientIn] = (
        AppointmentIn if kind == "appointment" else PatientIn
    )
    try:
        record = model.model_validate(payload, context=context)
    except ValidationError as exc:
        return ImportRow(
            reference, raw, kind, source, external_id, None, field_errors(exc, loc_prefix)
        )
    return ImportRow(reference, raw, kind, source, external_id, record)


def rejected(
    reference: str, raw: str, kind: RecordKind, source: str, external_id: str, *errors: FieldError
) -> ImportRow:
    return ImportRow(reference, raw, kind, source, external_id, None, list(errors))
