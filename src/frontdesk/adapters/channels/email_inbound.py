"""Inbound email: the new part of a reply (quoted history and signature stripped), from a MIME
message (IMAP, SendGrid's raw mode, Mailgun's body-mime) or from the inbound-parse webhooks of
SendGrid and Mailgun.

Stripping matters: the quoted reminder itself says "reply C to confirm", so anything that reads
intent must see only what the patient wrote. Rules of our own handle English and Spanish quote
headers, ">" lines, Outlook header blocks, "-- " signatures and "Sent from my …" lines;
``mail-parser-reply`` then catches the quote headers of other languages and mail clients.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, message_from_string
from email.message import EmailMessage, Message
from email.parser import HeaderParser
from email.policy import default as DEFAULT_POLICY
from email.utils import getaddresses, parsedate_to_datetime
from html.parser import HTMLParser

from mailparser_reply.parser import EmailMessage as ReplyParser

from frontdesk.adapters.channels.base import InboundMessage
from frontdesk.domain.channels import Channel

# --- stripping quoted text and signatures -----------------------------------------------------

_WROTE = re.compile(
    r"^\s*(?:On\s.+\bwrote|El\s.+\bescribi[óo]|Em\s.+\bescreveu|Le\s.+\ba\s+écrit"
    r"|Am\s.+\bschrieb)\s*:\s*$",
    re.IGNORECASE,
)
_WROTE_START = re.compile(r"^\s*(?:On|El|Em|Le|Am)\s", re.IGNORECASE)
_WROTE_END = re.compile(
    r"\b(?:wrote|escribi[óo]|escreveu|a\s+écrit|schrieb)\s*:\s*$", re.IGNORECASE
)
_ORIGINAL = re.compile(
    r"^\s*-{2,}\s*(?:Original Message|Mensaje original|Forwarded message|Mensaje reenviado)"
    r"\s*-{2,}\s*$",
    re.IGNORECASE,
)
_HEADER_FROM = re.compile(r"^\s*\*?(?:From|De)\s*:\*?\s", re.IGNORECASE)
_HEADER_OTHER = re.compile(
    r"^\s*\*?(?:Sent|Date|To|Subject|Cc|Enviado|Fecha|Para|Asunto)\s*:", re.IGNORECASE
)
_UNDERSCORES = re.compile(r"^\s*_{10,}\s*$")
_SIGNATURE = re.compile(r"^-- ?$")
_SENT_FROM = re.compile(
    r"^\s*(?:Sent from (?:my|Mail for|Outlook|Yahoo)\b.*|Enviado desde (?:mi|Outlook|Correo)\b.*"
    r"|Get Outlook for \w+.*|Obtener Outlook para \w+.*)$",
    re.IGNORECASE,
)


_VALEDICTION = re.compile(
    r"^\s*(?:best(?: regards)?|kind regards|regards|thanks|thank you|cheers|sincerely|saludos"
    r"|un saludo|atentamente|gracias|muchas gracias|cordialmente|un abrazo)\s*[,.!]?\s*$",
    re.IGNORECASE,
)


def _drop_valediction(lines: list[str]) -> list[str]:
    """Drop a closing such as "Best regards,\nAna" when it ends the reply (at most three short
    lines after it); a "Thanks" inside the text stays."""
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    for index in range(len(lines) - 1, max(-1, len(lines) - 5), -1):
        if _VALEDICTION.match(lines[index]) and index > 0:
            tail = lines[index + 1 :]
            if all(len(line.strip()) <= 40 for line in tail):
                return lines[:index]
    return lines


def _cut_index(lines: list[str]) -> int:
    """The index of the first line of quoted history or signature (len(lines) if none)."""
    for index, line in enumerate(lines):
        if _WROTE.match(line) or _ORIGINAL.match(line) or _SIGNATURE.match(line):
            return index
        if _SENT_FROM.match(line):
            return index
        # "On Mon, 23 Nov 2026 at 09:00, Sunrise Therapy <hi@example.org>\nwrote:" (wrapped)
        if (
            _WROTE_START.match(line)
            and index + 1 < len(lines)
            and _WROTE_END.search(lines[index + 1])
            and len(line) + len(lines[index + 1]) < 300
        ):
            return index
        if _HEADER_FROM.match(line) and any(
            _HEADER_OTHER.match(following) for following in lines[index + 1 : index + 5]
        ):
            if index > 0 and _UNDERSCORES.match(lines[index - 1]):
                return index - 1
            return index
    return len(lines)


def _tidy(lines: list[str]) -> str:
    return "\n".join(line.rstrip() for line in lines).strip()


_BLANK_RUN = re.compile(r"\n[^\S\n]*(?:\n[^\S\n]*){2,}")
_LIBRARY_LIMIT = 10_000
_LINE_LIMIT = 200
_LIBRARY_LANGUAGES = ("en", "es", "de", "fr", "it", "nl", "pl", "sv", "da", "cs", "ja", "ko", "zh")


def _cut_with_library(reply: str) -> str:
    """Cut where mail-parser-reply, which knows more clients' and languages' quote headers,
    finds one. Its patterns backtrack badly on long lines and runs of blank lines, so it reads a
    bounded copy (blank runs collapsed, lines shortened, at most 10,000 characters) and only
    says where to cut: the first line of the header it found is looked up in our text."""
    bounded = _BLANK_RUN.sub("\n\n", reply)
    bounded = "\n".join(line[:_LINE_LIMIT] for line in bounded.split("\n"))[:_LIBRARY_LIMIT]
    parsed = ReplyParser(bounded, languages=list(_LIBRARY_LANGUAGES), keep_hyphen_lists=True).read()
    if len(parsed.replies) < 2:
        return reply
    header = str(parsed.replies[1].headers or "").strip().split("\n")[0].strip()
    if not header:
        return reply
    lines = reply.split("\n")
    for index, line in enumerate(lines):
        if index > 0 and line.strip()[:_LINE_LIMIT].startswith(header):
            cut = _tidy(lines[:index])
            return cut or reply
    return reply


def strip_reply(text: str) -> str:
    """The new part of an email reply: quoted history, ">" lines and signature removed.

    When the patient wrote below the quote ("bottom-posting"), the lines that are not quoted are
    kept instead of an empty answer."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    unquoted = [line for line in lines if not line.lstrip().startswith(">")]
    head = _drop_valediction(unquoted[: _cut_index(unquoted)])
    reply = _tidy(head)
    if reply:
        reply = _cut_with_library(reply)
        return reply
    # Nothing above the quote: keep what the patient wrote below or between quoted blocks.
    kept: list[str] = []
    for line in unquoted:
        if _SIGNATURE.match(line) or _SENT_FROM.match(line):
            break
        if _WROTE.match(line) or _ORIGINAL.match(line) or _WROTE_END.search(line):
            continue
        kept.append(line)
    return _tidy(kept)


