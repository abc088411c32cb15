"""The web chat widget's conversations.

A visitor gets a random token when they open the chat; only its keyed hash is stored (on the
conversation), so the token in the visitor's browser storage is the only way back into the
thread — across reloads, and for nobody else. Their messages go through the same inbound path
as SMS or email (stored first, understood, answered), and our answers are read by the widget.
"""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from frontdesk.adapters.crypto import FieldCipher
from frontdesk.adapters.db.models import Conversation, Message, Practice
from frontdesk.bootstrap import Runtime
from frontdesk.domain.channels import Channel, Direction
from frontdesk.domain.errors import FieldError, NotFound, ValidationFailed
from frontdesk.domain.messages import language_of
from frontdesk.services import inbound_messages, outgoing
from frontdesk.services.outgoing import MessageSender
from frontdesk.services.replies import ReplyOutcome

MAX_TEXT = 2000
RATE_WINDOW = timedelta(minutes=1)
RATE_LIMIT = 10  # visitor messages per conversation per minute

GREETINGS = {
    "en": (
        "Hi! I'm the automated assistant of {practice}. I can help with appointments and "
        "questions about the practice, and bring in a person whenever you like. If you are in "
        "danger, call or text 988, or call 911."
    ),
    "es": (
        "¡Hola! Soy el asistente automático de {practice}. Puedo ayudarle con sus citas y "
        "preguntas sobre la consulta, y pasarle con una persona cuando quiera. Si está en "
        "peligro, llame o escriba al 988, o llame al 911."
    ),
}


@dataclass(frozen=True)
class WidgetConfig:
    title: str
    greeting: str
    color: str
    language: str
    allowed_origins: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "greeting": self.greeting,
            "color": self.color,
            "language": self.language,
            "allowed_origins": list(self.allowed_origins),
        }


def widget_config(practice: Practice) -> WidgetConfig:
    stored = (practice.settings or {}).get("widget", {})
    language = language_of(str(stored.get("language") or practice.locale))
    return WidgetConfig(
        title=str(stored.get("title") or practice.name),
        greeting=str(stored.get("greeting") or GREETINGS[language].format(practice=practice.name)),
        color=str(stored.get("color") or "#2f5d62"),
        language=language,
        allowed_origins=tuple(stored.get("allowed_origins") or ()),
    )


def set_widget_config(practice: Practice, values: dict[str, Any]) -> WidgetConfig:
    errors: list[FieldError] = []
    clean: dict[str, Any] = {}
    for key, value in values.items():
        if key == "color":
            if not (isinstance(value, str) and len(value) == 7 and value.startswith("#")):
                errors.append(FieldError("color", "a colour like #2f5d62"))
                continue
            try:
                int(value[1:], 16)
            except ValueError:
                errors.append(FieldError("color", "a colour like #2f5d62"))
                continue
        elif key == "allowed_origins":
            origins = []
            for i, origin in enumerate(value or []):
                parts = urlsplit(str(origin))
                if (
                    parts.scheme not in ("http", "https")
                    or not parts.netloc
                    or parts.path not in ("", "/")
                ):
                    errors.append(
                        FieldError(f"allowed_origins[{i}]", "an origin like https://example.com")
                    )
                origins.append(f"{parts.scheme}://{parts.netloc}")
            value = origins
        elif key == "language":
            if value not in ("en", "es"):
                errors.append(FieldError("language", "en or es"))
        elif key in ("title", "greeting"):
            if not isinstance(value, str) or len(value) > 500:
                errors.append(FieldError(key, "text of at most 500 characters"))
        else:
            errors.append(FieldError(key, "unknown setting"))
            continue
        clean[key] = value
    if errors:
        raise ValidationFailed(errors)
    current = (practice.settings or {}).get("widget", {})
    practice.settings = {**(practice.settings or {}), "widget": {**current, **clean}}
    return widget_config(practice)


def origin_allowed(practice: Practice, origin: str | None, own_origin: str) -> bool:
    """The widget may be used from the practice's configured sites, and from frontdesk's own
    pages (its demo page)."""
    if origin is None:
        return True  # not a cross-origin browser request
    allowed = {own_origin.rstrip("/"), *widget_config(practice).allowed_origins}
    return origin.rstrip("/") in allowed


