"""Inbound email by IMAP polling: a patient's emailed "C" (with the quoted reminder below it)
confirms their appointment; the message is stored before it is marked seen, and only once."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from frontdesk.adapters.channels.config import ImapSecurity
from frontdesk.adapters.db.models import Appointment, InboundWebhook, Message, Practice
from frontdesk.bootstrap import Runtime
from frontdesk.domain.times import now_utc
from frontdesk.services import channel_accounts
from frontdesk.services.chores import message_sender
from frontdesk.services.mail_polling import MailPoller
from integration.test_imap_poll import PASSWORD, USER, FakeImapServer, Store, _email, _serve
from integration.test_reminders_flow import Clock, put
from provider_fakes import self_signed_certificate


def test_an_emailed_reply_is_polled_stored_and_acted_on(runtime: Runtime, tmp_path: Path) -> None:
    now = now_utc()
    put(
        runtime,
        Clock(now - timedelta(hours=1)),
        now + timedelta(days=2),
        announce=False,
        patient={"email": "ana@patient.example", "preferred_channel": "email", "phone": None},
    )
    certificate = self_signed_certificate(tmp_path)
    store = Store(messages={7: (_email(7, "C\r\n\r\nOn Mon, we wrote:\r\n> Reply C"), set())})
    for server in _serve(FakeImapServer(store, certificate, implicit_tls=True)):
        with runtime.transaction() as session:
            practice = session.scalars(select(Practice)).one()
            channel_accounts.set_account(
                session,
                runtime.cipher,
                practice,
                "email_inbound",
                "imap",
                {
                    "host": "127.0.0.1",
                    "port": server.server_address[1],
                    "security": ImapSecurity.SSL.value,
                    "username": USER,
                    "password": PASSWORD,
                    "ca_file": str(certificate.cert_file),
                    "timeout_seconds": 5,
                },
                actor="test",
            )
        poller = MailPoller(runtime, message_sender(runtime), every=0)
        assert poller.run_due() == 1
        assert poller.run_due() == 0  # seen now: not fetched again
        assert "\\Seen" in store.messages[7][1]
    with runtime.transaction() as session:
        assert session.scalars(select(Appointment.confirmation)).one() == "confirmed"
        assert session.scalars(select(InboundWebhook.state)).all() == ["processed"]
        inbound = session.scalars(select(Message.body).where(Message.direction == "inbound"))
        assert list(inbound) == ["C"]
