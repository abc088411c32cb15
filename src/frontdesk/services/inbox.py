"""The staff inbox: every patient's thread across channels, urgent ones first, and what staff do
in a thread (reply, note, acknowledge, assign, resolve, hand back, answer for the patient).

A thread is a patient (all their conversations on every channel, merged in time order), or, for
an address on no patient's record, that one conversation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from frontdesk.adapters.crypto import FieldCipher
from frontdesk.adapters.db.channel_models import ConsentEvent
from frontdesk.adapters.db.handoff_models import ConversationNote, Handoff
from frontdesk.adapters.db.models import (
    Appointment,
    Conversation,
    Message,
    Patient,
    Practice,
    Reminder,
    ReviewItem,
)
from frontdesk.adapters.db.scheduler_models import FhirWriteback
from frontdesk.adapters.db.staff_models import StaffUser
from frontdesk.adapters.db.webhook_models import WebhookDelivery, WebhookEvent
from frontdesk.domain.channels import Channel
from frontdesk.domain.errors import FieldError, NotFound, ValidationFailed
from frontdesk.domain.messages import format_when
from frontdesk.domain.templates import WHATSAPP_TEMPLATES, Purpose
from frontdesk.services import audit, handoff, outgoing
from frontdesk.services.appointment_answers import ANSWERS, apply_answer
from frontdesk.services.reminders import Planning
from frontdesk.services.replies import thread_for
from frontdesk.services.templates import TemplateBook, context_for
from frontdesk.services.templates import render as render_template

FILTERS = ("all", "urgent", "attention", "mine")
STATUSES = ("open", "pending", "resolved")


@dataclass
class ThreadSummary:
    conversation_id: int  # the thread's newest conversation (the link target)
    patient_id: int | None
    name: str
    channels: list[str]
    urgent: bool
    escalated_at: datetime | None
    needs_attention: bool
    status: str
    owner: str
    assigned_to: str | None
    last_message_at: datetime
    preview: str


def threads(
    session: Session,
    practice: Practice,
    *,
    view: str = "all",
    channel: str | None = None,
    status: str | None = None,
    search: str | None = None,
    me: str | None = None,
    patient_ids: set[int] | None = None,
) -> list[ThreadSummary]:
    """Urgent unacknowledged threads first (oldest escalation first: the longest waiting), then
    the rest by latest message. ``patient_ids`` limits a clinician to their own patients."""
    query = (
        select(Conversation, Patient)
        .outerjoin(Patient, Conversation.patient_id == Patient.id)
        .where(Conversation.practice_id == practice.id)
    )
    if search:
        like = f"%{search.strip()}%"
        query = query.where(or_(Patient.name.ilike(like), Patient.preferred_name.ilike(like)))
    if patient_ids is not None:
        query = query.where(Conversation.patient_id.in_(patient_ids))
    grouped: dict[tuple[str, int], list[tuple[Conversation, Patient | None]]] = {}
    for conversation, someone in session.execute(query):
        key = ("p", someone.id) if someone else ("c", conversation.id)
        grouped.setdefault(key, []).append((conversation, someone))
    out: list[ThreadSummary] = []
    for rows in grouped.values():
        conversations = [c for c, _ in rows]
        patient = rows[0][1]
        newest = max(conversations, key=lambda c: c.last_message_at)
        urgent_ones = [c for c in conversations if c.urgent and c.acknowledged_at is None]
        summary = ThreadSummary(
            conversation_id=newest.id,
            patient_id=patient.id if patient else None,
            name=(patient.preferred_name or patient.name or f"Patient {patient.id}")
            if patient
            else "Unknown sender",
            channels=sorted({c.channel for c in conversations}),
            urgent=bool(urgent_ones),
            escalated_at=min((c.escalated_at for c in urgent_ones if c.escalated_at), default=None),
            needs_attention=any(c.needs_attention for c in conversations),
            status=_status_of(conversations),
            owner="staff" if any(c.owner == "staff" for c in conversations) else "agent",
            assigned_to=next((c.assigned_to for c in conversations if c.assigned_to), None),
            last_message_at=newest.last_message_at,
            preview="",
        )
        if view == "urgent" and not summary.urgent:
            continue
        if view == "attention" and not (summary.needs_attention or summary.urgent):
            continue
        if view == "mine" and (me is None or summary.assigned_to != me):
            continue
        if channel and channel not in summary.channels:
            continue
        if status and summary.status != status:
            continue
        out.append(summary)
    _previews(session, out)
    out.sort(key=lambda t: t.last_message_at, reverse=True)
    # Stable sorts: newest first, then urgent ones on top, longest waiting first.
    out.sort(key=_urgency)
    return out


def _urgency(t: ThreadSummary) -> tuple[bool, float]:
    if t.urgent:
        return (False, (t.escalated_at or t.last_message_at).timestamp())
    return (True, 0.0)


def _status_of(conversations: list[Conversation]) -> str:
    states = {c.status for c in conversations}
    if "open" in states:
        return "open"
    if "pending" in states:
        return "pending"
    return "resolved"


def _previews(session: Session, summaries: list[ThreadSummary]) -> None:
    """Each thread's latest message, in two queries for the whole list (not one per thread)."""
    ids = [summary.conversation_id for summary in summaries]
    if not ids:
        return
    latest = dict(
        session.execute(
            select(Message.conversation_id, func.max(Message.id))
            .where(Message.conversation_id.in_(ids))
            .group_by(Message.conversation_id)
        ).all()
    )
    rows = session.execute(select(Message.id, Message.body).where(Message.id.in_(latest.values())))
    bodies = {message_id: body for message_id, body in rows}
    for summary in summaries:
        summary.preview = (bodies.get(latest.get(summary.conversation_id, -1)) or "")[:120]


