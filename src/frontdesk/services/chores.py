"""The worker's round besides reminders: send urgent staff alerts and queued messages, and retry
inbound webhooks that failed. Each chore is idempotent and safe to run in any number of processes
at once."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from frontdesk.bootstrap import Runtime
from frontdesk.services import inbound_messages
from frontdesk.services import provider_inbound as _parsers  # noqa: F401  (registers parsers)
from frontdesk.services.actions import ActionWorker
from frontdesk.services.channel_accounts import SenderDirectory
from frontdesk.services.handoff import AlertSender
from frontdesk.services.mail_polling import MailPoller
from frontdesk.services.outgoing import MessageSender

log = logging.getLogger(__name__)


_DIRECTORIES: dict[int, SenderDirectory] = {}


def senders_for(runtime: Runtime) -> SenderDirectory:
    """One sender directory per runtime, so providers' HTTP clients are reused."""
    directory = _DIRECTORIES.get(id(runtime))
    if directory is None or directory.runtime is not runtime:
        directory = _DIRECTORIES[id(runtime)] = SenderDirectory(runtime)
    return directory


def message_sender(runtime: Runtime) -> MessageSender:
    return MessageSender(runtime, senders_for(runtime))


class Chores:
    def __init__(
        self,
        runtime: Runtime,
        sender: MessageSender | None = None,
        *,
        retry_every: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.runtime = runtime
        self.sender = sender or message_sender(runtime)
        self.alerts = AlertSender(runtime, self.sender.senders)
        self.actions = ActionWorker(runtime, self.sender)
        self.mail = MailPoller(runtime, self.sender)
        self.retry_every = retry_every
        self.clock = clock
        self._last_retry: float | None = None

    def run_once(self) -> int:
        """One round; returns how much work it found (0 means the worker may sleep)."""
        done = self.alerts.send_due() + self.sender.send_due()
        now = self.clock()
        if self._last_retry is None or now - self._last_retry >= self.retry_every:
            self._last_retry = now
            done += inbound_messages.retry_failed(self.runtime, self.sender)
        done += self.actions.run_due()
        done += self.mail.run_due()
        return done

    def run(self, stop: threading.Event, poll_interval: float = 1.0) -> None:
        while not stop.is_set():
            try:
                busy = self.run_once()
            except Exception:
                log.exception("chores round failed; retrying after the poll interval")
                busy = 0
            if busy == 0:
                stop.wait(poll_interval)
