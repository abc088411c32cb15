"""Appointments from scheduling systems: Calendly, Cal.com and Acuity webhooks, FHIR and
iCalendar polls.

Webhooks: verify the signature, ``inbound.store`` the raw body (a redelivery finds its first
row), then ``inbound.process`` it with ``handle_booking``. Polls: FHIR servers and iCalendar
feeds whose interval has elapsed are fetched by the worker (``run_round``) and their records go
through the same import path as files (``services/imports.run_import``).

Reschedules keep one appointment: the new booking takes over the appointment of the booking it
replaces (its key changes, the old key stays as an ``AppointmentAlias``), so the patient sees a
moved session, never a cancellation (docs/INTEGRATIONS.md).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from frontdesk.adapters.db.models import Appointment, InboundWebhook, IntakeRejection, Practice
from frontdesk.adapters.db.scheduler_models import AppointmentAlias, Integration
from frontdesk.adapters.importers.fhir_json import read_fhir_document
from frontdesk.adapters.importers.ics_file import read_ics_bytes
from frontdesk.adapters.schedulers import acuity, calcom, calendly, ics_feed, signatures
from frontdesk.adapters.schedulers.bookings import BookingEvent
from frontdesk.adapters.schedulers.calendly import CalendlyClient
from frontdesk.adapters.schedulers.clients import HttpClients
from frontdesk.adapters.schedulers.errors import PermanentSyncError, SyncError
from frontdesk.bootstrap import Runtime
from frontdesk.domain.appointments import AppointmentStatus
from frontdesk.domain.errors import FieldError, NotFound, ValidationFailed
from frontdesk.domain.intake import AppointmentIn, field_errors
from frontdesk.domain.times import now_utc
from frontdesk.services import audit, inbound, integrations, reminders
from frontdesk.services.appointments import upsert_appointment
from frontdesk.services.fhir_writeback import process_writebacks, queue_fhir_writeback
from frontdesk.services.imports import ImportSummary, run_import
from frontdesk.services.intake import validation_context
from frontdesk.services.lookups import AppointmentKey, find_appointment
from frontdesk.services.reminders import Planning

__all__ = [
    "HttpClients",
    "WebhookResult",
    "handle_booking",
    "poll_due",
    "poll_integration",
    "queue_fhir_writeback",
    "receive_webhook",
    "run_round",
]

log = logging.getLogger(__name__)
WEBHOOK_KINDS = ("calendly", "calcom", "acuity")
RETRY_WEBHOOKS_EVERY = timedelta(seconds=60)
MAX_POLL_BACKOFF = timedelta(hours=1)


# --- webhooks ------------------------------------------------------------------------------


@dataclass
class WebhookResult:
    webhook_id: int
    duplicate: bool
    state: str
    errors: list[FieldError] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "webhook_id": self.webhook_id,
            "duplicate": self.duplicate,
            "state": self.state,
        }
        return body


def receive_webhook(
    runtime: Runtime,
    kind: str,
    practice_slug: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    now: datetime | None = None,
    clients: HttpClients | None = None,
) -> WebhookResult:
    """Verify, store, process. Raises ``NotFound`` (no such practice or integration),
    ``Unauthorized`` (bad signature) before anything is stored; returns the stored row's state
    (``rejected`` carries field errors: the body is kept but cannot become an appointment)."""
    now = now or now_utc()
    with runtime.transaction() as session:
        practice = session.scalar(select(Practice).where(Practice.slug == practice_slug))
        if practice is None:
            raise NotFound(f"no practice with slug {practice_slug!r}")
        row = integrations.of_kind(session, practice.id, kind)
        if row is None or row.secret_sealed is None:
            raise NotFound(f"practice {practice_slug!r} has no {kind} integration")
        secret = runtime.cipher.open(row.secret_sealed) or ""
        token = runtime.cipher.open(row.token_sealed)
        practice_id = practice.id
    if kind == "calendly":
        signatures.verify_calendly(headers.get(signatures.CALENDLY_HEADER), body, secret, now=now)
    elif kind == "acuity":
        acuity.verify(headers.get(acuity.HEADER), body, secret)
    else:
        signatures.verify_calcom(headers.get(signatures.CALCOM_HEADER), body, secret)
    text = body.decode("utf-8", errors="replace")
    if kind == "acuity":
        events = _prefetch_acuity(text, token, secret, clients)
        dedupe_key = _acuity_dedupe_key(text, events)
    else:
        events = _prefetch_event(kind, text, token, clients)
        dedupe_key = _dedupe_key(kind, text)
    stored = inbound.store(
        runtime,
        practice_id=practice_id,
        provider=kind,
        kind="booking",
        dedupe_key=dedupe_key,
        payload=text,
        content_type=headers.get("content-type"),
    )
    if stored.duplicate:
        with runtime.transaction() as session:
            found = session.get(InboundWebhook, stored.webhook_id)
            state = found.state if found is not None else "missing"
        return WebhookResult(stored.webhook_id, True, state)
    problems: list[FieldError] = []
    state = inbound.process(
        runtime,
        stored.webhook_id,
        booking_handler(runtime, clients, problems, now=now, events=events),
    )
    return WebhookResult(stored.webhook_id, False, state, problems)


def _dedupe_key(kind: str, text: str) -> str:
    """The sender's own id for the event; an unreadable body is keyed by its digest (stored,
    then refused with field errors by the handler)."""
    try:
        document = json.loads(text)
        booking = calendly.parse(document) if kind == "calendly" else calcom.parse(document)
        return booking.dedupe_key
    except (ValueError, ValidationFailed):
        return "unreadable:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def _acuity_dedupe_key(text: str, appointments: dict[str, dict[str, Any]]) -> str:
    try:
        notification = acuity.parse_notification(text)
    except ValidationFailed:
        return "unreadable:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
    appointment = appointments.get(notification.appointment_id)
    if appointment is None and notification.relevant:
        # Unread (the API failed): the state it reports is unknown, so no earlier delivery can
        # be said to be the same one; the handler reads it on retry and applies what is current.
        return f"{acuity.dedupe_key(notification, None)}:unread:{uuid.uuid4().hex}"
    return acuity.dedupe_key(notification, appointment)


def _acuity_client(
    user_id: str | None, api_key: str, clients: HttpClients | None
) -> acuity.AcuityClient:
    clients = clients or HttpClients()
    return acuity.AcuityClient(user_id or "", api_key, base=clients.acuity_api, client=clients.http)


def _prefetch_acuity(
    text: str, user_id: str | None, api_key: str, clients: HttpClients | None
) -> dict[str, dict[str, Any]]:
    """Read the appointment an Acuity delivery names before storing it (no lock is held across
    the call); a failure is left to the handler, which reads it again."""
    try:
        notification = acuity.parse_notification(text)
    except ValidationFailed:
        return {}
    if not notification.relevant:
        return {}
    try:
        found = _acuity_client(user_id, api_key, clients).appointment(notification.appointment_id)
    except SyncError:
        return {}
    return {notification.appointment_id: found}


def _prefetch_event(
    kind: str, text: str, token: str | None, clients: HttpClients | None
) -> dict[str, dict[str, Any]]:
    """Read the Calendly scheduled event a delivery only links to *before* the processing
    transaction, so no database lock is held across the HTTP call. A failure here is left to
    the handler (which tries again, and fails the row for the worker to retry)."""
    if kind != "calendly" or not token:
        return {}
    try:
        booking = calendly.parse(json.loads(text))
    except (ValueError, ValidationFailed):
        return {}
    if booking.record is not None or not booking.event_uri or booking.action == "ignore":
        return {}
    clients = clients or HttpClients()
    client = CalendlyClient(token, base=clients.calendly_api, client=clients.http)
    try:
        return {booking.event_uri: client.scheduled_event(booking.event_uri)}
    except SyncError:
        return {}


def booking_handler(
    runtime: Runtime,
    clients: HttpClients | None = None,
    problems: list[FieldError] | None = None,
    *,
    now: datetime | None = None,
    events: dict[str, dict[str, Any]] | None = None,
) -> inbound.Handler:
    """The ``inbound.process`` handler for Calendly and Cal.com rows."""

    def handler(session: Session, row: InboundWebhook, payload: str) -> None:
        try:
            handle_booking(
                runtime, session, row, payload, clients, now=now or now_utc(), events=events
            )
        except ValidationFailed as exc:
            # Authentic but unusable: kept (with the reasons) for a person, never retried.
            row.state = "rejected"
            session.add(
                IntakeRejection(
                    practice_id=row.practice_id,
                    channel=f"webhook.{row.provider}",
                    reference=row.dedupe_key[:300],
                    raw_sealed=row.raw_sealed,
                    errors={"errors": [e.as_dict() for e in exc.errors]},
                )
            )
            if problems is not None:
                problems.extend(exc.errors)

    return handler


def retry_webhooks(
    runtime: Runtime,
    *,
    clients: HttpClients | None = None,
    now: datetime | None = None,
    limit: int = 100,
) -> dict[str, int]:
    """Process again the Calendly and Cal.com deliveries that failed, or were stored but never
    processed (a crash between the two), oldest first. (``inbound.retry_failed`` takes the
    oldest rows of every provider, which other providers' failures could fill.)"""
    now = now or now_utc()
    with runtime.transaction() as session:
        pending = session.scalars(
            select(InboundWebhook.id)
            .where(
                InboundWebhook.provider.in_(WEBHOOK_KINDS),
                InboundWebhook.state.in_(("received", "failed")),
                # A row just stored is being processed by the request that stored it.
                InboundWebhook.received_at <= now - timedelta(seconds=30),
            )
            .order_by(InboundWebhook.received_at)
            .limit(limit)
        ).all()
    counts: dict[str, int] = {}
    handler = booking_handler(runtime, clients, now=now)
    for webhook_id in pending:
        state = inbound.process(runtime, webhook_id, handler)
        counts[state] = counts.get(state, 0) + 1
    return counts


def handle_booking(
    runtime: Runtime,
    session: Session,
    row: InboundWebhook,
    payload: str,
    clients: HttpClients | None = None,
    *,
    now: datetime,
    events: dict[str, dict[str, Any]] | None = None,
) -> None:
    if row.provider == "acuity":
        booking = _acuity_booking(runtime, session, row, payload, clients, events)
        document: Any = None
    else:
        try:
            document = json.loads(payload)
        except ValueError as exc:
            raise ValidationFailed([FieldError("body", "the body is not JSON")]) from exc
        booking = calendly.parse(document) if row.provider == "calendly" else calcom.parse(document)
    if booking.action == "ignore":
        row.state = "ignored"
        return
    practice = session.get(Practice, row.practice_id)
    integration = integrations.of_kind(session, row.practice_id, row.provider, lock=True)
    if practice is None or integration is None:
        row.state = "ignored"  # the integration was removed since the delivery was stored
        return
    if booking.record is None and booking.event_uri:
        scheduled = (events or {}).get(booking.event_uri)
        if scheduled is None and integration.token_sealed:
            # A retry (or a failed prefetch): read it now.
            token = runtime.cipher.open(integration.token_sealed) or ""
            clients = clients or HttpClients()
            client = CalendlyClient(token, base=clients.calendly_api, client=clients.http)
            scheduled = client.scheduled_event(booking.event_uri)
        if scheduled is not None:
            booking = booking.with_record(calendly.record(document["payload"], scheduled))
    applied = apply_booking(runtime, session, practice, integration.source, booking, now=now)
    if not applied:
        row.state = "ignored"


def _acuity_booking(
    runtime: Runtime,
    session: Session,
    row: InboundWebhook,
    payload: str,
    clients: HttpClients | None,
    events: dict[str, dict[str, Any]] | None,
) -> BookingEvent:
    notification = acuity.parse_notification(payload)
    if not notification.relevant:
        return acuity.booking(notification, None)
    appointment = (events or {}).get(notification.appointment_id)
    integration = integrations.of_kind(session, row.practice_id, "acuity")
    if appointment is None and integration is not None and integration.secret_sealed:
        # A retry (or a failed prefetch): read it now. A transient failure fails the row for
        # the worker to retry; an appointment Acuity no longer has cannot be booked.
        api_key = runtime.cipher.open(integration.secret_sealed) or ""
        user_id = runtime.cipher.open(integration.token_sealed)
        try:
            appointment = _acuity_client(user_id, api_key, clients).appointment(
                notification.appointment_id
            )
        except PermanentSyncError as exc:
            if notification.action != "canceled":
                raise ValidationFailed([FieldError("appointment", str(exc))]) from exc
    if appointment is None and notification.action != "canceled":
        raise ValidationFailed([FieldError("appointment", "could not be read from Acuity")])
    return acuity.booking(notification, appointment)


def apply_booking(
    runtime: Runtime,
    session: Session,
    practice: Practice,
    source: str,
    booking: BookingEvent,
    *,
    now: datetime,
) -> bool:
    """Apply one booking event; False when it changes nothing by design (a stale event)."""
    actor = f"integration:{source}"
    planning = Planning(runtime.settings.reminder_policy, now, True)
    current = resolve(session, practice.id, source, booking.external_id)
    if booking.action == "book":
        previous = (
            resolve(session, practice.id, source, booking.replaces) if booking.replaces else None
        )
        moved_here = previous is not None and (current is None or current.id == previous.id)
        if moved_here and previous is not None:
            _rekey(session, previous, booking.external_id)
            current = previous
        elif current is not None and current.status == AppointmentStatus.CANCELLED.value:
            return False  # a booking once cancelled is not revived by a late or replayed create
        if booking.record is None:
            raise ValidationFailed(
                [
                    FieldError(
                        "body.payload.scheduled_event",
                        "missing: the delivery does not say when the session is; set a "
                        "Calendly API token (frontdesk integrations set-calendly --api-token)",
                    )
                ]
            )
        _upsert(runtime, session, practice, source, current, booking, planning, actor)
        return True
    # A cancellation.
    if current is None:
        if booking.record is None:
            return False
        # Unknown until now: stored cancelled, silently, so a late create cannot revive it.
        quiet = Planning(runtime.settings.reminder_policy, now, False)
        record = dict(booking.record, status=AppointmentStatus.CANCELLED.value)
        _upsert(runtime, session, practice, source, None, booking, quiet, actor, record)
        return True
    if current.external_id != booking.external_id:
        return False  # about a booking this appointment has already moved away from
    if booking.rescheduled:
        # The old half of a reschedule, before its new half: hold the session (no reminders,
        # no cancellation message) and let the new booking find it.
        if (
            booking.replaced_by
            and resolve(session, practice.id, source, booking.replaced_by) is None
        ):
            session.add(
                AppointmentAlias(
                    practice_id=practice.id,
                    source=source,
                    external_id=booking.replaced_by,
                    appointment_id=current.id,
                )
            )
        quiet = Planning(runtime.settings.reminder_policy, now, False)
        _set_status(session, practice, current, AppointmentStatus.PENDING, quiet, actor)
        return True
    _set_status(session, practice, current, AppointmentStatus.CANCELLED, planning, actor)
    return True


def resolve(
    session: Session, practice_id: int, source: str, external_id: str
) -> Appointment | None:
    """The appointment a scheduler key means: stored under it, or moved away from it."""
    found = find_appointment(session, practice_id, AppointmentKey(source, external_id))
    if found is not None:
        return found
    alias = session.scalar(
        select(AppointmentAlias).where(
            AppointmentAlias.practice_id == practice_id,
            AppointmentAlias.source == source,
            AppointmentAlias.external_id == external_id,
        )
    )
    return session.get(Appointment, alias.appointment_id) if alias is not None else None


def _rekey(session: Session, appointment: Appointment, new_id: str) -> None:
    """Store ``appointment`` under ``new_id``; its old key becomes an alias."""
    if appointment.external_id == new_id:
        return
    for alias in session.scalars(
        select(AppointmentAlias).where(
            AppointmentAlias.practice_id == appointment.practice_id,
            AppointmentAlias.source == appointment.source,
            AppointmentAlias.external_id == new_id,
        )
    ):
        session.delete(alias)
    session.flush()
    session.add(
        AppointmentAlias(
            practice_id=appointment.practice_id,
            source=appointment.source,
            external_id=appointment.external_id,
            appointment_id=appointment.id,
        )
    )
    appointment.external_id = new_id
    session.flush()


def _upsert(
    runtime: Runtime,
    session: Session,
    practice: Practice,
    source: str,
    current: Appointment | None,
    booking: BookingEvent,
    planning: Planning,
    actor: str,
    record: dict[str, Any] | None = None,
) -> None:
    payload = dict(record or booking.record or {})
    patient = dict(payload.get("patient") or {})
    patient.setdefault("source", source)
    payload["patient"] = patient
    context = validation_context(practice) | {"default_timezone": practice.timezone}
    try:
        data = AppointmentIn.model_validate(payload, context=context)
    except ValidationError as exc:
        raise ValidationFailed(field_errors(exc, "record")) from exc
    upsert_appointment(
        session,
        runtime.cipher,
        practice,
        source,
        current.external_id if current is not None else booking.external_id,
        data,
        actor=actor,
        default_minutes=runtime.settings.default_session_minutes,
        planning=planning,
        create_patient=True,
    )


def _set_status(
    session: Session,
    practice: Practice,
    appointment: Appointment,
    status: AppointmentStatus,
    planning: Planning,
    actor: str,
) -> None:
    if appointment.status == status.value:
        return
    appointment.status = status.value
    appointment.status_changed_at = planning.now
    appointment.version += 1
    reminders.replan(session, practice, appointment, planning)
    audit.record(
        session,
        practice_id=practice.id,
        actor=actor,
        action="appointment.cancelled"
        if status is AppointmentStatus.CANCELLED
        else "appointment.reschedule_pending",
        entity_type="appointment",
        entity_id=appointment.id,
        details={"status": status.value},
    )


# --- polling -------------------------------------------------------------------------------


@dataclass
class PollReport:
    source: str
    kind: str
    state: str  # synced, unchanged, failed
    summary: dict[str, int] = field(default_factory=dict)
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "kind": self.kind,
            "state": self.state,
            "summary": self.summary,
            "error": self.error,
        }