def conversations_of(
    session: Session, practice: Practice, conversation_id: int
) -> list[Conversation]:
    """The thread's conversations: all of the patient's, or just this stranger's one."""
    anchor = session.get(Conversation, conversation_id)
    if anchor is None or anchor.practice_id != practice.id:
        raise NotFound(f"conversation {conversation_id} not found")
    if anchor.patient_id is None:
        return [anchor]
    return list(
        session.scalars(
            select(Conversation)
            .where(
                Conversation.practice_id == practice.id,
                Conversation.patient_id == anchor.patient_id,
            )
            .order_by(Conversation.id)
        )
    )


def thread(
    session: Session, practice: Practice, conversation_id: int, cipher: FieldCipher, now: datetime
) -> dict[str, Any]:
    """Everything staff need in one thread."""
    conversations = conversations_of(session, practice, conversation_id)
    ids = [c.id for c in conversations]
    patient = (
        session.get(Patient, conversations[0].patient_id) if conversations[0].patient_id else None
    )
    tz_name = (patient.timezone if patient else None) or practice.timezone
    language = patient.language if patient else "en"
    messages = session.scalars(
        select(Message)
        .where(Message.conversation_id.in_(ids))
        .order_by(Message.created_at, Message.id)
    ).all()
    appointments: list[Appointment] = []
    reminders: list[Reminder] = []
    ledger: list[ConsentEvent] = []
    if patient is not None:
        appointments = list(
            session.scalars(
                select(Appointment)
                .where(
                    Appointment.patient_id == patient.id,
                    Appointment.start_at >= now - timedelta(days=90),
                )
                .order_by(Appointment.start_at)
            )
        )
        reminders = list(
            session.scalars(
                select(Reminder)
                .where(Reminder.patient_id == patient.id, Reminder.sent_at.is_not(None))
                .order_by(Reminder.sent_at.desc())
                .limit(50)
            )
        )
        ledger = list(
            session.scalars(
                select(ConsentEvent)
                .where(ConsentEvent.patient_id == patient.id)
                .order_by(ConsentEvent.created_at, ConsentEvent.id)
            )
        )
    notes = session.scalars(
        select(ConversationNote)
        .where(ConversationNote.conversation_id.in_(ids))
        .order_by(ConversationNote.created_at, ConversationNote.id)
    ).all()
    handoffs = session.scalars(
        select(Handoff).where(Handoff.conversation_id.in_(ids)).order_by(Handoff.created_at)
    ).all()
    sync = _scheduler_sync(session, [a.id for a in appointments])
    runs = _action_runs(session, practice, ids, patient.id if patient else None)
    windows = {
        c.channel: bool(c.last_inbound_at and now - c.last_inbound_at <= outgoing.WHATSAPP_WINDOW)
        for c in conversations
    }
    urgent = [c for c in conversations if c.urgent and c.acknowledged_at is None]
    return {
        "conversation_id": conversation_id,
        "patient": {
            "id": patient.id,
            "name": patient.preferred_name or patient.name,
            "language": patient.language,
            "consent": {c.channel: c.status for c in patient.consents},
        }
        if patient
        else None,
        "urgent": bool(urgent),
        "escalated_at": min((c.escalated_at for c in urgent if c.escalated_at), default=None),
        "owner": "staff" if any(c.owner == "staff" for c in conversations) else "agent",
        "status": _status_of(list(conversations)),
        "assigned_to": next((c.assigned_to for c in conversations if c.assigned_to), None),
        "colleagues": [
            {"email": u.email, "name": u.display_name, "role": u.role}
            for u in assignable_staff(session, practice, conversations[0].patient_id)
        ],
        "whatsapp_window_open": windows.get(Channel.WHATSAPP.value, False),
        "whatsapp_templates": [p.value for p in WHATSAPP_TEMPLATES],
        "messages": [
            {
                "id": m.id,
                "channel": m.channel,
                "direction": m.direction,
                "body": m.body,
                "subject": m.subject,
                "status": m.delivery_status,
                "error": m.error,
                "purpose": m.purpose,
                "at": m.created_at,
            }
            for m in messages
        ],
        "appointments": [
            {
                "id": a.id,
                "when": format_when(a.start_at, tz_name, language),
                "status": a.status,
                "confirmation": a.confirmation,
                "upcoming": a.start_at > now,
            }
            for a in appointments
        ],
        "reminders": [
            {"stage": r.stage, "channel": r.channel, "state": r.state, "sent_at": r.sent_at}
            for r in reminders
        ],
        "consent": [
            {"channel": e.channel, "action": e.action, "source": e.source, "at": e.created_at}
            for e in ledger
        ],
        "notes": [{"author": n.author, "body": n.body, "at": n.created_at} for n in notes],
        "sync": sync,
        "runs": runs,
        "handoffs": [
            {
                "reason": h.reason,
                "urgent": h.urgent,
                "at": h.created_at,
                "acknowledged_at": h.acknowledged_at,
                "acknowledged_by": h.acknowledged_by,
            }
            for h in handoffs
        ],
    }


