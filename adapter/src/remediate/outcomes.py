"""What a run ended with: the playbook's verdict (docs/outcomes.md), checked, and the
run result the adapter records, counts and acts on."""

from __future__ import annotations

import re
from typing import Any

from remediate.routes import PLAYBOOK_NAME

# What a remediation playbook reports with set_stats (data key `remediation`).
VERDICT_KEYS = ("version", "incident_id", "playbook", "outcome", "summary", "notified", "actions", "handover")
VERDICTS = ("healed", "already_healthy", "unhealed", "cannot_judge", "dry_run", "handed_over", "resolved")
ACTION_RESULTS = ("verified", "not_verified", "would_run", "skipped")
# Results without a verdict: the playbook broke, ended without one, or the adapter stopped it.
FAILED = "failed"
NO_VERDICT = "no_verdict"
# Counted toward the route's circuit breaker; a healed or healthy service resets it.
BREAKER_COUNTS = ("failed", "no_verdict", "timeout", "unhealed")
BREAKER_RESETS = ("healed", "already_healthy")
# The adapter tells people itself (notify reason = the result): nobody else did.
ADAPTER_ESCALATES = ("failed", "no_verdict", "timeout")
# The playbook escalates these itself (notified: true); the adapter runs the later steps.
PLAYBOOK_ESCALATES = ("unhealed", "cannot_judge")
# Results of a notify run.
NOTIFIED = "notified"
# Results that need nobody: `remediate fire` exits 0 when every run ended with one.
GOOD_RESULTS = ("healed", "already_healthy", "dry_run", "handed_over", "resolved", NOTIFIED)

MAX_SUMMARY = 1024
MAX_TEXT = 256
MAX_ACTIONS = 64
MAX_TARGET_DEPTH = 3
MAX_TARGET_KEYS = 32
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")


class BadVerdict(ValueError):
    """The playbook's remediation data does not follow docs/outcomes.md."""


def parse_verdict(data: Any, incident_id: str) -> dict:
    """The `remediation` data of a run, checked; raises BadVerdict naming what is wrong.
    Playbooks report it, but what they put in it can come from the alert: every string
    is bounded and free of control characters before it is stored or acted on."""
    if not isinstance(data, dict):
        raise BadVerdict("remediation must be a mapping")
    unknown = set(data) - set(VERDICT_KEYS)
    if unknown:
        raise BadVerdict(f"unknown keys {sorted(unknown)[:5]}")
    if data.get("version") != 1:
        raise BadVerdict("version must be 1")
    if data.get("incident_id") != incident_id:
        raise BadVerdict("incident_id is not the run's incident")
    outcome = data.get("outcome")
    if outcome not in VERDICTS:
        raise BadVerdict(f"outcome must be one of {', '.join(VERDICTS)}")
    if not isinstance(data.get("notified"), bool):
        raise BadVerdict("notified must be true or false")
    verdict = {
        "outcome": outcome,
        "playbook": _text(data.get("playbook"), "playbook", MAX_TEXT),
        "summary": _text(data.get("summary", ""), "summary", MAX_SUMMARY),
        "notified": data["notified"],
        "actions": _actions(data.get("actions", [])),
    }
    handover = data.get("handover")
    if (outcome == "handed_over") != (handover is not None):
        raise BadVerdict("handover goes with outcome handed_over, and only with it")
    if handover is not None:
        verdict["handover"] = _handover(handover)
    return verdict


def run_result(kind: str, status: str, verdict: dict | None) -> str:
    """The one word a run ended with. A timeout or a cancel wins over everything; then
    the verdict, which wins over the play's failed status (playbooks fail the play
    for people when unhealed); no verdict is a failure."""
    if status in ("timeout", "canceled"):
        return status
    if kind == "notify":
        return NOTIFIED if status == "successful" else FAILED
    if verdict is not None:
        return verdict["outcome"]
    return FAILED if status != "successful" else NO_VERDICT


def _text(value: Any, where: str, limit: int) -> str:
    if not isinstance(value, str) or len(value) > limit or CONTROL.search(value):
        raise BadVerdict(f"{where} must be a string of at most {limit} characters without control characters")
    return value


def _actions(actions: Any) -> list[dict]:
    if not isinstance(actions, list) or len(actions) > MAX_ACTIONS:
        raise BadVerdict(f"actions must be a list of at most {MAX_ACTIONS}")
    checked = []
    for action in actions:
        if not isinstance(action, dict) or action.get("result") not in ACTION_RESULTS:
            raise BadVerdict(f"each action must be {{tier, result: {' | '.join(ACTION_RESULTS)}}}")
        checked.append({"tier": _text(action.get("tier"), "actions.tier", MAX_TEXT), "result": action["result"]})
    return checked


def _handover(handover: Any) -> dict:
    if not isinstance(handover, dict) or set(handover) != {"playbook", "target", "reason"}:
        raise BadVerdict("handover must be {playbook, target, reason}")
    if not isinstance(handover["playbook"], str) or not PLAYBOOK_NAME.fullmatch(handover["playbook"]):
        raise BadVerdict("handover.playbook must be a fully qualified playbook name")
    return {
        "playbook": handover["playbook"],
        "target": _target(handover["target"], "handover.target", 0),
        "reason": _text(handover["reason"], "handover.reason", MAX_TEXT),
    }


def _target(tree: Any, where: str, depth: int) -> dict:
    """A target's shape: names to scalars or nested mappings. Its values are checked
    against the route that runs the playbook (Route.check_target)."""
    if not isinstance(tree, dict) or not tree or len(tree) > MAX_TARGET_KEYS or depth > MAX_TARGET_DEPTH:
        raise BadVerdict(f"{where} must be a small non-empty mapping")
    checked = {}
    for name, value in tree.items():
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise BadVerdict(f"{where}: key names must be lower-case identifiers")
        if isinstance(value, dict):
            checked[name] = _target(value, f"{where}.{name}", depth + 1)
        elif isinstance(value, bool) or not isinstance(value, str | int):
            raise BadVerdict(f"{where}.{name} must be a string, a number or a mapping")
        else:
            checked[name] = _text(value, f"{where}.{name}", MAX_TEXT) if isinstance(value, str) else value
    return checked
