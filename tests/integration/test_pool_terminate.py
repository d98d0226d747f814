"""pool_terminate against a real PostgreSQL (the project's image, in Docker): real client,
replication and background sessions; the module run through Ansible, and in process where
a test needs to hold the module's own connection."""

import contextlib
import json
import select
import threading

import psycopg2
import psycopg2.extras
import pytest
import yaml
from ansible_collections.incident.remediation.plugins.module_utils._postgres import connect
from ansible_collections.incident.remediation.plugins.modules import pool_terminate
from ansible_collections.incident.remediation.plugins.modules.pool_terminate import (
    APPLICATION_NAME,
    FILTER_SPEC,
    GUARD_SPEC,
    SELECTOR_SPEC,
    run,
    terminate,
)

from tests.harness import ansible
from tests.harness.ansible import wait_for
from tests.harness.postgres import postgres_server, sessions

pytestmark = pytest.mark.integration

MODULE = "incident.remediation.pool_terminate"
APP_USER = "app_user"
APP_PASSWORD = "app-pw"
APP = {"user": APP_USER, "password": APP_PASSWORD}
DEFAULTS = {name: spec.get("default") for name, spec in {**SELECTOR_SPEC, **FILTER_SPEC, **GUARD_SPEC}.items()}


@pytest.fixture(scope="module")
def server():
    with postgres_server("-c", "wal_level=logical", "-c", "max_wal_senders=5") as server:
        server.allow_replication()
        server.create_role(APP_USER, APP_PASSWORD)
        server.create_role("other_user", "other-pw")
        server.create_role("replicator", "rep-pw", "REPLICATION")
        server.create_role("signaller", "sig-pw")
        # Both may see every session in full; only signaller may terminate other roles' sessions.
        server.execute("GRANT pg_read_all_stats TO other_user, signaller")
        server.execute("GRANT pg_signal_backend TO signaller")
        server.execute("CREATE DATABASE otherdb")
        yield server


@pytest.fixture
def opened(server):
    with sessions(server) as opened:
        yield opened


def run_module(server, tmp_path, steps, *, check=False):
    """Run the module once per step (a dict of module arguments) in one playbook, with the
    connection options as module_defaults and the password from PGPASSWORD; the results."""
    tasks = []
    for index, args in enumerate(steps):
        out = tmp_path / f"step{index}.json"
        tasks.append({"name": f"step {index}", MODULE: args, "register": f"step{index}", "diff": True})
        tasks.append(
            {
                "ansible.builtin.copy": {
                    "content": f"{{{{ step{index} | to_json }}}}",
                    "dest": str(out),
                    "mode": "0600",
                },
                "check_mode": False,
            }
        )
    play = {
        "hosts": "localhost",
        "gather_facts": False,
        "environment": {"PGPASSWORD": server.password},
        "module_defaults": {MODULE: {"login_port": server.port, "ssl_mode": "disable"}},
        "tasks": tasks,
    }
    playbook = tmp_path / "terminate.yml"
    playbook.write_text(yaml.safe_dump([play], sort_keys=False))
    completed = ansible.run_playbook(playbook, {}, check=check, timeout=120)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert server.password not in completed.stdout + completed.stderr
    results = [json.loads((tmp_path / f"step{index}.json").read_text()) for index in range(len(steps))]
    for path in tmp_path.glob("step*.json"):
        path.unlink()
    return results


def pids(entries):
    return sorted(entry["pid"] for entry in entries)


def reasons(result):
    return {entry["pid"]: entry["reason"] for entry in result["skipped"]}


def params(server, **overrides):
    return {**server.params(), **DEFAULTS, **overrides}


# ---------------------------------------------------------------- check mode, real run, idempotence


def test_check_mode_predicts_the_real_run_and_a_second_run_changes_nothing(server, opened, tmp_path):
    idle = opened.many(3, application_name="leaky", **APP)
    busy = opened.open("active", application_name="leaky", **APP)
    step = {"idle_minutes": 0.001, "users": [APP_USER], "applications": ["leaky"]}

    (predicted,) = run_module(server, tmp_path, [step], check=True)
    assert predicted["changed"] is True
    assert predicted["checked"] == f"postgresql://postgres@127.0.0.1:{server.port}/postgres"
    assert pids(predicted["terminated"]) == sorted(session.pid for session in idle)
    everyone = {session.pid for session in [*idle, busy]}
    assert server.alive(everyone) == everyone, "check mode terminated something"
    assert predicted["diff"]["before"]["pids"] == pids(predicted["terminated"])
    assert predicted["diff"]["after"]["pids"] == []
    for entry in predicted["terminated"]:
        assert entry["user"] == APP_USER
        assert entry["application"] == "leaky"
        assert entry["state"] == "idle"
        assert entry["database"] == "postgres"
        assert entry["client_addr"]
        assert entry["age_seconds"] >= 0
        assert entry["backend_type"] == "client backend"
        assert entry["selector"] == "idle"

    first, second = run_module(server, tmp_path, [step, step])
    assert first["changed"] is True
    assert pids(first["terminated"]) == pids(predicted["terminated"])
    assert first["skipped"] == []
    assert second["changed"] is False
    assert second["terminated"] == []
    server.wait_gone(session.pid for session in idle)
    assert server.alive([busy.pid]) == {busy.pid}, "the active session was not selected"


