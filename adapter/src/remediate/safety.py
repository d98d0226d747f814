"""The safety rules: what happens to each alert, decided in one transaction.

Order, for a firing alert: input contract -> route -> label checks -> silences ->
circuit breaker / notify_only -> dedup -> cooldown -> caps -> queue (or wait for
approval). Every outcome is stored with the alert and recorded as an event with
its reason. Escalations (a cooldown re-fire, a cap, an expired approval, a failed
run, ...) queue a run of the notify playbook and start the policy's timers.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import yaml

from remediate.alerts import Alert, contract_problem
from remediate.config import Settings
from remediate.routes import Rejected, Route, RouteTable, target_key
from remediate.store import DECISION_LOCK, Run, Store, Tx, now

log = logging.getLogger("remediate.safety")
HOUR = 3600.0
ROUTE_WIDE_REASONS = ("capped", "breaker_open")
# Hand-overs one incident may make: A -> B -> C -> D, then people are told instead.
MAX_HANDOVERS = 3


@dataclass
class Decision:
    alert_id: int
    fingerprint: str
    alertname: str
    incident_id: str
    route: str | None
    decision: str
    reason: str
    run_id: int | None = None

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class _Batch:
    """One request's alerts waiting for the next group commit."""

    alerts: list[Alert]
    source: str
    decisions: list[Decision] = field(default_factory=list)
    error: Exception | None = None
    done: bool = False


@dataclass(frozen=True)
class _Context:
    """What every decision of one transaction shares."""

    moment: float
    silences: list[dict]
    open_breakers: set[str]


class EscalationPolicy:
    """The notify role's escalation policy (steps per severity, with overrides), read
    from the same file the role reads; steps() gives what the role's
    notify_escalation_schedule gives (tests/adapter/test_policy.py runs both)."""

    def __init__(self, path: Path):
        document = yaml.safe_load(Path(path).read_text()) or {}
        self.policy = document.get("notify_escalation_policy") or {}
        self.overrides = document.get("notify_escalation_overrides") or []

    def steps(self, severity: str, playbook: str, alertname: str) -> list[dict]:
        """The first override (in file order) for the severity that names the playbook
        (short name) or the alert name replaces the severity's steps; in time order."""
        short = playbook.rsplit(".", 1)[-1]
        chosen = (self.policy.get(severity) or {}).get("steps", [])
        for override in self.overrides:
            if severity in override.get("severities", []) and (
                short in override.get("playbooks", []) or alertname in override.get("alertnames", [])
            ):
                chosen = override.get("steps", [])
                break
        return sorted(chosen, key=lambda step: int(step.get("after_minutes", 0)))