# --- HTML to text (fallback when a message has no text part) ----------------------------------

_BLOCK_TAGS = {"br", "p", "div", "tr", "li", "h1", "h2", "h3", "h4", "table", "ul", "ol", "hr"}
_SKIP_TAGS = {"style", "script", "head", "title", "blockquote"}
_VOID_TAGS = {"br", "hr", "img", "meta", "link", "input", "wbr", "col", "area", "base", "source"}
#: Containers mail clients put the quoted original in (Gmail, Yahoo, Thunderbird, Outlook).
_QUOTE_CLASSES = ("gmail_quote", "yahoo_quoted", "moz-cite-prefix")
_QUOTE_IDS = ("divRplyFwdMsg", "appendonsend")


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0  # depth inside a skipped element

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._skipping:
            if tag not in _VOID_TAGS:
                self._skipping += 1
            return
        values = dict(attrs)
        classes = values.get("class") or ""
        quoted = any(name in classes for name in _QUOTE_CLASSES) or values.get("id") in _QUOTE_IDS
        if (tag in _SKIP_TAGS or quoted) and tag not in _VOID_TAGS:
            self._skipping = 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if not self._skipping and tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if self._skipping:
            if tag not in _VOID_TAGS:
                self._skipping -= 1
            return
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Readable text of an HTML body, without styles, scripts and quoted blocks (blockquote, and
    the quote containers of Gmail, Yahoo, Thunderbird and Outlook). A fallback for messages
    without a text/plain part."""
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    text = "".join(extractor.parts)
    lines = [re.sub(r"[ \t\xa0]+", " ", line).strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


# --- MIME messages ----------------------------------------------------------------------------


def _address(value: str | None) -> str:
    if not value:
        return ""
    found = [address for _, address in getaddresses([value]) if address]
    return found[0].strip().lower() if found else ""


def _msg_ids(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    ids = re.findall(r"<[^<>\s]+>", value)
    return tuple(ids) if ids else tuple(value.split())


def _auto_reply(headers: Message) -> bool:
    auto = (headers.get("Auto-Submitted") or "no").strip().lower()
    precedence = (headers.get("Precedence") or "").strip().lower()
    return (
        auto != "no"
        or precedence in {"bulk", "junk", "auto_reply", "list"}
        or headers.get("X-Autoreply") is not None
        or headers.get("X-Autorespond") is not None
    )


def _synthetic_id(raw: bytes) -> str:
    return f"<sha256.{hashlib.sha256(raw).hexdigest()[:40]}@frontdesk.invalid>"


def _body_text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, ValueError):  # an unknown charset: read it as UTF-8
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else ""
    if not isinstance(content, str):
        return ""
    if part.get_content_subtype() == "html":
        return html_to_text(content)
    return content


def parse_email(
    raw: bytes | str | Message, *, received_at: datetime, to_address: str | None = None
) -> InboundMessage:
    """An inbound message from a whole MIME email (bytes as fetched by IMAP, or text)."""
    if isinstance(raw, bytes):
        message = message_from_bytes(raw, policy=DEFAULT_POLICY)
        raw_bytes = raw
    elif isinstance(raw, str):
        message = message_from_string(raw, policy=DEFAULT_POLICY)
        raw_bytes = raw.encode("utf-8", "surrogateescape")
    else:
        message = message_from_bytes(raw.as_bytes(), policy=DEFAULT_POLICY)
        raw_bytes = raw.as_bytes()
    assert isinstance(message, EmailMessage)  # the default policy builds EmailMessage objects
    raw_text = _body_text(message)
    message_id = (message.get("Message-ID") or "").strip() or _synthetic_id(raw_bytes)
    extras: dict[str, str] = {}
    if message.get("Date"):
        extras["date"] = str(message["Date"])
    if _auto_reply(message):
        extras["auto_submitted"] = "true"
    in_reply_to = _msg_ids(message.get("In-Reply-To"))
    return InboundMessage(
        channel=Channel.EMAIL,
        from_address=_address(message.get("From")),
        to_address=to_address or _address(message.get("To")),
        text=strip_reply(raw_text),
        raw_text=raw_text,
        provider_message_id=message_id,
        received_at=received_at,
        in_reply_to=in_reply_to[0] if in_reply_to else None,
        references=_msg_ids(message.get("References")),
        subject=str(message.get("Subject") or "") or None,
        extras=extras,
    )


def email_date(value: str | None) -> datetime | None:
    """An aware datetime from a Date header, or None when it is missing or unreadable."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


