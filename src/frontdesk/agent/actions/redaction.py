"""What an action run's log may keep: the redaction rule set.

Rules, applied to every value written to ``action_step_logs.detail`` (request and response
bodies, headers, collected inputs):

1. **Secrets by key** — a key containing ``secret``, ``token``, ``password``, ``signature``,
   ``authorization``, ``api_key``, ``apikey`` or ``cookie`` becomes ``[secret]``.
2. **PHI by key** — a key naming personal data (``name``, ``first_name``, ``last_name``,
   ``full_name``, ``email``, ``phone``, ``mobile``, ``date_of_birth``, ``dob``, ``birth``,
   ``address``, ``identifier``, ``ssn``, ``insurance``, ``notes``, ``message``, ``text``) and
   every collected field of a personal kind (name, email, phone, date_of_birth,
   datetime_preference, free_text) becomes ``[redacted]``.
3. **PHI by shape** — anywhere in any string: email addresses → ``[email]``, phone-like digit
   runs (7+ digits) → ``[phone]``, dates (``1990-03-25``, ``03/25/1990``) → ``[date]``.
4. Strings are cut to 500 characters; nesting deeper than 8 levels becomes ``[…]``.

What stays: ids, step ids, channel names, status codes, timings, choice values and the shape of
every request, so a person can see what happened without seeing who it happened to.
"""

from __future__ import annotations

import re
from typing import Any

SECRET_KEYS = (
    "secret",
    "token",
    "password",
    "signature",
    "authorization",
    "api_key",
    "apikey",
    "cookie",
)
PHI_KEYS = frozenset(
    {
        "name",
        "first_name",
        "last_name",
        "full_name",
        "patient_name",
        "email",
        "phone",
        "mobile",
        "date_of_birth",
        "dob",
        "birth",
        "birthdate",
        "address",
        "identifier",
        "ssn",
        "insurance",
        "notes",
        "message",
        "text",
    }
)
PHI_KINDS = frozenset(
    {"name", "email", "phone", "date_of_birth", "datetime_preference", "free_text"}
)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# An ISO date may run straight into its time ("2026-11-29T16:00"): still a date, not a phone.
_DATE = re.compile(r"\b(\d{4}-\d{1,2}-\d{1,2}(?=T|\b)|\d{1,2}/\d{1,2}/\d{2,4}\b)")
_PHONE = re.compile(r"\+?\d(?:[\s().-]*\d){6,}")
MAX_STRING = 500


def scrub_text(text: str) -> str:
    text = _EMAIL.sub("[email]", text)
    text = _DATE.sub("[date]", text)
    text = _PHONE.sub("[phone]", text)
    return text[:MAX_STRING]


def redact(value: Any, *, extra_keys: frozenset[str] = frozenset(), depth: int = 0) -> Any:
    """A copy of ``value`` safe to log. ``extra_keys`` are the run's personal field names."""
    if depth > 8:
        return "[…]"
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            lowered = str(key).lower()
            if any(s in lowered for s in SECRET_KEYS):
                out[key] = "[secret]"
            elif lowered in PHI_KEYS or key in extra_keys:
                out[key] = "[redacted]"
            else:
                out[key] = redact(item, extra_keys=extra_keys, depth=depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [redact(v, extra_keys=extra_keys, depth=depth + 1) for v in value]
    if isinstance(value, str):
        return scrub_text(value)
    return value


def personal_fields(fields: list[dict[str, Any]]) -> frozenset[str]:
    return frozenset(f["name"] for f in fields if f.get("kind") in PHI_KINDS)
