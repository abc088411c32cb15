"""Message templates: the purposes, the shipped wording per channel and language, the variables a
template may use, and how long an SMS is.

Defaults follow the minimum-necessary rule: they name the practice and the time, never a
reason for the visit; the clinician appears only where the practice allows it (``clinician`` is
empty otherwise), and ``practice_name`` becomes a neutral "your care team" when the practice
hides its name. Reminder texts never ask for CANCEL (a carrier opt-out word): they offer C, R
and N.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Purpose(StrEnum):
    REMINDER = "reminder"
    BOOKING_CONFIRMATION = "booking_confirmation"
    MISSED_FOLLOWUP = "missed_followup"
    CANCELLATION_FOLLOWUP = "cancellation_followup"
    RECEIPT_CONFIRM = "receipt_confirm"
    RECEIPT_CANCEL = "receipt_cancel"
    RECEIPT_RESCHEDULE = "receipt_reschedule"
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"
    CARRIER_CANCEL = "carrier_cancel"
    NEEDS_PERSON = "needs_person"
    CRISIS = "crisis"
    ASSISTANT = "assistant"


# Reminder stages may have their own wording: purpose "reminder.<stage key>" (e.g.
# "reminder.2h") is used before "reminder" when a practice defines it.
STAGE_PREFIX = "reminder."

LANGUAGES = ("en", "es")
TEMPLATE_CHANNELS = ("sms", "email", "whatsapp", "webchat")

# Every variable a template can use, with what it holds: documented in docs/CHANNELS.md and
# checked there by a test.
VARIABLES: dict[str, str] = {
    "first_name": "the patient's first name (empty when unknown)",
    "practice_name": "the practice's name, or 'your care team' when the practice hides it",
    "practice_phone": "the practice's phone number (empty when unknown)",
    "when": "date and time of the appointment in the patient's timezone and language",
    "date": "the appointment's date alone, in the patient's language",
    "time": "the appointment's time alone, on the patient's clock",
    "clinician": "the clinician's display name, empty when the practice hides it",
    "location": "the location's name and address, empty for telehealth",
    "telehealth_link": "the video link for a telehealth session, else empty",
    "reply_instructions": "how to answer on this channel (keywords for SMS, links for email)",
    "rebook_link": "the practice's (or clinician's) booking link, else empty",
    "confirm_link": "email only: a signed one-click link that confirms the appointment",
    "cancel_link": "email only: a signed one-click link that cancels the appointment",
    "reschedule_link": "email only: a signed one-click link that asks to reschedule",
    "opt_out_instructions": "how to stop messages on this channel",
}


@dataclass(frozen=True)
class TemplateText:
    body: str
    subject: str | None = None  # email only
    html: str | None = None  # email only
    whatsapp_template: str | None = None  # the approved template's name, WhatsApp only


_REPLY = {
    "en": "Reply C to confirm, R to reschedule, or N if you can't come.",
    "es": "Responda C para confirmar, R para cambiar la cita o N si no puede venir.",
}
_REPLY_EMAIL = {
    "en": "Use the buttons below, or simply reply to this email.",
    "es": "Use los botones de abajo o responda a este correo.",
}
_OPT_OUT = {"en": "Reply STOP to opt out.", "es": "Responda STOP para no recibir más mensajes."}
_OPT_OUT_EMAIL = {
    "en": "To stop these emails, reply with the word STOP.",
    "es": "Para dejar de recibir estos correos, responda con la palabra STOP.",
}


def reply_instructions(channel: str, language: str) -> str:
    return (_REPLY_EMAIL if channel == "email" else _REPLY)[_lang(language)]


def opt_out_instructions(channel: str, language: str) -> str:
    return (_OPT_OUT_EMAIL if channel == "email" else _OPT_OUT)[_lang(language)]


def _lang(language: str) -> str:
    primary = language.split("-")[0].lower()
    return primary if primary in LANGUAGES else "en"


# Short texts, shared by SMS, WhatsApp (inside the 24-hour window) and web chat.
_SHORT: dict[str, dict[Purpose, str]] = {
    "en": {
        Purpose.REMINDER: (
            "{{ practice_name }}: reminder of your appointment {{ when }}. "
            "{{ reply_instructions }} {{ opt_out_instructions }}"
        ),
        Purpose.BOOKING_CONFIRMATION: (
            "{{ practice_name }}: your appointment is booked for {{ when }}. "
            "{{ reply_instructions }} {{ opt_out_instructions }}"
        ),
        Purpose.MISSED_FOLLOWUP: (
            "{{ practice_name }}: we missed you today and hope you're okay. When you're ready, "
            "{% if rebook_link %}book again at {{ rebook_link }}, or {% endif %}just reply and "
            "we'll help."
        ),
        Purpose.CANCELLATION_FOLLOWUP: (
            "{{ practice_name }}: we're sorry you had to cancel. Whenever you're ready, "
            "{% if rebook_link %}book again at {{ rebook_link }}.{% else %}reply here and we'll "
            "find a new time.{% endif %}"
        ),
        Purpose.RECEIPT_CONFIRM: "Thanks, you're confirmed for {{ when }}. See you then.",
        Purpose.RECEIPT_CANCEL: (
            "Got it: your appointment {{ when }} is cancelled. "
            "{% if rebook_link %}Book again any time at {{ rebook_link }}.{% else %}Reply here "
            "when you'd like a new time.{% endif %}"
        ),
        Purpose.RECEIPT_RESCHEDULE: (
            "Thanks, we'll help you find a new time for your appointment {{ when }}. "
            "{% if rebook_link %}You can also pick one at {{ rebook_link }}.{% else %}Someone "
            "from the practice will contact you.{% endif %}"
        ),
        Purpose.OPT_OUT: (
            "{{ practice_name }}: you will receive no more messages here. Reply START to opt "
            "back in."
        ),
        Purpose.OPT_IN: (
            "{{ practice_name }}: you're subscribed again. Reply STOP to opt out, HELP for help."
        ),
        Purpose.HELP: (
            "{{ practice_name }} appointment messages. {% if practice_phone %}Call "
            "{{ practice_phone }} for help. {% endif %}Reply STOP to opt out. In an emergency "
            "call 911; for a crisis call or text 988."
        ),
        Purpose.CARRIER_CANCEL: (
            "{{ practice_name }}: you replied CANCEL by text, which stops our text messages. "
            "If you meant to cancel your appointment {{ when }}, reply N to this message"
            "{% if practice_phone %} or call {{ practice_phone }}{% endif %}."
        ),
        Purpose.NEEDS_PERSON: (
            "Thanks for your message. Someone from {{ practice_name }} will get back to you "
            "during office hours. If you are not safe or this is an emergency, call or text "
            "988, or call 911."
        ),
        Purpose.ASSISTANT: (
            "I'm the automated assistant of {{ practice_name }}. I can help with appointments "
            "and questions about the practice; a person can take over any time: just ask."
        ),
        Purpose.CRISIS: (
            "If you are in danger or thinking about harming yourself, please call or text 988 "
            "(Suicide & Crisis Lifeline) now, or call 911 for an emergency. These messages are "
            "not monitored around the clock; we have alerted our team."
        ),
    },
    "es": {
        Purpose.REMINDER: (
            "{{ practice_name }}: le recordamos su cita el {{ when }}. "
            "{{ reply_instructions }} {{ opt_out_instructions }}"
        ),
        Purpose.BOOKING_CONFIRMATION: (
            "{{ practice_name }}: su cita quedó reservada para el {{ when }}. "
            "{{ reply_instructions }} {{ opt_out_instructions }}"
        ),
        Purpose.MISSED_FOLLOWUP: (
            "{{ practice_name }}: hoy le echamos de menos y esperamos que esté bien. Cuando "
            "quiera, {% if rebook_link %}reserve de nuevo en {{ rebook_link }} o {% endif %}"
            "responda y le ayudamos."
        ),
        Purpose.CANCELLATION_FOLLOWUP: (
            "{{ practice_name }}: lamentamos que haya tenido que cancelar. Cuando quiera, "
            "{% if rebook_link %}reserve de nuevo en {{ rebook_link }}.{% else %}responda aquí "
            "y buscamos otra hora.{% endif %}"
        ),
        Purpose.RECEIPT_CONFIRM: "Gracias, su cita del {{ when }} está confirmada.",
        Purpose.RECEIPT_CANCEL: (
            "Entendido: su cita del {{ when }} está cancelada. "
            "{% if rebook_link %}Puede reservar otra en {{ rebook_link }}.{% else %}Responda "
            "cuando quiera otra hora.{% endif %}"
        ),
        Purpose.RECEIPT_RESCHEDULE: (
            "Gracias, le ayudaremos a cambiar su cita del {{ when }}. "
            "{% if rebook_link %}También puede elegir otra hora en {{ rebook_link }}."
            "{% else %}Alguien de la consulta se pondrá en contacto.{% endif %}"
        ),
        Purpose.OPT_OUT: (
            "{{ practice_name }}: no recibirá más mensajes por aquí. Responda START para "
            "volver a recibirlos."
        ),
        Purpose.OPT_IN: (
            "{{ practice_name }}: vuelve a estar suscrito. Responda STOP para darse de baja, "
            "HELP para ayuda."
        ),
        Purpose.HELP: (
            "Mensajes de citas de {{ practice_name }}. {% if practice_phone %}Llame al "
            "{{ practice_phone }} para ayuda. {% endif %}Responda STOP para darse de baja. En "
            "una emergencia llame al 911; en una crisis llame o escriba al 988."
        ),
        Purpose.CARRIER_CANCEL: (
            "{{ practice_name }}: respondió CANCEL por SMS, lo que detiene nuestros mensajes de "
            "texto. Si quería cancelar su cita del {{ when }}, responda N a este mensaje"
            "{% if practice_phone %} o llame al {{ practice_phone }}{% endif %}."
        ),
        Purpose.NEEDS_PERSON: (
            "Gracias por su mensaje. Alguien de {{ practice_name }} le responderá en horario de "
            "oficina. Si no está a salvo o es una emergencia, llame o envíe un mensaje al 988, "
            "o llame al 911."
        ),
        Purpose.ASSISTANT: (
            "Soy el asistente automático de {{ practice_name }}. Puedo ayudarle con sus citas y "
            "preguntas sobre la consulta; una persona puede atenderle cuando quiera: pídalo."
        ),
        Purpose.CRISIS: (
            "Si está en peligro o pensando en hacerse daño, llame o escriba ahora al 988 "
            "(Línea de Prevención del Suicidio y Crisis), o llame al 911 en una emergencia. "
            "Estos mensajes no se atienden las 24 horas; hemos avisado a nuestro equipo."
        ),
    },
}

_SUBJECTS: dict[str, dict[Purpose, str]] = {
    "en": {
        Purpose.REMINDER: "Your appointment {{ when }}",
        Purpose.BOOKING_CONFIRMATION: "Your appointment is booked: {{ when }}",
        Purpose.MISSED_FOLLOWUP: "We missed you today",
        Purpose.CANCELLATION_FOLLOWUP: "Book again when you're ready",
        Purpose.CARRIER_CANCEL: "About your text messages",
    },
    "es": {
        Purpose.REMINDER: "Su cita del {{ when }}",
        Purpose.BOOKING_CONFIRMATION: "Su cita está reservada: {{ when }}",
        Purpose.MISSED_FOLLOWUP: "Hoy le echamos de menos",
        Purpose.CANCELLATION_FOLLOWUP: "Reserve de nuevo cuando quiera",
        Purpose.CARRIER_CANCEL: "Sobre sus mensajes de texto",
    },
}
_DEFAULT_SUBJECT = {
    "en": "A message from {{ practice_name }}",
    "es": "Mensaje de {{ practice_name }}",
}

# Email: a warmer text part, and an HTML part with one-click buttons where links exist.
_EMAIL_GREETING = {
    "en": "Hello{% if first_name %} {{ first_name }}{% endif %},",
    "es": ("Hola{% if first_name %} {{ first_name }}{% endif %}:"),
}
_EMAIL_SIGN = {
    "en": "Warm regards,\n{{ practice_name }}",
    "es": "Un saludo cordial,\n{{ practice_name }}",
}
_EMAIL_DETAILS = {
    "en": (
        "{% if clinician %}With: {{ clinician }}\n{% endif %}"
        "{% if location %}Where: {{ location }}\n{% endif %}"
        "{% if telehealth_link %}Video link: {{ telehealth_link }}\n{% endif %}"
    ),
    "es": (
        "{% if clinician %}Con: {{ clinician }}\n{% endif %}"
        "{% if location %}Dónde: {{ location }}\n{% endif %}"
        "{% if telehealth_link %}Enlace de vídeo: {{ telehealth_link }}\n{% endif %}"
    ),
}
_EMAIL_LINKS = {
    "en": (
        "{% if confirm_link %}Confirm: {{ confirm_link }}\n{% endif %}"
        "{% if reschedule_link %}Reschedule: {{ reschedule_link }}\n{% endif %}"
        "{% if cancel_link %}I can't come: {{ cancel_link }}\n{% endif %}"
    ),
    "es": (
        "{% if confirm_link %}Confirmar: {{ confirm_link }}\n{% endif %}"
        "{% if reschedule_link %}Cambiar la cita: {{ reschedule_link }}\n{% endif %}"
        "{% if cancel_link %}No puedo ir: {{ cancel_link }}\n{% endif %}"
    ),
}
_BUTTON_LABELS = {
    "en": ("Confirm", "Reschedule", "I can't come"),
    "es": ("Confirmar", "Cambiar la cita", "No puedo ir"),
}
_APPOINTMENT_PURPOSES = {Purpose.REMINDER, Purpose.BOOKING_CONFIRMATION}

# WhatsApp templates must be approved by Meta before use; these are the names frontdesk
# expects by default, each with body parameters {{1}} = first name, {{2}} = when, and for
# reminders quick-reply buttons C / R / N. Documented in docs/CHANNELS.md.
WHATSAPP_TEMPLATES: dict[Purpose, str] = {
    Purpose.REMINDER: "appointment_reminder",
    Purpose.BOOKING_CONFIRMATION: "appointment_booked",
    Purpose.MISSED_FOLLOWUP: "missed_session_followup",
    Purpose.CANCELLATION_FOLLOWUP: "cancellation_followup",
}


def default_template(purpose: Purpose, channel: str, language: str) -> TemplateText:
    lang = _lang(language)
    short = _SHORT[lang][purpose]
    if channel != "email":
        return TemplateText(
            body=short,
            whatsapp_template=WHATSAPP_TEMPLATES.get(purpose) if channel == "whatsapp" else None,
        )
    with_details = purpose in _APPOINTMENT_PURPOSES
    body = "\n\n".join(
        part
        for part in (
            _EMAIL_GREETING[lang],
            short,
            _EMAIL_DETAILS[lang] if with_details else "",
            _EMAIL_LINKS[lang] if with_details else "",
            _EMAIL_SIGN[lang],
        )
        if part
    )
    return TemplateText(
        body=body,
        subject=_SUBJECTS[lang].get(purpose, _DEFAULT_SUBJECT[lang]),
        html=_email_html(lang, short, with_details),
    )


def _email_html(lang: str, short: str, with_buttons: bool) -> str:
    confirm, reschedule, cancel = _BUTTON_LABELS[lang]
    style = (
        "display:inline-block;padding:10px 18px;margin:4px;border-radius:6px;"
        "background:#2f5d62;color:#fff;text-decoration:none"
    )
    buttons = (
        '<p>{% if confirm_link %}<a href="{{ confirm_link }}" style="'
        + style
        + '">'
        + confirm
        + "</a>{% endif %}"
        '{% if reschedule_link %}<a href="{{ reschedule_link }}" style="'
        + style
        + '">'
        + reschedule
        + "</a>{% endif %}"
        '{% if cancel_link %}<a href="{{ cancel_link }}" style="'
        + style
        + '">'
        + cancel
        + "</a>{% endif %}</p>"
    )
    details = _EMAIL_DETAILS[lang].replace("\n", "<br>")
    return (
        '<div style="font-family:sans-serif;font-size:16px;line-height:1.5;color:#222">'
        f"<p>{_EMAIL_GREETING[lang]}</p><p>{short}</p>"
        + (f"<p>{details}</p>{buttons}" if with_buttons else "")
        + f"<p>{_EMAIL_SIGN[lang].replace(chr(10), '<br>')}</p></div>"
    )


# --- SMS length --------------------------------------------------------------------------------

_GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENDED = set("^{}\\[~]|€\f")


@dataclass(frozen=True)
class SmsLength:
    encoding: str  # GSM-7 or UCS-2
    units: int  # septets (GSM-7, extended characters count twice) or UTF-16 code units
    segments: int


def sms_length(text: str) -> SmsLength:
    """How many SMS segments ``text`` costs: 160 GSM-7 characters in one, 153 per segment when
    concatenated; any other character switches the whole message to UCS-2 (70, then 67)."""
    if all(c in _GSM7_BASIC or c in _GSM7_EXTENDED for c in text):
        units = sum(2 if c in _GSM7_EXTENDED else 1 for c in text)
        single, multi, encoding = 160, 153, "GSM-7"
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, multi, encoding = 70, 67, "UCS-2"
    if units == 0:
        return SmsLength(encoding, 0, 0)
    segments = 1 if units <= single else -(-units // multi)
    return SmsLength(encoding, units, segments)
