"""pool_health against a real PostgreSQL (the project's image, in Docker) with real client sessions."""

import json

import pytest
from ansible_collections.incident.remediation.plugins.modules.pool_health import (
    APPLICATION_NAME,
    OPTION_SPEC,
    THRESHOLD_SPEC,
    check_postgresql,
)

from tests.harness import ansible
from tests.harness.ansible import wait_for
from tests.harness.postgres import ADMIN_APPLICATION, postgres_server, sessions

pytestmark = pytest.mark.integration

DEFAULTS = {name: spec.get("default") for name, spec in {**THRESHOLD_SPEC, **OPTION_SPEC}.items()}
APP_USER = "app_user"
APP_PASSWORD = "app-pw"


@pytest.fixture(scope="module")
def server():
    with postgres_server("-c", "max_connections=20") as server:
        server.create_role(APP_USER, APP_PASSWORD)
        yield server


@pytest.fixture
def opened(server):
    with sessions(server) as opened:
        yield opened


def check(server, **overrides):
    login = {name: overrides.pop(name) for name in list(overrides) if name.startswith("login_")}
    return check_postgresql({**server.params(**login), **DEFAULTS, **overrides})


def expected_status(in_use, capacity):
    ratio = in_use / capacity
    return "critical" if ratio > 0.95 else "warning" if ratio > 0.80 else "ok"


def test_counts_by_state_application_user_and_client(server, opened):
    web = opened.many(3, application_name="web", user=APP_USER, password=APP_PASSWORD)
    worker = opened.many(2, "idle in transaction", application_name="worker", user=APP_USER, password=APP_PASSWORD)
    report = opened.open("active", application_name="report")
    result = check(server, idle_minutes=0.001, long_query_minutes=60)

    assert result["is_available"] is True, result["reasons"]
    assert result["error"] is None
    metrics = result["metrics"]
    # The six sessions plus the harness' admin session; the module's own is left out.
    assert metrics["in_use"] == 7
    assert metrics["by_application"] == {"web": 3, "worker": 2, "report": 1, ADMIN_APPLICATION: 1}
    assert APPLICATION_NAME not in metrics["by_application"]
    assert metrics["by_state"] == {"idle": 4, "idle in transaction": 2, "active": 1}
    assert (metrics["idle"], metrics["idle_in_transaction"], metrics["active"]) == (4, 2, 1)
    assert metrics["by_user"] == {APP_USER: 5, "postgres": 2}
    assert metrics["by_database"] == {"postgres": 7}
    (client_addr,) = metrics["by_client_addr"]  # every session comes through the same Docker gateway
    assert metrics["by_client_addr"][client_addr] == 7
    assert metrics["hidden"] == 0
    assert metrics["oldest_idle_in_transaction_seconds"] >= 0
    assert metrics["long_query_count"] == 0
    assert result["long_queries"] == []
    assert 0 < metrics["query_ms"] < 1000
    assert metrics["server_version"].startswith("15")
    assert {session.pid for session in web + worker + [report]} <= {row["pid"] for row in server.client_backends()}


def test_idle_over_threshold_counts_only_old_idle_sessions(server, opened):
    opened.many(3, application_name="old-idle")
    # Sessions idle for longer than 0.6 s; the admin session may be among them too.
    result = wait_for(lambda: check(server, idle_minutes=0.01), lambda r: r["metrics"]["idle_over_threshold"] >= 3)
    assert result["metrics"]["idle_over_threshold"] in (3, 4)
    assert result["metrics"]["oldest_idle_seconds"] > 0.6
    fresh = check(server, idle_minutes=60)
    assert fresh["metrics"]["idle_over_threshold"] == 0
    assert fresh["status"] == "ok", "idle sessions alone never change the verdict"


def test_long_running_query_is_listed_truncated_and_masked(server, opened):
    sql = "SELECT 'password=hunter2' AS note, pg_sleep(600) /* " + "x" * 300 + " */"
    session = opened.open("active", application_name="slow-report", sql=sql)
    result = wait_for(
        lambda: check(server, long_query_minutes=0.005), lambda r: r["metrics"]["long_query_count"] == 1
    )
    assert result["status"] == "warning"
    assert any("1 active query has been running longer than" in reason for reason in result["reasons"])
    (entry,) = result["long_queries"]
    assert set(entry) == {"pid", "user", "database", "application", "duration_seconds", "query"}
    assert entry["pid"] == session.pid
    assert entry["user"] == "postgres"
    assert entry["application"] == "slow-report"
    assert entry["duration_seconds"] >= 0.3
    assert len(entry["query"]) == 200
    assert "hunter2" not in entry["query"]
    assert entry["query"].startswith("SELECT 'password=[REDACTED]'")
    short = check(server, long_query_minutes=0.005, query_text_length=12)
    assert short["long_queries"][0]["query"] == "SELECT 'pass"
    assert check(server, long_query_minutes=0.005, max_long_queries=0)["long_queries"] == []


