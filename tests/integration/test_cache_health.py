"""cache_health against a real Redis (the project's image, in Docker)."""

import contextlib
import json

import pytest
import redis
from ansible_collections.incident.remediation.plugins.modules.cache_health import THRESHOLD_SPEC, check

from tests.harness import ansible
from tests.harness.ansible import wait_for
from tests.harness.docker import docker_network, redis_server
from tests.harness.tls import write_tls_files

pytestmark = pytest.mark.integration

THRESHOLDS = {name: spec.get("default") for name, spec in THRESHOLD_SPEC.items()}


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
        client_cert=None,
        client_key=None,
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
    assert 0 < metrics["connect_ms"] < 1000
    assert metrics["redis_version"].startswith("7.")
    assert metrics["role"] == "master"
    assert metrics["used_memory"] > 0
    assert metrics["maxmemory"] == 0
    assert metrics["memory_ratio"] is None
    assert metrics["connected_clients"] >= 1
    assert metrics["maxclients"] == 10000
    assert metrics["clients_ratio"] == pytest.approx(metrics["connected_clients"] / 10000)
    assert metrics["rejected_connections"] == 0
    assert metrics["rdb_last_bgsave_status"] == "ok"
    assert metrics["aof_enabled"] is False
    assert metrics["aof_last_write_status"] is None
    assert metrics["connected_replicas"] == 0
    assert metrics["master_link_status"] is None
    assert set(result["metrics"]) == set(check(params(1), THRESHOLDS)["metrics"]), "same keys when unreachable"


def test_last_save_status_ok_after_a_background_save(server, client):
    port, _ = server
    client.set("saved", "1")
    client.bgsave()
    wait_for(lambda: client.info("persistence"), lambda info: info["rdb_bgsave_in_progress"] == 0, timeout=30)
    result = check(params(port), THRESHOLDS)
    assert result["status"] == "ok", result["reasons"]
    assert result["metrics"]["rdb_last_bgsave_status"] == "ok"
    assert result["metrics"]["rdb_changes_since_last_save"] == 0


def test_failed_background_save_is_critical():
    # /proc is not writable: the save's temporary file cannot be created.
    with redis_server("--dir", "/proc") as (port, _):
        admin = redis.Redis(port=port)
        admin.set("unsaved", "1")
        admin.bgsave()
        wait_for(lambda: admin.info("persistence"), lambda info: info["rdb_bgsave_in_progress"] == 0, timeout=30)
        admin.close()
        result = check(params(port), THRESHOLDS)
    assert result["status"] == "critical"
    assert result["is_available"] is True
    assert result["metrics"]["rdb_last_bgsave_status"] == "err"
    (reason,) = result["reasons"]
    assert reason.startswith("the last RDB background save failed")


def test_append_only_file_status_is_reported_when_on():
    with redis_server("--appendonly", "yes") as (port, _):
        result = check(params(port), THRESHOLDS)
    assert result["status"] == "ok", result["reasons"]
    assert result["metrics"]["aof_enabled"] is True
    assert result["metrics"]["aof_last_write_status"] == "ok"


def _hold(port, count):
    """count open client connections."""
    held = []
    for _ in range(count):
        connection = redis.Redis(port=port, single_connection_client=True)
        connection.ping()
        held.append(connection)
    return held


def test_clients_against_maxclients_and_rejected_connections():
    with redis_server("--maxclients", "10") as (port, _):
        admin = redis.Redis(port=port, single_connection_client=True)  # counts as one client
        settled = wait_for(lambda: admin.info("clients")["connected_clients"], lambda count: count == 1)
        assert settled == 1
        held = _hold(port, 7)  # 8 with admin, 9 with the check's own connection: 0.9
        warned = check(params(port), THRESHOLDS)
        assert warned["metrics"]["maxclients"] == 10
        assert warned["metrics"]["connected_clients"] == 9
        assert warned["status"] == "warning", warned["reasons"]
        assert warned["reasons"] == ["client use (9 of maxclients 10) is 0.9, above the warning threshold of 0.8"]

        held += _hold(port, 1)  # the check's connection is the tenth: 1.0
        full = check(params(port), THRESHOLDS)
        assert full["status"] == "critical"
        assert full["metrics"]["clients_ratio"] == 1.0

        held += _hold(port, 1)  # all ten taken: the check itself is refused
        refused = check(params(port), THRESHOLDS)
        assert refused["status"] == "critical"
        assert refused["is_available"] is False
        assert "maxclients is reached" in refused["reasons"][0]

        for connection in held:
            connection.close()
        wait_for(lambda: admin.info("clients")["connected_clients"], lambda count: count == 1)
        after = check(params(port), THRESHOLDS)
        admin.close()
    assert after["status"] == "warning"
    assert after["metrics"]["rejected_connections"] == 1
    (reason,) = after["reasons"]
    assert reason.startswith("1 connections were refused because maxclients (10) was reached")