def poll_due(
    runtime: Runtime, *, now: datetime | None = None, clients: HttpClients | None = None
) -> list[PollReport]:
    """Poll every enabled FHIR server and iCalendar feed whose interval has elapsed. Each is
    claimed first (its next poll time pushed forward), so two workers never poll one source at
    the same time."""
    now = now or now_utc()
    reports = []
    for integration_id in _claim_due(runtime, now):
        reports.append(poll_integration(runtime, integration_id, now=now, clients=clients))
    return reports


def _claim_due(runtime: Runtime, now: datetime) -> list[int]:
    with runtime.transaction() as session:
        rows = session.scalars(
            select(Integration)
            .where(
                Integration.kind.in_(("fhir", "ics")),
                Integration.enabled.is_(True),
                Integration.next_poll_at <= now,
            )
            .order_by(Integration.next_poll_at)
            .limit(20)
            .with_for_update(skip_locked=True)
        ).all()
        for row in rows:
            # Held for the poll; pushed to the real next time when the poll ends.
            row.next_poll_at = now + timedelta(seconds=max(row.poll_interval_seconds or 300, 60))
        return [row.id for row in rows]


def poll_integration(
    runtime: Runtime,
    integration_id: int,
    *,
    now: datetime | None = None,
    clients: HttpClients | None = None,
) -> PollReport:
    """Poll one FHIR server or iCalendar feed now; failures are recorded on the integration
    (PHI-free) and retried sooner than the interval, with backoff."""
    now = now or now_utc()
    clients = clients or HttpClients()
    with runtime.transaction() as session:
        row = session.get(Integration, integration_id)
        if row is None:
            raise NotFound("no such integration")
        config = integrations.opened(runtime.cipher, row)
        practice = session.get(Practice, row.practice_id)
        assert practice is not None
        slug, zone, context = practice.slug, practice.timezone, validation_context(practice)
    context = context | {"default_timezone": zone}
    report = PollReport(config.source, config.kind, "failed")
    updates: dict[str, Any] = {}
    try:
        if config.kind == "fhir":
            summary, cursor = _poll_fhir(runtime, config, slug, context, now, clients)
            updates["cursor"] = cursor
            report.state = "synced"
        elif config.kind == "ics":
            feed = ics_feed.fetch(
                config.endpoint or "",
                etag=config.etag,
                last_modified=config.last_modified,
                client=clients.http,
            )
            summary = ImportSummary()
            if feed.changed:
                rows = read_ics_bytes(
                    feed.body,
                    label=config.source,
                    file_name=f"{config.source}.ics",
                    source=config.source,
                    context=context,
                    window_start=now - timedelta(days=runtime.settings.import_window_past_days),
                    window_end=now + timedelta(days=runtime.settings.import_window_future_days),
                )
                summary = run_import(
                    runtime,
                    rows,
                    practice_slug=slug,
                    channel="ics.feed",
                    actor=f"integration:{config.source}",
                    announce=config.etag is not None or config.last_modified is not None,
                )
                updates["etag"] = feed.etag
                updates["last_modified"] = feed.last_modified
            report.state = "synced" if feed.changed else "unchanged"
        else:
            raise NotFound(f"{config.kind} integrations are not polled")
        report.summary = {k: v for k, v in summary.as_dict().items() if k != "rejections"}
    except (SyncError, ValidationFailed) as exc:
        report.error = _safe_error(exc)
    except Exception as exc:  # recorded like the others; the type only (no PHI)
        log.exception("integration poll failed unexpectedly")
        report.error = f"{type(exc).__name__} while polling"
    _finish_poll(runtime, integration_id, report, updates, now)
    return report


