"""Inbound email by IMAP polling: fetch unseen messages without marking them, hand each to the
caller, and mark it seen only once the caller says it is stored. A crash between fetch and store
leaves the message unseen, so the next poll fetches it again (the inbound store dedupes on
Message-ID): nothing lost, nothing twice."""

from __future__ import annotations

import contextlib
import imaplib
import logging
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

from frontdesk.adapters.channels.base import InboundMessage, delivery_error
from frontdesk.adapters.channels.config import ImapSecurity, ImapSettings
from frontdesk.adapters.channels.email_inbound import parse_email
from frontdesk.domain.errors import ChannelMisconfigured, TransientError

log = logging.getLogger(__name__)


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class FetchedEmail:
    uid: str
    raw: bytes
    message: InboundMessage


@dataclass(frozen=True)
class PollResult:
    stored: int
    failed: int


class ImapMailbox:
    """One IMAP session on the configured mailbox. Use as a context manager::

        with ImapMailbox(settings) as mailbox:
            for fetched in mailbox.unseen():
                store(fetched.raw)          # durable first
                mailbox.mark_seen(fetched.uid)

    Errors of the connection or the server are raised as TransientError; a refused login as
    ChannelMisconfigured."""

    def __init__(self, settings: ImapSettings, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self._settings = settings
        self._clock = clock
        self._client: imaplib.IMAP4 | None = None

    def _tls_context(self) -> ssl.SSLContext:
        settings = self._settings
        context = ssl.create_default_context(
            cafile=str(settings.ca_file) if settings.ca_file else None
        )
        if not settings.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def __enter__(self) -> Self:
        settings = self._settings
        try:
            if settings.security is ImapSecurity.SSL:
                client: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                    settings.host,
                    settings.port,
                    ssl_context=self._tls_context(),
                    timeout=settings.timeout_seconds,
                )
            else:
                client = imaplib.IMAP4(
                    settings.host, settings.port, timeout=settings.timeout_seconds
                )
                client.starttls(ssl_context=self._tls_context())
        except ssl.SSLCertVerificationError as exc:
            raise delivery_error(
                ChannelMisconfigured, "the IMAP server's TLS certificate is not trusted"
            ) from exc
        except (OSError, imaplib.IMAP4.error) as exc:
            raise delivery_error(
                TransientError, f"could not reach the IMAP server: {type(exc).__name__}"
            ) from exc
        self._client = client
        try:
            client.login(settings.username, settings.password.get_secret_value())
        except imaplib.IMAP4.error as exc:
            self._close()
            raise delivery_error(ChannelMisconfigured, "the IMAP server refused the login") from exc
        except OSError as exc:
            self._close()
            raise delivery_error(TransientError, "the IMAP connection failed") from exc
        try:
            status, _ = client.select(_quoted(settings.mailbox))
        except (OSError, imaplib.IMAP4.error) as exc:
            self._close()
            raise delivery_error(TransientError, "could not open the IMAP mailbox") from exc
        if status != "OK":
            self._close()
            raise delivery_error(ChannelMisconfigured, "the IMAP mailbox does not exist")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._close()

    def _close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            client.logout()

    def _require(self) -> imaplib.IMAP4:
        if self._client is None:
            raise RuntimeError("use ImapMailbox as a context manager")
        return self._client

    def unseen_uids(self) -> list[str]:
        client = self._require()
        try:
            status, data = client.uid("SEARCH", "UNSEEN")
        except (OSError, imaplib.IMAP4.error) as exc:
            raise delivery_error(TransientError, "IMAP search failed") from exc
        if status != "OK" or not data or not data[0]:
            return []
        first = data[0]
        text = first.decode("ascii") if isinstance(first, bytes) else str(first)
        return text.split()[: self._settings.max_messages_per_poll]

    def fetch(self, uid: str) -> bytes | None:
        """The whole message, fetched with BODY.PEEK so it stays unseen; None if it is gone."""
        client = self._require()
        try:
            status, data = client.uid("FETCH", uid, "(BODY.PEEK[])")
        except (OSError, imaplib.IMAP4.error) as exc:
            raise delivery_error(TransientError, "IMAP fetch failed") from exc
        if status != "OK":
            return None
        for item in data:
            if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], bytes):
                return item[1]
        return None

    def unseen(self) -> Iterator[FetchedEmail]:
        for uid in self.unseen_uids():
            raw = self.fetch(uid)
            if raw is None:
                continue
            yield FetchedEmail(
                uid=uid, raw=raw, message=parse_email(raw, received_at=self._clock())
            )

    def mark_seen(self, uid: str) -> None:
        client = self._require()
        try:
            status, _ = client.uid("STORE", uid, "+FLAGS", "(\\Seen)")
        except (OSError, imaplib.IMAP4.error) as exc:
            raise delivery_error(TransientError, "IMAP could not mark a message seen") from exc
        if status != "OK":
            raise delivery_error(TransientError, "IMAP could not mark a message seen")


def _quoted(mailbox: str) -> str:
    escaped = mailbox.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def poll(
    settings: ImapSettings,
    handle: Callable[[FetchedEmail], None],
    *,
    clock: Callable[[], datetime] = _utcnow,
) -> PollResult:
    """Fetch every unseen message and call ``handle`` on each; mark it seen only when ``handle``
    returned (it must store the message durably first). A message whose handler raised stays
    unseen and is fetched again on the next poll; the others go on."""
    stored = failed = 0
    with ImapMailbox(settings, clock=clock) as mailbox:
        for fetched in mailbox.unseen():
            try:
                handle(fetched)
            except Exception as exc:
                failed += 1
                # The type only: an exception's text may quote the message.
                log.warning(
                    "storing an inbound email failed (%s); it stays unseen for the next poll",
                    type(exc).__name__,
                )
                continue
            mailbox.mark_seen(fetched.uid)
            stored += 1
    return PollResult(stored=stored, failed=failed)
