"""Prometheus metrics of one adapter process (GET /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from remediate.store import Tx


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.alerts = Counter(
            "remediate_alerts_received",
            "Alerts received, by status and route ('' when none matched)",
            ["status", "route"],
            registry=self.registry,
        )
        self.decisions = Counter("remediate_decisions", "Decisions taken, by kind", ["kind"], registry=self.registry)
        self.runs = Counter(
            "remediate_runs",
            "Finished runs, by kind (remediate, notify) and result (docs/outcomes.md)",
            ["kind", "result"],
            registry=self.registry,
        )
        self.notifications_failed = Counter(
            "remediate_notifications_failed",
            "Notify runs that failed: people were not told",
            registry=self.registry,
        )
        self.notifications_failing = Gauge(
            "remediate_notifications_failing",
            "1 while the last notify run failed and nobody acknowledged it (/healthz degraded)",
            registry=self.registry,
        )
        self.breakers_open = Gauge(
            "remediate_breakers_open", "Routes whose circuit breaker is open", registry=self.registry
        )
        self.requests = Counter(
            "remediate_requests",
            "HTTP requests answered, by endpoint and code",
            ["endpoint", "code"],
            registry=self.registry,
        )
        self.queue_depth = Gauge("remediate_queue_depth", "Runs queued or awaiting approval", registry=self.registry)
        self.incidents_escalated = Gauge(
            "remediate_incidents_escalated",
            "Incidents escalated to people whose alert still fires",
            registry=self.registry,
        )
        self.incidents_overdue = Gauge(
            "remediate_incidents_overdue",
            "Escalated incidents whose alert still fires after a later step of the escalation policy came due",
            registry=self.registry,
        )
        self.answer_latency = Histogram(
            "remediate_answer_latency_seconds",
            "Time to store and decide a webhook's alerts and answer",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self.run_duration = Histogram(
            "remediate_run_duration_seconds",
            "Playbook run duration",
            buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800),
            registry=self.registry,
        )

    def read_store(self, tx: Tx, moment: float) -> None:
        """The gauges that describe the store (every replica sees the same), read in the ticker's transaction."""
        self.queue_depth.set(tx.queue_depth())
        self.notifications_failing.set(1 if tx.failing_notification() else 0)
        self.breakers_open.set(len(tx.open_breakers()))
        escalated, overdue = tx.escalated_incidents(moment)
        self.incidents_escalated.set(escalated)
        self.incidents_overdue.set(overdue)
