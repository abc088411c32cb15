"""The words of reminder messages, rendered at send time in the patient's language and zone.

Default texts name the practice and the time only (no clinician, no reason for the visit:
minimum necessary), stay within one SMS segment, and carry opt-out instructions. A practice's
own text for a stage (``StagePolicy.text``) replaces the default in every language.
"""

from __future__ import annotations

from datetime import datetime

from frontdesk.domain.reminders import ReminderKind
from frontdesk.domain.times import zone

TEXTS: dict[str, dict[ReminderKind, str]] = {
    "en": {
        ReminderKind.STAGE: (
            "{practice}: reminder of your appointment {when}. Reply C to confirm or R to "
            "reschedule. Reply STOP to opt out."
        ),
        ReminderKind.BOOKING_CONFIRMATION: (
            "{practice}: your appointment is booked for {when}. Reply C to confirm or R to "
            "reschedule. Reply STOP to opt out."
        ),
        ReminderKind.MISSED_FOLLOWUP: (
            "{practice}: we missed you today and hope you're okay. When you're ready, book "
            "again {rebook}, or just reply and we'll help."
        ),
        ReminderKind.CANCELLATION_FOLLOWUP: (
            "{practice}: we're sorry you had to cancel. Whenever you're ready, book again {rebook}."
        ),
    },
    "es": {
        ReminderKind.STAGE: (
            "{practice}: le recordamos su cita el {when}. Responda C para confirmar o R para "
            "cambiarla. Responda STOP para no recibir más."
        ),
        ReminderKind.BOOKING_CONFIRMATION: (
            "{practice}: su cita quedó reservada para el {when}. Responda C para confirmar o R "
            "para cambiarla. Responda STOP para no recibir más."
        ),
        ReminderKind.MISSED_FOLLOWUP: (
            "{practice}: hoy le echamos de menos y esperamos que esté bien. Cuando quiera, "
            "reserve de nuevo {rebook}, o responda y le ayudamos."
        ),
        ReminderKind.CANCELLATION_FOLLOWUP: (
            "{practice}: lamentamos que haya tenido que cancelar. Cuando quiera, reserve de "
            "nuevo {rebook}."
        ),
    },
}
REBOOK = {
    "en": ("at {url}", "by replying to this message"),
    "es": ("en {url}", "respondiendo a este mensaje"),
}
_DAYS = {
    "en": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
    "es": ["lun", "mar", "mié", "jue", "vie", "sáb", "dom"],
}
_MONTHS = {
    "en": ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"],
    "es": ["ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sep", "oct", "nov", "dic"],
}


def language_of(tag: str) -> str:
    """Our text language for a patient's language tag (``es-MX`` → ``es``), English otherwise."""
    primary = tag.split("-")[0].lower()
    return primary if primary in TEXTS else "en"


def format_when(moment: datetime, tz_name: str, language: str) -> str:
    """``Thu, Dec 3 at 3:00 PM`` / ``jue 3 dic a las 15:00``, on the patient's wall clock."""
    local = moment.astimezone(zone(tz_name))
    lang = language_of(language)
    day, month = _DAYS[lang][local.weekday()], _MONTHS[lang][local.month - 1]
    if lang == "es":
        return f"{day} {local.day} {month} a las {local:%H:%M}"
    hour = local.hour % 12 or 12
    return f"{day}, {month} {local.day} at {hour}:{local:%M} {'AM' if local.hour < 12 else 'PM'}"


def render(
    kind: ReminderKind,
    *,
    language: str,
    practice_name: str,
    start: datetime,
    tz_name: str,
    booking_url: str | None,
    custom_text: str | None = None,
) -> str:
    lang = language_of(language)
    template = custom_text or TEXTS[lang][kind]
    with_url, without_url = REBOOK[lang]
    values = {
        "practice": practice_name,
        "when": format_when(start, tz_name, lang),
        "rebook": with_url.format(url=booking_url) if booking_url else without_url,
        "booking_url": booking_url or "",
    }
    return template.format_map(_Missing(values))


class _Missing(dict[str, str]):
    """A practice's own text may name a placeholder we do not have: leave it visible, not crash."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"
