"""Rendering message templates safely, with a practice's own wording where it has one.

Templates are Jinja2 in the *immutable sandbox* with no globals and strict undefined names: a
practice-edited template can use the documented variables (plain strings) and simple logic, but
cannot reach Python objects (``__class__``, ``mro``, …), run code or loop without bound. Every
problem — a syntax error, an unknown variable, a blocked attribute — is a field-level
``ValidationFailed``, found when the template is saved or previewed, not when a reminder is due.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from sqlalchemy import select
from sqlalchemy.orm import Session

from frontdesk.adapters.db.channel_models import MessageTemplate
from frontdesk.adapters.db.models import Appointment, Practice
from frontdesk.domain.errors import FieldError, ValidationFailed
from frontdesk.domain.messages import format_when, language_of
from frontdesk.domain.templates import (
    LANGUAGES,
    STAGE_PREFIX,
    TEMPLATE_CHANNELS,
    VARIABLES,
    Purpose,
    SmsLength,
    TemplateText,
    default_template,
    opt_out_instructions,
    reply_instructions,
    sms_length,
)
from frontdesk.domain.times import zone
from frontdesk.services.claimed import AppointmentRow

MAX_SOURCE = 5000
MAX_OUTPUT = 10000


def _environment(*, html: bool) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        undefined=StrictUndefined, autoescape=html, trim_blocks=True, lstrip_blocks=True
    )
    # No range(), dict(), cycler, joiner, namespace, lipsum: nothing but the variables we pass.
    env.globals.clear()
    return env


_TEXT = _environment(html=False)
_HTML = _environment(html=True)


@lru_cache(maxsize=1024)
def _compiled(source: str, html: bool) -> Template:
    """Compiling costs far more than rendering (about a millisecond): a reminder batch renders
    the same few templates thousands of times. Keyed by the text, so an edit compiles anew."""
    return (_HTML if html else _TEXT).from_string(source)


@dataclass(frozen=True)
class Rendered:
    body: str
    subject: str | None = None
    html: str | None = None
    whatsapp_template: str | None = None
    # WhatsApp template body parameters, in order: {{1}} first name, {{2}} when.
    whatsapp_parameters: tuple[str, ...] = ()

    def sms_length(self) -> SmsLength:
        return sms_length(self.body)


def render_source(source: str, context: dict[str, str], *, html: bool = False, field: str) -> str:
    if len(source) > MAX_SOURCE:
        raise ValidationFailed([FieldError(field, f"a template may be at most {MAX_SOURCE} chars")])
    try:
        output = _compiled(source, html).render(**context)
    except SecurityError as exc:
        raise ValidationFailed(
            [FieldError(field, f"the template tried something not allowed: {exc}")]
        ) from None
    except TemplateError as exc:
        raise ValidationFailed([FieldError(field, f"template error: {exc.message}")]) from None
    if len(output) > MAX_OUTPUT:
        raise ValidationFailed([FieldError(field, "the rendered message is too long")])
    return output.strip() if not html else output


def render(text: TemplateText, context: dict[str, str]) -> Rendered:
    return Rendered(
        body=_tidy(render_source(text.body, context, field="body")),
        subject=_tidy(render_source(text.subject, context, field="subject"))
        if text.subject
        else None,
        html=render_source(text.html, context, html=True, field="html") if text.html else None,
        whatsapp_template=text.whatsapp_template,
        whatsapp_parameters=(context.get("first_name") or "-", context.get("when") or "-"),
    )


def _tidy(text: str) -> str:
    """Collapse the double spaces an empty optional variable leaves behind."""
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return "\n".join(lines).strip()


# --- which wording: the practice's, else ours -------------------------------------------------


class TemplateBook:
    """A practice's templates, loaded once (for a batch of sends or a preview)."""

    def __init__(self, overrides: dict[tuple[str, str, str], MessageTemplate]) -> None:
        self._overrides = overrides

    @classmethod
    def load(cls, session: Session, practice_id: int) -> TemplateBook:
        rows = session.scalars(
            select(MessageTemplate).where(MessageTemplate.practice_id == practice_id)
        )
        return cls({(r.purpose, r.channel, r.language): r for r in rows})

    def has_own(self, purpose: str, channel: str, language: str) -> bool:
        return (purpose, channel, language) in self._overrides

    def text_for(
        self, purpose: Purpose, channel: str, language: str, *, stage: str | None = None
    ) -> TemplateText:
        lang = language_of(language)
        names = [f"{STAGE_PREFIX}{stage}"] if stage else []
        names.append(purpose.value)
        for name in names:
            row = self._overrides.get((name, channel, lang))
            if row is not None:
                default = default_template(purpose, channel, lang)
                return TemplateText(
                    body=row.body,
                    subject=row.subject if row.subject is not None else default.subject,
                    html=row.html if row.html is not None else default.html,
                    whatsapp_template=row.whatsapp_template or default.whatsapp_template,
                )
        return default_template(purpose, channel, lang)


