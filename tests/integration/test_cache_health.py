"""cache_health against a real Redis (the project's image, in Docker)."""

import json

import pytest
import redis
from ansible_collections.incident.remediation.plugins.modules.cache_health import THRESHOLD_SPEC, check

from tests.harness import ansible
from tests.harness.docker import redis_server

pytestmark = pytest.mark.integration

THRESHOLDS = {name: spec["default"] for name, spec in THRESHOLD_SPEC.items()}


def params(port, **overrides):
    defaults = dict(
        login_host="127.0.0.1",
        login_port=port,
        login_user=None,
        login_password=None,
        db=0,
        tls=False,
        validate_certs=True,
        ca_cert=None,
        connect_timeout=1.0,
    )
    return {**defaults, **overrides}


@pytest.fixture(scope="module")
def server():
    with redis_server("--maxmemory-policy", "noeviction") as (port, container):
        yield port, container


@pytest.fixture
def client(server):
    port, _ = server
    connection = redis.Redis(port=port)
    connection.flushall()
    connection.config_set("maxmemory", 0)
    connection.config_resetstat()
    yield connection
    connection.close()


def test_healthy_server_is_ok_with_metrics(server, client):
    port, _ = server
    result = check(params(port), THRESHOLDS)
    assert result["status"] == "ok", result["reasons"]
    assert result["is_available"] is True
    assert result["reasons"] == []
    metrics = result["metrics"]
    assert 0 < metrics["ping_ms"] < 100
    assert metrics["redis_version"].startswith("7.")
    assert metrics["role"] == "master"
    assert metrics["used_memory"] > 0
    assert metrics["maxmemory"] == 0
    assert metrics["memory_ratio"] is None
    assert metrics["connected_clients"] >= 1


@pytest.mark.parametrize(("target_ratio", "status"), [(0.80, "ok"), (0.92, "warning"), (0.98, "critical")])
def test_memory_against_maxmemory(server, client, target_ratio, status):
    port, _ = server
    for index in range(20):  # 20 MB of data, so connection overheads barely move the ratio
        client.set(f"blob:{index}", b"x" * 1_000_000)
    used = client.info("memory")["used_memory"]
    client.config_set("maxmemory", int(used / target_ratio))
    result = check(params(port), THRESHOLDS)
    assert result["status"] == status, result["reasons"]
    assert result["metrics"]["memory_ratio"] == pytest.approx(target_ratio, abs=0.02)
    if status != "ok":
        assert result["reasons"][0].startswith("memory use is ")


def test_low_hit_rate_is_a_warning_only_with_enough_lookups(server, client):
    port, _ = server
    client.set("present", "1")
    for index in range(30):
        client.get("present")
        client.get(f"absent:{index}")
    for index in range(30):
        client.get(f"absent:more:{index}")
    small_sample = check(params(port), THRESHOLDS)
    assert small_sample["metrics"]["hit_rate"] == pytest.approx(30 / 90, abs=0.001)
    assert small_sample["status"] == "ok", "90 lookups are below hit_rate_min_sample"
    for index in range(20):
        client.get(f"absent:last:{index}")
    judged = check(params(port), THRESHOLDS)
    assert judged["status"] == "warning"
    assert judged["reasons"] == ["keyspace hit rate is 0.2727, below the warning threshold of 0.5"]


def test_password_and_acl_user():
    with redis_server("--requirepass", "s3cret-pass") as (port, _):
        admin = redis.Redis(port=port, password="s3cret-pass")
        admin.execute_command("ACL", "SETUSER", "monitor", "on", ">monitor-pass", "+ping", "+info")
        admin.close()
        refused = check(params(port, login_password="wrong"), THRESHOLDS)
        assert refused["status"] == "unknown"
        assert refused["is_available"] is False
        assert "refused the credentials" in refused["reasons"][0]
        with_password = check(params(port, login_password="s3cret-pass"), THRESHOLDS)
        assert with_password["status"] == "ok"
        least_privilege = check(params(port, login_user="monitor", login_password="monitor-pass"), THRESHOLDS)
        assert least_privilege["status"] == "ok", least_privilege["reasons"]


def test_hung_server_is_critical_within_the_timeout(server):
    with redis_server() as (port, container):
        container.kill(signal="SIGSTOP")
        try:
            result = check(params(port, connect_timeout=0.5), THRESHOLDS)
        finally:
            container.kill(signal="SIGCONT")
    assert result["status"] == "critical"
    assert result["is_available"] is False
    assert "did not answer PING within 0.5 s" in result["reasons"][0]


def test_module_through_ansible_with_group_defaults_hides_the_password(tmp_path):
    with redis_server("--requirepass", "pw-in-vault") as (port, _):
        playbook = tmp_path / "check.yml"
        out = tmp_path / "result.json"
        playbook.write_text(
            f"""
- hosts: localhost
  gather_facts: false
  module_defaults:
    group/incident.remediation.redis:
      login_port: {port}
      login_password: pw-in-vault
  tasks:
    - incident.remediation.cache_health:
      register: cache
    - ansible.builtin.copy:
        content: "{{{{ cache | to_json }}}}"
        dest: {out}
        mode: "0600"
"""
        )
        run = ansible.run_playbook(playbook, {}, timeout=120)
        assert run.returncode == 0, run.stdout + run.stderr
        result = json.loads(out.read_text())
        assert result["status"] == "ok"
        assert result["changed"] is False
        assert "pw-in-vault" not in run.stdout + run.stderr
        assert "pw-in-vault" not in out.read_text()