def start(
    session: Session, cipher: FieldCipher, practice: Practice, now: datetime
) -> tuple[str, Conversation]:
    token = "wc_" + secrets.token_urlsafe(24)
    conversation = Conversation(
        practice_id=practice.id,
        patient_id=None,
        channel=Channel.WEBCHAT.value,
        status="open",
        owner="agent",
        urgent=False,
        needs_attention=False,
        address_sealed=cipher.seal(token),
        address_lookup=cipher.lookup_key(token),
        last_message_at=now,
    )
    session.add(conversation)
    # The agent says it is an automated assistant at the start of every conversation.
    greeting = outgoing.queue_message(
        session,
        conversation=conversation,
        purpose="greeting",
        body=widget_config(practice).greeting,
        now=now,
    )
    greeting.delivery_status = "delivered"
    greeting.sent_at = now
    return token, conversation


def find(session: Session, cipher: FieldCipher, practice: Practice, token: str) -> Conversation:
    conversation = session.scalar(
        select(Conversation).where(
            Conversation.practice_id == practice.id,
            Conversation.channel == Channel.WEBCHAT.value,
            Conversation.address_lookup == cipher.lookup_key(token),
        )
    )
    if conversation is None:
        raise NotFound("this chat has ended; start a new one")
    return conversation


def history(session: Session, conversation: Conversation, after: int = 0) -> dict[str, Any]:
    messages = session.scalars(
        select(Message)
        .where(Message.conversation_id == conversation.id, Message.id > after)
        .order_by(Message.id)
    ).all()
    human = session.scalar(
        select(func.count(Message.id)).where(
            Message.conversation_id == conversation.id, Message.purpose == "staff_reply"
        )
    )
    return {
        "messages": [
            {
                "id": m.id,
                "from": "visitor"
                if m.direction == Direction.INBOUND.value
                else ("staff" if m.purpose == "staff_reply" else "assistant"),
                "text": m.body,
                "at": m.created_at.isoformat(),
                "crisis": m.purpose == "crisis",
            }
            for m in messages
            if m.direction == Direction.INBOUND.value
            or m.delivery_status not in ("pending", "sending", "failed")
        ],
        # A person has joined once the thread is with staff and one of them has written.
        "person_joined": conversation.owner == "staff" and bool(human),
        "with_staff": conversation.owner == "staff",
    }


def post(
    runtime: Runtime,
    sender: MessageSender | None,
    practice: Practice,
    token: str,
    text: str,
    now: datetime,
) -> ReplyOutcome | None:
    """A visitor's message: refused when empty, too long or too fast; else handled like any
    inbound message (and answered before this returns, where the answer is immediate)."""
    if not text.strip():
        raise ValidationFailed([FieldError("text", "the message is empty")])
    if len(text) > MAX_TEXT:
        raise ValidationFailed([FieldError("text", f"at most {MAX_TEXT} characters")])
    with runtime.transaction() as session:
        conversation = find(session, runtime.cipher, practice, token)
        recent = session.scalar(
            select(func.count(Message.id)).where(
                Message.conversation_id == conversation.id,
                Message.direction == Direction.INBOUND.value,
                Message.created_at > now - RATE_WINDOW,
            )
        )
        if (recent or 0) >= RATE_LIMIT:
            raise RateLimited("too many messages; please wait a moment")
    message_id = f"webchat-{uuid.uuid4().hex}"
    payload = json.dumps(
        {
            "channel": Channel.WEBCHAT.value,
            "from_address": token,
            "text": text,
            "provider_message_id": message_id,
            "received_at": now.isoformat(),
        }
    )
    results = inbound_messages.accept(
        runtime,
        sender,
        practice_id=practice.id,
        provider="webchat",
        kind="message",
        dedupe_key=message_id,
        payload=payload,
        content_type="application/json",
        clock=lambda: now,
    )
    return results[0] if results else None


class RateLimited(Exception):
    pass
