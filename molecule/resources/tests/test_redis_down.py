"""Verify a redis_down scenario: Redis healed, app healthy, evidence and
timeline written, idempotent second run, and an honest check-mode run."""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import redis

EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
PROJECT = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
FAULT = os.environ["FAULT"]
SCENARIO = json.loads((EPHEMERAL / "target.json").read_text())
TARGET = SCENARIO["target"]
HEALING_TIER = {"stopped": "start", "hung": "restart"}[FAULT]
FOUND_STATE = {"stopped": "stopped", "hung": "running"}[FAULT]


def redis_answers():
    client = redis.Redis(port=TARGET["endpoint"]["port"], socket_timeout=1, socket_connect_timeout=1)
    try:
        return client.ping()
    except redis.RedisError:
        return False
    finally:
        client.close()


def app_status():
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{SCENARIO['app_port']}/health", timeout=3) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.5)
    return False


def incident_dir():
    (folder,) = (EPHEMERAL / "incidents").iterdir()
    return folder


def timeline():
    lines = (incident_dir() / "timeline.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def redis_container(host):
    out = host.check_output(
        "docker ps -aq --filter label=com.docker.compose.project=%s --filter label=com.docker.compose.service=redis",
        TARGET["project_name"],
    )
    return out.split()[0]


def test_redis_answers_ping():
    assert redis_answers()


def test_redis_container_running_and_not_frozen(host):
    state = json.loads(host.check_output("docker inspect --format '{{json .State}}' %s", redis_container(host)))
    assert state["Running"] and not state["Paused"]
    # A frozen process shows as state T in the host's process table.
    assert host.check_output("ps -o stat= -p %s", str(state["Pid"]))[0] != "T"


def test_app_is_healthy_again():
    assert wait_for(lambda: app_status() == 200), "the app's /health did not return 200"


def test_timeline_records_detection_diagnosis_and_the_healing_tier():
    events = timeline()
    first_run = events[: next(i for i, e in enumerate(events) if e["event"] == "resolved") + 1]
    assert [e["event"] for e in first_run[:2]] == ["detected", "diagnosed"]
    assert first_run[1]["service_state"] == FOUND_STATE
    tiers = [e for e in first_run if e["event"] == "tier"]
    assert tiers[-1] == {**tiers[-1], "tier": HEALING_TIER, "result": "verified"}
    assert first_run[-1]["outcome"] == "healed"


def test_second_run_found_redis_healthy_and_did_nothing():
    resolved = [e for e in timeline() if e["event"] == "resolved"]
    assert len(resolved) >= 2
    assert resolved[-1]["outcome"] == "already_healthy"
    assert resolved[-1]["actions"] == []


def test_evidence_was_saved_before_acting():
    evidence = sorted((incident_dir() / "evidence").iterdir())
    status = json.loads(next(p for p in evidence if p.name.endswith("-service-status.json")).read_text())
    assert status["state"] == FOUND_STATE
    assert status["service"] == "redis"
    health = json.loads(next(p for p in evidence if p.name.endswith("-cache-health.json")).read_text())
    assert health["is_available"] is False
    assert health["status"] == "critical"
    logs = next(p for p in evidence if p.name.endswith("-service-logs.log")).read_text()
    assert "Ready to accept connections" in logs


def break_redis(host):
    if FAULT == "stopped":
        host.check_output("docker stop %s", redis_container(host))
    else:
        host.check_output("docker kill --signal STOP %s", redis_container(host))
    assert wait_for(lambda: not redis_answers(), timeout=10)


def repair_redis(host):
    if FAULT == "stopped":
        host.check_output("docker start %s", redis_container(host))
    else:
        host.check_output("docker kill --signal CONT %s", redis_container(host))
    assert wait_for(redis_answers)


@pytest.fixture
def broken_redis(host):
    break_redis(host)
    yield
    repair_redis(host)


def test_check_mode_reports_what_it_would_do_and_leaves_redis_broken(broken_redis, tmp_path):
    extra = {
        "target": TARGET,
        "incident_id": "check-mode",
        "incident_records_dir": str(tmp_path),
        "alert": {"status": "firing", "labels": {"alertname": "RedisDown"}},
    }
    (tmp_path / "vars.json").write_text(json.dumps(extra))
    env = dict(os.environ, ANSIBLE_CONFIG=str(PROJECT / "ansible.cfg"))
    run = subprocess.run(
        [Path(sys.executable).with_name("ansible-playbook"), "--check", "incident.remediation.redis_down",
         "-e", f"@{tmp_path / 'vars.json'}", "-e", f"ansible_python_interpreter={sys.executable}"],
        cwd=PROJECT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    events = [json.loads(line) for line in (tmp_path / "check-mode" / "timeline.jsonl").read_text().splitlines()]
    (outcome,) = [event for event in events if event["event"] == "dry_run_reported"]
    assert [event["result"] for event in events if event["event"] == "tier"] == ["would_run"]
    assert not [event for event in events if event["event"] in ("resolved", "escalated")]
    assert outcome["dry_run"] is True
    assert outcome["actions"] == [
        {"tier": HEALING_TIER, "result": "would_run", "why": outcome["actions"][0]["why"], "would_change": True}
    ]
    assert not redis_answers(), "check mode must leave Redis broken"
