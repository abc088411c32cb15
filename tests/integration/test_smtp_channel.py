"""Email over SMTP against a real SMTP server on loopback (aiosmtpd): plain, STARTTLS, implicit
TLS and AUTH; multipart parts, threading headers, error mapping; a reply parsed back."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from frontdesk.adapters.channels.base import OutboundMessage
from frontdesk.adapters.channels.config import SmtpSecurity, SmtpSettings
from frontdesk.adapters.channels.email_inbound import parse_email
from frontdesk.adapters.channels.smtp import SmtpChannel, message_id_for
from frontdesk.domain.channels import Channel
from frontdesk.domain.errors import ChannelMisconfigured, PermanentError, TransientError
from provider_fakes import Certificate, self_signed_certificate

NOW = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)


@dataclass
class Mailbox:
    """An aiosmtpd handler that keeps what it receives; refuses recipients when told to."""

    received: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    refuse_rcpt: str | None = None  # e.g. "550 5.1.1 No such user"
    refuse_data: str | None = None

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if self.refuse_rcpt:
            return self.refuse_rcpt
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse_data:
            return self.refuse_data
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted"

    def last(self) -> EmailMessage:
        message = message_from_bytes(self.received[-1][2], policy=default_policy)
        assert isinstance(message, EmailMessage)
        return message


class LoopbackController(Controller):
    """aiosmtpd's Controller on a free port chosen by the OS (port 0)."""

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        b"frontdesk",
        b"s3cret-pass",
    )
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def certificate(tmp_path: Path) -> Certificate:
    return self_signed_certificate(tmp_path)


@pytest.fixture
def mailbox() -> Mailbox:
    return Mailbox()


def _start(controller: Controller) -> Iterator[Controller]:
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()


@pytest.fixture
def plain_server(mailbox: Mailbox) -> Iterator[Controller]:
    yield from _start(LoopbackController(mailbox, hostname="127.0.0.1", port=0))


@pytest.fixture
def starttls_server(mailbox: Mailbox, certificate: Certificate) -> Iterator[Controller]:
    yield from _start(
        LoopbackController(
            mailbox,
            hostname="127.0.0.1",
            port=0,
            tls_context=certificate.server_context(),
            require_starttls=True,
            authenticator=_authenticate,
            auth_required=True,
        )
    )


@pytest.fixture
def ssl_server(mailbox: Mailbox, certificate: Certificate) -> Iterator[Controller]:
    yield from _start(
        LoopbackController(
            mailbox,
            hostname="127.0.0.1",
            port=0,
            ssl_context=certificate.server_context(),
            authenticator=_authenticate,
            # The whole session is TLS, but aiosmtpd only counts STARTTLS as TLS for AUTH
            # (and warns when AUTH is required without it): offer AUTH, check it when used.
            auth_require_tls=False,
        )
    )


def _settings(port: int, **overrides: Any) -> SmtpSettings:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "security": SmtpSecurity.NONE,
        "from_address": "Sunrise Therapy <reminders@sunrise.example>",
        "timeout_seconds": 5,
    }
    values.update(overrides)
    return SmtpSettings(**values)


def _message(**overrides: Any) -> OutboundMessage:
    values: dict[str, Any] = {
        "practice_id": 1,
        "patient_id": 7,
        "channel": Channel.EMAIL,
        "to": "Ana López <ana@patient.example>",
        "body": "Hi Ana, your appointment is Tue 24 Nov at 3:00 pm.\nReply C to confirm.",
        "idempotency_key": "reminder:42:24h",
        "subject": "Your appointment on Tuesday",
    }
    values.update(overrides)
    return OutboundMessage(**values)