def _action_runs(
    session: Session, practice: Practice, conversation_ids: list[int], patient_id: int | None
) -> list[dict[str, Any]]:
    """The custom-action runs of this thread, step by step (their logs are already redacted)."""
    from frontdesk.adapters.db.action_models import ActionRun
    from frontdesk.services import actions

    query = select(ActionRun.id).where(ActionRun.practice_id == practice.id)
    if patient_id is not None:
        query = query.where(
            or_(ActionRun.conversation_id.in_(conversation_ids), ActionRun.patient_id == patient_id)
        )
    else:
        query = query.where(ActionRun.conversation_id.in_(conversation_ids))
    return [
        actions.run_view(session, practice, run_id)
        for run_id in session.scalars(query.order_by(ActionRun.id.desc()).limit(10))
    ]


def _scheduler_sync(session: Session, appointment_ids: list[int]) -> list[dict[str, Any]]:
    """What the practice's systems were told about these appointments, and whether it arrived:
    signed webhook deliveries and FHIR write-backs, newest first."""
    if not appointment_ids:
        return []
    out: list[dict[str, Any]] = []
    rows = session.execute(
        select(WebhookDelivery, WebhookEvent)
        .join(WebhookEvent, WebhookDelivery.event_id == WebhookEvent.id)
        .where(WebhookEvent.appointment_id.in_(appointment_ids))
    ).all()
    for delivery, event in rows:
        out.append(
            {
                "kind": "webhook",
                "what": event.type,
                "state": delivery.state,
                "attempts": delivery.attempts,
                "at": event.created_at,
                "delivery_id": delivery.id,
            }
        )
    for row in session.scalars(
        select(FhirWriteback).where(FhirWriteback.appointment_id.in_(appointment_ids))
    ):
        change = row.change or {}
        what = change.get("participant_status") or change.get("status") or change.get("kind")
        out.append(
            {
                "kind": "fhir",
                "what": f"EHR write-back: {what}",
                "state": row.state,
                "attempts": row.attempts,
                "at": row.created_at,
                "error": row.last_error,
                "delivery_id": None,
            }
        )
    out.sort(key=lambda item: item["at"], reverse=True)
    return out


# --- what staff do ----------------------------------------------------------------------------


