"""IMAP polling against a small IMAP4rev1 server on loopback (implicit TLS or STARTTLS): unseen
messages are fetched without being marked, and marked seen only once stored."""

from __future__ import annotations

import re
import socket
import socketserver
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from frontdesk.adapters.channels.config import ImapSecurity, ImapSettings
from frontdesk.adapters.channels.imap import FetchedEmail, ImapMailbox, poll
from frontdesk.domain.errors import ChannelMisconfigured
from provider_fakes import Certificate, self_signed_certificate

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
USER, PASSWORD = "inbox@sunrise.example", "imap-pass"


def _email(number: int, body: str) -> bytes:
    return (
        "From: Ana López <ana@patient.example>\r\n"
        "To: inbox@sunrise.example\r\n"
        f"Subject: Re: Your appointment {number}\r\n"
        f"Message-ID: <reply-{number}@patient.example>\r\n"
        "In-Reply-To: <fd.0123@sunrise.example>\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n"
        f"{body}\r\n"
    ).encode()


@dataclass
class Store:
    """The mailbox the fake server serves: uid -> (raw message, flags)."""

    messages: dict[int, tuple[bytes, set[str]]] = field(default_factory=dict)
    commands: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class ImapHandler(socketserver.StreamRequestHandler):
    """Just enough IMAP4rev1 for imaplib: CAPABILITY, STARTTLS, LOGIN, SELECT, UID SEARCH,
    UID FETCH (BODY.PEEK[]), UID STORE +FLAGS, LOGOUT."""

    server: FakeImapServer

    def _send(self, line: str | bytes) -> None:
        data = line if isinstance(line, bytes) else line.encode()
        self.wfile.write(data + b"\r\n")
        self.wfile.flush()

    def finish(self) -> None:
        super().finish()
        if self.connection is not self.request:  # the STARTTLS-wrapped socket
            self.connection.close()

    def handle(self) -> None:
        store = self.server.store
        self._send("* OK fake IMAP4rev1 ready")
        authenticated = False
        while True:
            raw = self.rfile.readline()
            if not raw:
                return
            line = raw.decode().rstrip("\r\n")
            tag, _, rest = line.partition(" ")
            command, _, args = rest.partition(" ")
            command = command.upper()
            with store.lock:
                store.commands.append(command if command != "UID" else f"UID {args.split()[0]}")
            if command == "CAPABILITY":
                caps = "IMAP4rev1 STARTTLS" if self.server.starttls else "IMAP4rev1"
                self._send(f"* CAPABILITY {caps}")
                self._send(f"{tag} OK CAPABILITY completed")
            elif command == "STARTTLS" and self.server.starttls:
                self._send(f"{tag} OK Begin TLS negotiation now")
                context = self.server.certificate.server_context()
                self.rfile.close()
                self.wfile.close()
                self.connection = context.wrap_socket(self.connection, server_side=True)
                self.rfile = self.connection.makefile("rb")
                self.wfile = self.connection.makefile("wb")
            elif command == "LOGIN":
                user, password = [a.strip('"') for a in args.split(" ", 1)]
                if (user, password) == (USER, PASSWORD):
                    authenticated = True
                    self._send(f"{tag} OK LOGIN completed")
                else:
                    self._send(f"{tag} NO [AUTHENTICATIONFAILED] Invalid credentials")
            elif command == "SELECT" and authenticated:
                self._send(f"* {len(store.messages)} EXISTS")
                self._send("* 0 RECENT")
                self._send("* FLAGS (\\Seen)")
                self._send(f"{tag} OK [READ-WRITE] SELECT completed")
            elif command == "UID" and authenticated:
                self._uid(tag, args)
            elif command == "LOGOUT":
                self._send("* BYE logging out")
                self._send(f"{tag} OK LOGOUT completed")
                return
            else:
                self._send(f"{tag} BAD unknown command")

    def _uid(self, tag: str, args: str) -> None:
        store = self.server.store
        sub, _, rest = args.partition(" ")
        sub = sub.upper()
        with store.lock:
            uids = sorted(store.messages)
            if sub == "SEARCH" and rest.upper() == "UNSEEN":
                unseen = [str(u) for u in uids if "\\Seen" not in store.messages[u][1]]
                self._send("* SEARCH " + " ".join(unseen))
                self._send(f"{tag} OK SEARCH completed")
            elif sub == "FETCH":
                uid_text, _, items = rest.partition(" ")
                uid = int(uid_text)
                if items.upper() != "(BODY.PEEK[])" or uid not in store.messages:
                    self._send(f"{tag} BAD only BODY.PEEK[] of a known uid")
                    return
                raw, _ = store.messages[uid]
                number = uids.index(uid) + 1
                self._send(f"* {number} FETCH (UID {uid} BODY[] {{{len(raw)}}}".encode())
                self.wfile.write(raw)
                self._send(")")
                self._send(f"{tag} OK FETCH completed")
            elif sub == "STORE":
                match = re.fullmatch(r"(\d+) \+FLAGS \((.*)\)", rest)
                if not match:
                    self._send(f"{tag} BAD")
                    return
                uid = int(match.group(1))
                store.messages[uid][1].update(match.group(2).split())
                number = uids.index(uid) + 1
                flags = " ".join(sorted(store.messages[uid][1]))
                self._send(f"* {number} FETCH (UID {uid} FLAGS ({flags}))")
                self._send(f"{tag} OK STORE completed")
            else:
                self._send(f"{tag} BAD unknown UID command")


class FakeImapServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, store: Store, certificate: Certificate, *, implicit_tls: bool) -> None:
        super().__init__(("127.0.0.1", 0), ImapHandler)
        self.store = store
        self.certificate = certificate
        self.implicit_tls = implicit_tls
        self.starttls = not implicit_tls

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = super().get_request()
        if self.implicit_tls:
            connection = self.certificate.server_context().wrap_socket(connection, server_side=True)
        return connection, address


@pytest.fixture
def certificate(tmp_path: Path) -> Certificate:
    return self_signed_certificate(tmp_path)


@pytest.fixture
def store() -> Store:
    return Store(
        messages={
            3: (_email(3, "C\r\n\r\n> Reply C to confirm"), set()),
            5: (_email(5, "Already read"), {"\\Seen"}),
            8: (_email(8, "R please, I have a conflict.\r\n\r\nSent from my iPhone"), set()),
        }
    )


def _serve(server: FakeImapServer) -> Iterator[FakeImapServer]:
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(params=["ssl", "starttls"])
def imap_settings(
    request: pytest.FixtureRequest, store: Store, certificate: Certificate
) -> Iterator[ImapSettings]:
    implicit = request.param == "ssl"
    for server in _serve(FakeImapServer(store, certificate, implicit_tls=implicit)):
        yield ImapSettings(
            host="127.0.0.1",
            port=server.server_address[1],
            security=ImapSecurity.SSL if implicit else ImapSecurity.STARTTLS,
            username=USER,
            password=PASSWORD,
            ca_file=certificate.cert_file,
            timeout_seconds=5,
        )


def test_poll_marks_seen_only_what_the_handler_stored(
    imap_settings: ImapSettings, store: Store
) -> None:
    stored: list[FetchedEmail] = []
    failures = {"8"}  # storing uid 8 fails once

    def flaky(fetched: FetchedEmail) -> None:
        if fetched.uid in failures:
            failures.discard(fetched.uid)
            raise RuntimeError("database unavailable")
        stored.append(fetched)

    first = poll(imap_settings, flaky, clock=lambda: NOW)
    assert (first.stored, first.failed) == (1, 1)
    assert [f.uid for f in stored] == ["3"]
    assert "\\Seen" in store.messages[3][1]
    assert "\\Seen" not in store.messages[8][1]  # left for the next poll
    assert "UID FETCH" in store.commands and "UID STORE" in store.commands

    reply = stored[0].message
    assert reply.text == "C"
    assert reply.provider_message_id == "<reply-3@patient.example>"
    assert reply.in_reply_to == "<fd.0123@sunrise.example>"
    assert reply.from_address == "ana@patient.example"
    assert reply.received_at == NOW

    second = poll(imap_settings, flaky, clock=lambda: NOW)
    assert (second.stored, second.failed) == (1, 0)
    assert stored[1].uid == "8"
    assert stored[1].message.text == "R please, I have a conflict."
    assert "\\Seen" in store.messages[8][1]

    third = poll(imap_settings, stored.append, clock=lambda: NOW)
    assert (third.stored, third.failed) == (0, 0)


def test_a_refused_login_is_a_configuration_error(imap_settings: ImapSettings) -> None:
    wrong = imap_settings.model_copy(update={"password": SecretStr("nope")})
    with pytest.raises(ChannelMisconfigured), ImapMailbox(wrong):
        pass


def test_fetching_does_not_mark_seen(imap_settings: ImapSettings, store: Store) -> None:
    with ImapMailbox(imap_settings, clock=lambda: NOW) as mailbox:
        fetched = list(mailbox.unseen())
    assert [f.uid for f in fetched] == ["3", "8"]
    assert all("\\Seen" not in store.messages[uid][1] for uid in (3, 8))
    assert isinstance(fetched[0].raw, bytes) and b"Reply C to confirm" in fetched[0].raw


def test_tls_is_checked(store: Store, certificate: Certificate) -> None:
    for server in _serve(FakeImapServer(store, certificate, implicit_tls=True)):
        settings = ImapSettings(
            host="127.0.0.1",
            port=server.server_address[1],
            username=USER,
            password=PASSWORD,
            timeout_seconds=5,
        )
        with pytest.raises(ChannelMisconfigured) as caught, ImapMailbox(settings):
            pass
        assert isinstance(caught.value.__cause__, ssl.SSLCertVerificationError)