# --- the variables ----------------------------------------------------------------------------


def privacy(practice: Practice) -> dict[str, bool]:
    stored = (practice.settings or {}).get("privacy", {})
    return {
        "show_practice_name": bool(stored.get("show_practice_name", True)),
        "show_clinician_name": bool(stored.get("show_clinician_name", True)),
    }


def set_privacy(practice: Practice, values: dict[str, Any]) -> dict[str, bool]:
    """Change the privacy switches: ``show_practice_name`` / ``show_clinician_name`` (off: a
    message says "Your care team" and names no clinician)."""
    current = privacy(practice)
    errors = [
        FieldError(key, f"unknown switch; one of {sorted(current)}")
        for key in values
        if key not in current
    ]
    errors += [
        FieldError(key, "true or false")
        for key, value in values.items()
        if key in current and not isinstance(value, bool)
    ]
    if errors:
        raise ValidationFailed(errors)
    practice.settings = {**(practice.settings or {}), "privacy": {**current, **values}}
    return privacy(practice)


_CARE_TEAM = {"en": "Your care team", "es": "Su equipo de atención"}


def first_name(name: str | None, preferred: str | None) -> str:
    chosen = (preferred or name or "").strip()
    return chosen.split()[0] if chosen else ""


def context_for(
    *,
    practice: Practice,
    channel: str,
    language: str,
    patient_name: str | None = None,
    patient_preferred_name: str | None = None,
    tz_name: str,
    appointment: AppointmentRow | None = None,
    links: dict[str, str] | None = None,
) -> dict[str, str]:
    """Every documented variable as a plain string (empty when it does not apply)."""
    lang = language_of(language)
    switches = privacy(practice)
    context = dict.fromkeys(VARIABLES, "")
    context.update(
        first_name=first_name(patient_name, patient_preferred_name),
        practice_name=practice.name if switches["show_practice_name"] else _CARE_TEAM[lang],
        practice_phone=practice.phone or "",
        reply_instructions=reply_instructions(channel, lang),
        opt_out_instructions=opt_out_instructions(channel, lang),
        rebook_link=practice.booking_url or "",
    )
    if appointment is not None:
        local = appointment.start_at.astimezone(zone(tz_name))
        when = format_when(appointment.start_at, tz_name, lang)
        context.update(
            when=when,
            date=when.rsplit(" at " if lang == "en" else " a las ", 1)[0],
            time=(
                f"{local.hour % 12 or 12}:{local:%M} {'AM' if local.hour < 12 else 'PM'}"
                if lang == "en"
                else f"{local:%H:%M}"
            ),
            telehealth_link=appointment.telehealth_url or "",
        )
        clinician = appointment.clinician
        if clinician is not None:
            if switches["show_clinician_name"]:
                context["clinician"] = clinician.name
            if clinician.booking_url:
                context["rebook_link"] = clinician.booking_url
        location = appointment.location
        if location is not None:
            context["location"] = ", ".join(p for p in (location.name, location.address) if p)
    if links:
        context.update({k: v for k, v in links.items() if k in VARIABLES})
    return context


# --- editing and previewing -------------------------------------------------------------------


def check_key(purpose: str, channel: str, language: str) -> Purpose:
    errors = []
    base = purpose.split(".", 1)[0] if purpose.startswith(STAGE_PREFIX) else purpose
    try:
        parsed = Purpose(base)
    except ValueError:
        errors.append(
            FieldError("purpose", f"unknown purpose; one of {[p.value for p in Purpose]}")
        )
        parsed = Purpose.REMINDER
    if channel not in TEMPLATE_CHANNELS:
        errors.append(FieldError("channel", f"one of {list(TEMPLATE_CHANNELS)}"))
    if language not in LANGUAGES:
        errors.append(FieldError("language", f"one of {list(LANGUAGES)}"))
    if errors:
        raise ValidationFailed(errors)
    return parsed


