"""Email over SMTP: a text part, an optional HTML alternative, threading headers, and a
Message-ID derived from the idempotency key, so every retry of one message carries the same id
(receiving systems that see it twice treat it as one message)."""

from __future__ import annotations

import hashlib
import smtplib
import ssl
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, getaddresses, parseaddr

from frontdesk.adapters.channels.base import OutboundMessage, SendResult, delivery_error
from frontdesk.adapters.channels.config import SmtpSecurity, SmtpSettings
from frontdesk.domain.errors import (
    ChannelMisconfigured,
    DeliveryError,
    PermanentError,
    TransientError,
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def message_id_for(idempotency_key: str, domain: str) -> str:
    """The Message-ID of the message with this idempotency key: stable across retries, and the
    key itself is not revealed."""
    digest = hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:40]
    return f"<fd.{digest}@{domain}>"


def message_id_domain(settings: SmtpSettings) -> str:
    if settings.message_id_domain:
        return settings.message_id_domain
    address = parseaddr(settings.from_address)[1]
    domain = address.rpartition("@")[2]
    return domain or "localhost"


def build_email(message: OutboundMessage, settings: SmtpSettings, now: datetime) -> EmailMessage:
    """The MIME message for one outbound message: multipart/alternative when there is HTML."""
    email = EmailMessage(policy=SMTP_POLICY)
    email["From"] = settings.from_address
    email["To"] = message.to
    if settings.reply_to:
        email["Reply-To"] = settings.reply_to
    email["Subject"] = message.subject or ""
    email["Date"] = format_datetime(now.astimezone(UTC))
    email["Message-ID"] = message_id_for(message.idempotency_key, message_id_domain(settings))
    if message.in_reply_to:
        email["In-Reply-To"] = message.in_reply_to
    references = list(message.references)
    if message.in_reply_to and message.in_reply_to not in references:
        references.append(message.in_reply_to)
    if references:
        email["References"] = " ".join(references)
    if settings.auto_submitted:
        email["Auto-Submitted"] = "auto-generated"
    if message.unsubscribe_url:
        email["List-Unsubscribe"] = f"<{message.unsubscribe_url}>"
        if message.unsubscribe_url.startswith("https://"):
            email["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    email.set_content(message.body)
    if message.html_body:
        email.add_alternative(message.html_body, subtype="html")
    return email


def _error_for_code(code: int, what: str) -> DeliveryError:
    kind: type[DeliveryError] = TransientError if 400 <= code < 500 else PermanentError
    return delivery_error(kind, f"SMTP server {what} ({code})", code)


class SmtpChannel:
    """Sends each message over a new SMTP connection (reminders are few; a pooled connection
    would only add failure modes)."""

    def __init__(self, settings: SmtpSettings, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self._settings = settings
        self._clock = clock

    def _tls_context(self) -> ssl.SSLContext:
        settings = self._settings
        context = ssl.create_default_context(
            cafile=str(settings.ca_file) if settings.ca_file else None
        )
        if not settings.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _connect(self) -> smtplib.SMTP:
        settings = self._settings
        if settings.security is SmtpSecurity.SSL:
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                settings.host,
                settings.port,
                timeout=settings.timeout_seconds,
                context=self._tls_context(),
            )
        else:
            client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_seconds)
        try:
            client.ehlo()
            if settings.security is SmtpSecurity.STARTTLS:
                client.starttls(context=self._tls_context())
                client.ehlo()
            if settings.username is not None and settings.password is not None:
                client.login(settings.username, settings.password.get_secret_value())
        except smtplib.SMTPNotSupportedError as exc:
            client.close()
            raise delivery_error(
                ChannelMisconfigured, "the SMTP server does not offer STARTTLS or AUTH"
            ) from exc
        except BaseException:
            client.close()
            raise
        return client

    def send(self, message: OutboundMessage) -> SendResult:
        email = build_email(message, self._settings, self._clock())
        envelope_from = parseaddr(self._settings.from_address)[1]
        recipients = [address for _, address in getaddresses([message.to]) if address]
        if not recipients:
            raise delivery_error(PermanentError, "the email address has no mailbox part")
        try:
            client = self._connect()
            try:
                client.send_message(email, from_addr=envelope_from, to_addrs=recipients)
            finally:
                try:
                    client.quit()
                except (smtplib.SMTPException, OSError):
                    client.close()
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            worst = max(codes) if codes else 550
            raise _error_for_code(worst, "refused the recipient") from exc
        except smtplib.SMTPAuthenticationError as exc:
            if 400 <= exc.smtp_code < 500:
                raise _error_for_code(exc.smtp_code, "could not log in for now") from exc
            raise delivery_error(
                ChannelMisconfigured, f"SMTP login refused ({exc.smtp_code})", exc.smtp_code
            ) from exc
        except smtplib.SMTPSenderRefused as exc:
            if 400 <= exc.smtp_code < 500:
                raise _error_for_code(exc.smtp_code, "refused the sender for now") from exc
            raise delivery_error(
                ChannelMisconfigured, f"SMTP server refused the sender ({exc.smtp_code})"
            ) from exc
        except smtplib.SMTPNotSupportedError as exc:  # e.g. a non-ASCII address, no SMTPUTF8
            raise delivery_error(
                PermanentError, "the SMTP server cannot take this address (no SMTPUTF8)"
            ) from exc
        except smtplib.SMTPServerDisconnected as exc:
            raise delivery_error(TransientError, "the SMTP server closed the connection") from exc
        except smtplib.SMTPResponseException as exc:
            raise _error_for_code(exc.smtp_code, "refused the message") from exc
        except ssl.SSLCertVerificationError as exc:
            raise delivery_error(
                ChannelMisconfigured, "the SMTP server's TLS certificate is not trusted"
            ) from exc
        except smtplib.SMTPException as exc:
            raise delivery_error(TransientError, f"SMTP error: {type(exc).__name__}") from exc
        except OSError as exc:  # refused, unreachable, timeouts, TLS failures
            raise delivery_error(
                TransientError, f"could not reach the SMTP server: {type(exc).__name__}"
            ) from exc
        return SendResult(provider_message_id=str(email["Message-ID"]), status="sent")