def _poll_fhir(
    runtime: Runtime,
    config: integrations.Opened,
    slug: str,
    context: dict[str, Any],
    now: datetime,
    clients: HttpClients,
) -> tuple[ImportSummary, str | None]:
    client = clients.fhir(config.endpoint or "", config.token)
    appointments: dict[str, dict[str, Any]] = {}
    patients: dict[str, dict[str, Any]] = {}
    newest = config.cursor
    for bundle in client.search_appointments(
        start=now - timedelta(days=runtime.settings.import_window_past_days),
        end=now + timedelta(days=runtime.settings.import_window_future_days),
        since=config.cursor,
    ):
        for entry in bundle.get("entry") or []:
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if not isinstance(resource, dict) or not isinstance(resource.get("id"), str):
                continue
            if resource.get("resourceType") == "Appointment":
                # Seen twice (changed while we paged): the later page is the newer state.
                appointments[resource["id"]] = resource
                updated = (resource.get("meta") or {}).get("lastUpdated")
                newest = _later(newest, updated)
            elif resource.get("resourceType") == "Patient":
                patients[resource["id"]] = resource
    for patient_id in _missing_patients(appointments.values(), patients):
        # The server ignored _include: read the Patient itself (a 404 leaves the appointment
        # with the participant's display name, or rejected if there is none).
        try:
            patients[patient_id] = client.read("Patient", patient_id).resource
        except SyncError as exc:
            if "404" not in str(exc) and "410" not in str(exc):
                raise
    document = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in [*patients.values(), *appointments.values()]],
    }
    rows = read_fhir_document(document, name=config.source, source=config.source, context=context)
    summary = run_import(
        runtime,
        rows,
        practice_slug=slug,
        channel="fhir.poll",
        actor=f"integration:{config.source}",
        announce=config.cursor is not None,
    )
    return summary, newest