class Engine:
    def __init__(self, settings: Settings, routes: RouteTable, policy: EscalationPolicy):
        self.settings = settings
        self.routes = routes
        self.policy = policy
        self._pending: list[_Batch] = []
        self._pending_lock = threading.Lock()
        self._commit_lock = threading.Lock()

    # Intake.
    def ingest(self, store: Store, alerts: list[Alert], source: str) -> list[Decision]:
        """Store the alerts and decide each one, atomically: after this returns, the
        alerts and every decision are durable.

        Group commit: requests that arrive while a transaction commits are decided
        together in the next one, so one fsync serves many requests; when that
        transaction fails, each request is tried alone, so only the failing one fails."""
        batch = _Batch(alerts, source)
        with self._pending_lock:
            self._pending.append(batch)
        with self._commit_lock:
            if not batch.done:
                with self._pending_lock:
                    group, self._pending = self._pending, []
                self._commit(store, group)
        if batch.error is not None:
            raise batch.error
        counts = Counter(decision.decision for decision in batch.decisions)
        log.info("alerts decided", extra={"source": source, "alerts": len(alerts), "decisions": dict(counts)})
        for decision in batch.decisions:
            if decision.decision == "rejected":
                log.warning("alert rejected", extra=decision.as_dict())
        return batch.decisions

    def _commit(self, store: Store, group: list[_Batch]) -> None:
        try:
            self._decide_group(store, group)
        except Exception as error:
            if len(group) == 1:
                group[0].decisions, group[0].error = [], error
            else:  # find the request that fails: each alone, so the others are stored
                for batch in group:
                    try:
                        self._decide_group(store, [batch])
                    except Exception as single_error:  # this request fails alone
                        batch.decisions, batch.error = [], single_error
        for batch in group:
            batch.done = True

    def _decide_group(self, store: Store, group: list[_Batch]) -> None:
        with store.transaction(DECISION_LOCK) as tx:
            moment = now()
            context = _Context(moment, self._silences(tx, moment), tx.open_breakers())
            for batch in group:
                batch.decisions = [self._record(tx, alert, batch.source, context) for alert in batch.alerts]

    def _record(self, tx: Tx, alert: Alert, source: str, context: _Context) -> Decision:
        """Decide one alert; store it with its decision and record the decision's event."""
        moment = context.moment
        since = tx.set_firing(alert.key(), alert.status, moment)
        if alert.startsAt is None:  # a generic alert: its episode starts when it was first seen firing
            alert = alert.model_copy(update={"startsAt": datetime.fromtimestamp(since, UTC)})
        body = alert.as_contract()
        incident_id = alert.incident_id()
        route, kind, reason, run_id = self._decide(tx, alert, body, incident_id, context)
        alert_id = tx.insert_alert(
            source=source,
            alert=body,
            incident_id=incident_id,
            now=moment,
            route=route,
            decision=kind,
            reason=reason,
            run_id=run_id,
        )
        tx.event(incident_id, kind, reason, now=moment, run_id=run_id, alert_id=alert_id, data={"route": route})
        return Decision(alert_id, body["fingerprint"], alert.alertname, incident_id, route, kind, reason, run_id)

    def _decide(
        self, tx: Tx, alert: Alert, body: dict, incident_id: str, context: _Context
    ) -> tuple[str | None, str, str, int | None]:
        """(route name, decision, reason, run id) for one alert."""
        problem = contract_problem(alert)
        if problem:
            return None, "rejected", f"input contract: {problem}; nothing runs", None
        route = self.routes.match(alert.labels)
        if route is None:
            return None, "no_route", f"no route for alertname {alert.alertname!r}; nothing runs", None
        try:
            target, variables = route.resolve(alert.labels)
        except Rejected as error:
            return route.name, "rejected", f"{error}; nothing runs", None
        key = target_key(target)
        base = {"alert": body, "target": target, "incident_id": incident_id, "severity": route.severity}
        moment = context.moment
        if alert.status == "resolved":
            return route.name, "resolved", self._resolve(tx, route, key, base, moment=moment), None
        silence = next((s for s in context.silences if _matches(s["matchers"], alert.labels)), None)
        if silence is not None:
            reason = f"silenced until {silence['ends_at']:.0f}: {silence['comment'] or 'no comment'}"
            return route.name, "silenced", reason, None
        return (
            route.name,
            *self._firing(
                tx, route, key, base, variables=variables, moment=moment, open_breakers=context.open_breakers
            ),
        )

    def _firing(
        self,
        tx: Tx,
        route: Route,
        key: str,
        base: dict,
        *,
        variables: dict,
        moment: float,
        open_breakers: set[str],
        why: str | None = None,
    ) -> tuple[str, str, int | None]:
        """The safety rules for a firing, routed, valid alert (or a hand-over, ``why`` says
        which): (decision, reason, run id)."""
        fingerprint = base["alert"]["fingerprint"]
        if route.name in open_breakers:
            run_id = self.escalate(tx, route, key, base, reason="breaker_open", moment=moment)
            return "breaker_open", "the route's circuit breaker is open (notify only until reset)", run_id
        if route.mode == "notify_only":
            return (
                "notify_only",
                "the route is notify_only",
                self.escalate(tx, route, key, base, reason="notify_only", moment=moment),
            )
        existing = tx.active_run("remediate", route.name, key)
        if existing is not None:
            tx.add_member(existing, fingerprint)
            return "deduplicated", f"joins run {existing}, already queued or running for this target", existing
        cooldown = 60 * route.safety.get("cooldown_minutes", self.settings.safety.cooldown_minutes)
        last = tx.last_finished(route.name, key)
        if last is not None and moment - last < cooldown:
            run_id = self.escalate(tx, route, key, base, reason="cooldown", moment=moment)
            reason = f"a run for this target finished {moment - last:.0f} s ago (cooldown {cooldown:.0f} s): escalated"
            return "cooled_down", reason, run_id
        capped = self._cap_reached(tx, route, key, moment)
        if capped:
            return "capped", f"{capped}: escalated", self.escalate(tx, route, key, base, reason="capped", moment=moment)
        return self._queue(tx, route, key, base, variables=variables, moment=moment, why=why)

    def _queue(
        self, tx: Tx, route: Route, key: str, base: dict, *, variables: dict, moment: float, why: str | None
    ) -> tuple[str, str, int | None]:
        mode = route.mode
        if self.settings.safety.dry_run and mode in ("auto", "approve"):
            mode = "dry_run"
        extravars = {**base, "dry_run": mode == "dry_run", **variables}
        if route.thresholds:
            extravars["thresholds"] = route.thresholds
        if self.settings.incident_records_dir is not None:
            extravars["incident_records_dir"] = str(self.settings.incident_records_dir)
        approval = mode == "approve"
        alertname = base["alert"]["labels"].get("alertname", "")
        timeout = 60 * route.safety.get("approval_timeout_minutes", self.settings.safety.approval_timeout_minutes)
        run_id = tx.create_run(
            kind="remediate",
            route=route.name,
            target_key=key,
            incident_id=base["incident_id"],
            playbook=route.playbook,
            mode=mode,
            state="awaiting_approval" if approval else "queued",
            extravars=extravars,
            now=moment,
            expires_at=moment + timeout if approval else None,
            reason=why or ("waits for approval" if approval else f"alert {alertname}"),
        )
        tx.add_member(run_id, base["alert"]["fingerprint"])
        tx.count_run(_cap_scopes(route, key), moment)
        if approval:
            return "awaiting_approval", f"run {run_id} waits for approval for {timeout:.0f} s", run_id
        return "accepted", f"run {run_id} queued ({mode})", run_id

    def _silences(self, tx: Tx, moment: float) -> list[dict]:
        static = [
            {"matchers": s.matchers, "ends_at": s.ends_at, "comment": s.comment}
            for s in self.settings.silences
            if s.starts_at <= moment < s.ends_at
        ]
        return static + tx.active_silences(moment)

    def _cap_reached(self, tx: Tx, route: Route, key: str, moment: float) -> str | None:
        caps = self.settings.safety.caps
        scopes = _cap_scopes(route, key)
        counts = tx.count_runs(scopes, moment - HOUR)
        limits = (
            (route.safety.get("per_target_per_hour", caps.per_target_per_hour), "runs per target per hour"),
            (route.safety.get("per_route_per_hour", caps.per_route_per_hour), "runs of this route per hour"),
            (caps.total_per_hour, "runs per hour in total"),
        )
        for scope, (limit, what) in zip(scopes, limits, strict=True):
            if counts[scope] >= limit:
                return f"cap: {limit} {what}"
        return None

    def _resolve(self, tx: Tx, route: Route, key: str, base: dict, *, moment: float) -> str:
        """Cancel what has not started for a resolved alert; tell people if it was escalated."""
        fingerprint = base["alert"]["fingerprint"]
        canceled = []
        for run_id in tx.runs_of_fingerprint(fingerprint, ("queued", "awaiting_approval")):
            if not tx.any_firing(run_id):
                tx.end_run(tx.get_run(run_id), "canceled", "the alert resolved before the run started", moment)
                canceled.append(run_id)
        pending = tx.all(
            "SELECT DISTINCT incident_id FROM escalations WHERE fingerprint = ? AND state IN ('pending', 'sent')",
            (fingerprint,),
        )
        tx.execute(
            "UPDATE escalations SET state = 'canceled' WHERE fingerprint = ? AND state = 'pending'", (fingerprint,)
        )
        if pending:
            tx.execute(
                "UPDATE escalations SET state = 'closed' WHERE fingerprint = ? AND state = 'sent'", (fingerprint,)
            )
            self.notify(tx, route.name, key, base, moment, event="resolved", reason="resolved")
        reason = "recorded; nothing runs for a resolved alert"
        if canceled:
            reason += "; canceled queued run(s) " + ", ".join(map(str, canceled))
        return reason

    # Hand-over.
    def hand_over(self, tx: Tx, run: Run, handover: dict, moment: float) -> tuple[str, str, int | None]:
        """Queue the playbook a run handed over to, for the target it named, under the
        same incident and through the same safety rules as an alert: the route that runs
        that playbook, its target checks, breaker, mode, dedup, cooldown and caps. When
        that cannot be (no such route, a target that fails the checks, too many
        hand-overs), people are told instead. (decision, reason, run id)."""
        alert = run.extravars["alert"]
        route = self.routes.by_playbook(handover["playbook"])
        problem, target, variables = None, {}, {}
        if route is None:
            problem = "no route runs that playbook"
        elif tx.handovers(run.incident_id) >= MAX_HANDOVERS:
            problem = f"this incident was handed over {MAX_HANDOVERS} times already"
        else:
            try:
                target, variables = route.check_target(handover["target"]), route.variables_for(alert["labels"])
            except Rejected as error:
                problem = f"the route {route.name!r} refuses it: {error}"
        if problem is not None:
            reason = f"hand-over to {handover['playbook']} refused: {problem}"
            tx.event(run.incident_id, "handover_refused", reason, now=moment, run_id=run.id)
            self.escalate_run(tx, run, reason="handover_refused", moment=moment)
            return "handover_refused", reason, None
        base = {"alert": alert, "target": target, "incident_id": run.incident_id, "severity": route.severity}
        decision, reason, run_id = self._firing(
            tx,
            route,
            target_key(target),
            base,
            variables=variables,
            moment=moment,
            open_breakers=tx.open_breakers(),
            why=f"hand-over from {run.playbook}: {handover['reason']}",
        )
        tx.event(
            run.incident_id,
            "handed_over",
            f"to {handover['playbook']} (route {route.name}): {decision} - {reason}",
            now=moment,
            run_id=run.id,
            data={"route": route.name, "decision": decision, "handover_run": run_id},
        )
        return decision, reason, run_id

    # Escalation.
    def escalate_run(self, tx: Tx, run: Run, *, reason: str, moment: float, notify: bool = True) -> int | None:
        """escalate() for what a run ended with, on the run's route and target."""
        route = self.routes.by_name(run.route)
        if route is None:  # the route left the routes file since the run was queued
            log.error("run %s: no route %r to escalate on", run.id, run.route)
            return None
        keys = ("alert", "target", "incident_id", "severity")
        base = {key: run.extravars[key] for key in keys if key in run.extravars}
        return self.escalate(tx, route, run.target_key, base, reason=reason, moment=moment, notify=notify)

    def escalate(
        self, tx: Tx, route: Route, key: str, base: dict, *, reason: str, moment: float, notify: bool = True
    ) -> int | None:
        """Tell people now (a notify run) and start the policy's timers for the incident;
        with ``notify`` false the playbook told people already (step 0): timers only.

        A cap or an open breaker is a route-wide state that a storm hits once per
        target: people get one message per route while one is on its way, and no
        per-incident timers, instead of thousands of pages."""
        tx.event(base["incident_id"], "escalated", reason, now=moment, data={"route": route.name, "notify": notify})
        if reason in ROUTE_WIDE_REASONS:
            return self.notify(tx, route.name, "route-wide", base, moment, event="update", reason=reason)
        steps = self.policy.steps(route.severity, route.playbook, route.alertname)
        fingerprint = base["alert"]["fingerprint"]
        started = (
            tx.scalar("SELECT min(received_at) FROM alerts WHERE incident_id = ?", (base["incident_id"],)) or moment
        )
        # Step 0 is this message (its reason says why); later steps wait for the ticker.
        for index, step in enumerate(steps):
            tx.execute(
                "INSERT INTO escalations (incident_id, route, target_key, fingerprint, step, due_at, state, extravars)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (
                    base["incident_id"],
                    route.name,
                    key,
                    fingerprint,
                    index,
                    started + 60 * float(step.get("after_minutes", 0)),
                    "sent" if index == 0 else "pending",
                    json.dumps(base),
                ),
            )
        if not notify:
            return None
        return self.notify(tx, route.name, key, base, moment, event="update", reason=reason)

    def notify(
        self, tx: Tx, route: str, key: str, base: dict, moment: float, *, event: str, reason: str, step=None
    ) -> int | None:
        # One message per (target, reason) on its way: repeats join it, other reasons do not.
        key = f"{key}:{reason}"
        pending = tx.active_run("notify", route, key)
        if pending is not None:
            return pending
        extravars = {
            **base,
            "dry_run": False,
            "notify_event": event,
            "notify_reason": reason,
            "notify_required": self.settings.notify_required,
        }
        if step is not None:
            extravars["escalation_step"] = step
        run_id = tx.create_run(
            kind="notify",
            route=route,
            target_key=key,
            incident_id=base["incident_id"],
            playbook=self.settings.notify_playbook,
            mode="auto",
            state="queued",
            extravars=extravars,
            now=moment,
            reason=reason,
        )
        tx.add_member(run_id, base["alert"]["fingerprint"])
        return run_id


def _matches(matchers: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(name) == value for name, value in matchers.items())


def _cap_scopes(route: Route, key: str) -> tuple[str, str, str]:
    """The run counters a cap reads: per target, per route, in total."""
    return f"target:{route.name}:{key}", f"route:{route.name}", "total"