def test_active_queries_longer_than_the_limit_are_terminated(server, opened, tmp_path):
    slow = opened.open("active", application_name="report", **APP)
    idle = opened.open(application_name="report", **APP)
    (result,) = run_module(server, tmp_path, [{"active_minutes": 0.001, "applications": ["report"]}])
    assert pids(result["terminated"]) == [slow.pid]
    assert result["terminated"][0]["selector"] == "active"
    server.wait_gone([slow.pid])
    slow.thread.join(timeout=10)
    assert slow.errors and isinstance(slow.errors[0], psycopg2.OperationalError)
    assert server.alive([idle.pid]) == {idle.pid}


# ---------------------------------------------------------------- guards


def test_own_backend_survives(server):
    conn = connect(server.params(), APPLICATION_NAME)
    try:
        own = conn.get_backend_pid()
        result = run(params(server, pids=[own], allow_superuser=True), False, conn=conn)
        assert result["terminated"] == []
        assert reasons(result) == {own: "own backend"}
        with conn.cursor() as cursor:  # still connected
            cursor.execute("SELECT pg_backend_pid()")
            assert cursor.fetchone() == (own,)
    finally:
        conn.close()


def test_superuser_session_survives_unless_allowed(server, opened, tmp_path):
    admin_like = opened.open(application_name="dba-console")
    step = {"idle_minutes": 0, "applications": ["dba-console"]}
    guarded, allowed = run_module(server, tmp_path, [step, {**step, "allow_superuser": True}])
    assert guarded["changed"] is False
    assert reasons(guarded) == {admin_like.pid: "superuser"}
    assert pids(allowed["terminated"]) == [admin_like.pid]
    server.wait_gone([admin_like.pid])


EXCLUSION_CASES = {
    # option: (how the protected session differs from its victim, the value excluded, the reason)
    "exclude_users": ({"user": "other_user", "password": "other-pw"}, "other_user", "excluded user"),
    "exclude_applications": ({**APP, "application_name": "keep-me"}, "keep-me", "excluded application"),
    "exclude_databases": ({**APP, "dbname": "otherdb"}, "otherdb", "excluded database"),
}


def test_exclusion_lists_protect_sessions(server, opened, tmp_path):
    """One guard per step (run in one playbook to save Ansible start-ups): each step selects a
    protected session and its victim, and excludes the protected one by user, application or
    database."""
    steps, pairs = [], {}
    for option, (differs, value, _reason) in EXCLUSION_CASES.items():
        application = f"excl-{option}"
        protected = opened.open(**{"application_name": application, **differs})
        victim = opened.open(application_name=application, **APP)
        pairs[option] = (protected, victim)
        steps.append({"idle_minutes": 0, "users": [APP_USER, "other_user"],
                      "applications": [application, protected.application_name], option: [value]})
    results = run_module(server, tmp_path, steps)
    for (option, (_differs, _value, reason)), result in zip(EXCLUSION_CASES.items(), results, strict=True):
        protected, victim = pairs[option]
        assert pids(result["terminated"]) == [victim.pid], option
        assert reasons(result) == {protected.pid: reason}, option
    server.wait_gone([victim.pid for _protected, victim in pairs.values()])
    protected_pids = {protected.pid for protected, _victim in pairs.values()}
    assert server.alive(protected_pids) == protected_pids


def test_excluded_client_addresses_survive(server, opened, tmp_path):
    from_host = opened.open("active", application_name="addr-test", **APP)
    (host_addr,) = {row["client_addr"] for row in server.client_backends() if row["pid"] == from_host.pid}
    env = {"PGPASSWORD": APP_PASSWORD, "PGAPPNAME": "addr-test"}
    psql = f"psql -U {APP_USER} -d postgres -c 'SELECT pg_sleep(600)'"
    server.container.exec_run(["su", "postgres", "-c", psql + " -h 127.0.0.1"], environment=env, detach=True)
    server.container.exec_run(["su", "postgres", "-c", psql], environment=env, detach=True)  # Unix socket
    in_container = wait_for(
        lambda: {row["client_addr"]: row["pid"] for row in server.client_backends()
                 if row["application_name"] == "addr-test" and row["pid"] != from_host.pid},
        lambda found: len(found) == 2,
    )
    assert set(in_container) == {"127.0.0.1", None}
    try:
        (result,) = run_module(
            server, tmp_path,
            [{"active_minutes": 0, "applications": ["addr-test"], "exclude_client_addrs": [host_addr, "local"]}],
        )
        assert pids(result["terminated"]) == [in_container["127.0.0.1"]]
        assert result["terminated"][0]["client_addr"] == "127.0.0.1"
        assert reasons(result) == {from_host.pid: "excluded client address",
                                   in_container[None]: "excluded client address"}
        server.wait_gone([in_container["127.0.0.1"]])
        assert server.alive([from_host.pid, in_container[None]]) == {from_host.pid, in_container[None]}
    finally:
        server.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = ANY(%s)",
                       (list(in_container.values()),))


