"""The evidence role against a real compose project and a real Alertmanager:
status, logs, resource usage, health results and the incident's active alerts
saved as timestamped files, secrets redacted, an unreachable Alertmanager
recorded rather than fatal."""

import json
import shutil
import socket
import subprocess
import sys
import uuid

import docker
import pytest
import yaml

from tests.harness import ansible
from tests.harness.alertmanager import alertmanager_server
from tests.harness.ansible import ANSIBLE_PLAYBOOK, REPO_ROOT, wait_for

pytestmark = pytest.mark.integration

SECRET = "hunter2"

# Redis that prints a secret at start-up and carries one in its environment.
OVERRIDE = {
    "services": {
        "redis": {
            "command": [
                "sh",
                "-c",
                f"echo 'connecting with password={SECRET}'; "
                "exec redis-server --bind 0.0.0.0 --protected-mode no --save ''",
            ],
            "environment": {"REDIS_PASSWORD": SECRET},
            "labels": {"incident-remediation.test": "1"},
        }
    }
}

ALERT = {
    "status": "firing",
    "labels": {"alertname": "RedisDown", "service": "redis", "severity": "critical"},
    "annotations": {"summary": "Redis unreachable for more than 2 minutes"},
    "fingerprint": "0ddba11",
}

ALERTMANAGER_ALERTS = [
    {"labels": ALERT["labels"], "annotations": ALERT["annotations"]},
    # Same alert name, another service: excluded by the service matcher.
    {"labels": {"alertname": "RedisDown", "service": "sessions", "severity": "critical"}},
    # Another alert on the same service: excluded by the alertname matcher.
    {"labels": {"alertname": "HighLatency", "service": "redis", "severity": "warning"}},
]

OPEN_INCIDENT = {
    "name": "Open the incident",
    "ansible.builtin.include_role": {"name": "incident.remediation.incident_context"},
    "vars": {"incident_context_playbook": "evidence_test"},
}
CHECK_REDIS = {
    "name": "Check Redis",
    "incident.remediation.cache_health": {"login_host": "127.0.0.1", "login_port": "{{ target.endpoint.port }}"},
    "register": "evidence_test_redis",
}


def evidence_playbook(health_results=None):
    """The role as a playbook uses it: the incident opened first and, for compose, a
    health check run and its result handed over by name."""
    capture = {"name": "Capture evidence", "ansible.builtin.include_role": {"name": "incident.remediation.evidence"}}
    tasks = [OPEN_INCIDENT]
    if health_results is not None:
        tasks.append(CHECK_REDIS)
        capture["vars"] = {"evidence_health_results": health_results}
    tasks.append(capture)
    return [{"name": "Gather evidence", "hosts": "{{ hosts_pattern | default('localhost') }}", "gather_facts": False,
             "tasks": tasks}]


REDIS_RESULT = {"redis": "{{ evidence_test_redis }}"}


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def compose_project(tmp_path_factory):
    """lab/compose/cache-app's Redis, up on a free loopback port; yields the target."""
    folder = tmp_path_factory.mktemp("project")
    shutil.copy(REPO_ROOT / "lab/compose/cache-app/compose.yaml", folder / "compose.yaml")
    (folder / "compose.override.yaml").write_text(yaml.safe_dump(OVERRIDE))
    redis_port = free_port()
    (folder / ".env").write_text(f"REDIS_PORT={redis_port}\nAPP_PORT={free_port()}\n")
    name = f"ir-test-evidence-{uuid.uuid4().hex[:8]}"
    compose = ["docker", "compose", "--project-name", name, "--project-directory", str(folder)]
    try:
        subprocess.run([*compose, "up", "-d", "--wait", "redis"], cwd=folder, check=True, capture_output=True,
                       timeout=120)
        yield {
            "platform": "compose",
            "service": "redis",
            "project_src": str(folder),
            "project_name": name,
            "endpoint": {"host": "127.0.0.1", "port": redis_port},
        }
    finally:
        subprocess.run([*compose, "down", "-v", "--timeout", "1"], cwd=folder, capture_output=True, timeout=120,
                       check=False)


@pytest.fixture(scope="module")
def alertmanager():
    with alertmanager_server(ALERTMANAGER_ALERTS) as server:
        yield server


def gather(tmp_path, target, health_results=REDIS_RESULT, **options):
    playbook = tmp_path / "evidence.yml"
    playbook.write_text(yaml.safe_dump(evidence_playbook(health_results), sort_keys=False))
    records = tmp_path / "incidents"
    run = ansible.run_playbook(
        playbook,
        {"alert": ALERT, "target": target, "incident_id": "evidence-test", "incident_records_dir": str(records),
         **options},
        timeout=180,
    )
    return run, records / "evidence-test" / "evidence"


def evidence_file(folder, name):
    (path,) = [p for p in folder.iterdir() if p.stem.split("-", 1)[1] == name]
    return path