def test_plain_smtp_sends_text_and_html_with_a_stable_message_id(
    plain_server: Controller, mailbox: Mailbox
) -> None:
    channel = SmtpChannel(_settings(plain_server.port), clock=lambda: NOW)
    message = _message(
        html_body="<p>Hi Ana, your appointment is <b>Tue 24 Nov at 3:00 pm</b>.</p>",
        unsubscribe_url="https://sunrise.example/u/abc",
    )
    result = channel.send(message)

    assert result.status == "sent"
    assert result.provider_message_id == message_id_for("reminder:42:24h", "sunrise.example")
    assert result.provider_message_id.endswith("@sunrise.example>")
    mail_from, rcpt_tos, _ = mailbox.received[0]
    assert (mail_from, rcpt_tos) == ("reminders@sunrise.example", ["ana@patient.example"])
    email = mailbox.last()
    assert email["Message-ID"] == result.provider_message_id
    assert email["Subject"] == "Your appointment on Tuesday"
    assert email["Auto-Submitted"] == "auto-generated"
    assert email["List-Unsubscribe"] == "<https://sunrise.example/u/abc>"
    assert email["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert email.get_content_type() == "multipart/alternative"
    parts = [part.get_content_type() for part in email.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    plain = email.get_body(preferencelist=("plain",))
    html = email.get_body(preferencelist=("html",))
    assert plain is not None and "Reply C to confirm." in plain.get_content()
    assert html is not None and "<b>Tue 24 Nov at 3:00 pm</b>" in html.get_content()
    # A retry of the same message carries the same Message-ID.
    assert channel.send(message).provider_message_id == result.provider_message_id


def test_threading_headers_and_the_reply_parsed_back(
    plain_server: Controller, mailbox: Mailbox
) -> None:
    channel = SmtpChannel(_settings(plain_server.port), clock=lambda: NOW)
    first = channel.send(_message())
    second = channel.send(
        _message(
            idempotency_key="receipt:42:confirm",
            subject="Re: Your appointment on Tuesday",
            body="Thank you, your appointment is confirmed.",
            in_reply_to="<patient-reply@patient.example>",
            references=(first.provider_message_id,),
        )
    )
    email = mailbox.last()
    assert email["In-Reply-To"] == "<patient-reply@patient.example>"
    assert email["References"] == (f"{first.provider_message_id} <patient-reply@patient.example>")
    assert email.get_content_type() == "text/plain"
    assert second.provider_message_id != first.provider_message_id

    # The patient answers the first reminder from Gmail, quoting it.
    reply = (
        "From: Ana López <ana@patient.example>\r\n"
        "To: reminders@sunrise.example\r\n"
        "Subject: Re: Your appointment on Tuesday\r\n"
        "Message-ID: <CAF=abc123@mail.gmail.example>\r\n"
        f"In-Reply-To: {first.provider_message_id}\r\n"
        f"References: {first.provider_message_id}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        "C, see you then!\r\n"
        "Ana\r\n"
        "\r\n"
        "On Mon, Nov 23, 2026 at 9:00 AM Sunrise Therapy <reminders@sunrise.example> wrote:\r\n"
        "> Hi Ana, your appointment is Tue 24 Nov at 3:00 pm.\r\n"
        "> Reply C to confirm.\r\n"
    ).encode()
    inbound = parse_email(reply, received_at=NOW)
    assert inbound.text == "C, see you then!\nAna"
    assert "Reply C to confirm" in inbound.raw_text
    assert inbound.in_reply_to == first.provider_message_id
    assert inbound.from_address == "ana@patient.example"
    assert inbound.provider_message_id == "<CAF=abc123@mail.gmail.example>"


def test_starttls_with_auth(
    starttls_server: Controller, mailbox: Mailbox, certificate: Certificate
) -> None:
    settings = _settings(
        starttls_server.port,
        security=SmtpSecurity.STARTTLS,
        ca_file=certificate.cert_file,
        username="frontdesk",
        password="s3cret-pass",
    )
    SmtpChannel(settings, clock=lambda: NOW).send(_message())
    assert len(mailbox.received) == 1

    wrong = _settings(
        starttls_server.port,
        security=SmtpSecurity.STARTTLS,
        ca_file=certificate.cert_file,
        username="frontdesk",
        password="wrong",
    )
    with pytest.raises(ChannelMisconfigured) as caught:
        SmtpChannel(wrong, clock=lambda: NOW).send(_message())
    assert caught.value.provider_code == "535"
    assert len(mailbox.received) == 1


def test_implicit_tls_with_auth(
    ssl_server: Controller, mailbox: Mailbox, certificate: Certificate
) -> None:
    settings = _settings(
        ssl_server.port,
        security=SmtpSecurity.SSL,
        ca_file=certificate.cert_file,
        username="frontdesk",
        password="s3cret-pass",
    )
    SmtpChannel(settings, clock=lambda: NOW).send(_message())
    assert mailbox.received[0][1] == ["ana@patient.example"]


def test_an_untrusted_certificate_is_a_configuration_error(ssl_server: Controller) -> None:
    settings = _settings(
        ssl_server.port,
        security=SmtpSecurity.SSL,
        username="frontdesk",
        password="s3cret-pass",
    )
    with pytest.raises(ChannelMisconfigured):
        SmtpChannel(settings, clock=lambda: NOW).send(_message())


def test_a_refused_recipient_is_permanent_and_a_4xx_transient(
    plain_server: Controller, mailbox: Mailbox
) -> None:
    channel = SmtpChannel(_settings(plain_server.port), clock=lambda: NOW)
    mailbox.refuse_rcpt = "550 5.1.1 <ana@patient.example>: no such user"
    with pytest.raises(PermanentError) as permanent:
        channel.send(_message())
    assert permanent.value.provider_code == "550"
    assert "ana@" not in str(permanent.value)  # no contact data in error text

    mailbox.refuse_rcpt = "450 4.2.1 mailbox busy, try later"
    with pytest.raises(TransientError) as transient:
        channel.send(_message())
    assert transient.value.provider_code == "450"

    mailbox.refuse_rcpt = None
    mailbox.refuse_data = "451 4.3.0 local problem"
    with pytest.raises(TransientError):
        channel.send(_message())
    mailbox.refuse_data = "554 5.7.1 message rejected as spam"
    with pytest.raises(PermanentError):
        channel.send(_message())
    assert mailbox.received == []


def test_no_server_is_transient() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port now: the connection is refused.
    with pytest.raises(TransientError) as caught:
        SmtpChannel(_settings(port), clock=lambda: NOW).send(_message())
    assert isinstance(caught.value.__cause__, OSError)


def test_starttls_required_but_not_offered_is_a_configuration_error(
    plain_server: Controller, mailbox: Mailbox
) -> None:
    settings = _settings(plain_server.port, security=SmtpSecurity.STARTTLS)
    with pytest.raises(ChannelMisconfigured):
        SmtpChannel(settings, clock=lambda: NOW).send(_message())
    assert mailbox.received == []