def _missing_patients(appointments: Any, patients: dict[str, dict[str, Any]]) -> list[str]:
    missing: list[str] = []
    for appointment in appointments:
        for participant in appointment.get("participant") or []:
            reference = ((participant or {}).get("actor") or {}).get("reference") or ""
            parts = reference.split("/")
            if len(parts) >= 2 and parts[-2] == "Patient":
                patient_id = parts[-1]
                if patient_id not in patients and patient_id not in missing:
                    missing.append(patient_id)
    return missing


def _later(current: str | None, candidate: Any) -> str | None:
    if not isinstance(candidate, str):
        return current
    try:
        new = datetime.fromisoformat(candidate.replace("Z", "+00:00"))
    except ValueError:
        return current
    if new.tzinfo is None:
        new = new.replace(tzinfo=UTC)
    if current is None:
        return candidate
    try:
        old = datetime.fromisoformat(current.replace("Z", "+00:00"))
    except ValueError:
        return candidate
    if old.tzinfo is None:
        old = old.replace(tzinfo=UTC)
    return candidate if new > old else current


def _safe_error(exc: Exception) -> str:
    if isinstance(exc, ValidationFailed):
        return f"{exc.message} ({len(exc.errors)} problem(s))"[:500]
    return str(exc)[:500]


def _finish_poll(
    runtime: Runtime,
    integration_id: int,
    report: PollReport,
    updates: dict[str, Any],
    now: datetime,
) -> None:
    with runtime.transaction() as session:
        row = session.get(Integration, integration_id)
        if row is None:
            return
        interval = timedelta(seconds=row.poll_interval_seconds or 300)
        row.last_polled_at = now
        if report.state == "failed":
            row.consecutive_failures += 1
            row.last_error = report.error
            backoff = timedelta(seconds=30 * 2 ** min(row.consecutive_failures - 1, 10))
            row.next_poll_at = now + min(backoff, interval, MAX_POLL_BACKOFF)
            log.warning("integration poll failed", extra={"source": row.source})
            return
        for name, value in updates.items():
            setattr(row, name, value)
        row.consecutive_failures = 0
        row.last_error = None
        row.last_success_at = now
        row.next_poll_at = now + interval


