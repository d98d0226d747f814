"""The playbook input contract: bad or hostile input is rejected before anything
acts, and alert text is carried as inert data. Runs the real redis_down playbook."""

import json

import pytest

from tests.harness import ansible
from tests.harness.ansible import unsafe

pytestmark = pytest.mark.integration

PLAYBOOK = "incident.remediation.redis_down"


@pytest.fixture
def canary(tmp_path):
    path = tmp_path / "canary"
    yield path
    assert not path.exists(), "injected code ran"


def base_input(tmp_path):
    return {
        "alert": {"status": "firing", "labels": {"alertname": "RedisDown"}, "fingerprint": "0123abcd"},
        "target": {"platform": "compose", "service": "redis", "project_src": str(tmp_path / "project")},
        "incident_records_dir": str(tmp_path / "incidents"),
    }


def with_change(document, path, value):
    *parents, leaf = path.split(".")
    node = document
    for key in parents:
        node = node[key]
    node[leaf] = value
    return document


HOSTILE = [
    ("target.service", "redis; touch {canary}"),
    ("target.service", "$(touch {canary})"),
    ("target.service", "{{{{ lookup('ansible.builtin.pipe', 'touch {canary}') }}}}"),
    ("target.project_src", "/srv/../tmp"),
    ("target.project_src", "relative/path"),
    ("target.project_name", "App Name"),
    ("target.host", "localhost,otherhost"),
    ("target.namespace", "default; touch {canary}"),
    ("target.endpoint", {"host": "127.0.0.1", "port": 70000}),
    ("target.endpoint", {"host": "`touch {canary}`", "port": 6379}),
    ("alert.labels", {"alertname": "RedisDown", "service": "redis\ntouch {canary}"}),
    ("alert.labels", {"alertname": "RedisDown", "bad-name": "x"}),
    ("alert.labels", {"alertname": "RedisDown", "__reserved": "x"}),
    ("alert.annotations", {"__reserved": "x"}),
    ("alert.labels", {"alertname": "{{{{ lookup('ansible.builtin.pipe', 'touch {canary}') }}}}"}),
    ("alert.labels", {"alertname": "RedisDown", "service": "x" * 1025}),
    ("alert.fingerprint", "not-hex"),
    ("alert.status", "exploding"),
    ("incident_id", "../../etc/cron.d/x"),
    ("thresholds", {"verify_timeout": "30; touch {canary}"}),
    ("thresholds", {"no_such_threshold": 1}),
]


@pytest.mark.parametrize(("path", "value"), HOSTILE, ids=[f"{p}={str(v)[:30]!r}" for p, v in HOSTILE])
def test_hostile_input_is_rejected_and_runs_nothing(tmp_path, canary, path, value):
    value = json.loads(json.dumps(value).replace("{canary}", str(canary)).replace("{{{{", "{{").replace("}}}}", "}}"))
    document = with_change(base_input(tmp_path), path, value)
    run = ansible.run_playbook(PLAYBOOK, unsafe(document), timeout=120)
    output = run.stdout + run.stderr
    assert run.returncode != 0
    assert "Rejected" in output and "Nothing was run" in output, output[-3000:]
    assert not (tmp_path / "incidents").exists(), "no incident may be opened for rejected input"
    assert "docker_compose_v2" not in output and "service_control" not in output


def test_unknown_platform_is_rejected_by_the_argument_spec(tmp_path):
    document = with_change(base_input(tmp_path), "target.platform", "bare-metal")
    run = ansible.run_playbook(PLAYBOOK, unsafe(document), timeout=120)
    assert run.returncode != 0
    assert "platform must be one of: compose, kubernetes, systemd" in run.stdout
    assert not (tmp_path / "incidents").exists()


def test_template_text_in_a_resolved_alert_is_recorded_verbatim_and_never_runs(tmp_path, canary):
    payload = f"{{{{ lookup('ansible.builtin.pipe', 'touch {canary}') }}}}"
    document = base_input(tmp_path)
    document["alert"].update(
        status="resolved",
        labels={"alertname": "RedisDown", "instance": payload},
        annotations={"summary": payload, "description": "line one\nline two; $(touch " + str(canary) + ")"},
    )
    run = ansible.run_playbook(PLAYBOOK, unsafe(document), timeout=120)
    assert run.returncode == 0, run.stdout[-3000:]
    (incident,) = (tmp_path / "incidents").iterdir()
    events = [json.loads(line) for line in (incident / "timeline.jsonl").read_text().splitlines()]
    assert [event["event"] for event in events] == ["alert_resolved"]
    assert events[0]["labels"]["instance"] == payload
    assert events[0]["annotations"]["summary"] == payload
    assert not (incident / "evidence").exists() or not any((incident / "evidence").iterdir())


def test_the_alert_is_also_taken_from_an_event_driven_ansible_event(tmp_path):
    document = base_input(tmp_path)
    del document["alert"]
    document["ansible_eda"] = {
        "event": {"alert": {"status": "resolved", "labels": {"alertname": "RedisConnectionFailure", "team": "cache"}}}
    }
    run = ansible.run_playbook(PLAYBOOK, unsafe(document), timeout=120)
    assert run.returncode == 0, run.stdout[-3000:]
    (incident,) = (tmp_path / "incidents").iterdir()
    (event,) = [json.loads(line) for line in (incident / "timeline.jsonl").read_text().splitlines()]
    assert event["event"] == "alert_resolved"
    assert event["labels"] == {"alertname": "RedisConnectionFailure", "team": "cache"}
