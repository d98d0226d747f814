"""The escalation policy is one file (the notify role's defaults) that the notify role
and the adapter both read; each has its own override matching (Jinja in the role,
Python in the adapter), so this runs the real role for a table of cases and checks
that both give the same steps: the shipped policy, and a policy written to catch
the corners (unsorted steps, overrides by playbook only or alert name only, two
overrides matching, a severity no override names)."""

import json

import pytest
import yaml
from remediate.safety import EscalationPolicy

from tests.harness import ansible

pytestmark = pytest.mark.integration

SHIPPED = ansible.REPO_ROOT / "roles" / "notify" / "defaults" / "main.yml"
CORNERS = {
    "notify_escalation_policy": {
        "critical": {
            "channels": ["webhook"],
            "slack_channel": "#c",
            "steps": [
                {"after_minutes": 20, "who": "lead", "how": "page"},
                {"after_minutes": 0, "who": "primary", "how": "page"},
                {"after_minutes": 5, "who": "secondary", "how": "page"},
            ],
        },
        "warning": {
            "channels": ["webhook"],
            "slack_channel": "#w",
            "steps": [{"after_minutes": 0, "who": "on-call", "how": "chat"}],
        },
        "info": {"channels": ["webhook"], "slack_channel": "#i", "steps": []},
    },
    "notify_escalation_overrides": [
        {
            "name": "by-playbook",
            "severities": ["critical"],
            "playbooks": ["database_down"],
            "steps": [
                {"after_minutes": 10, "who": "DBA", "how": "page"},
                {"after_minutes": 0, "who": "a", "how": "page"},
            ],
        },
        {
            "name": "by-alertname",
            "severities": ["critical", "warning"],
            "alertnames": ["DiskFull", "DatabaseDown"],
            "steps": [{"after_minutes": 0, "who": "storage on-call", "how": "chat"}],
        },
        {
            "name": "never-first",
            "severities": ["critical"],
            "playbooks": ["database_down"],
            "alertnames": ["DiskFull"],
            "steps": [{"after_minutes": 0, "who": "nobody", "how": "email"}],
        },
    ],
}
# (severity, playbook, alertname)
CASES = [
    ("critical", "incident.remediation.redis_down", "RedisDown"),
    ("critical", "incident.remediation.database_down", "DatabaseDown"),
    ("critical", "incident.remediation.database_down", "SomethingElse"),
    ("critical", "incident.remediation.redis_down", "DatabaseDown"),
    ("critical", "incident.remediation.disk_full", "DiskFull"),
    ("warning", "incident.remediation.db_pool_exhaustion", "DatabaseConnectionPoolExhaustion"),
    ("warning", "incident.remediation.db_latency", "Unrelated"),
    ("warning", "incident.remediation.database_down", "DatabaseDown"),
    ("warning", "incident.remediation.disk_full", "DiskFull"),
    ("info", "incident.remediation.database_down", "DatabaseDown"),
    ("info", "incident.remediation.cache_hit_rate", "LowCacheHitRate"),
]


def role_schedules(tmp_path, policy_file):
    """notify_escalation_schedule of the real notify role for each case."""
    tasks = []
    for index, (severity, playbook, alertname) in enumerate(CASES):
        incident = {
            "id": f"0000000{index:x}-20261122030000",
            "dir": str(tmp_path / "incidents" / str(index)),
            "playbook": playbook.rsplit(".", 1)[-1],
            "alertname": alertname,
            "severity": severity,
            "alert": {"status": "firing", "labels": {"alertname": alertname}, "annotations": {}, "startsAt": ""},
            "resolved": False,
            "target": {"platform": "compose", "service": "svc", "host": "localhost"},
            "dry_run": True,
        }
        tasks.append(
            {
                "name": f"Notify {index}",
                "vars": {"incident": incident, "notify_event": "update"},
                "ansible.builtin.include_role": {"name": "incident.remediation.notify"},
            }
        )
        tasks.append(
            {
                "name": f"Save schedule {index}",
                "ansible.builtin.copy": {
                    "content": "{{ notify_escalation_schedule | to_json }}",
                    "dest": str(tmp_path / f"schedule-{index}.json"),
                    "mode": "0600",
                },
            }
        )
    play = [
        {
            "name": "Schedules",
            "hosts": "localhost",
            "gather_facts": False,
            "vars_files": [str(policy_file)],
            "tasks": tasks,
        }
    ]
    playbook = tmp_path / "schedules.yml"
    playbook.write_text(json.dumps(play))
    run = ansible.run_playbook(playbook, {}, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:]
    return [
        [(step["after_minutes"], step["who"], step["how"]) for step in json.loads(path.read_text())]
        for path in (tmp_path / f"schedule-{index}.json" for index in range(len(CASES)))
    ]


@pytest.mark.parametrize("which", ["shipped", "corners"])
def test_the_role_and_the_adapter_give_the_same_steps(tmp_path, which):
    policy_file = SHIPPED
    if which == "corners":
        policy_file = tmp_path / "policy.yml"
        policy_file.write_text(yaml.safe_dump(CORNERS))
    policy = EscalationPolicy(policy_file)
    adapter = [
        [(int(step["after_minutes"]), step["who"], step["how"]) for step in policy.steps(*case)] for case in CASES
    ]
    assert role_schedules(tmp_path, policy_file) == adapter
    if which == "corners":  # the table reaches every corner it is meant to
        assert adapter[0] == [(0, "primary", "page"), (5, "secondary", "page"), (20, "lead", "page")]
        assert adapter[1] == [(0, "a", "page"), (10, "DBA", "page")]
        assert adapter[3] == adapter[4] == [(0, "storage on-call", "chat")]
        assert adapter[9] == []
