"""Inbound email: replies stripped of quoted history and signatures (English and Spanish mail
clients), SendGrid Inbound Parse samples (parsed and raw modes), Mailgun's route sample and its
signature."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.policy import default as default_policy

import pytest

from conftest import shared_file
from frontdesk.adapters.channels.email_inbound import (
    email_date,
    html_to_text,
    parse_email,
    parse_mailgun,
    parse_sendgrid,
    strip_reply,
    verify_mailgun_signature,
)
from frontdesk.domain.channels import Channel

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)

REPLIES = {
    "gmail": (
        "Yes, C - I'll be there.\n\n"
        "On Mon, Nov 23, 2026 at 9:00 AM Sunrise Therapy <hello@sunrise.example> wrote:\n"
        "> Hi Ana, your appointment is Tuesday at 3 pm.\n"
        "> Reply C to confirm, R to reschedule.\n",
        "Yes, C - I'll be there.",
    ),
    "gmail_wrapped_header": (
        "Yes\n\nOn Mon, Nov 23, 2026 at 9:00 AM Sunrise Therapy <hello@sunrise.example>\n"
        "wrote:\n> Reply C to confirm\n",
        "Yes",
    ),
    "iphone": (
        "C\n\nSent from my iPhone\n\n"
        "> On Nov 23, 2026, at 09:00, Sunrise Therapy <hello@sunrise.example> wrote:\n>\n"
        "> Reply C to confirm\n",
        "C",
    ),
    "outlook": (
        "Please reschedule, I am sick.\n\nBest regards,\nJohn Smith\n\n"
        "________________________________\n"
        "From: Sunrise Therapy <hello@sunrise.example>\n"
        "Sent: Monday, November 23, 2026 9:00 AM\n"
        "To: John Smith <john@example.com>\n"
        "Subject: Your appointment\n\nReply C to confirm\n",
        "Please reschedule, I am sick.",
    ),
    "original_message": (
        "No, I can't come.\n\n-----Original Message-----\nFrom: Sunrise\nSent: Monday\n"
        "Reply C to confirm\n",
        "No, I can't come.",
    ),
    "dash_dash_signature": ("C\n-- \nAna Lopez\n555-1234\n", "C"),
    "spanish_gmail": (
        "Sí, confirmo.\n\n"
        "El lun, 23 nov 2026 a las 9:00, Sunrise Therapy (<hola@sunrise.example>) escribió:\n"
        "> Hola Ana, responda C para confirmar.\n",
        "Sí, confirmo.",
    ),
    "spanish_phone": ("Cambiar por favor\n\nEnviado desde mi iPhone\n", "Cambiar por favor"),
    "spanish_outlook": (
        "No puedo ir.\n\nDe: Sunrise Therapy <hola@sunrise.example>\n"
        "Enviado: lunes, 23 de noviembre de 2026 9:00\nPara: Ana\nAsunto: Su cita\n\nResponda C\n",
        "No puedo ir.",
    ),
    "bare_quote": ("C\n> Reply C to confirm\n> thanks\n", "C"),
    "bottom_posted": (
        "On Mon, Nov 23, 2026 at 9:00 AM Sunrise <a@b.example> wrote:\n> Reply C to confirm\n\nC\n",
        "C",
    ),
    "hyphen_list_kept": (
        "Two questions:\n- can I park?\n- is it online?\n",
        "Two questions:\n- can I park?\n- is it online?",
    ),
    "thanks_inside_kept": (
        "Can I reschedule?\nThanks, I appreciate it\nAlso is parking available?",
        "Can I reschedule?\nThanks, I appreciate it\nAlso is parking available?",
    ),
    "header_block_without_from": (
        "OK\n\nDate: Mon, 23 Nov 2026\nSubject: Your appointment\nTo: ana\n\nReply C",
        "OK",
    ),
    "portuguese": (
        "Confirmo\n\nEm seg., 23 de nov. de 2026 às 09:00, Sunrise <a@b.example> escreveu:\n\n"
        "Responda C",
        "Confirmo",
    ),
    "italian_via_library": (
        "Confermo\n\nIl giorno lun 23 nov 2026 alle ore 09:00 Sunrise <a@b.example> ha scritto:"
        "\n\nRispondi C",
        "Confermo",
    ),
    "german_outlook_via_library": (
        "Ja\n\nVon: Sunrise <a@b.example>\nGesendet: Montag, 23. November 2026 09:00\nAn: Ana\n"
        "Betreff: Termin\n\nAntworten Sie C",
        "Ja",
    ),
    "crlf": ("R\r\n\r\nOn Mon, 23 Nov 2026, Sunrise wrote:\r\n> Reply\r\n", "R"),
}


@pytest.mark.parametrize("name", sorted(REPLIES))
def test_strip_reply(name: str) -> None:
    text, expected = REPLIES[name]
    assert strip_reply(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "hi" + "\n" * 20000 + "bye",
        "hi" + "\n\u00a0\u2003" * 10000,
        "On " + "a " * 50000 + "\nwrote:",
        "hi\n" + "From: a\nnot header\n" * 2000,
    ],
)
def test_strip_reply_stays_fast_on_hostile_input(text: str) -> None:
    # mail-parser-reply's patterns backtrack badly on these; it only reads a bounded copy.
    # A plain call: a quadratic blow-up takes tens of seconds, far past any slow machine.
    assert strip_reply(text).startswith(("hi", "On"))


def test_html_to_text_skips_quotes_and_styles() -> None:
    html = (
        "<html><head><style>p{color:red}</style></head><body>"
        "<div>C &amp; thanks</div><br>"
        '<div class="gmail_quote">On Mon … wrote:<blockquote>Reply C</blockquote></div>'
        "</body></html>"
    )
    assert html_to_text(html) == "C & thanks"
    # Text after a quote container (with nested tags and void elements inside) is kept.
    nested = (
        "<div>Yes<br/>please</div>"
        '<div class="gmail_quote"><div dir="ltr">On Mon <b>Sunrise</b> wrote:<br>'
        "<img src=x><blockquote><p>Reply C</p></blockquote></div></div>"
        "<p>One more thing: is parking free?</p>"
        '<div id="divRplyFwdMsg"><b>From:</b> Sunrise<br><b>Sent:</b> Monday</div>'
    )
    assert html_to_text(nested) == "Yes\nplease\n\nOne more thing: is parking free?"


def _reply_email(body: str, **headers: str) -> bytes:
    lines = {
        "From": "Ana López <Ana@Patient.example>",
        "To": "Sunrise <inbox@sunrise.example>",
        "Subject": "Re: Your appointment",
        "Message-ID": "<reply-1@patient.example>",
        "In-Reply-To": "<fd.abc@sunrise.example>",
        "References": "<fd.first@sunrise.example> <fd.abc@sunrise.example>",
        "Date": "Mon, 23 Nov 2026 10:01:02 -0500",
        "Content-Type": "text/plain; charset=utf-8",
    }
    lines.update(headers)
    head = "".join(f"{k}: {v}\r\n" for k, v in lines.items() if v)
    return (head + "\r\n" + body).encode()


def test_parse_email_headers_and_flags() -> None:
    message = parse_email(
        _reply_email("C\r\n\r\nOn Mon, Sunrise wrote:\r\n> Reply C\r\n"), received_at=NOW
    )
    assert message.channel is Channel.EMAIL
    assert message.from_address == "ana@patient.example"
    assert message.to_address == "inbox@sunrise.example"
    assert message.text == "C"
    assert message.in_reply_to == "<fd.abc@sunrise.example>"
    assert message.references == ("<fd.first@sunrise.example>", "<fd.abc@sunrise.example>")
    assert message.subject == "Re: Your appointment"
    assert message.received_at == NOW
    assert "auto_submitted" not in message.extras
    assert email_date(message.extras["date"]) == datetime(2026, 11, 23, 15, 1, 2, tzinfo=UTC)

    auto = parse_email(
        _reply_email("I am out of the office.", **{"Auto-Submitted": "auto-replied"}),
        received_at=NOW,
    )
    assert auto.extras["auto_submitted"] == "true"
    # No Message-ID: a stable id from the content, so a refetch dedupes.
    raw = _reply_email("C", **{"Message-ID": ""})
    first = parse_email(raw, received_at=NOW).provider_message_id
    assert first == parse_email(raw, received_at=NOW).provider_message_id
    assert first.startswith("<sha256.")


def test_parse_email_html_only_and_unknown_charset() -> None:
    html = parse_email(
        _reply_email(
            "<p>Yes, confirm</p><blockquote>Reply C</blockquote>",
            **{"Content-Type": "text/html; charset=utf-8"},
        ),
        received_at=NOW,
    )
    assert html.text == "Yes, confirm"
    odd = parse_email(
        _reply_email("C", **{"Content-Type": "text/plain; charset=x-unknown-1"}), received_at=NOW
    )
    assert odd.text == "C"


def _form_fields(name: str) -> dict[str, str | bytes]:
    """A SendGrid multipart/form-data sample as the web layer hands it over: name -> value."""
    body = shared_file("webhooks", "sendgrid", name).read_bytes()
    document = b"Content-Type: multipart/form-data; boundary=xYzZY\r\n\r\n" + body
    parsed = message_from_bytes(document, policy=default_policy)
    fields: dict[str, str | bytes] = {}
    for part in parsed.iter_parts():
        field_name = part.get_param("name", header="content-disposition")
        assert isinstance(field_name, str)
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        fields[field_name] = payload.decode("utf-8")
    return fields


def test_sendgrid_parsed_mode_sample() -> None:
    form = _form_fields("default_data.txt")
    message = parse_sendgrid(form, received_at=NOW)
    assert message.channel is Channel.EMAIL
    assert message.from_address == "test@example.com"
    assert message.to_address == "inbound@inbound.example.com"
    assert message.subject == "Testing non-raw"
    assert message.text == "Hello Twilio SendGrid!"
    assert message.extras["spf"] == "pass"
    assert message.provider_message_id.startswith("<sha256.")  # the sample has no Message-ID
    # Bytes values are decoded with the charsets SendGrid names.
    as_bytes = {k: (v.encode("utf-8") if isinstance(v, str) else v) for k, v in form.items()}
    assert parse_sendgrid(as_bytes, received_at=NOW).text == "Hello Twilio SendGrid!"


@pytest.mark.parametrize("name", ["raw_data.txt", "raw_data_with_attachments.txt"])
def test_sendgrid_raw_mode_samples(name: str) -> None:
    message = parse_sendgrid(_form_fields(name), received_at=NOW)
    assert message.from_address == "test@example.com"
    assert message.to_address == "inbound@inbound.inbound.com"
    assert message.text == "Hello Twilio SendGrid!"
    assert message.subject is not None and message.subject.startswith("Inbound Parse Test Raw")


def test_sendgrid_parsed_mode_threading_from_headers() -> None:
    headers = (
        "From: Ana <ana@patient.example>\nTo: inbox@sunrise.example\n"
        "Message-ID: <sg-1@patient.example>\nIn-Reply-To: <fd.abc@sunrise.example>\n"
        "References: <fd.abc@sunrise.example>\n"
    )
    form: dict[str, str | bytes] = {
        "headers": headers,
        "from": "Ana <ana@patient.example>",
        "to": "inbox@sunrise.example",
        "subject": "Re: appt",
        "text": "N, sorry\n\nOn Mon, Sunrise wrote:\n> Reply N if you can't come\n",
        "envelope": json.dumps({"to": ["inbox@sunrise.example"], "from": "ana@patient.example"}),
    }
    message = parse_sendgrid(form, received_at=NOW)
    assert message.text == "N, sorry"
    assert message.provider_message_id == "<sg-1@patient.example>"
    assert message.in_reply_to == "<fd.abc@sunrise.example>"


def _mailgun_form() -> dict[str, str]:
    data = json.loads(shared_file("webhooks", "mailgun", "inbound_route_post.json").read_text())
    form: dict[str, str] = data["form_fields"]
    return form


def test_mailgun_route_sample() -> None:
    form = _mailgun_form()
    message = parse_mailgun(form, received_at=NOW)
    assert message.from_address == "bob@sandbox085a3b878a964897b9b9efb2395a1f5a.mailgun.org"
    assert message.to_address == "alice@sandbox085a3b878a964897b9b9efb2395a1f5a.mailgun.org"
    assert message.provider_message_id == (
        "<517ACC75.5010709@sandbox085a3b878a964897b9b9efb2395a1f5a.mailgun.org>"
    )
    assert message.in_reply_to == (
        "<517AC78B.5060404@sandbox085a3b878a964897b9b9efb2395a1f5a.mailgun.org>"
    )
    assert message.subject == "Re: Sample POST request"
    # Our stripping agrees with Mailgun's own stripped-text (and also drops "Thanks, Bob").
    assert form["stripped-text"].startswith(message.text)
    assert message.text == "Hi Alice,\n\nThis is Bob.\n\nI also attached a file."
    assert "Alice wrote:" in message.raw_text


def test_mailgun_signature() -> None:
    key = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"
    timestamp, token = "1795950000", "4166ec05b27b5d3c024252ad43df47865128c8fcde47dfea6b"
    signature = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    sent = datetime.fromtimestamp(int(timestamp), tz=UTC)
    assert verify_mailgun_signature(key, timestamp, token, signature, now=sent)
    assert verify_mailgun_signature(
        key, timestamp, token, signature.upper(), now=sent + timedelta(seconds=299)
    )
    assert not verify_mailgun_signature(
        key, timestamp, token, signature, now=sent + timedelta(minutes=6)
    )
    assert not verify_mailgun_signature(key, timestamp, token + "x", signature, now=sent)
    assert not verify_mailgun_signature("other-key", timestamp, token, signature, now=sent)
    assert not verify_mailgun_signature(key, "not-a-number", token, signature, now=sent)
    # The sample's signature was made with a key we do not have: it must not pass with ours.
    form = _mailgun_form()
    assert not verify_mailgun_signature(
        key, form["timestamp"], form["token"], form["signature"], now=sent, max_age_seconds=10**9
    )
