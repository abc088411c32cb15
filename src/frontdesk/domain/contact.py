"""Patient contact details: normalised so the same person is recognised on every channel."""

from __future__ import annotations

import re

import phonenumbers
from email_validator import EmailNotValidError, validate_email

_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")


def normalize_phone(raw: str, default_region: str = "US") -> str:
    """The number in E.164 (``+15551234567``); ValueError when it is not a valid number."""
    text = raw.strip()
    if not text:
        raise ValueError("phone is empty")
    try:
        parsed = phonenumbers.parse(text, None if text.startswith("+") else default_region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"not a phone number: {exc}") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError("not a valid phone number for its country")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(raw: str) -> str:
    """The address with its domain normalised; ValueError when malformed.

    Deliverability (DNS) is not checked: it needs the network and a typo'd domain is better
    caught by a bounce than by a slow import.
    """
    try:
        result = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from exc
    return result.normalized


def normalize_language(raw: str) -> str:
    """A BCP 47-style tag, primary subtag lower-cased: ``es``, ``en-US``, ``pt-BR``."""
    text = raw.strip()
    if not _LANGUAGE.match(text):
        raise ValueError(f"not a language tag: {raw!r} (use e.g. 'en' or 'es-MX')")
    parts = re.split(r"[-_]", text)
    head, rest = parts[0].lower(), parts[1:]
    return "-".join([head, *[p.upper() if len(p) == 2 else p for p in rest]])


def region_of_locale(locale: str) -> str:
    """The country part of a locale (``en-US`` → ``US``), used to read national phone numbers."""
    parts = re.split(r"[-_]", locale)
    for part in parts[1:]:
        if len(part) == 2 and part.isalpha():
            return part.upper()
    return "US"