def sample_context(practice: Practice, channel: str, language: str) -> dict[str, str]:
    """Realistic values for previews: a session next week at 3 PM on the practice's clock."""
    local_day = datetime.now(UTC).astimezone(zone(practice.timezone)).date() + timedelta(days=7)
    start = datetime(
        local_day.year, local_day.month, local_day.day, 15, 0, tzinfo=zone(practice.timezone)
    )
    sample = Appointment(start_at=start.astimezone(UTC), telehealth_url=None)
    base = "https://frontdesk.example/l"
    context = context_for(
        practice=practice,
        channel=channel,
        language=language,
        patient_name="Alex Rivera",
        tz_name=practice.timezone,
        appointment=sample,
        links={
            "confirm_link": f"{base}/sample-confirm",
            "cancel_link": f"{base}/sample-cancel",
            "reschedule_link": f"{base}/sample-reschedule",
        }
        if channel == "email"
        else None,
    )
    if privacy(practice)["show_clinician_name"]:
        context["clinician"] = "Dr. Sam Lee"
    return context


def preview(
    session: Session,
    practice: Practice,
    *,
    purpose: str,
    channel: str,
    language: str,
    body: str | None = None,
    subject: str | None = None,
    html: str | None = None,
) -> dict[str, Any]:
    """The rendered message with sample values, and its SMS length, for a stored template or
    for a draft given in ``body`` / ``subject`` / ``html``."""
    parsed = check_key(purpose, channel, language)
    book = TemplateBook.load(session, practice.id)
    stage = purpose[len(STAGE_PREFIX) :] if purpose.startswith(STAGE_PREFIX) else None
    text = book.text_for(parsed, channel, language, stage=stage)
    if body is not None:
        text = TemplateText(
            body=body,
            subject=subject if subject is not None else text.subject,
            html=html if html is not None else (text.html if channel == "email" else None),
            whatsapp_template=text.whatsapp_template,
        )
    rendered = render(text, sample_context(practice, channel, language))
    length = rendered.sms_length()
    return {
        "purpose": purpose,
        "channel": channel,
        "language": language,
        "subject": rendered.subject,
        "body": rendered.body,
        "html": rendered.html,
        "whatsapp_template": rendered.whatsapp_template,
        "sms": {
            "encoding": length.encoding,
            "characters": length.units,
            "segments": length.segments,
        },
    }


def save(
    session: Session,
    practice: Practice,
    *,
    purpose: str,
    channel: str,
    language: str,
    body: str,
    subject: str | None = None,
    html: str | None = None,
    whatsapp_template: str | None = None,
) -> dict[str, Any]:
    """Store a practice's wording after rendering it once with sample values (so a broken
    template is refused now, with the reason, rather than failing when a reminder is due)."""
    result = preview(
        session,
        practice,
        purpose=purpose,
        channel=channel,
        language=language,
        body=body,
        subject=subject,
        html=html,
    )
    row = session.scalar(
        select(MessageTemplate).where(
            MessageTemplate.practice_id == practice.id,
            MessageTemplate.purpose == purpose,
            MessageTemplate.channel == channel,
            MessageTemplate.language == language,
        )
    )
    if row is None:
        row = MessageTemplate(
            practice_id=practice.id, purpose=purpose, channel=channel, language=language, body=body
        )
        session.add(row)
    row.body, row.subject, row.html, row.whatsapp_template = body, subject, html, whatsapp_template
    return result


def reset(
    session: Session, practice: Practice, *, purpose: str, channel: str, language: str
) -> bool:
    check_key(purpose, channel, language)
    row = session.scalar(
        select(MessageTemplate).where(
            MessageTemplate.practice_id == practice.id,
            MessageTemplate.purpose == purpose,
            MessageTemplate.channel == channel,
            MessageTemplate.language == language,
        )
    )
    if row is None:
        return False
    session.delete(row)
    return True


def catalogue(session: Session, practice: Practice) -> list[dict[str, Any]]:
    """Every purpose, channel and language, with whether the practice has its own wording."""
    book = TemplateBook.load(session, practice.id)
    out = []
    for purpose in Purpose:
        for channel in TEMPLATE_CHANNELS:
            for language in LANGUAGES:
                text = book.text_for(purpose, channel, language)
                custom = book.has_own(purpose.value, channel, language)
                out.append(
                    {
                        "purpose": purpose.value,
                        "channel": channel,
                        "language": language,
                        "custom": custom,
                        "subject": text.subject,
                        "body": text.body,
                        "html": text.html,
                        "whatsapp_template": text.whatsapp_template,
                    }
                )
    return out
