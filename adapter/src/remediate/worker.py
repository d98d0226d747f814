"""The worker pool: claims queued runs, runs them, records the outcome; and the
ticker: heartbeats, approval expiry, escalation timers, interrupted runs."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable

from remediate.executor import Executor, RunResult
from remediate.metrics import Metrics
from remediate.outcomes import (
    ADAPTER_ESCALATES,
    BREAKER_COUNTS,
    BREAKER_RESETS,
    NOTIFIED,
    PLAYBOOK_ESCALATES,
    run_result,
)
from remediate.safety import Engine
from remediate.store import ADAPTER_EVENTS, CLAIM_LOCK, DECISION_LOCK, PostgresStore, Run, Store, Tx, now

log = logging.getLogger("remediate.worker")
STALE_AFTER_SECONDS = 30.0


class Workers:
    def __init__(self, store: Store, engine: Engine, executor: Executor, metrics: Metrics):
        self.store = store
        self.engine = engine
        self.settings = engine.settings
        self.executor = executor
        self.metrics = metrics
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self._skip_locked = " FOR UPDATE SKIP LOCKED" if isinstance(store, PostgresStore) else ""

    # Lifecycle.
    def start(self) -> None:
        self.recover(stale_after=STALE_AFTER_SECONDS if isinstance(self.store, PostgresStore) else 0)
        for index in range(self.settings.workers):
            self._spawn(self._work, f"worker-{index}")
        self._spawn(self._tick, "ticker")

    def stop(self, timeout: float = 30) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout)

    def wake(self) -> None:
        self._wake.set()

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    # Claiming and running.
    def claim(self) -> Run | None:
        """The oldest queued run that may start now, marked running; None when none may."""
        caps = self.settings.safety.caps
        with self.store.transaction(CLAIM_LOCK) as tx:
            running = tx.scalar("SELECT count(*) FROM runs WHERE state = 'running' AND kind = 'remediate'")
            kinds = "('remediate', 'notify')" if running < caps.concurrent_runs else "('notify')"
            # One playbook at a time acts on a target, whichever route started it;
            # messages to people go before remediations waiting in the queue.
            rows = tx.all(
                f"SELECT id FROM runs WHERE state = 'queued' AND kind IN {kinds}"
                " AND (kind = 'notify' OR target_key NOT IN"
                " (SELECT target_key FROM runs WHERE state = 'running' AND kind = 'remediate'))"
                f" ORDER BY CASE kind WHEN 'notify' THEN 0 ELSE 1 END, id LIMIT 20{self._skip_locked}"
            )
            moment = now()
            for (run_id,) in rows:
                run = tx.get_run(run_id)
                if run.kind == "remediate" and not tx.any_firing(run_id):
                    tx.end_run(run, "canceled", "the alert resolved before the run started", moment)
                    self.metrics.runs.labels(kind=run.kind, result="canceled").inc()
                    continue
                tx.execute(
                    "UPDATE runs SET state = 'running', started_at = ?, heartbeat_at = ?, owner = ? WHERE id = ?",
                    (moment, moment, self.owner, run_id),
                )
                tx.event(
                    run.incident_id,
                    "started",
                    f"{run.playbook} ({run.mode}, attempt {run.attempt})",
                    now=moment,
                    run_id=run_id,
                    data={"route": run.route, "kind": run.kind},
                )
                run.state = "running"
                return run
        return None

    def execute(self, run: Run) -> str:
        """Run one claimed run to its end and record the result; returns it."""
        started = time.monotonic()
        log.info("run started", extra={"run_id": run.id, "incident": run.incident_id, "playbook": run.playbook})

        def on_event(event: dict) -> None:
            kind = event.pop("kind")
            reason = event.pop("reason", None) or event.get("task", "")
            with self.store.transaction(write=True) as tx:
                tx.event(run.incident_id, kind, reason, now=now(), run_id=run.id, data=event)

        def should_cancel() -> bool:
            with self.store.transaction() as tx:
                return bool(tx.scalar("SELECT cancel_requested FROM runs WHERE id = ?", (run.id,)))

        try:
            result = self.executor.run(run, on_event, should_cancel)
        except Exception as error:  # an executor that breaks fails the run, not the adapter
            log.exception("run %s: executor error", run.id)
            result = RunResult(status="failed", rc=None, host_stats={}, error=f"executor error: {type(error).__name__}")
        outcome = run_result(run.kind, result.status, result.verdict)
        self.metrics.runs.labels(kind=run.kind, result=outcome).inc()
        self.metrics.run_duration.observe(time.monotonic() - started)
        self.finish(run, result, outcome)
        return outcome

    def finish(self, run: Run, result: RunResult, outcome: str) -> None:
        """Record how a run ended and act on it, in one transaction."""
        verdict = result.verdict or {}
        detail = result.error or result.detail or f"rc={result.rc}"
        if result.verdict_problem:
            detail += f"; remediation data refused: {result.verdict_problem}"
        summary = verdict.get("summary") or detail
        with self.store.transaction(DECISION_LOCK) as tx:
            moment = now()
            tx.finish_run(run.id, result.status, summary, moment, result.host_stats, result=outcome)
            tx.event(
                run.incident_id,
                "finished",
                summary,
                now=moment,
                run_id=run.id,
                data={
                    "status": result.status,
                    "result": outcome,
                    "rc": result.rc,
                    "host_stats": result.host_stats,
                    **{key: verdict[key] for key in ("notified", "actions", "handover") if key in verdict},
                },
            )
            if run.kind == "remediate":
                self._after_remediation(tx, run, outcome, verdict, moment)
        if run.kind == "notify" and outcome != NOTIFIED:
            self.metrics.notifications_failed.inc()
            log.error(
                "notification run failed: people were not told",
                extra={
                    "run_id": run.id,
                    "incident": run.incident_id,
                    "reason": run.extravars.get("notify_reason", ""),
                    "result": outcome,
                },
            )
        level = logging.ERROR if outcome in ADAPTER_ESCALATES else logging.INFO
        log.log(level, "run finished", extra={"run_id": run.id, "incident": run.incident_id, "result": outcome})

    def _after_remediation(self, tx: Tx, run: Run, outcome: str, verdict: dict, moment: float) -> None:
        """The breaker, the one message the outcome calls for, and a hand-over."""
        if run.mode != "dry_run" and (outcome in BREAKER_COUNTS or outcome in BREAKER_RESETS):
            self._count_for_breaker(tx, run, outcome, moment)
        if outcome in ADAPTER_ESCALATES:
            self.engine.escalate_run(tx, run, reason=outcome, moment=moment)
        elif outcome in PLAYBOOK_ESCALATES:
            # The playbook sent step 0 (`declared`) when it says so; the later steps are the adapter's.
            self.engine.escalate_run(tx, run, reason=outcome, moment=moment, notify=not verdict["notified"])
        elif outcome == "handed_over":
            decision, _, _ = self.engine.hand_over(tx, run, verdict["handover"], moment)
            self.metrics.decisions.labels(kind=f"handover_{decision}").inc()

    def _count_for_breaker(self, tx: Tx, run: Run, outcome: str, moment: float) -> None:
        route = self.engine.routes.by_name(run.route)
        failures, _ = tx.breaker(run.route)
        failures = failures + 1 if outcome in BREAKER_COUNTS else 0
        threshold = (route.safety if route else {}).get("breaker_failures", self.settings.safety.breaker_failures)
        opened = failures >= threshold
        tx.set_breaker(run.route, failures, opened, moment)
        if opened:
            tx.event(
                run.incident_id,
                "breaker_opened",
                f"{failures} failed or unhealed runs in a row: notify only until reset",
                now=moment,
                run_id=run.id,
            )
            self.metrics.decisions.labels(kind="breaker_opened").inc()

    def _work(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()  # before claiming: a wake-up that arrives meanwhile is kept
            try:
                run = self.claim()
            except Exception:
                log.exception("claim failed")
                run = None
            if run is None:
                self._wake.wait(0.5)
                continue
            self.execute(run)

    # Periodic duties.
    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self.tick()
            except Exception:
                log.exception("tick failed")

    def tick(self) -> None:
        moment = now()
        with self.store.transaction(DECISION_LOCK) as tx:
            tx.execute("UPDATE runs SET heartbeat_at = ? WHERE state = 'running' AND owner = ?", (moment, self.owner))
            self._expire_approvals(tx, moment)
            self._escalation_steps(tx, moment)
            self.metrics.read_store(tx, moment)
        if isinstance(self.store, PostgresStore):
            self.recover(stale_after=STALE_AFTER_SECONDS)

    def _expire_approvals(self, tx: Tx, moment: float) -> None:
        for (run_id,) in tx.all("SELECT id FROM runs WHERE state = 'awaiting_approval' AND expires_at <= ?", (moment,)):
            run = tx.get_run(run_id)
            tx.end_run(run, "expired", "nobody approved it in time", moment)
            self.metrics.decisions.labels(kind="expired").inc()
            self.engine.escalate_run(tx, run, reason="expired", moment=moment)

    def _escalation_steps(self, tx: Tx, moment: float) -> None:
        for row in tx.all(
            "SELECT e.id, e.route, e.target_key, e.fingerprint, e.step, e.extravars, f.status FROM escalations e"
            " LEFT JOIN firing f ON f.fingerprint = e.fingerprint WHERE e.state = 'pending' AND e.due_at <= ?",
            (moment,),
        ):
            escalation_id, route, key, _fingerprint, step, extravars, status = row
            if status != "firing":
                tx.execute("UPDATE escalations SET state = 'canceled' WHERE id = ?", (escalation_id,))
                continue
            base = json.loads(extravars)
            found = self.engine.routes.by_name(route)
            steps = self.engine.policy.steps(
                base["severity"], found.playbook if found else "", base["alert"]["labels"].get("alertname", "")
            )
            tx.execute("UPDATE escalations SET state = 'sent' WHERE id = ?", (escalation_id,))
            if step < len(steps):
                tx.event(
                    base["incident_id"], "escalation_step", f"{steps[step]['who']} ({steps[step]['how']})", now=moment
                )
                self.engine.notify(
                    tx, route, key, base, moment, event="update", reason="escalation_step", step=steps[step]
                )

    def recover(self, stale_after: float) -> list[int]:
        """Runs left running by a process that died: interrupted, then requeued or escalated."""
        moment = now()
        requeue = self.settings.safety.interrupted == "requeue"
        recovered = []
        with self.store.transaction(DECISION_LOCK) as tx:
            for (run_id,) in tx.all(
                "SELECT id FROM runs WHERE state = 'running' AND (heartbeat_at IS NULL OR heartbeat_at < ?)",
                (moment - stale_after,),
            ):
                run = tx.get_run(run_id)
                if requeue and run.kind == "remediate":
                    tx.execute(
                        "UPDATE runs SET state = 'queued', attempt = attempt + 1, owner = NULL, started_at = NULL"
                        " WHERE id = ?",
                        (run_id,),
                    )
                    tx.event(
                        run.incident_id,
                        "requeued",
                        "the adapter died while it ran; queued again",
                        now=moment,
                        run_id=run_id,
                    )
                else:
                    tx.end_run(run, "interrupted", "the adapter died while it ran", moment)
                    if run.kind == "remediate":
                        self.engine.escalate_run(tx, run, reason="interrupted", moment=moment)
                recovered.append(run_id)
        if recovered:
            log.warning("recovered interrupted runs", extra={"runs": recovered, "requeued": requeue})
        return recovered

    # People's decisions.
    def approve(self, run_id: int, by: str) -> str:
        with self.store.transaction(DECISION_LOCK) as tx:
            run = tx.get_run(run_id)
            if run is None:
                return "no such run"
            if run.state != "awaiting_approval":
                return f"run {run_id} is {run.state}, not awaiting approval"
            moment = now()
            tx.execute("UPDATE runs SET state = 'queued', approved_by = ? WHERE id = ?", (by, run_id))
            tx.event(run.incident_id, "approved", f"approved by {by}", now=moment, run_id=run_id)
        self.metrics.decisions.labels(kind="approved").inc()
        self.wake()
        return "approved"

    def cancel(self, run_id: int, by: str) -> str:
        """Cancel a run that has not started; ask a running one to stop."""
        with self.store.transaction(DECISION_LOCK) as tx:
            run = tx.get_run(run_id)
            if run is None:
                return "no such run"
            moment = now()
            if run.state in ("queued", "awaiting_approval"):
                tx.end_run(run, "canceled", f"canceled by {by}", moment)
                return "canceled"
            if run.state == "running":
                tx.execute("UPDATE runs SET cancel_requested = 1 WHERE id = ?", (run_id,))
                tx.event(run.incident_id, "cancel_requested", f"requested by {by}", now=moment, run_id=run_id)
                return "cancel requested"
            return f"run {run_id} is {run.state}"

    def reset_breaker(self, route: str, by: str) -> None:
        with self.store.transaction(DECISION_LOCK) as tx:
            tx.set_breaker(route, 0, False, now(), by)
            tx.event(f"route-{route}", "breaker_reset", f"reset by {by}", now=now(), data={"route": route})
        self.metrics.decisions.labels(kind="breaker_reset").inc()

    def acknowledge_notifications(self, by: str) -> None:
        """A person knows the last notification failed: /healthz is ok again until the next one fails."""
        with self.store.transaction(DECISION_LOCK) as tx:
            tx.event(ADAPTER_EVENTS, "notifications_acknowledged", f"acknowledged by {by}", now=now())
        log.warning("failed notifications acknowledged", extra={"by": by})

    def add_silence(self, matchers: dict, seconds: float, by: str, comment: str) -> int:
        moment = now()
        with self.store.transaction(DECISION_LOCK) as tx:
            return tx.scalar(
                "INSERT INTO silences (matchers, starts_at, ends_at, created_by, comment) VALUES (?, ?, ?, ?, ?)"
                " RETURNING id",
                (json.dumps(matchers), moment, moment + seconds, by, comment),
            )