def reply(
    session: Session,
    practice: Practice,
    conversation_id: int,
    *,
    text: str,
    channel: Channel,
    who: str,
    cipher: FieldCipher,
    now: datetime,
    template: str | None = None,
) -> Message:
    """Queue a staff reply on the patient's chosen channel (sent after commit, honouring their
    consent and WhatsApp's 24-hour window; a refusal shows on the message with its reason).

    ``template`` (a purpose with an approved WhatsApp template, e.g. ``booking_confirmation``)
    sends that template instead of free text: what WhatsApp allows outside its window."""
    if template:
        return _reply_with_template(
            session, practice, conversation_id, template, channel, who, cipher, now
        )
    if not text.strip():
        raise ValidationFailed([FieldError("text", "the reply is empty")])
    conversations = conversations_of(session, practice, conversation_id)
    anchor = conversations[0]
    target = next((c for c in conversations if c.channel == channel.value), None)
    if target is None:
        if anchor.patient_id is None:
            raise ValidationFailed(
                [FieldError("channel", "an unknown sender can only be answered where they wrote")]
            )
        patient = session.get(Patient, anchor.patient_id)
        target = thread_for(session, cipher, practice, patient, channel, None)
    message = outgoing.queue_message(
        session, conversation=target, purpose="staff_reply", body=text.strip(), now=now
    )
    for c in conversations:
        c.needs_attention = False
        if c.status == "open":
            c.status = "pending"
    audit.record(
        session,
        practice_id=practice.id,
        actor=who,
        action="conversation.staff_reply",
        entity_type="conversation",
        entity_id=target.id,
        details={"channel": channel.value},
    )
    return message


def _reply_with_template(
    session: Session,
    practice: Practice,
    conversation_id: int,
    template: str,
    channel: Channel,
    who: str,
    cipher: FieldCipher,
    now: datetime,
) -> Message:
    try:
        purpose = Purpose(template)
    except ValueError:
        purpose = None
    if purpose not in WHATSAPP_TEMPLATES:
        raise ValidationFailed(
            [FieldError("template", f"one of {[p.value for p in WHATSAPP_TEMPLATES]}")]
        )
    conversations = conversations_of(session, practice, conversation_id)
    if conversations[0].patient_id is None:
        raise ValidationFailed([FieldError("template", "templates need a patient's record")])
    patient = session.get(Patient, conversations[0].patient_id)
    assert patient is not None
    appointment = session.scalar(
        select(Appointment)
        .where(Appointment.patient_id == patient.id, Appointment.start_at > now)
        .order_by(Appointment.start_at)
        .limit(1)
    )
    target = thread_for(session, cipher, practice, patient, channel, None)
    text = TemplateBook.load(session, practice.id).text_for(
        purpose, channel.value, patient.language
    )
    values = context_for(
        practice=practice,
        channel=channel.value,
        language=patient.language,
        patient_name=patient.name,
        patient_preferred_name=patient.preferred_name,
        tz_name=patient.timezone or practice.timezone,
        appointment=appointment,
    )
    body = render_template(text, values).body
    message = outgoing.queue_message(
        session,
        conversation=target,
        purpose=purpose.value,
        body=body,
        appointment_id=appointment.id if appointment else None,
        now=now,
    )
    audit.record(
        session,
        practice_id=practice.id,
        actor=who,
        action="conversation.staff_template",
        entity_type="conversation",
        entity_id=target.id,
        details={"channel": channel.value, "template": purpose.value},
    )
    return message


def add_note(
    session: Session, practice: Practice, conversation_id: int, *, body: str, who: str
) -> None:
    if not body.strip():
        raise ValidationFailed([FieldError("body", "the note is empty")])
    conversations_of(session, practice, conversation_id)
    session.add(
        ConversationNote(
            practice_id=practice.id, conversation_id=conversation_id, author=who, body=body.strip()
        )
    )


def set_state(
    session: Session,
    practice: Practice,
    conversation_id: int,
    *,
    action: str,
    who: str,
    now: datetime,
    assignee: str | None = None,
) -> None:
    conversations = conversations_of(session, practice, conversation_id)
    if action == "assign":
        assignee = _checked_assignee(session, practice, conversations[0], assignee)
    for c in conversations:
        if action == "acknowledge":
            handoff.acknowledge(session, c, who, now)
        elif action == "resolve":
            handoff.acknowledge(session, c, who, now)
            c.status, c.needs_attention, c.urgent = "resolved", False, False
        elif action == "reopen":
            c.status = "open"
        elif action == "hand_back":
            handoff.hand_back(session, c, who, now)
        elif action == "take":
            c.owner = "staff"
        elif action == "assign":
            c.assigned_to = assignee
        else:
            raise ValidationFailed([FieldError("action", f"unknown action {action!r}")])
    audit.record(
        session,
        practice_id=practice.id,
        actor=who,
        action=f"conversation.{action}",
        entity_type="conversation",
        entity_id=conversation_id,
        details={"assignee": assignee} if action == "assign" else None,
    )


