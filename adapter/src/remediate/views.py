"""What the incident page and `remediate watch` show (docs/watching.md): incidents
summarised from the store, and one incident's timeline merged from the store (decisions,
runs, notifications) and its incident record (detection, diagnosis, tiers, outcome,
evidence, the post-incident report; docs/incident-records.md).

Everything here is data for people; alert labels and annotations are untrusted and
reach them only through escaping renderers (Jinja2 autoescape, rich Text)."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import threading
from datetime import datetime
from pathlib import Path

from remediate.config import Settings
from remediate.executor import run_envvars
from remediate.outcomes import GOOD_RESULTS
from remediate.store import ACTIVE_STATES, Store

log = logging.getLogger("remediate.views")

DEFAULT_RECORDS_DIR = Path("/var/lib/incident-remediation/incidents")
# What the incident_report role accepts as an incident id; also keeps paths inside the records folder.
INCIDENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# Evidence shown inline on the page; the whole file is one link away.
EVIDENCE_INLINE_BYTES = 64 * 1024
REPORT_TIMEOUT_SECONDS = 120

# Each state's tone: the page's colour and the terminal's, always shown with its word.
TONES = {
    "ok": ("healed", "already_healthy", "resolved", "notified"),
    "active": ("queued", "running", "handed_over", "accepted"),
    "warn": (
        "awaiting_approval",
        "canceled",
        "expired",
        "interrupted",
        "deduplicated",
        "cooled_down",
        "capped",
        "silenced",
        "notify_only",
        "breaker_open",
        "dry_run",
    ),
    "bad": ("unhealed", "cannot_judge", "failed", "no_verdict", "timeout", "rejected", "escalated"),
}
TONE_OF = {state: tone for tone, states in TONES.items() for state in states}
# Store events that are steps of a run rather than milestones of the incident.
RUN_STEPS = ("task", "play_started")
RECORD_OUTCOMES = ("resolved", "escalated", "dry_run_reported", "handed_over")
# Ansible's own argument checks of each role: not what a person wants to read as the current step.
ARG_CHECK = "Validating arguments against arg spec"


def tone(state: str) -> str:
    return TONE_OF.get(state, "muted")


def words(name: str) -> str:
    return name.replace("_", " ")


def records_dir(settings: Settings) -> Path:
    """Where the playbooks write incident records: as the runs are told, else their default."""
    configured = (
        settings.incident_records_dir
        or settings.executor.envvars.get("INCIDENT_RECORDS_DIR")
        or os.environ.get("INCIDENT_RECORDS_DIR")
    )
    return Path(configured) if configured else DEFAULT_RECORDS_DIR


class Views:
    def __init__(self, store: Store, settings: Settings):
        self.store = store
        self.settings = settings
        self.records = records_dir(settings)
        self._report_locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    # The list.
    def board(self, limit: int = 50) -> list[dict]:
        """Incidents (those with alerts), latest activity first, each summarised."""
        listed = {item["id"]: item for item in self.store.incidents(limit=limit * 2)}
        ids = tuple(listed)
        if not ids:
            return []
        alerts, runs, escalated = self._facts(ids)
        board = []
        for incident_id, item in listed.items():
            if incident_id not in alerts:  # the adapter's own events, breaker resets
                continue
            board.append(_summary(incident_id, item, alerts[incident_id], runs.get(incident_id, []), escalated))
            if len(board) == limit:
                break
        return board

    def _facts(self, ids: tuple[str, ...]) -> tuple[dict, dict, set]:
        marks = ", ".join("?" for _ in ids)
        with self.store.transaction() as tx:
            alert_rows = tx.all(
                "SELECT a.incident_id, a.received_at, a.alertname, a.status, a.decision, a.reason, a.body, f.status"
                f" FROM alerts a LEFT JOIN firing f ON f.fingerprint = a.fingerprint WHERE a.incident_id IN ({marks})"
                " ORDER BY a.id",
                ids,
            )
            run_rows = tx.all(
                "SELECT incident_id, id, kind, state, result, outcome, created_at, started_at, finished_at, extravars"
                f" FROM runs WHERE incident_id IN ({marks}) ORDER BY id",
                ids,
            )
            escalated = {
                row[0]
                for row in tx.all(
                    f"SELECT DISTINCT incident_id FROM events WHERE kind = 'escalated' AND incident_id IN ({marks})",
                    ids,
                )
            }
        alerts: dict[str, list[dict]] = {}
        for incident_id, received, alertname, status, decision, reason, body, firing in alert_rows:
            parsed = json.loads(body)
            alerts.setdefault(incident_id, []).append(
                {
                    "received_at": received,
                    "alertname": alertname,
                    "status": status,
                    "decision": decision,
                    "reason": reason,
                    "labels": parsed.get("labels", {}),
                    "annotations": parsed.get("annotations", {}),
                    "starts_at": parsed.get("startsAt"),
                    "firing": firing == "firing",
                }
            )
        runs: dict[str, list[dict]] = {}
        for incident_id, *row in run_rows:
            run = dict(
                zip(
                    ("id", "kind", "state", "result", "outcome", "created_at", "started_at", "finished_at"),
                    row[:8],
                    strict=True,
                )
            )
            run["target"] = json.loads(row[8]).get("target") or {}
            runs.setdefault(incident_id, []).append(run)
        return alerts, runs, escalated

    # One incident.
    def incident(self, incident_id: str) -> dict | None:
        """The summary, the merged timeline, the tiers, the outcome and the evidence; None when unknown."""
        if not INCIDENT_ID.fullmatch(incident_id):
            return None
        events = self.store.timeline(incident_id)
        if not events:
            return None
        alerts, runs, escalated = self._facts((incident_id,))
        if incident_id not in alerts:
            return None
        incident_runs = runs.get(incident_id, [])
        item = {"first_at": events[0]["at"], "last_at": events[-1]["at"]}
        summary = _summary(incident_id, item, alerts[incident_id], incident_runs, escalated)
        record = self.record_events(incident_id)
        started = summary["started_at"]
        kinds = {run["id"]: run["kind"] for run in incident_runs}
        milestones = [_store_milestone(event, kinds, alerts[incident_id]) for event in events]
        milestones += [_record_milestone(event) for event in record]
        milestones = sorted((m for m in milestones if m), key=lambda m: m["at"])
        for milestone in milestones:
            milestone["offset"] = milestone["at"] - started
        running = [run for run in incident_runs if run["state"] == "running"]
        current = None
        if running:
            steps = [
                e
                for e in events
                if e["kind"] == "task" and e["run_id"] == running[-1]["id"] and not e["reason"].startswith(ARG_CHECK)
            ]
            current = steps[-1]["reason"] if steps else "starting"
        outcome = next((event for event in reversed(record) if event.get("event") in RECORD_OUTCOMES), None)
        return {
            **summary,
            "labels": alerts[incident_id][0]["labels"],
            "annotations": alerts[incident_id][0]["annotations"],
            "timeline": milestones,
            "tiers": [_tier(event) for event in record if event.get("event") == "tier"],
            "outcome": _outcome(outcome, incident_runs),
            "current_task": current,
            "runs": [{key: run[key] for key in run if key != "target"} for run in incident_runs],
            "evidence": self.evidence_files(incident_id),
            "has_record": (self.records / incident_id / "timeline.jsonl").is_file(),
            "report_ready": bool(outcome) and not any(run["state"] in ACTIVE_STATES for run in incident_runs),
        }

    def record_events(self, incident_id: str) -> list[dict]:
        """The record's timeline.jsonl, a line still being written left out."""
        path = self.records / incident_id / "timeline.jsonl"
        try:
            lines = path.read_text(errors="replace").splitlines()
        except OSError:
            return []
        events = []
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and isinstance(event.get("at"), str):
                event["at_epoch"] = _epoch(event["at"])
                events.append(event)
        return events

    def evidence_files(self, incident_id: str) -> list[dict]:
        folder = self.records / incident_id / "evidence"
        try:
            paths = sorted(path for path in folder.iterdir() if path.is_file())
        except OSError:
            return []
        files = []
        for path in paths:
            size = path.stat().st_size
            stamp, _, name = path.name.partition("Z-")
            files.append(
                {
                    "file": path.name,
                    "name": name.rsplit(".", 1)[0] if name else path.name,
                    "at": _epoch(stamp + "Z") if name else None,
                    "size": size,
                    "truncated": size > EVIDENCE_INLINE_BYTES,
                }
            )
        return files

    def evidence(self, incident_id: str, file: str, limit: int | None = None) -> str | None:
        """One evidence file as text (JSON indented), only a file the listing names."""
        listed = (
            {item["file"]: item for item in self.evidence_files(incident_id)}
            if INCIDENT_ID.fullmatch(incident_id)
            else {}
        )
        if file not in listed:
            return None
        with (self.records / incident_id / "evidence" / file).open("rb") as handle:
            text = (handle.read(limit) if limit else handle.read()).decode(errors="replace")
        if file.endswith(".json") and (limit is None or listed[file]["size"] <= limit):
            try:
                return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
            except ValueError:
                pass
        return text

    def report(self, incident_id: str) -> str | None:
        """The post-incident report (Markdown), written by the collection's incident_report
        playbook when the record has an outcome and the report is missing or older than it."""
        if not INCIDENT_ID.fullmatch(incident_id):
            return None
        folder = self.records / incident_id
        timeline, report = folder / "timeline.jsonl", folder / "report.md"
        if not timeline.is_file():
            return None
        with self._guard:
            lock = self._report_locks.setdefault(incident_id, threading.Lock())
        with lock:
            if not report.is_file() or report.stat().st_mtime_ns < timeline.stat().st_mtime_ns:
                self._write_report(incident_id)
            try:
                return report.read_text(errors="replace")
            except OSError:
                return None

    def _write_report(self, incident_id: str) -> None:
        binary = self.settings.executor.playbook_binary or "ansible-playbook"
        extravars = json.dumps({"incident_id": incident_id, "incident_records_dir": str(self.records)})
        try:
            done = subprocess.run(
                [str(binary), "incident.remediation.incident_report", "-e", extravars],
                env={**os.environ, **run_envvars(self.settings)},
                capture_output=True,
                text=True,
                timeout=REPORT_TIMEOUT_SECONDS,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            log.error("post-incident report not written", extra={"incident": incident_id, "error": str(error)})
            return
        if done.returncode != 0:
            log.error(
                "post-incident report not written",
                extra={"incident": incident_id, "rc": done.returncode, "output": done.stdout[-2000:]},
            )


def _summary(incident_id: str, item: dict, alerts: list[dict], runs: list[dict], escalated: set) -> dict:
    first = alerts[0]
    remediations = [run for run in runs if run["kind"] == "remediate"]
    latest = remediations[-1] if remediations else None
    if latest is None:
        state = "escalated" if incident_id in escalated else alerts[-1]["decision"]
    elif latest["state"] in ACTIVE_STATES:
        state = latest["state"]
    else:
        state = latest["result"] or latest["state"]
    healed = next((run for run in reversed(remediations) if run["result"] == "healed"), None)
    started = first["received_at"]
    active = any(run["state"] in ACTIVE_STATES for run in runs)
    firing = alerts[-1]["firing"]
    return {
        "id": incident_id,
        "state": state,
        "state_words": words(state),
        "tone": tone(state),
        "open": active or (firing and state not in GOOD_RESULTS),
        "alertname": first["alertname"],
        "summary": first["annotations"].get("summary") or first["annotations"].get("description") or "",
        "firing": firing,
        "firing_since": _epoch(first["starts_at"] or "") or None,
        "target": _target(latest["target"] if latest else {}, first["labels"]),
        "started_at": started,
        "last_at": item["last_at"],
        "healed_at": healed["finished_at"] if healed else None,
        "time_to_heal": healed["finished_at"] - started if healed else None,
    }


def _target(target: dict, labels: dict) -> str:
    """One line naming what the incident is about: the route's target, else the alert's labels."""
    service = target.get("service") or labels.get("service") or labels.get("job") or ""
    where = [target.get(key) for key in ("platform", "namespace", "host") if target.get(key)]
    if not where and labels.get("instance"):
        where = [labels["instance"]]
    if target.get("platform") != "kubernetes":
        where = [item for item in where if item != target.get("namespace")]
    return f"{service} ({', '.join(str(item) for item in where)})" if where else str(service)


def _store_milestone(event: dict, kinds: dict[int, str], alerts: list[dict]) -> dict | None:
    kind, data = event["kind"], event.get("data", {})
    milestone = {"at": event["at"], "source": "adapter", "run_id": event["run_id"], "detail": event["reason"]}
    if kind in RUN_STEPS:
        if kind == "task" and data.get("result") in ("failed", "unreachable") and not data.get("ignored"):
            return {**milestone, "title": f"task {data['result']}: {event['reason']}", "tone": "bad", "detail": ""}
        return None
    if event["alert_id"] is not None:
        alertname = alerts[0]["alertname"] if alerts else ""
        decision_tone = "step" if kind == "accepted" else tone(kind)
        return {**milestone, "title": f"alert {alertname}: {words(kind)}", "tone": decision_tone, "label": "decision"}
    if kind in ("started", "finished"):
        return _run_milestone(milestone, kind, data, kinds.get(event["run_id"]) == "notify")
    return {**milestone, "title": words(kind), "tone": tone(kind), "label": "adapter"}


def _run_milestone(milestone: dict, kind: str, data: dict, notify: bool) -> dict:
    run_id = milestone["run_id"]
    if kind == "started":
        title = "notification run started" if notify else f"run {run_id} started"
        return {**milestone, "title": title, "tone": "step", "label": "notification" if notify else "run"}
    result = data.get("result", "")
    if notify:
        title = "notification sent" if result == "notified" else f"notification {words(result)}"
        return {**milestone, "title": title, "tone": tone(result), "label": "notification"}
    if "notified" in data:
        told = "people told by the playbook" if data["notified"] else "the playbook told nobody"
        milestone["detail"] += f" · {told}"
    return {**milestone, "title": f"run {run_id} finished: {words(result)}", "tone": tone(result), "label": "run"}


def _record_milestone(event: dict) -> dict | None:
    name = event.get("event", "")
    milestone = {"at": event["at_epoch"], "source": "record", "run_id": None, "label": "record"}
    if name == "detected":
        target = event.get("target") or {}
        detail = f"by {event.get('playbook', '')} on {target.get('platform', '?')}"
        return {**milestone, "title": "detected", "detail": detail, "tone": "step"}
    if name == "diagnosed":
        plan = ", ".join(event.get("plan") or []) or "none"
        detail = f"{event.get('found', '')} · plan: {plan}"
        status = event.get("status", "?")
        finding = "bad" if status == "critical" else "warn" if status in ("warning", "unknown") else "step"
        return {**milestone, "title": f"diagnosed: {status}", "detail": detail, "tone": finding}
    if name == "tier":
        result = event.get("result", "")
        detail = event.get("why", "") + (f" · {event['error']}" if event.get("error") else "")
        return {
            **milestone,
            "title": f"tier {event.get('tier', '?')}: {words(result)}",
            "detail": detail,
            "tone": "ok" if result == "verified" else "bad" if result == "not_verified" else "warn",
            "duration": event.get("duration_s"),
        }
    if name in RECORD_OUTCOMES:
        outcome = event.get("outcome", "")
        return {
            **milestone,
            "title": f"outcome: {words(outcome)}",
            "detail": event.get("summary", ""),
            "tone": tone(outcome),
        }
    detail = event.get("summary") or event.get("reason") or ""
    return {**milestone, "title": words(name), "detail": str(detail), "tone": "muted"}


def _tier(event: dict) -> dict:
    result = event.get("result", "")
    return {
        "tier": event.get("tier", ""),
        "result": result,
        "result_words": words(result),
        "tone": "ok" if result == "verified" else "bad" if result == "not_verified" else "warn",
        "why": event.get("why", ""),
        "started_at": _epoch(event["started_at"]) if event.get("started_at") else event["at_epoch"],
        "duration": event.get("duration_s"),
        "status": event.get("status", ""),
        "error": event.get("error", ""),
    }


def _outcome(event: dict | None, runs: list[dict]) -> dict | None:
    remediations = [run for run in runs if run["kind"] == "remediate" and run["result"]]
    if event is None and not remediations:
        return None
    result = event.get("outcome") if event else remediations[-1]["result"]
    summary = event.get("summary") if event else remediations[-1]["outcome"]
    return {"result": result, "result_words": words(result), "tone": tone(result), "summary": summary}


def _epoch(stamp: str) -> float | None:
    """An ISO time (``...Z`` or the evidence files' ``20261122T030211.104221Z``) as epoch seconds."""
    # Alertmanager writes nanoseconds; strptime reads at most microseconds.
    stamp = re.sub(r"(\.\d{6})\d+", r"\1", stamp.replace("Z", "+0000"))
    for layout in ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z", "%Y%m%dT%H%M%S.%f%z"):
        try:
            return datetime.strptime(stamp, layout).timestamp()
        except ValueError:
            continue
    return None
