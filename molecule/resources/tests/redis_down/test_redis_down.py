"""redis_down's own checks, on any platform: Redis answers PING and is not
frozen, the app that needs it (compose) is healthy again, and the evidence shows
the failed health check and Redis' logs. Host checks run on the host the
playbook runs on (target.host): the ops host for compose and kubernetes, the
systemd host itself for systemd. The runbook's checks are in ../test_runbook.py."""

import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import redis

PLATFORM = os.environ["SCENARIO_PLATFORM"]
FAULT = os.environ["SCENARIO_FAULT"]
SCENARIO = json.loads((Path(os.environ["IR_MOLECULE_PLATFORMS"]) / PLATFORM / "target.json").read_text())
TARGET = SCENARIO["target"]
ENDPOINT = TARGET["endpoint"]
# What the saved log lines show: Redis' own start, except for a Deployment scaled to 0, which has no pods left.
LOGS_SHOW = (
    "the Deployment 'redis' has no pods"
    if (PLATFORM, FAULT) == ("kubernetes", "stopped")
    else "Ready to accept connections"
)

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
    # Imported here: the client's API classes take most of a second to import, which the other platforms skip.
    from kubernetes import client, config  # noqa: PLC0415

    with config.new_client_from_config(os.environ["K8S_AUTH_KUBECONFIG"]) as api_client:
        pods = client.CoreV1Api(api_client).list_namespaced_pod(TARGET["namespace"], label_selector="app=redis")
    # The fault's scale to 0 returns once the Deployment counts no replica: its pod (and container) can
    # still be terminating for seconds, longer than a quick heal takes.
    (pod,) = [pod for pod in pods.items if pod.metadata.deletion_timestamp is None]
    assert {c.type: c.status for c in pod.status.conditions}["Ready"] == "True", pod.status
    return container_pid(host, [f"io.kubernetes.pod.uid={pod.metadata.uid}", "io.kubernetes.container.name=redis"])


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


def test_evidence_shows_the_failed_check_and_redis_logs(incident_dir):
    evidence = sorted((incident_dir / "evidence").iterdir())
    health = json.loads(next(p for p in evidence if p.name.endswith("-check.json")).read_text())
    assert health["is_available"] is False
    assert health["status"] == "critical"
    logs = next(p for p in evidence if p.name.endswith("-service-logs.log")).read_text()
    assert LOGS_SHOW in logs
