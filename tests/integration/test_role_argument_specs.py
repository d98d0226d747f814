"""Every role rejects bad input at role start, with a message naming the option,
before anything acts: its meta/argument_specs.yml (types, choices, required), or
for checks a spec cannot express, the role's first assert."""

import json

import pytest

from tests.harness import ansible

pytestmark = pytest.mark.integration

INCIDENT = {
    "id": "argspec-test",
    "dir": "/nonexistent/argspec-test",
    "playbook": "test",
    "alertname": "Test",
    "alert": {},
    "resolved": False,
    "severity": "warning",
    "target": {"platform": "compose", "service": "redis", "host": "localhost", "project_src": "/nonexistent"},
    "dry_run": True,
    "thresholds": {},
}

BAD_INPUT = [
    ("incident_context", {"incident_context_playbook": "x", "target": {"service": "redis"}}, "platform"),
    ("incident_context", {"incident_context_playbook": "x", "dry_run": "maybe"}, "incident_context_dry_run"),
    ("service_control", {"service_control_action": "explode"}, "service_control_action"),
    ("service_control", {"service_control_action": "scale", "service_control_replicas": "x"}, "_replicas"),
    ("runbook", {"runbook_name": "x", "runbook_check": "/x.yml", "runbook_tiers": [{"name": "x"}]}, "reason"),
    ("runbook", {"runbook_name": "x", "runbook_tiers": []}, "runbook_check"),
    (
        "runbook",
        {
            "runbook_name": "x",
            "runbook_check": "/x.yml",
            "runbook_tiers": [{"name": "x", "reason": "y", "acton": "start"}],
        },
        "acton",
    ),
    ("evidence", {"evidence_log_lines": "lots"}, "evidence_log_lines"),
    ("notify", {"notify_event": "panic"}, "notify_event"),
    ("incident_report", {"incident_report_incident_id": "../../etc"}, "Nothing was written"),
]


@pytest.mark.parametrize(("role", "role_vars", "named"), BAD_INPUT, ids=[f"{r}-{n}" for r, _, n in BAD_INPUT])
def test_bad_input_is_rejected_at_role_start(tmp_path, role, role_vars, named):
    canary = tmp_path / "ran"
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        f"""
- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.include_role:
        name: incident.remediation.{role}
      vars: {json.dumps(role_vars)}
    - ansible.builtin.file:
        path: {canary}
        state: touch
        mode: "0600"
"""
    )
    run = ansible.run_playbook(playbook, {"incident": INCIDENT}, timeout=120)
    assert run.returncode != 0
    assert "Validating arguments against arg spec" in run.stdout
    if role != "incident_report":  # its options are all strings; its assert does the checking
        assert "Validation of arguments failed" in run.stdout, run.stdout[-2000:]
    assert named in run.stdout
    assert not canary.exists()