def test_idle_in_transaction_over_threshold_is_a_warning(server, opened):
    opened.open("idle in transaction", application_name="forgot-commit")
    result = wait_for(
        lambda: check(server, idle_in_transaction_minutes=0.005),
        lambda r: r["metrics"]["idle_in_transaction_over_threshold"] == 1,
    )
    assert result["status"] == "warning"
    assert result["metrics"]["oldest_idle_in_transaction_seconds"] >= 0.3
    assert "1 session has been idle in a transaction for longer than" in result["reasons"][0]


def test_saturation_verdicts_follow_the_reserved_slots(server, opened):
    settings = server.settings("max_connections", "superuser_reserved_connections")
    capacity = settings["max_connections"] - settings["superuser_reserved_connections"]
    assert capacity == 17  # max_connections=20 and PostgreSQL's default 3 reserved slots
    # Session counts that land on each side of 80% and 95% of the usable slots; the
    # admin session is one of them.
    targets = {
        "ok": int(capacity * 0.80),
        "warning": int(capacity * 0.80) + 1,
        "critical": capacity,
    }
    opened_count = 1
    for status, in_use in targets.items():
        opened.many(in_use - opened_count, application_name="load", user=APP_USER, password=APP_PASSWORD)
        opened_count = in_use
        result = check(server)
        metrics = result["metrics"]
        assert metrics["in_use"] == in_use
        assert metrics["capacity"] == capacity
        assert metrics["max_connections"] == 20
        assert metrics["reserved_connections"] == 0  # PostgreSQL 15 has no reserved_connections
        assert metrics["saturation"] == round(in_use / capacity, 4)
        assert metrics["free"] == capacity - in_use
        assert result["status"] == status == expected_status(in_use, capacity), result["reasons"]
        if status != "ok":
            assert result["reasons"][0].startswith("connection pool saturation is ")

    # Every ordinary slot is taken: an ordinary login is refused, which is the outage itself.
    refused = check(server, login_user=APP_USER, login_password=APP_PASSWORD)
    assert refused["status"] == "critical"
    assert refused["is_available"] is False
    assert "connection slots are exhausted" in refused["reasons"][0]


def test_login_without_pg_monitor_sees_hidden_sessions(server, opened):
    server.create_role("nosy", "nosy-pw")
    try:
        opened.many(2, application_name="private")
        result = check(server, login_user="nosy", login_password="nosy-pw")
        assert result["is_available"] is True
        assert result["metrics"]["hidden"] == 3  # the two sessions and the admin one
        assert result["metrics"]["in_use"] == 3
        assert result["metrics"]["by_state"] == {"(hidden)": 3}
        assert any("grant pg_monitor" in reason for reason in result["reasons"])
        server.execute("GRANT pg_monitor TO nosy")
        granted = check(server, login_user="nosy", login_password="nosy-pw")
        assert granted["metrics"]["hidden"] == 0
        assert granted["metrics"]["by_application"]["private"] == 2
    finally:
        server.execute("DROP ROLE nosy")


def test_wrong_password_is_unknown(server):
    result = check(server, login_password="wrong")
    assert result["status"] == "unknown"
    assert result["is_available"] is False
    assert "refused the login" in result["reasons"][0]
    assert "wrong" not in json.dumps(result)


def test_frozen_server_is_critical_within_the_timeout(server):
    server.container.pause()
    try:
        result = check(server, connect_timeout=2)
    finally:
        server.container.unpause()
    assert result["status"] == "critical"
    assert result["is_available"] is False
    assert "did not answer within 2 s" in result["reasons"][0]


def test_module_through_ansible_takes_the_password_from_pgpassword(server, opened, tmp_path):
    opened.many(2, application_name="via-ansible")
    out = tmp_path / "result.json"
    playbook = tmp_path / "check.yml"
    playbook.write_text(
        f"""
- hosts: localhost
  gather_facts: false
  environment:
    PGPASSWORD: "{server.password}"
  tasks:
    - incident.remediation.pool_health:
        login_port: {server.port}
        ssl_mode: disable
      register: pool
    - ansible.builtin.copy:
        content: "{{{{ pool | to_json }}}}"
        dest: {out}
        mode: "0600"
      check_mode: false
"""
    )
    run = ansible.run_playbook(playbook, {}, check=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(out.read_text())
    assert result["changed"] is False
    assert result["status"] == "ok"
    assert result["backend"] == "postgresql"
    assert result["checked"] == f"postgresql://postgres@127.0.0.1:{server.port}/postgres"
    assert result["metrics"]["by_application"]["via-ansible"] == 2
    assert result["thresholds"] == {name: float(spec["default"]) for name, spec in THRESHOLD_SPEC.items()}
    assert server.password not in run.stdout + run.stderr + out.read_text()
