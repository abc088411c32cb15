"""Inbound email by IMAP polling, for practices whose email_inbound account is ``imap``: each
unseen message is stored raw (and only then marked seen), then processed like any reply."""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable
from functools import partial

from sqlalchemy import select

from frontdesk.adapters.channels.config import ImapSettings
from frontdesk.adapters.channels.imap import FetchedEmail, poll
from frontdesk.adapters.db.channel_models import ChannelAccount
from frontdesk.bootstrap import Runtime
from frontdesk.services import channel_accounts, inbound, inbound_messages
from frontdesk.services.outgoing import MessageSender
from frontdesk.services.provider_inbound import envelope

log = logging.getLogger(__name__)


class MailPoller:
    def __init__(
        self,
        runtime: Runtime,
        sender: MessageSender | None,
        *,
        every: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.runtime = runtime
        self.sender = sender
        self.every = every
        self.clock = clock
        self._last: float | None = None

    def run_due(self) -> int:
        now = self.clock()
        if self._last is not None and now - self._last < self.every:
            return 0
        self._last = now
        with self.runtime.transaction() as session:
            rows = session.scalars(
                select(ChannelAccount).where(
                    ChannelAccount.channel == "email_inbound",
                    ChannelAccount.provider == "imap",
                    ChannelAccount.enabled.is_(True),
                )
            ).all()
            accounts = [
                (row.practice_id, channel_accounts.settings_of(row, self.runtime.cipher))
                for row in rows
            ]
        stored = 0
        for practice_id, settings in accounts:
            if not isinstance(settings, ImapSettings):
                continue
            try:
                stored += poll(settings, partial(self._store, practice_id)).stored
            except Exception as exc:  # one practice's mailbox must not stop the others
                log.warning("IMAP poll failed: %s", type(exc).__name__)
        if stored:
            inbound_messages.retry_failed(self.runtime, self.sender, grace=0)
        return stored

    def _store(self, practice_id: int, fetched: FetchedEmail) -> None:
        """Durably stored before the message is marked seen; processed by the retry pass."""
        inbound.store(
            self.runtime,
            practice_id=practice_id,
            provider="imap",
            kind="message",
            dedupe_key=fetched.message.provider_message_id,
            payload=envelope(base64.b64encode(fetched.raw).decode("ascii")),
            content_type="message/rfc822",
        )
