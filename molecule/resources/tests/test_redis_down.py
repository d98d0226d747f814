"""Verify a redis_down scenario on any platform: Redis healed and not frozen,
evidence and timeline written, an idempotent second run, and an honest
check-mode run on a broken Redis.

The scenario names the playbook, platform and fault (SCENARIO_* in its
molecule.yml); create.yml wrote the target (target.json). Host checks run on
the host the playbook runs on (target.host): the ops host for compose and
kubernetes, the systemd host itself for systemd."""

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
from kubernetes import client, config

EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
PROJECT = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
INVENTORY = Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent
PLAYBOOK = os.environ["SCENARIO_PLAYBOOK"]
PLATFORM = os.environ["SCENARIO_PLATFORM"]
FAULT = os.environ["SCENARIO_FAULT"]
SCENARIO = json.loads((EPHEMERAL / "target.json").read_text())
TARGET = SCENARIO["target"]
ENDPOINT = TARGET["endpoint"]
HEALING_TIER = {"stopped": "start", "hung": "restart"}[FAULT]
# The service state the evidence shows: a frozen pod fails its readiness probe.
FOUND_STATE = {"stopped": "stopped", "hung": "unhealthy" if PLATFORM == "kubernetes" else "running"}[FAULT]
# What the saved log lines show: Redis' own start, except for a Deployment scaled to 0, which has no pods left.
LOGS_SHOW = (
    "the Deployment 'redis' has no pods"
    if (PLATFORM, FAULT) == ("kubernetes", "stopped")
    else "Ready to accept connections"
)
ANSIBLE_PLAYBOOK = Path(sys.executable).with_name("ansible-playbook")

testinfra_hosts = [TARGET["host"]]


def ping_from_ops_host(_host):
    client = redis.Redis(host=ENDPOINT["host"], port=ENDPOINT["port"], socket_timeout=1, socket_connect_timeout=1)
    try:
        return client.ping()
    except redis.RedisError:
        return False
    finally:
        client.close()


def ping_on_target_host(host):
    """Redis listens on the target host's own loopback: ask it there."""
    reply = host.run("timeout 2 redis-cli -h %s -p %s ping", ENDPOINT["host"], str(ENDPOINT["port"]))
    return reply.stdout.strip() == "PONG"


def container_pid(host, labels):
    """The main PID of the one container with these labels, asserted running and not paused."""
    filters = " ".join(f"--filter label={label}" for label in labels)
    (container,) = host.check_output(f"docker ps -aq {filters}").split()
    state = json.loads(host.check_output("docker inspect --format '{{json .State}}' %s", container))
    assert state["Running"] and not state["Paused"], state
    return state["Pid"]


def compose_redis_pid(host):
    return container_pid(
        host,
        [f"com.docker.compose.project={TARGET['project_name']}", f"com.docker.compose.service={TARGET['service']}"],
    )


def systemd_redis_pid(host):
    assert host.service(TARGET["service"]).is_running
    return int(host.check_output("systemctl show --property=MainPID --value %s", TARGET["service"]))


def kubernetes_redis_pid(host):
    with config.new_client_from_config(os.environ["K8S_AUTH_KUBECONFIG"]) as api_client:
        pods = client.CoreV1Api(api_client).list_namespaced_pod(TARGET["namespace"], label_selector="app=redis")
    (pod,) = pods.items
    assert {c.type: c.status for c in pod.status.conditions}["Ready"] == "True", pod.status
    return container_pid(
        host, [f"io.kubernetes.pod.namespace={TARGET['namespace']}", "io.kubernetes.container.name=redis"]
    )


PING = {"compose": ping_from_ops_host, "systemd": ping_on_target_host, "kubernetes": ping_from_ops_host}[PLATFORM]
REDIS_PID = {"compose": compose_redis_pid, "systemd": systemd_redis_pid, "kubernetes": kubernetes_redis_pid}[PLATFORM]


def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.5)
    return False


def app_status():
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{SCENARIO['app_port']}/health", timeout=3) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def incident_dir():
    (folder,) = (EPHEMERAL / "incidents").iterdir()
    return folder


def timeline():
    lines = (incident_dir() / "timeline.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def ansible_playbook(*args, timeout=300):
    return subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", str(INVENTORY), *args],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_redis_answers_ping(host):
    assert PING(host)


def test_redis_is_ready_and_not_frozen(host):
    pid = REDIS_PID(host)
    assert pid > 0
    # A process frozen by SIGSTOP is in state T.
    status = host.file(f"/proc/{pid}/status").content_string
    (state,) = [line for line in status.splitlines() if line.startswith("State:")]
    assert state.split()[1] != "T", state


@pytest.mark.skipif("app_port" not in SCENARIO, reason="no app on this platform")
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
    assert status["service"] == TARGET["service"]
    health = json.loads(next(p for p in evidence if p.name.endswith("-check.json")).read_text())
    assert health["is_available"] is False
    assert health["status"] == "critical"
    logs = next(p for p in evidence if p.name.endswith("-service-logs.log")).read_text()
    assert LOGS_SHOW in logs


def run_fault(action):
    """molecule/resources/fault.yml, the scenario's prepare step: break or repair Redis."""
    run = ansible_playbook(str(PROJECT / "molecule/resources/fault.yml"), "-e", f"fault_action={action}")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]


@pytest.fixture
def broken_redis(host):
    run_fault("break")
    assert not PING(host)
    yield
    run_fault("repair")
    assert PING(host)


def test_check_mode_reports_what_it_would_do_and_leaves_redis_broken(host, broken_redis, tmp_path):
    extra = {
        "target": TARGET,
        "incident_id": "check-mode",
        "incident_records_dir": str(tmp_path),
        "alert": {"status": "firing", "labels": {"alertname": os.environ["SCENARIO_ALERTNAME"]}},
    }
    (tmp_path / "vars.json").write_text(json.dumps(extra))
    run = ansible_playbook("--check", PLAYBOOK, "-e", f"@{tmp_path / 'vars.json'}")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    events = [json.loads(line) for line in (tmp_path / "check-mode" / "timeline.jsonl").read_text().splitlines()]
    (outcome,) = [event for event in events if event["event"] == "dry_run_reported"]
    assert [event["result"] for event in events if event["event"] == "tier"] == ["would_run"]
    assert not [event for event in events if event["event"] in ("resolved", "escalated")]
    assert outcome["dry_run"] is True
    assert outcome["actions"] == [
        {"tier": HEALING_TIER, "result": "would_run", "why": outcome["actions"][0]["why"], "would_change": True}
    ]
    assert not PING(host), "check mode must leave Redis broken"