# --- SendGrid Inbound Parse -------------------------------------------------------------------


def _form_text(form: Mapping[str, str | bytes], name: str, charsets: Mapping[str, str]) -> str:
    value = form.get(name)
    if value is None:
        return ""
    if isinstance(value, bytes):
        charset = charsets.get(name, "utf-8")
        try:
            return value.decode(charset, errors="replace")
        except LookupError:
            return value.decode("utf-8", errors="replace")
    return value


def parse_sendgrid(form: Mapping[str, str | bytes], *, received_at: datetime) -> InboundMessage:
    """A message from SendGrid Inbound Parse's multipart form, in either mode: parsed (fields
    ``from, to, subject, text, html, headers, envelope, charsets``) or raw (the whole MIME message
    in ``email``). Values may be bytes; they are then decoded with the charsets SendGrid names."""
    try:
        charsets_json = json.loads(_form_text(form, "charsets", {}) or "{}")
    except ValueError:
        charsets_json = {}
    if not isinstance(charsets_json, dict):
        charsets_json = {}
    charsets = {str(k): str(v) for k, v in charsets_json.items()}
    try:
        envelope = json.loads(_form_text(form, "envelope", {}) or "{}")
    except ValueError:
        envelope = {}
    envelope_to = envelope.get("to") if isinstance(envelope, dict) else None
    to_address = _address(envelope_to[0]) if isinstance(envelope_to, list) and envelope_to else None

    raw_email = form.get("email")
    if raw_email:
        raw = raw_email if isinstance(raw_email, bytes) else raw_email.encode("utf-8")
        return parse_email(raw, received_at=received_at, to_address=to_address)

    headers = HeaderParser(policy=DEFAULT_POLICY).parsestr(_form_text(form, "headers", charsets))
    raw_text = _form_text(form, "text", charsets)
    if not raw_text.strip():
        raw_text = html_to_text(_form_text(form, "html", charsets))
    message_id = (headers.get("Message-ID") or "").strip()
    if not message_id:
        identity = "\n".join(
            _form_text(form, name, charsets) for name in ("headers", "from", "subject", "text")
        )
        message_id = _synthetic_id(identity.encode("utf-8"))
    in_reply_to = _msg_ids(headers.get("In-Reply-To"))
    extras: dict[str, str] = {}
    for name in ("SPF", "dkim", "sender_ip"):
        if form.get(name):
            extras[name.lower()] = _form_text(form, name, charsets)
    if _auto_reply(headers):
        extras["auto_submitted"] = "true"
    return InboundMessage(
        channel=Channel.EMAIL,
        from_address=_address(_form_text(form, "from", charsets) or headers.get("From")),
        to_address=to_address or _address(_form_text(form, "to", charsets)),
        text=strip_reply(raw_text),
        raw_text=raw_text,
        provider_message_id=message_id,
        received_at=received_at,
        in_reply_to=in_reply_to[0] if in_reply_to else None,
        references=_msg_ids(headers.get("References")),
        subject=_form_text(form, "subject", charsets) or None,
        extras=extras,
    )