@contextlib.contextmanager
def streaming_physical_replication(server):
    """A physical replication connection streaming WAL (a walsender in state active)."""
    conn = psycopg2.connect(**server.dsn("replicator", "rep-pw", application_name="physical-rep"),
                            connection_factory=psycopg2.extras.PhysicalReplicationConnection)
    (lsn,) = server.execute("SELECT pg_current_wal_lsn()::text")[0]
    stop = threading.Event()

    def stream():
        cursor = conn.cursor()
        cursor.start_replication(start_lsn=lsn)
        while not stop.is_set():
            message = cursor.read_message()
            if message is None:
                select.select([cursor], [], [], 0.1)
            else:
                cursor.send_feedback(flush_lsn=message.data_start)

    thread = threading.Thread(target=stream, daemon=True)
    thread.start()
    try:
        yield conn
    finally:
        stop.set()
        thread.join(timeout=10)
        conn.close()


def test_wal_senders_and_background_workers_survive(server, tmp_path):
    logical = psycopg2.connect(**server.dsn("replicator", "rep-pw", application_name="logical-rep"),
                               connection_factory=psycopg2.extras.LogicalReplicationConnection)
    try:
        with streaming_physical_replication(server) as physical:
            walsenders = {logical.get_backend_pid(), physical.get_backend_pid()}
            wait_for(
                lambda: server.execute("SELECT state FROM pg_stat_activity WHERE pid = %s",
                                       (physical.get_backend_pid(),)),
                lambda rows: rows == [("active",)],
            )
            workers = {pid for (pid,) in server.execute(
                "SELECT pid FROM pg_stat_activity"
                " WHERE backend_type IN ('autovacuum launcher', 'logical replication launcher')")}
            assert len(workers) == 2
            by_pid, by_state = run_module(server, tmp_path, [
                {"pids": sorted(walsenders | workers), "allow_superuser": True},
                {"idle_minutes": 0, "active_minutes": 0, "users": ["replicator"]},
            ])
            assert by_pid["terminated"] == []
            assert reasons(by_pid) == dict.fromkeys(walsenders | workers, "not a client backend")
            assert by_state["terminated"] == []
            assert reasons(by_state) == dict.fromkeys(walsenders, "not a client backend")
            assert {entry["backend_type"] for entry in by_state["skipped"]} == {"walsender"}
            assert server.alive(walsenders | workers) == walsenders | workers
            assert not logical.closed and not physical.closed
    finally:
        logical.close()


def test_cap_limits_terminations_and_skips_the_rest(server, opened, tmp_path):
    many = opened.many(5, application_name="capped", **APP)
    (result,) = run_module(server, tmp_path, [{"idle_minutes": 0, "applications": ["capped"], "max_terminations": 2}])
    assert len(result["terminated"]) == 2
    assert [entry["reason"] for entry in result["skipped"]] == ["cap"] * 3
    assert pids(result["terminated"] + result["skipped"]) == sorted(session.pid for session in many)
    server.wait_gone(pids(result["terminated"]))
    assert server.alive(pids(result["skipped"])) == set(pids(result["skipped"]))


def test_sessions_the_login_may_not_signal_are_skipped(server, opened):
    theirs = opened.open(application_name="not-mine", **APP)
    superuser = opened.open(application_name="not-mine")
    plain = params(server, login_user="other_user", login_password="other-pw",
                   idle_minutes=0, applications=["not-mine"], allow_superuser=True)
    result = run(plain, False)
    assert result["terminated"] == []
    assert reasons(result) == {theirs.pid: "not permitted", superuser.pid: "not permitted"}
    # pg_signal_backend may terminate other roles' sessions, never a superuser's.
    result = run(dict(plain, login_user="signaller", login_password="sig-pw"), False)
    assert pids(result["terminated"]) == [theirs.pid]
    assert reasons(result) == {superuser.pid: "not permitted"}
    server.wait_gone([theirs.pid])


# ---------------------------------------------------------------- race safety


def test_a_session_that_changed_after_selection_is_not_terminated(server, opened):
    session = opened.open(application_name="racy", **APP)
    options = params(server, idle_minutes=0.01, applications=["racy"])
    conn = connect(server.params(), APPLICATION_NAME)
    try:
        rows, planned = wait_for(lambda: pool_terminate.select(conn, options)[:2], lambda found: len(found[1]) == 1)
        assert [row["pid"] for row in rows] == [session.pid]
        with session.conn.cursor() as cursor:  # it does some work: idle again, but only just
            cursor.execute("SELECT 1")
        terminated, skipped = terminate(conn, options, planned)
    finally:
        conn.close()
    assert terminated == []
    assert [(entry["pid"], entry["reason"]) for entry in skipped] == [(session.pid, "no longer matches")]
    assert server.alive([session.pid]) == {session.pid}


def test_unknown_pid_is_reported_as_not_found(server):
    result = run(params(server, pids=[999999]), False)
    assert result["terminated"] == []
    assert result["skipped"] == [dict.fromkeys(result["skipped"][0], None) | {"pid": 999999, "reason": "not found"}]
