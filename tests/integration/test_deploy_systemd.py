"""extensions/systemd/remediate.service on a real systemd (the project's systemd host,
images/systemd, with D-Bus and polkit added): installed as docs/deploying.md says, it
answers /healthz and heals a stopped redis-server unit on the same host as its own
unprivileged user, through the polkit rule and nothing else."""

import json
import subprocess
import uuid
from functools import partial

import httpx
import pytest
import yaml

from tests.harness.adapter import Adapter, alert, free_port, webhook
from tests.harness.ansible import REPO_ROOT, wait_for
from tests.harness.deploy import docker, remediate_bundle
from tests.harness.docker import TEST_LABELS

pytestmark = pytest.mark.integration

SYSTEMD = REPO_ROOT / "extensions" / "systemd"
HOST_IMAGE = "incident-remediation/systemd-remediate-host:latest"
HOST_CONTEXT = REPO_ROOT / "tests" / "integration" / "deploy" / "systemd-host"
# The install, as docs/deploying.md gives it, from the bundle copied to /tmp/bundle.
INSTALL = """
useradd --system --home-dir /var/lib/remediate --shell /usr/sbin/nologin remediate
python3 -m venv /opt/remediate
/opt/remediate/bin/pip install --quiet --no-index --no-deps \
  /tmp/bundle/wheels/deps/*.whl /tmp/bundle/wheels/adapter/*.whl
mkdir -p /usr/share/ansible/collections
cp -r /tmp/bundle/collections/ansible_collections /usr/share/ansible/collections/
/opt/remediate/bin/ansible-galaxy collection install --offline -p /usr/share/ansible/collections \
  /tmp/bundle/collections/incident-remediation.tar.gz
install -m 0644 /tmp/systemd/remediate.service /etc/systemd/system/remediate.service
install -m 0644 /tmp/systemd/remediate.rules /etc/polkit-1/rules.d/50-remediate.rules
install -d -m 0755 /etc/remediate
install -m 0644 /tmp/config/settings.yml /tmp/config/routes.yml /tmp/config/inventory.yml /etc/remediate/
install -m 0640 -g remediate /tmp/config/token /etc/remediate/token
systemctl daemon-reload
systemctl enable --now remediate.service
"""


@pytest.fixture
def systemd_host(tmp_path):
    """A booted systemd container (as molecule/resources/systemd/up.yml starts one), the
    adapter's port published on a free loopback port."""
    docker("build", "--quiet", "--tag", HOST_IMAGE, str(HOST_CONTEXT))
    name = f"ir-test-deploy-systemd-{uuid.uuid4().hex[:8]}"
    port = free_port()
    labels = [arg for key, value in TEST_LABELS.items() for arg in ("--label", f"{key}={value}")]
    docker(
        "run", "--detach", "--name", name, *labels,
        "--cgroupns=host", "--volume", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
        "--tmpfs", "/run", "--tmpfs", "/run/lock",
        "--publish", f"127.0.0.1:{port}:9787",
        HOST_IMAGE,
    )  # fmt: skip
    try:
        wait_for(partial(system_state, name), lambda state: state in ("running", "degraded"), timeout=60, interval=1)
        yield name, port
    finally:
        subprocess.run(["docker", "exec", name, "journalctl", "-u", "remediate", "--no-pager"], check=False)
        subprocess.run(["docker", "rm", "--force", name], capture_output=True, check=False, timeout=60)


def write_config(folder, token: str) -> None:
    folder.mkdir()
    settings = {
        # Published by Docker on the test machine's loopback only.
        "listen_host": "0.0.0.0",
        "store": "sqlite:////var/lib/remediate/remediate.db",
        "state_dir": "/var/lib/remediate/runs",
        "incident_records_dir": "/var/lib/remediate/incidents",
        "routes_file": "/etc/remediate/routes.yml",
        "notify_required": False,
        "auth": {"bearer_token_file": "/etc/remediate/token"},
        "executor": {"inventory": "/etc/remediate/inventory.yml"},
    }
    route = {
        "alertname": "RedisDown",
        "playbook": "incident.remediation.redis_down",
        "severity": "warning",
        "mode": "auto",
        "target": {
            "platform": {"value": "systemd"},
            "host": {"value": "localhost"},
            "service": {"value": "redis-server"},
            "endpoint": {"host": {"value": "127.0.0.1"}, "port": {"value": 6379}},
        },
    }
    local = {"ansible_connection": "local", "ansible_python_interpreter": "/opt/remediate/bin/python"}
    (folder / "settings.yml").write_text(yaml.safe_dump(settings))
    (folder / "routes.yml").write_text(yaml.safe_dump({"version": 1, "routes": [route]}))
    (folder / "inventory.yml").write_text(yaml.safe_dump({"all": {"hosts": {"localhost": local}}}))
    (folder / "token").write_text(token + "\n")