# --- Mailgun inbound routes -------------------------------------------------------------------


def verify_mailgun_signature(
    signing_key: str,
    timestamp: str,
    token: str,
    signature: str,
    *,
    now: datetime,
    max_age_seconds: int = 300,
) -> bool:
    """Mailgun's ``signature`` is hex HMAC-SHA256(signing key, timestamp + token). A timestamp
    further than ``max_age_seconds`` from ``now`` fails too (replays); compare in constant
    time. Remembering tokens already seen is the caller's (the inbound store dedupes)."""
    try:
        sent_at = datetime.fromtimestamp(int(timestamp), tz=UTC)
    except (ValueError, OverflowError, OSError):
        return False
    if abs(now - sent_at) > timedelta(seconds=max_age_seconds):
        return False
    expected = hmac.new(
        signing_key.encode("utf-8"), (timestamp + token).encode("utf-8"), hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(expected, signature.strip().lower())


def parse_mailgun(form: Mapping[str, str], *, received_at: datetime) -> InboundMessage:
    """A message from a Mailgun route's POST (``sender, recipient, from, subject, body-plain,
    stripped-text, Message-Id, In-Reply-To, References, timestamp, token, signature``), or the
    whole MIME message when the route forwards to a URL ending in ``mime`` (``body-mime``).
    Verify the signature first with :func:`verify_mailgun_signature`."""
    to_address = _address(form.get("recipient")) or None
    if form.get("body-mime"):
        return parse_email(
            form["body-mime"].encode("utf-8"), received_at=received_at, to_address=to_address
        )
    raw_text = form.get("body-plain") or ""
    if not raw_text.strip() and form.get("body-html"):
        raw_text = html_to_text(form["body-html"])
    text = strip_reply(raw_text) if raw_text.strip() else (form.get("stripped-text") or "").strip()
    message_id = (form.get("Message-Id") or form.get("Message-ID") or "").strip()
    if not message_id:
        identity = "\n".join(form.get(name, "") for name in ("token", "timestamp", "body-plain"))
        message_id = _synthetic_id(identity.encode("utf-8"))
    in_reply_to = _msg_ids(form.get("In-Reply-To"))
    extras: dict[str, str] = {}
    if form.get("timestamp"):
        extras["timestamp"] = form["timestamp"]
    if (form.get("Auto-Submitted") or "no").strip().lower() != "no":
        extras["auto_submitted"] = "true"
    return InboundMessage(
        channel=Channel.EMAIL,
        from_address=_address(form.get("from") or form.get("From") or form.get("sender")),
        to_address=to_address or _address(form.get("To")),
        text=text,
        raw_text=raw_text,
        provider_message_id=message_id,
        received_at=received_at,
        in_reply_to=in_reply_to[0] if in_reply_to else None,
        references=_msg_ids(form.get("References")),
        subject=form.get("subject") or form.get("Subject") or None,
        extras=extras,
    )
