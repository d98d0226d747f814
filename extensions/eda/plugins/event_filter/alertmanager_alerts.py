"""alertmanager_alerts: one event per Alertmanager alert, never one that carries a template.

ansible-rulebook hands an event to the playbook it runs (or to the controller's job)
as extra variables, and Ansible renders templates in extra variables: an alert label
``{{ lookup('pipe', ...) }}`` would run on the ops host. Alert data is untrusted, so
this filter drops every alert with a template marker anywhere in it before any rule
sees it, and says so in ansible-rulebook's log.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

DOCUMENTATION = r"""
---
author:
  - incident.remediation contributors
short_description: Split an Alertmanager notification into one event per alert, dropping alerts that carry templates.
description:
  - An event filter for the body of an Alertmanager webhook notification (version 4) as
    C(eda.builtin.webhook) delivers it, under C(payload).
  - It returns one event per alert, shaped as C(ansible.eda.alertmanager) shapes them
    (the alert under C(alert), the webhook's C(endpoint) under C(meta)), so conditions read
    C(event.alert) and playbooks read C(ansible_eda.event.alert) (the collection's input contract).
  - An alert with a template marker (C({{), C({%), C({#) or a C(#jinja2:) header) in any
    string, key or value, at any depth, is dropped and logged at ERROR level with its
    alertname, fingerprint and the field, because ansible-rulebook passes events to
    Ansible as extra variables, which Ansible templates. So is an alert with a key that
    starts with C(__) (reserved by Prometheus; C(__ansible_*) keys are Ansible's own markers).
  - The request headers are not passed on, nor C(meta.hosts); the playbook acts on the host
    the route's target names.
  - An alert without a fingerprint gets one derived from its labels (the first 16 hex
    digits of a SHA-256, as the remediate adapter derives it), so rules can throttle per
    alert.
  - A body that is not an Alertmanager notification, and an alert whose labels or
    annotations are not a mapping of names to strings, yield no event and are logged at
    ERROR level.
options: {}
"""

EXAMPLES = r"""
- name: Alertmanager alerts
  hosts: all
  sources:
    - eda.builtin.webhook:
        host: 0.0.0.0
        port: 5000
        token: "{{ webhook_token }}"
      filters:
        - incident.remediation.alertmanager_alerts:
  rules:
    - name: Redis down
      condition: event.alert.status == "firing" and event.alert.labels.alertname == "RedisDown"
      action:
        run_playbook:
          name: incident.remediation.redis_down
"""

LOG = logging.getLogger("incident.remediation.alertmanager_alerts")
TEMPLATE_MARKERS = ("{{", "{%", "{#", "#jinja2:")
RESERVED_PREFIX = "__"
SHOWN_CHARACTERS = 64


def main(event: dict[str, Any]) -> list[dict[str, Any]]:
    """One event per acceptable alert of the notification in ``event["payload"]``."""
    payload = event.get("payload")
    meta = event.get("meta") if isinstance(event.get("meta"), dict) else {}
    alerts = payload.get("alerts") if isinstance(payload, dict) else None
    if not isinstance(alerts, list):
        LOG.error("dropped a notification that is not Alertmanager's (no alerts list); nothing runs")
        return []
    events = []
    for received in alerts:
        if not isinstance(received, dict) or not _string_map(received.get("labels")):
            LOG.error("dropped an alert whose labels are not a mapping of names to strings; nothing runs for it")
            continue
        if not _string_map(received.get("annotations", {})):
            LOG.error(
                "dropped alert %s: its annotations are not a mapping of names to strings; nothing runs for it",
                _show(received["labels"].get("alertname")),
            )
            continue
        alert = {**received, "fingerprint": received.get("fingerprint") or _fingerprint(received["labels"])}
        candidate = {"alert": alert, "meta": {"endpoint": meta.get("endpoint", "")}}
        problem = _problem(candidate, "event")
        if problem:
            LOG.error(
                "dropped alert %s (fingerprint %s): %s; nothing runs for it",
                _show(alert["labels"].get("alertname")),
                _show(alert["fingerprint"]),
                problem,
            )
            continue
        events.append(candidate)
    return events


def _problem(value: Any, path: str) -> str | None:
    """What makes a value unacceptable (the first finding, naming the field), or None."""
    if isinstance(value, str):
        marker = next((marker for marker in TEMPLATE_MARKERS if marker in value.lower()), None)
        return f"{_show(path)} holds the template marker {marker!r}" if marker else None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}"
            if str(key).startswith(RESERVED_PREFIX):
                return f"the key {_show(where)} starts with {RESERVED_PREFIX} (reserved)"
            problem = _problem(str(key), where) or _problem(item, where)
            if problem:
                return problem
    if isinstance(value, list):
        return next((found for index, item in enumerate(value) if (found := _problem(item, f"{path}[{index}]"))), None)
    return None


def _string_map(value: Any) -> bool:
    """Alertmanager's label and annotation sets: names to strings."""
    return isinstance(value, dict) and all(isinstance(item, str) for item in value.values())


def _fingerprint(labels: dict) -> str:
    canonical = "\x00".join(f"{name}\x00{value}" for name, value in sorted(labels.items()))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _show(value: Any) -> str:
    """A bounded, escaped rendering of an untrusted value for the log."""
    text = str(value)
    return json.dumps(text[:SHOWN_CHARACTERS] + ("..." if len(text) > SHOWN_CHARACTERS else ""))