def healthz(adapter: Adapter) -> dict | None:
    try:
        return httpx.get(adapter.url + "/healthz", timeout=2).json()
    except httpx.HTTPError:
        return None


def system_state(container: str) -> str:
    return host(container, "systemctl", "is-system-running", "--wait").stdout.strip()


def host(container: str, *command: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["docker", "exec", container, *command], capture_output=True, text=True, timeout=120, check=False
    )


def test_the_unit_heals_a_stopped_redis_server_unit(tmp_path, systemd_host):
    container, port = systemd_host
    token = uuid.uuid4().hex
    write_config(tmp_path / "config", token)
    remediate_bundle(tmp_path / "bundle")
    for source, target in ((tmp_path / "bundle", "/tmp/bundle"), (tmp_path / "config", "/tmp/config")):
        docker("cp", str(source), f"{container}:{target}")
    docker("cp", str(SYSTEMD), f"{container}:/tmp/systemd")
    docker("exec", container, "sh", "-ec", INSTALL, timeout=600)
    # Installed, the unit passes systemd's own checks (ExecStart= there and executable, users, directives).
    verify = host(container, "systemd-analyze", "verify", "/etc/systemd/system/remediate.service")
    assert verify.returncode == 0 and "remediate.service" not in verify.stderr, verify.stderr

    adapter = Adapter(tmp_path / "config", tmp_path / "config" / "settings.yml", port, token, tmp_path / "records")
    assert docker("exec", container, "systemctl", "is-active", "remediate") == "active"
    assert wait_for(lambda: healthz(adapter), bool, timeout=60) == {"status": "ok", "queue_depth": 0}
    # Its own user, with the hardening in force.
    shown = docker("exec", container, "systemctl", "show", "remediate", "--property=User,NoNewPrivileges,ProtectSystem")
    assert set(shown.splitlines()) == {"User=remediate", "NoNewPrivileges=yes", "ProtectSystem=strict"}
    main_pid = docker("exec", container, "systemctl", "show", "remediate", "--property=MainPID", "--value")
    assert docker("exec", container, "stat", "-c", "%U", f"/proc/{main_pid}") == "remediate"
    # The polkit rule lets it manage the units it names, and no other.
    refused = host(container, "setpriv", "--reuid=remediate", "--regid=remediate", "--clear-groups",
                   "systemctl", "restart", "demo-web.service")  # fmt: skip
    assert refused.returncode != 0 and "authentication required" in refused.stderr.lower(), refused.stderr

    docker("exec", container, "systemctl", "stop", "redis-server")
    assert host(container, "redis-cli", "ping").stdout.strip() != "PONG"
    response = adapter.post("/api/v1/alertmanager", webhook([alert("RedisDown", "redis-server")]))
    assert response.status_code == 200, response.text
    runs = adapter.wait_runs_final(timeout=300)
    assert [(run["playbook"], run["state"], run["result"]) for run in runs] == [
        ("incident.remediation.redis_down", "successful", "healed")
    ]
    assert docker("exec", container, "systemctl", "is-active", "redis-server") == "active"
    assert docker("exec", container, "redis-cli", "ping") == "PONG"
    incident = runs[0]["incident_id"]
    timeline = docker("exec", container, "cat", f"/var/lib/remediate/incidents/{incident}/timeline.jsonl")
    outcomes = [event for event in map(json.loads, timeline.splitlines()) if "outcome" in event]
    assert [(event["event"], event["outcome"]) for event in outcomes] == [("resolved", "healed")]
    # The evidence includes the unit's journal, which its user reads as a member of systemd-journal.
    logs = docker(
        "exec", container, "sh", "-c", f"cat /var/lib/remediate/incidents/{incident}/evidence/*-service-logs.log"
    )
    assert "redis-server" in logs