# --- the worker's round --------------------------------------------------------------------


@dataclass
class RoundState:
    """What one worker remembers between rounds (when it last retried stored webhooks)."""

    webhooks_retried_at: datetime | None = None


def run_round(
    runtime: Runtime,
    *,
    now: datetime | None = None,
    clients: HttpClients | None = None,
    state: RoundState | None = None,
) -> dict[str, Any]:
    """One round for the worker: retry stored scheduler webhooks that failed (at most once a
    minute), poll the sources that are due, write back what is queued. Never raises."""
    now = now or now_utc()
    report: dict[str, Any] = {}
    try:
        if (
            state is None
            or state.webhooks_retried_at is None
            or (now - state.webhooks_retried_at >= RETRY_WEBHOOKS_EVERY)
        ):
            report["webhooks"] = retry_webhooks(runtime, clients=clients, now=now)
            if state is not None:
                state.webhooks_retried_at = now
        report["polls"] = [p.as_dict() for p in poll_due(runtime, now=now, clients=clients)]
        report["writebacks"] = process_writebacks(runtime, now=now, clients=clients)
    except Exception:  # the worker must keep going; the next round tries again
        log.exception("integration round failed")
    return report


def run_forever(runtime: Runtime, stop: threading.Event, interval: float = 5.0) -> None:
    """The worker's integration loop: one ``run_round`` call per round."""
    state = RoundState()
    while not stop.is_set():
        run_round(runtime, state=state)
        stop.wait(interval)


def sync_now(
    runtime: Runtime,
    practice_id: int,
    source: str | None = None,
    *,
    clients: HttpClients | None = None,
) -> list[PollReport]:
    """Poll the practice's FHIR servers and iCalendar feeds (or just ``source``) now,
    whatever their interval."""
    if source is not None:
        ids = [integrations.integration_id(runtime, practice_id, source)]
    else:
        with runtime.transaction() as session:
            ids = list(
                session.scalars(
                    select(Integration.id).where(
                        Integration.practice_id == practice_id,
                        Integration.kind.in_(("fhir", "ics")),
                        Integration.enabled.is_(True),
                    )
                )
            )
    return [poll_integration(runtime, i, clients=clients) for i in ids]