def test_replica_link_up_then_down_when_the_master_stops():
    with (
        docker_network() as network,
        redis_server(network=network) as (master_port, master),
        redis_server("--replicaof", master.name, "6379", network=network) as (replica_port, _),
    ):
        redis.Redis(port=master_port).set("replicated", "1")
        linked = wait_for(lambda: check(params(replica_port), THRESHOLDS), lambda r: r["status"] == "ok", timeout=30)
        metrics = linked["metrics"]
        assert metrics["role"] == "slave"
        assert metrics["master_host"] == master.name
        assert metrics["master_port"] == 6379
        assert metrics["master_link_status"] == "up"
        assert 0 <= metrics["master_last_io_seconds_ago"] <= 30
        assert metrics["master_sync_in_progress"] is False
        on_master = check(params(master_port), THRESHOLDS)
        assert on_master["metrics"]["connected_replicas"] == 1
        assert on_master["metrics"]["master_link_status"] is None

        master.stop(timeout=2)
        down = wait_for(
            lambda: check(params(replica_port), THRESHOLDS), lambda r: r["status"] == "critical", timeout=30
        )
    assert down["is_available"] is True, "the replica still answers; its link is what failed"
    assert down["metrics"]["master_link_status"] == "down"
    assert down["metrics"]["master_last_io_seconds_ago"] is None
    (reason,) = down["reasons"]
    assert reason.startswith(f"the replica's link to its master {master.name}:6379 is down")


TLS_ARGS = (
    "--tls-port", "6379", "--port", "0",
    "--tls-cert-file", "/tls/server.crt", "--tls-key-file", "/tls/server.key", "--tls-ca-cert-file", "/tls/ca.crt",
)  # fmt: skip


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    return write_tls_files(tmp_path_factory.mktemp("tls"))


def tls_params(port, files, **overrides):
    return params(port, **{"tls": True, "ca_cert": str(files.ca_cert), **overrides})


@contextlib.contextmanager
def tls_server(files, auth_clients):
    client_cert = dict(client_cert=str(files.client_cert), client_key=str(files.client_key))
    with redis_server(
        *TLS_ARGS,
        "--tls-auth-clients",
        auth_clients,
        volumes={str(files.folder): {"bind": "/tls", "mode": "ro"}},
        ready=lambda port: check(tls_params(port, files, **client_cert), THRESHOLDS)["is_available"],
    ) as (port, _):
        yield port


def test_tls_with_the_right_ca_is_ok_and_a_wrong_ca_is_reported(tls_files):
    with tls_server(tls_files, "no") as port:
        verified = check(tls_params(port, tls_files), THRESHOLDS)
        wrong_ca = check(tls_params(port, tls_files, ca_cert=str(tls_files.other_ca_cert)), THRESHOLDS)
        unverified = check(
            tls_params(port, tls_files, ca_cert=str(tls_files.other_ca_cert), validate_certs=False), THRESHOLDS
        )
        plain = check(params(port), THRESHOLDS)
    assert verified["status"] == "ok", verified["reasons"]
    assert verified["is_available"] is True
    assert verified["checked"] == f"rediss://127.0.0.1:{port}/0"
    assert wrong_ca["status"] == "unknown"
    assert wrong_ca["is_available"] is False
    assert "CERTIFICATE_VERIFY_FAILED" in wrong_ca["error"]
    assert wrong_ca["reasons"][0].startswith(f"the TLS handshake with Redis at 127.0.0.1:{port} failed")
    assert unverified["status"] == "ok", unverified["reasons"]
    assert plain["status"] == "critical"
    assert plain["reasons"][0].endswith("if the server only accepts TLS, set tls to true")


def test_mutual_tls_needs_the_client_certificate(tls_files):
    with tls_server(tls_files, "yes") as port:
        without = check(tls_params(port, tls_files), THRESHOLDS)
        with_cert = check(
            tls_params(port, tls_files, client_cert=str(tls_files.client_cert), client_key=str(tls_files.client_key)),
            THRESHOLDS,
        )
    assert without["status"] == "unknown"
    assert without["is_available"] is False
    assert "the TLS handshake" in without["reasons"][0]
    assert with_cert["status"] == "ok", with_cert["reasons"]
    assert with_cert["metrics"]["ping_ms"] > 0


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
        admin.execute_command("ACL", "SETUSER", "monitor-config", "on", ">pw2", "+ping", "+info", "+config|get")
        refused = check(params(port, login_password="wrong"), THRESHOLDS)
        assert refused["status"] == "unknown"
        assert refused["is_available"] is False
        assert "refused the credentials" in refused["reasons"][0]
        with_password = check(params(port, login_password="s3cret-pass"), THRESHOLDS)
        assert with_password["status"] == "ok"
        admin.execute_command("ACL", "LOG", "RESET")
        for user, password in (("monitor", "monitor-pass"), ("monitor-config", "pw2")):
            least_privilege = check(params(port, login_user=user, login_password=password), THRESHOLDS)
            assert least_privilege["status"] == "ok", least_privilege["reasons"]
            assert least_privilege["checked"] == f"redis://{user}@127.0.0.1:{port}/0"
            assert least_privilege["metrics"]["maxclients"] == 10000
            assert least_privilege["metrics"]["used_memory"] > 0
        # Nothing the check sends is refused (no CLIENT SETINFO, no CONFIG on Redis 7).
        assert admin.execute_command("ACL", "LOG") == []
        admin.close()


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
        assert result["checked"] == f"redis://127.0.0.1:{port}/0"
        assert "pw-in-vault" not in run.stdout + run.stderr
        assert "pw-in-vault" not in out.read_text()
