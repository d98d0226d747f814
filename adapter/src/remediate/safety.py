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
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml

from remediate.alerts import Alert, contract_problem
from remediate.config import Settings
from remediate.routes import Rejected, Route, RouteTable, target_key
from remediate.store import DECISION_LOCK, Store, Tx, now

log = logging.getLogger("remediate.safety")
HOUR = 3600.0


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


class EscalationPolicy:
    """The notify role's escalation policy (steps per severity, with overrides)."""

    def __init__(self, path: Path):
        document = yaml.safe_load(Path(path).read_text()) or {}
        self.policy = document.get("notify_escalation_policy") or {}
        self.overrides = document.get("notify_escalation_overrides") or []

    def steps(self, severity: str, playbook: str, alertname: str) -> list[dict]:
        short = playbook.rsplit(".", 1)[-1]
        for override in self.overrides:
            if severity in override.get("severities", []) and (
                short in override.get("playbooks", []) or alertname in override.get("alertnames", [])
            ):
                return list(override.get("steps", []))
        return list((self.policy.get(severity) or {}).get("steps", []))


class Engine:
    def __init__(self, settings: Settings, routes: RouteTable, policy: EscalationPolicy):
        self.settings = settings
        self.routes = routes
        self.policy = policy

    # Intake.
    def ingest(self, store: Store, alerts: list[Alert], source: str) -> list[Decision]:
        """Store the alerts and decide each one, atomically: after this returns, the
        alerts and every decision are durable."""
        with store.transaction(DECISION_LOCK) as tx:
            moment = now()
            silences = self._silences(tx, moment)
            return [self._decide(tx, alert, source, moment, silences) for alert in alerts]

    def _decide(self, tx: Tx, alert: Alert, source: str, moment: float, silences: list[dict]) -> Decision:
        since = tx.set_firing(alert.key(), alert.status, moment)
        if alert.startsAt is None:  # a generic alert: its episode starts when it was first seen firing
            alert = alert.model_copy(update={"startsAt": datetime.fromtimestamp(since, UTC)})
        body = alert.as_contract()
        incident_id = alert.incident_id()
        alert_id = tx.insert_alert(source=source, alert=body, incident_id=incident_id, now=moment)
        decision = Decision(alert_id, body["fingerprint"], alert.alertname, incident_id, None, "", "")

        def decide(kind: str, reason: str, run_id: int | None = None) -> Decision:
            decision.decision, decision.reason, decision.run_id = kind, reason, run_id
            tx.decide_alert(alert_id, route=decision.route, decision=kind, reason=reason, run_id=run_id)
            tx.event(
                incident_id, kind, reason, now=moment, run_id=run_id, alert_id=alert_id, data={"route": decision.route}
            )
            log.info(
                "alert %s",
                kind,
                extra={
                    "alert_id": alert_id,
                    "incident": incident_id,
                    "route": decision.route,
                    "decision": kind,
                    "reason": reason,
                    "run_id": run_id,
                },
            )
            return decision

        problem = contract_problem(alert)
        if problem:
            return decide("rejected", f"input contract: {problem}; nothing runs")
        route = self.routes.match(alert.labels)
        if route is None:
            return decide("no_route", f"no route for alertname {alert.alertname!r}; nothing runs")
        decision.route = route.name
        try:
            target, variables = route.resolve(alert.labels)
        except Rejected as error:
            return decide("rejected", f"{error}; nothing runs")
        key = target_key(target)
        base = {"alert": body, "target": target, "incident_id": incident_id, "severity": route.severity}
        if alert.status == "resolved":
            return decide("resolved", self._resolve(tx, route, key, body["fingerprint"], base, moment))
        silence = next((s for s in silences if _matches(s["matchers"], alert.labels)), None)
        if silence is not None:
            return decide("silenced", f"silenced until {silence['ends_at']:.0f}: {silence['comment'] or 'no comment'}")

        _, breaker_open = tx.breaker(route.name)
        if breaker_open:
            run_id = self.escalate(tx, route, key, base, "breaker_open", moment)
            return decide("breaker_open", "the route's circuit breaker is open (notify only until reset)", run_id)
        if route.mode == "notify_only":
            run_id = self.escalate(tx, route, key, base, "notify_only", moment)
            return decide("notify_only", "the route is notify_only", run_id)

        existing = tx.active_run("remediate", route.name, key)
        if existing is not None:
            tx.add_member(existing, body["fingerprint"])
            return decide("deduplicated", f"joins run {existing}, already queued or running for this target", existing)

        cooldown = 60 * route.safety.get("cooldown_minutes", self.settings.safety.cooldown_minutes)
        last = tx.last_finished(route.name, key)
        if last is not None and moment - last < cooldown:
            run_id = self.escalate(tx, route, key, base, "cooldown", moment)
            return decide(
                "cooled_down",
                f"a run for this target finished {moment - last:.0f} s ago (cooldown {cooldown:.0f} s): escalated",
                run_id,
            )
        capped = self._cap_reached(tx, route, key, moment)
        if capped:
            run_id = self.escalate(tx, route, key, base, "capped", moment)
            return decide("capped", f"{capped}: escalated", run_id)

        mode = route.mode
        if self.settings.safety.dry_run and mode in ("auto", "approve"):
            mode = "dry_run"
        extravars = {**base, "dry_run": mode == "dry_run", **variables}
        if route.thresholds:
            extravars["thresholds"] = route.thresholds
        if self.settings.incident_records_dir is not None:
            extravars["incident_records_dir"] = str(self.settings.incident_records_dir)
        approval = mode == "approve"
        timeout = 60 * route.safety.get("approval_timeout_minutes", self.settings.safety.approval_timeout_minutes)
        run_id = tx.create_run(
            kind="remediate",
            route=route.name,
            target_key=key,
            incident_id=incident_id,
            playbook=route.playbook,
            mode=mode,
            state="awaiting_approval" if approval else "queued",
            extravars=extravars,
            now=moment,
            expires_at=moment + timeout if approval else None,
        )
        tx.add_member(run_id, body["fingerprint"])
        if approval:
            return decide("awaiting_approval", f"run {run_id} waits for approval for {timeout:.0f} s", run_id)
        return decide("accepted", f"run {run_id} queued ({mode})", run_id)

    def _silences(self, tx: Tx, moment: float) -> list[dict]:
        static = [
            {"matchers": s.matchers, "ends_at": s.ends_at, "comment": s.comment}
            for s in self.settings.silences
            if s.starts_at <= moment < s.ends_at
        ]
        return static + tx.active_silences(moment)

    def _cap_reached(self, tx: Tx, route: Route, key: str, moment: float) -> str | None:
        caps = self.settings.safety.caps
        since = moment - HOUR
        per_target = route.safety.get("per_target_per_hour", caps.per_target_per_hour)
        per_route = route.safety.get("per_route_per_hour", caps.per_route_per_hour)
        if tx.count_runs_since(since, route=route.name, target_key=key) >= per_target:
            return f"cap: {per_target} runs per target per hour"
        if tx.count_runs_since(since, route=route.name) >= per_route:
            return f"cap: {per_route} runs of this route per hour"
        if tx.count_runs_since(since) >= caps.total_per_hour:
            return f"cap: {caps.total_per_hour} runs per hour in total"
        return None

    def _resolve(self, tx: Tx, route: Route, key: str, fingerprint: str, base: dict, moment: float) -> str:
        """Cancel what has not started for a resolved alert; tell people if it was escalated."""
        canceled = []
        for run_id in tx.runs_of_fingerprint(fingerprint, ("queued", "awaiting_approval")):
            if not tx.any_firing(run_id):
                tx.finish_run(run_id, "canceled", "the alert resolved before the run started", moment)
                run = tx.get_run(run_id)
                tx.event(
                    run.incident_id, "canceled", "the alert resolved before the run started", now=moment, run_id=run_id
                )
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

    # Escalation.
    def escalate(self, tx: Tx, route: Route, key: str, base: dict, reason: str, moment: float) -> int | None:
        """Tell people now (a notify run) and start the policy's timers for the incident."""
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
        tx.event(base["incident_id"], "escalated", reason, now=moment, data={"route": route.name})
        return self.notify(tx, route.name, key, base, moment, event="update", reason=reason)

    def notify(
        self, tx: Tx, route: str, key: str, base: dict, moment: float, *, event: str, reason: str, step=None
    ) -> int | None:
        extravars = {**base, "dry_run": False, "notify_event": event, "notify_reason": reason}
        if step is not None:
            extravars["escalation_step"] = step
        # One message per (target, reason) on its way: repeats join it, other reasons do not.
        key = f"{key}:{reason}"
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
        if run_id is None:  # a message for this target is already on its way
            run_id = tx.active_run("notify", route, key)
        else:
            tx.add_member(run_id, base["alert"]["fingerprint"])
        return run_id


def _matches(matchers: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(name) == value for name, value in matchers.items())
