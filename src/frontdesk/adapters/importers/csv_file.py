"""CSV appointments: one row per appointment, with its patient's details beside it.

Columns are documented in docs/IMPORT.md. ``column_map`` renames a file's own headers to ours
(``{"AppointmentID": "appointment_id"}``); columns we do not know are ignored and listed, so
data we have no use for (diagnoses, ages) is never stored.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from frontdesk.adapters.importers.base import ImportRow, build_row, rejected
from frontdesk.domain.errors import FieldError, ValidationFailed

# Our column → where it goes in the appointment record.
APPOINTMENT_COLUMNS: dict[str, str] = {
    "appointment_id": "",
    "source": "",
    "start": "start",
    "end": "end",
    "duration_minutes": "duration_minutes",
    "timezone": "timezone",
    "status": "status",
    "confirmation": "confirmation",
    "clinician": "clinician",
    "clinician_id": "",
    "location": "location",
    "telehealth_url": "telehealth_url",
}
PATIENT_COLUMNS: dict[str, str] = {
    "patient_id": "patient.external_id",
    "patient_name": "patient.name",
    "preferred_name": "patient.preferred_name",
    "date_of_birth": "patient.date_of_birth",
    "phone": "patient.phone",
    "email": "patient.email",
    "preferred_channel": "patient.preferred_channel",
    "language": "patient.language",
    "patient_timezone": "patient.timezone",
    "reminders_enabled": "patient.reminders_enabled",
    "consent_sms": "patient.consent.sms",
    "consent_email": "patient.consent.email",
    "consent_whatsapp": "patient.consent.whatsapp",
}
KNOWN_COLUMNS = {**APPOINTMENT_COLUMNS, **PATIENT_COLUMNS}
REQUIRED_COLUMNS = ("appointment_id", "patient_id", "start")
_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f"}


def parse_column_map(specs: list[str]) -> dict[str, str]:
    """``["Their=ours", "A=b,C=d"]`` → ``{"Their": "ours", "A": "b", "C": "d"}``."""
    mapping: dict[str, str] = {}
    errors: list[FieldError] = []
    for spec in specs:
        for part in spec.split(","):
            if not part.strip():
                continue
            theirs, sep, ours = part.partition("=")
            if not sep or not theirs.strip() or not ours.strip():
                errors.append(FieldError("--map", f"{part!r} is not THEIR_COLUMN=our_column"))
            elif ours.strip() not in KNOWN_COLUMNS:
                errors.append(
                    FieldError("--map", f"{ours.strip()!r} is not a frontdesk column (see docs)")
                )
            else:
                mapping[theirs.strip()] = ours.strip()
    if errors:
        raise ValidationFailed(errors, message="The column map is not valid.")
    return mapping


def _flag(value: str) -> bool | str:
    low = value.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    return value  # let validation say it is not a boolean


def _put(target: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = value


def read_csv(
    path: Path,
    *,
    source: str,
    context: dict[str, Any],
    column_map: Mapping[str, str] | None = None,
    ignored: list[str] | None = None,
) -> Iterator[ImportRow]:
    """Rows of ``path`` as appointment records. Header problems raise ``ValidationFailed``
    before any row is read; ``ignored`` (if given) receives the columns we do not use."""
    column_map = dict(column_map or {})
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise ValidationFailed([FieldError(str(path), exc.strerror or str(exc))]) from exc
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration:
            raise ValidationFailed([FieldError(str(path), "the file is empty")]) from None
        except UnicodeDecodeError as exc:
            raise ValidationFailed([FieldError(str(path), "the file is not UTF-8 text")]) from exc
        ours = [column_map.get(h.strip(), h.strip()) for h in header]
        theirs_of = dict(zip(ours, [h.strip() for h in header], strict=True))
        missing = [c for c in REQUIRED_COLUMNS if c not in ours]
        duplicated = sorted({c for c in ours if c in KNOWN_COLUMNS and ours.count(c) > 1})
        problems = [FieldError("header", f"missing column {c!r}") for c in missing] + [
            FieldError("header", f"column {c!r} appears more than once") for c in duplicated
        ]
        if problems:
            raise ValidationFailed(problems, message=f"{path.name}: the header is not usable.")
        if ignored is not None:
            ignored.extend(t for o, t in zip(ours, header, strict=True) if o not in KNOWN_COLUMNS)
        # Errors name the file's own column, so people can find the cell.
        column_of_field = {
            target: theirs_of[column]
            for column, target in KNOWN_COLUMNS.items()
            if column in theirs_of
        }
        try:
            for cells in reader:
                yield _row(reader.line_num, cells, ours, source, context, column_of_field)
        except UnicodeDecodeError as exc:
            raise ValidationFailed(
                [FieldError(f"line {reader.line_num + 1}", "the file is not UTF-8 text")]
            ) from exc
        except csv.Error as exc:
            raise ValidationFailed([FieldError(f"line {reader.line_num}", str(exc))]) from exc


def _raw(cells: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out).writerow(cells)
    return out.getvalue().rstrip("\r\n")


def _row(
    line: int,
    cells: list[str],
    ours: list[str],
    default_source: str,
    context: dict[str, Any],
    column_of_field: dict[str, str],
) -> ImportRow:
    reference = f"line {line}"
    raw = _raw(cells)
    if len(cells) != len(ours):
        return rejected(
            reference,
            raw,
            "appointment",
            default_source,
            "",
            FieldError("row", f"has {len(cells)} cells, the header has {len(ours)}"),
        )
    values = {c: v.strip() for c, v in zip(ours, cells, strict=True) if c in KNOWN_COLUMNS}
    source = (values.get("source") or default_source).lower()
    external_id = values.get("appointment_id", "")
    payload: dict[str, Any] = {}
    for column, value in values.items():
        target = KNOWN_COLUMNS[column]
        if not target or value == "":
            continue  # an empty cell leaves the stored value alone
        if column in ("reminders_enabled", "consent_sms", "consent_email", "consent_whatsapp"):
            _put(payload, target, _flag(value))
        else:
            _put(payload, target, value)
    if values.get("clinician_id") and values.get("clinician"):
        payload["clinician"] = {"name": values["clinician"], "external_id": values["clinician_id"]}
    if not external_id:
        return rejected(
            reference,
            raw,
            "appointment",
            source,
            "",
            FieldError("column 'appointment_id'", "is empty"),
        )
    row = build_row(
        reference=reference,
        raw=raw,
        kind="appointment",
        source=source,
        external_id=external_id,
        payload=payload,
        context=context,
    )
    # Name the file's column in each error: "patient.phone" → "phone" (or its mapped header).
    row.errors = [FieldError(_column_for(e.loc, column_of_field), e.message) for e in row.errors]
    return row


def _column_for(loc: str, column_of_field: dict[str, str]) -> str:
    best = ""
    for field_path in column_of_field:
        if not field_path:
            continue
        if (loc == field_path or loc.startswith(field_path + ".")) and len(field_path) > len(best):
            best = field_path
    if best:
        return f"column {column_of_field[best]!r}"
    return loc or "row"