def assignable_staff(
    session: Session, practice: Practice, patient_id: int | None
) -> list[StaffUser]:
    """Colleagues a thread may be given to: active staff of the practice who can see it (a
    clinician only when the patient is theirs — they could not open the thread otherwise)."""
    users = session.scalars(
        select(StaffUser)
        .where(StaffUser.practice_id == practice.id, StaffUser.active.is_(True))
        .order_by(StaffUser.display_name, StaffUser.email)
    ).all()
    theirs: set[int] = set()
    if patient_id is not None:
        theirs = {
            cid
            for cid in session.scalars(
                select(Appointment.clinician_id).where(
                    Appointment.practice_id == practice.id,
                    Appointment.patient_id == patient_id,
                    Appointment.clinician_id.is_not(None),
                )
            )
            if cid is not None
        }
    return [u for u in users if u.role != "clinician" or u.clinician_id in theirs]


def _checked_assignee(
    session: Session, practice: Practice, conversation: Conversation, assignee: str | None
) -> str | None:
    wanted = (assignee or "").strip().lower()
    if not wanted:
        return None  # unassigned
    for user in assignable_staff(session, practice, conversation.patient_id):
        if user.email == wanted:
            return user.email
    raise ValidationFailed(
        [FieldError("assignee", "not an active colleague who can see this thread")]
    )


def answer_for_patient(
    session: Session,
    practice: Practice,
    conversation_id: int,
    appointment_id: int,
    *,
    answer: str,
    who: str,
    planning: Planning,
) -> bool:
    """Staff record the patient's answer (said on the phone, say): same effect as their reply."""
    if answer not in ANSWERS:
        raise ValidationFailed([FieldError("answer", f"one of {list(ANSWERS)}")])
    conversations = conversations_of(session, practice, conversation_id)
    appointment = session.get(Appointment, appointment_id)
    if appointment is None or appointment.patient_id != conversations[0].patient_id:
        raise NotFound(f"appointment {appointment_id} not found in this thread")
    return apply_answer(session, practice, appointment, answer, planning, actor=who, source="staff")


def review_queue(
    session: Session, practice: Practice, *, include_resolved: bool = False
) -> list[dict[str, Any]]:
    query = (
        select(ReviewItem, Patient, Appointment)
        .outerjoin(Patient, ReviewItem.patient_id == Patient.id)
        .outerjoin(Appointment, ReviewItem.appointment_id == Appointment.id)
        .where(ReviewItem.practice_id == practice.id)
    )
    if not include_resolved:
        query = query.where(ReviewItem.state == "open")
    rows = session.execute(query.order_by(ReviewItem.created_at.desc())).all()
    return [
        {
            "id": item.id,
            "kind": item.kind,
            "state": item.state,
            "patient": (patient.preferred_name or patient.name) if patient else None,
            "patient_id": patient.id if patient else None,
            "when": format_when(appt.start_at, practice.timezone, "en") if appt else None,
            "created_at": item.created_at,
        }
        for item, patient, appt in rows
    ]


def resolve_review(
    session: Session, practice: Practice, item_id: int, who: str, now: datetime
) -> None:
    item = session.get(ReviewItem, item_id)
    if item is None or item.practice_id != practice.id:
        raise NotFound(f"review item {item_id} not found")
    item.state = "resolved"
    item.resolved_at = now
    audit.record(
        session,
        practice_id=practice.id,
        actor=who,
        action="review_item.resolved",
        entity_type="review_item",
        entity_id=item.id,
    )


def latest_change(session: Session, practice: Practice) -> tuple[int, int, int]:
    """A cheap fingerprint of the inbox (newest message, newest handoff, open urgent count):
    the live-update stream sends an event when it changes."""
    from sqlalchemy import func

    newest_message = session.scalar(
        select(func.max(Message.id)).where(Message.practice_id == practice.id)
    )
    newest_handoff = session.scalar(
        select(func.max(Handoff.id)).where(Handoff.practice_id == practice.id)
    )
    urgent = session.scalar(
        select(func.count(Conversation.id)).where(
            Conversation.practice_id == practice.id,
            Conversation.urgent.is_(True),
            Conversation.acknowledged_at.is_(None),
        )
    )
    return newest_message or 0, newest_handoff or 0, urgent or 0