def test_the_role_saves_status_logs_usage_health_and_the_incidents_alerts(tmp_path, compose_project, alertmanager):
    run, folder = gather(
        tmp_path,
        compose_project,
        evidence_alertmanager_url=alertmanager.url,
        evidence_alert_match_labels=["alertname", "service", "not_on_the_alert"],
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]

    names = sorted(p.name for p in folder.iterdir())
    # <UTC time>-<name>.<json|log>, e.g. 20261122T030211.104000Z-service-status.json
    assert all(len(name.split("-", 1)[0]) == len("20261122T030211.104000Z") for name in names), names
    assert {p.stem.split("-", 1)[1] for p in folder.iterdir()} == {
        "service-status", "service-logs", "resource-usage", "health-redis", "active-alerts",
    }

    status = json.loads(evidence_file(folder, "service-status").read_text())
    assert (status["service"], status["state"]) == ("redis", "running")
    instances = status.get("instances") or status["containers"]
    container_name = instances[0]["name"]

    logs = evidence_file(folder, "service-logs").read_text()
    assert "Ready to accept connections" in logs
    assert "password=[REDACTED]" in logs

    usage = json.loads(evidence_file(folder, "resource-usage").read_text())
    assert usage["platform"] == "compose"
    (row,) = usage["containers"]
    assert row["name"] == container_name
    assert row["memory_bytes"] > 0
    assert row["memory_limit_bytes"] >= row["memory_bytes"]
    assert 0 < row["memory_ratio"] < 1
    assert row["cpu_total_seconds"] > 0
    assert row["pids"] >= 1

    health = json.loads(evidence_file(folder, "health-redis").read_text())
    assert health["is_available"] is True
    assert health["status"] == "ok"

    alerts = json.loads(evidence_file(folder, "active-alerts").read_text())
    assert alerts["matchers"] == ['alertname="RedisDown"', 'service="redis"']
    assert alerts["count"] == 1
    (alert,) = alerts["alerts"]
    assert alert["labels"] == ALERT["labels"]
    assert alert["status"]["state"] == "active"
    assert alerts["source"] == alertmanager.url + "/api/v2/alerts"

    for path in folder.iterdir():
        assert SECRET not in path.read_text(), path.name
    assert SECRET not in run.stdout


def test_the_default_match_keeps_every_alert_of_the_same_name(tmp_path, compose_project, alertmanager):
    run, folder = gather(tmp_path, compose_project, evidence_alertmanager_url=alertmanager.url + "/",
                         evidence_resources=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert not [p for p in folder.iterdir() if "resource-usage" in p.name]
    alerts = json.loads(evidence_file(folder, "active-alerts").read_text())
    assert alerts["matchers"] == ['alertname="RedisDown"']
    assert sorted(a["labels"]["service"] for a in alerts["alerts"]) == ["redis", "sessions"]


def test_an_unreachable_alertmanager_is_recorded_not_fatal(tmp_path, compose_project):
    url = f"http://user:{SECRET}@127.0.0.1:{free_port()}"
    run, folder = gather(tmp_path, compose_project, evidence_alertmanager_url=url, evidence_alertmanager_timeout=2)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    text = evidence_file(folder, "active-alerts").read_text()
    assert text.startswith(f"Alertmanager at {url.replace(f'user:{SECRET}@', '')}/api/v2/alerts could not be read")
    assert "HTTP status -1" in text
    assert SECRET not in text
    assert SECRET not in run.stdout
    assert evidence_file(folder, "service-status").exists()


def test_a_bad_health_result_name_is_rejected_before_anything_is_saved(tmp_path, compose_project):
    (tmp_path / "bad.yml").write_text(yaml.safe_dump(evidence_playbook({"../escape": "{{ evidence_test_redis }}"})))
    run = ansible.run_playbook(
        tmp_path / "bad.yml",
        {"alert": ALERT, "target": compose_project, "incident_id": "bad", "incident_records_dir": str(tmp_path)},
    )
    assert run.returncode != 0
    assert "evidence_health_results names must be letters" in run.stdout
    assert not (tmp_path / "bad" / "evidence").exists()


@pytest.fixture
def systemd_host():
    """A container with systemd as PID 1 running demo-web.service (images/systemd), as the
    service_control_systemd scenario starts it; yields its name."""
    engine = docker.from_env()
    container = engine.containers.run(
        "incident-remediation/systemd:latest",
        name=f"ir-test-evidence-systemd-{uuid.uuid4().hex[:8]}",
        detach=True,
        cgroupns="host",
        volumes={"/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"}},
        tmpfs={"/run": "", "/run/lock": ""},
        labels={"incident-remediation.test": "1"},
    )
    try:
        wait_for(lambda: container.exec_run(["systemctl", "is-system-running"]).output.decode().strip(),
                 lambda state: state in ("running", "degraded"), timeout=60)
        yield container.name
    finally:
        container.remove(force=True)


def test_systemd_records_the_units_counters(tmp_path, systemd_host):
    playbook = tmp_path / "evidence.yml"
    playbook.write_text(yaml.safe_dump(evidence_playbook()))
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {
        "localhost": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
        "systemd-host": {"ansible_connection": "community.docker.docker", "ansible_host": systemd_host,
                         "ansible_python_interpreter": "/usr/bin/python3"},
    }}}))
    extra = {"target": {"platform": "systemd", "service": "demo-web", "host": "systemd-host"},
             "incident_id": "systemd", "incident_records_dir": str(tmp_path / "incidents")}
    run = subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", inventory, "-e", json.dumps(extra), "-e", "hosts_pattern=systemd-host",
         playbook], cwd=REPO_ROOT, capture_output=True, text=True, timeout=180, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    folder = tmp_path / "incidents" / "systemd" / "evidence"
    usage = json.loads(evidence_file(folder, "resource-usage").read_text())
    assert (usage["platform"], usage["unit"]) == ("systemd", "demo-web.service")
    assert int(usage["counters"]["MemoryCurrent"]) > 0
    # CPU accounting is off for units by default on this cgroup v1 host: systemd says so.
    assert usage["counters"]["CPUUsageNSec"] == "[not set]" or int(usage["counters"]["CPUUsageNSec"]) > 0
    assert usage["counters"]["MemoryMax"] == "infinity"
    assert "demo-web" in evidence_file(folder, "service-logs").read_text()
