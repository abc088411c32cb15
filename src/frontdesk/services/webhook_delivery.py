"""The webhook delivery worker: claim due deliveries, POST them signed, record each attempt.

The same discipline as the reminder dispatcher (services/dispatcher.py):
- Claiming is a short transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite has one
  writer) that leases each delivery to this worker; a worker that dies loses nothing, the lease
  expires and another worker takes the delivery.
- Requests go out ``concurrency`` at a time, outside any transaction, with a timeout; each
  group's outcomes are recorded in one transaction, an attempt row per request.
- Every attempt of an event carries the event's ``webhook-id``: a receiver that got a request
  we could not see answered (a timeout) recognises the retry.
- A delivery waits while an earlier event for the same appointment to the same endpoint is
  neither delivered nor dead, so each endpoint sees one appointment's events in order.
- Failures are retried with exponential backoff and jitter, up to ``max_attempts``, then the
  delivery is ``dead``. An endpoint that keeps failing (``disable_after_failures`` attempts in a
  row over at least ``disable_after``), or that answers ``410 Gone``, is disabled, with a review
  item (kind ``webhook_endpoint_disabled``) and an audit event.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.orm import Session, aliased

from frontdesk import __version__
from frontdesk.adapters.db.models import ReviewItem
from frontdesk.adapters.db.webhook_models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from frontdesk.bootstrap import Runtime
from frontdesk.config import Settings
from frontdesk.domain.times import now_utc
from frontdesk.domain.webhook_signing import signed_headers
from frontdesk.services import audit
from frontdesk.services.events import body_of

log = logging.getLogger(__name__)

PENDING, DELIVERING, DELIVERED, FAILED, DEAD = (
    "pending",
    "delivering",
    "delivered",
    "failed",
    "dead",
)
FINISHED = (DELIVERED, DEAD)
REVIEW_KIND = "webhook_endpoint_disabled"
RESPONSE_EXCERPT = 1000
ACTOR = "webhook-worker"


@dataclass(frozen=True)
class DeliverySettings:
    batch_size: int = 100
    concurrency: int = 8
    timeout: float = 15.0
    max_attempts: int = 16
    backoff_base: timedelta = timedelta(seconds=10)
    backoff_max: timedelta = timedelta(hours=6)
    disable_after_failures: int = 20
    disable_after: timedelta = timedelta(hours=24)
    lease: timedelta | None = None  # default: long enough for a whole group of timeouts

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: object) -> DeliverySettings:
        values: dict[str, object] = {
            "timeout": settings.webhook_timeout_seconds,
            "max_attempts": settings.webhook_max_attempts,
            "backoff_base": timedelta(seconds=settings.webhook_backoff_base_seconds),
            "backoff_max": timedelta(seconds=settings.webhook_backoff_max_seconds),
            "disable_after_failures": settings.webhook_disable_after_failures,
            "disable_after": timedelta(hours=settings.webhook_disable_after_hours),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    @property
    def lease_length(self) -> timedelta:
        # A claimed batch is sent in groups of `concurrency`; each request may take `timeout`.
        groups = -(-self.batch_size // self.concurrency)
        return self.lease or timedelta(seconds=groups * self.timeout * 2 + 60)


@dataclass
class DeliveryReport:
    claimed: int = 0
    delivered: int = 0
    retried: int = 0
    dead: int = 0
    lost_claims: int = 0
    disabled_endpoints: int = 0


@dataclass(frozen=True)
class _Request:
    delivery_id: int
    practice_id: int
    endpoint_id: int
    number: int
    url: str
    headers: dict[str, str]
    body: str


@dataclass(frozen=True)
class _Outcome:
    request: _Request
    started_at: datetime
    status: int | None
    response_body: str | None
    latency_ms: int
    error: str | None
    retry_after: float | None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class WebhookDeliverer:
    def __init__(
        self,
        runtime: Runtime,
        *,
        worker_id: str,
        settings: DeliverySettings | None = None,
        clock: Callable[[], datetime] = now_utc,
        rng: random.Random | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.runtime = runtime
        self.worker_id = worker_id
        self.settings = settings or DeliverySettings.from_settings(runtime.settings)
        self.clock = clock
        self.rng = rng or random.Random()
        self.client = httpx.Client(
            timeout=httpx.Timeout(self.settings.timeout),
            follow_redirects=False,  # a 3xx is a failure: the endpoint's URL should be updated
            transport=transport,
            headers={"user-agent": f"frontdesk-webhooks/{__version__}"},
        )

    def close(self) -> None:
        self.client.close()

    # --- claiming --------------------------------------------------------------------------

    def claim(self) -> list[int]:
        """Lease up to ``batch_size`` due deliveries (and expired leases) to this worker."""
        now = self.clock()
        earlier = aliased(WebhookDelivery)
        waits_for_earlier = exists().where(
            earlier.endpoint_id == WebhookDelivery.endpoint_id,
            earlier.appointment_id == WebhookDelivery.appointment_id,
            earlier.event_id < WebhookDelivery.event_id,
            earlier.state.not_in(FINISHED),
        )
        with self.runtime.transaction() as session:
            ids = list(
                session.scalars(
                    select(WebhookDelivery.id)
                    .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                    .where(
                        WebhookEndpoint.enabled.is_(True),
                        or_(
                            and_(
                                WebhookDelivery.state.in_((PENDING, FAILED)),
                                WebhookDelivery.next_attempt_at <= now,
                            ),
                            and_(
                                WebhookDelivery.state == DELIVERING,
                                WebhookDelivery.claim_expires_at < now,
                            ),
                        ),
                        ~waits_for_earlier,
                    )
                    .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
                    .limit(self.settings.batch_size)
                    .with_for_update(skip_locked=True, of=WebhookDelivery)
                )
            )
            if ids:
                session.execute(
                    update(WebhookDelivery)
                    .where(WebhookDelivery.id.in_(ids))
                    .values(
                        state=DELIVERING,
                        claimed_by=self.worker_id,
                        claim_expires_at=now + self.settings.lease_length,
                        attempts=WebhookDelivery.attempts + 1,
                    )
                    .execution_options(synchronize_session=False)
                )
        return ids

    def deliver_due(self) -> DeliveryReport:
        """Claim one batch, send it, record the outcomes."""
        report = DeliveryReport()
        ids = self.claim()
        report.claimed = len(ids)
        if not ids:
            return report
        requests = self._prepare(ids)
        report.lost_claims += len(ids) - len(requests)
        step = self.settings.concurrency
        with ThreadPoolExecutor(max_workers=step) as pool:
            for first in range(0, len(requests), step):
                outcomes = list(pool.map(self._post, requests[first : first + step]))
                self._record(outcomes, report)
        return report

    def run(self, stop: threading.Event, poll_interval: float = 2.0) -> None:
        """Deliver until ``stop`` is set; poll only when there was nothing to do."""
        while not stop.is_set():
            try:
                report = self.deliver_due()
            except Exception:
                log.exception("webhook delivery round failed; retrying after the poll interval")
                report = DeliveryReport()
            if report.claimed == 0:
                stop.wait(poll_interval)

    # --- sending ---------------------------------------------------------------------------

    def _prepare(self, ids: list[int]) -> list[_Request]:
        now = self.clock()
        requests: list[_Request] = []
        with self.runtime.transaction() as session:
            rows = session.execute(
                select(WebhookDelivery, WebhookEvent, WebhookEndpoint)
                .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
                .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                .where(WebhookDelivery.id.in_(ids))
                .order_by(WebhookDelivery.id)
            ).all()
            for delivery, event, endpoint in rows:
                if delivery.claimed_by != self.worker_id or delivery.state != DELIVERING:
                    continue
                body = body_of(event)
                secret = self.runtime.cipher.open(endpoint.secret_sealed) or ""
                headers = {
                    "content-type": "application/json",
                    **signed_headers(secret, event.message_id, now, body),
                }
                requests.append(
                    _Request(
                        delivery_id=delivery.id,
                        practice_id=delivery.practice_id,
                        endpoint_id=endpoint.id,
                        number=delivery.attempts,
                        url=endpoint.url,
                        headers=headers,
                        body=body,
                    )
                )
        return requests

    def _post(self, request: _Request) -> _Outcome:
        started_at = self.clock()
        started = time.perf_counter()
        status: int | None = None
        excerpt: str | None = None
        error: str | None = None
        retry_after: float | None = None
        try:
            with self.client.stream(
                "POST", request.url, content=request.body.encode(), headers=request.headers
            ) as response:
                status = response.status_code
                excerpt = _excerpt(response)
                retry_after = _retry_after(response.headers.get("retry-after"))
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except httpx.TimeoutException:
            error = f"timed out after {self.settings.timeout:g} s"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {str(exc)[:200]}"
        except Exception as exc:  # a bug must not lose the delivery: it is retried
            log.exception("webhook post raised", extra={"delivery_id": request.delivery_id})
            error = f"unexpected {type(exc).__name__}"
        latency = round((time.perf_counter() - started) * 1000)
        return _Outcome(request, started_at, status, excerpt, latency, error, retry_after)

    # --- recording -------------------------------------------------------------------------

    def _record(self, outcomes: list[_Outcome], report: DeliveryReport) -> None:
        now = self.clock()
        with self.runtime.transaction() as session:
            ids = sorted(o.request.delivery_id for o in outcomes)
            deliveries = {
                d.id: d
                for d in session.scalars(
                    select(WebhookDelivery).where(WebhookDelivery.id.in_(ids)).with_for_update()
                )
            }
            endpoint_ids = sorted({o.request.endpoint_id for o in outcomes})
            endpoints = {
                e.id: e
                for e in session.scalars(
                    select(WebhookEndpoint)
                    .where(WebhookEndpoint.id.in_(endpoint_ids))
                    .with_for_update()
                )
            }
            for outcome in outcomes:
                request = outcome.request
                delivery = deliveries.get(request.delivery_id)
                if delivery is None:  # deleted with its endpoint meanwhile
                    report.lost_claims += 1
                    continue
                session.add(
                    WebhookAttempt(
                        practice_id=request.practice_id,
                        delivery_id=request.delivery_id,
                        number=request.number,
                        started_at=outcome.started_at,
                        url=request.url[:1000],
                        request_headers=dict(request.headers),
                        request_body=request.body,
                        response_status=outcome.status,
                        response_body=outcome.response_body,
                        latency_ms=outcome.latency_ms,
                        error=outcome.error,
                    )
                )
                if delivery.state != DELIVERING or delivery.claimed_by != self.worker_id:
                    report.lost_claims += 1  # our lease expired and another worker took it
                    continue
                endpoint = endpoints.get(request.endpoint_id)
                delivery.claimed_by = None
                delivery.claim_expires_at = None
                delivery.last_status = outcome.status
                if outcome.ok:
                    delivery.state = DELIVERED
                    delivery.delivered_at = now
                    delivery.last_error = None
                    report.delivered += 1
                    if endpoint is not None:
                        endpoint.consecutive_failures = 0
                        endpoint.failing_since = None
                        endpoint.last_success_at = now
                    continue
                delivery.last_error = (outcome.error or "failed")[:500]
                if delivery.attempts >= self.settings.max_attempts:
                    delivery.state = DEAD
                    report.dead += 1
                else:
                    delivery.state = FAILED
                    delivery.next_attempt_at = now + self.backoff(
                        delivery.attempts, outcome.retry_after
                    )
                    report.retried += 1
                if endpoint is not None and self._count_failure(
                    session, endpoint, outcome.status, now
                ):
                    report.disabled_endpoints += 1

    def backoff(self, attempts: int, retry_after: float | None = None) -> timedelta:
        """Exponential backoff with jitter (50-100 % of the step, so a burst's retries spread
        out); a ``Retry-After`` the endpoint asked for is honoured up to ``backoff_max``."""
        ceiling = min(
            self.settings.backoff_max, self.settings.backoff_base * (2 ** max(attempts - 1, 0))
        )
        delay = timedelta(seconds=self.rng.uniform(0.5, 1.0) * ceiling.total_seconds())
        if retry_after is not None:
            delay = max(delay, min(timedelta(seconds=retry_after), self.settings.backoff_max))
        return delay

    def _count_failure(
        self, session: Session, endpoint: WebhookEndpoint, status: int | None, now: datetime
    ) -> bool:
        """Count a failed attempt against its endpoint; True when that disabled it."""
        endpoint.consecutive_failures += 1
        if endpoint.failing_since is None:
            endpoint.failing_since = now
        if not endpoint.enabled:
            return False
        reason = None
        if status == 410:
            reason = "the endpoint answered 410 Gone"
        elif (
            endpoint.consecutive_failures >= self.settings.disable_after_failures
            and now - endpoint.failing_since >= self.settings.disable_after
        ):
            hours = (now - endpoint.failing_since).total_seconds() / 3600
            reason = f"{endpoint.consecutive_failures} failed attempts in a row over {hours:.1f} h"
        if reason is None:
            return False
        disable_endpoint(session, endpoint, reason, now, actor=ACTOR)
        log.warning("webhook endpoint disabled", extra={"endpoint_id": endpoint.id})
        return True


def disable_endpoint(
    session: Session, endpoint: WebhookEndpoint, reason: str, now: datetime, *, actor: str
) -> None:
    """Stop delivering to an endpoint, tell the front desk (a review item) and audit it."""
    endpoint.enabled = False
    endpoint.disabled_reason = reason[:300]
    endpoint.disabled_at = now
    open_item = session.scalar(
        select(ReviewItem.id).where(
            ReviewItem.practice_id == endpoint.practice_id,
            ReviewItem.kind == REVIEW_KIND,
            ReviewItem.state == "open",
        )
    )
    if open_item is None:
        session.add(
            ReviewItem(
                practice_id=endpoint.practice_id,
                appointment_id=None,
                patient_id=None,
                kind=REVIEW_KIND,
                state="open",
                created_at=now,
            )
        )
    audit.record(
        session,
        practice_id=endpoint.practice_id,
        actor=actor,
        action="webhook_endpoint.disabled",
        entity_type="webhook_endpoint",
        entity_id=endpoint.id,
        details={"reason": endpoint.disabled_reason, "failures": endpoint.consecutive_failures},
    )


def _excerpt(response: httpx.Response) -> str:
    """The start of the response body (the rest is not read)."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= RESPONSE_EXCERPT * 4:
            break
    return b"".join(chunks).decode("utf-8", errors="replace")[:RESPONSE_EXCERPT]


def _retry_after(value: str | None) -> float | None:
    if value is None or not value.strip().isdigit():
        return None
    return float(value.strip())


def start_thread(runtime: Runtime, stop: threading.Event) -> threading.Thread:
    """Deliver webhooks in a background thread until ``stop`` is set (``serve``, ``worker``)."""
    import os
    import socket

    deliverer = WebhookDeliverer(runtime, worker_id=f"{socket.gethostname()}:{os.getpid()}")

    def loop() -> None:
        try:
            deliverer.run(stop)
        finally:
            deliverer.close()

    thread = threading.Thread(target=loop, name="frontdesk-webhooks", daemon=True)
    thread.start()
    return thread


def deliver_due(runtime: Runtime, *, worker_id: str = "cli") -> DeliveryReport:
    """Deliver everything due now, batch after batch, then return (``worker --once``)."""
    deliverer = WebhookDeliverer(runtime, worker_id=worker_id)
    total = DeliveryReport()
    try:
        while True:
            report = deliverer.deliver_due()
            for key, value in vars(report).items():
                setattr(total, key, getattr(total, key) + value)
            if report.claimed == 0:
                return total
    finally:
        deliverer.close()
