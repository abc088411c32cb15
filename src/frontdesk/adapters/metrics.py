"""Prometheus metrics. Counts that every worker shares (reminders by state and channel, the
oldest overdue reminder) are read from the database at scrape time, so one scrape of any web
process tells the truth for all workers; timings are per process."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from frontdesk.adapters.db.models import Reminder


class DispatchMetrics:
    """What one dispatcher observes: sends by outcome and channel, send latency, retries."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.outcomes = Counter(
            "frontdesk_dispatch_outcomes",
            "Reminders processed by this process, by outcome",
            ["outcome"],
            registry=registry,
        )
        self.send_seconds = Histogram(
            "frontdesk_send_latency_seconds",
            "Time a channel took to accept a message",
            ["channel"],
            registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.retries = Counter(
            "frontdesk_send_retries",
            "Sends that will be retried (transient errors, channel fallbacks)",
            ["channel"],
            registry=registry,
        )


class ReminderStateCollector(Collector):
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = datetime.now(UTC)
        by_state = GaugeMetricFamily(
            "frontdesk_reminders", "Reminder rows by state and channel", labels=["state", "channel"]
        )
        lag = GaugeMetricFamily(
            "frontdesk_dispatch_lag_seconds",
            "How overdue the oldest due, unsent reminder is (0 when none is overdue)",
        )
        with self._sessions() as session:
            rows = session.execute(
                select(Reminder.state, Reminder.channel, func.count()).group_by(
                    Reminder.state, Reminder.channel
                )
            )
            for state, channel, count in rows:
                by_state.add_metric([state, channel or "none"], count)
            oldest = session.scalar(
                select(func.min(Reminder.due_at)).where(
                    Reminder.state.in_(["scheduled", "claimed"]), Reminder.due_at <= now
                )
            )
        yield by_state
        overdue = 0.0
        if oldest is not None:
            # func.min bypasses the column type on SQLite: it may come back as text.
            moment = oldest if isinstance(oldest, datetime) else datetime.fromisoformat(oldest)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            overdue = max((now - moment).total_seconds(), 0.0)
        lag.add_metric([], overdue)
        yield lag


def make_registry(sessions: sessionmaker[Session]) -> tuple[CollectorRegistry, DispatchMetrics]:
    registry = CollectorRegistry()
    registry.register(ReminderStateCollector(sessions))
    return registry, DispatchMetrics(registry)
