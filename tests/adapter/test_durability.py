"""Durability: an answered alert survives a crash and no remediation runs twice, on
SQLite across a SIGKILL of the server, and on PostgreSQL with two replicas that share
the store (the same storm sent to both, and a replica killed while it runs a playbook)."""

import collections
import concurrent.futures
import contextlib
import json
import sqlite3
import time
import uuid

import httpx
import pytest
from remediate.store import DECISION_LOCK

from tests.harness.adapter import Adapter, adapter_process, alert, record_route, webhook, write_settings
from tests.harness.ansible import wait_for
from tests.harness.postgres import postgres_server

pytestmark = pytest.mark.integration

# Caps high enough that only deduplication and the cooldown keep a service from running twice.
CAPS = {"concurrent_runs": 2, "per_target_per_hour": 100, "per_route_per_hour": 1000, "total_per_hour": 1000}


def hold_route(seconds: int) -> dict:
    """The record route, each run kept busy for ``seconds`` after it leaves its file."""
    return record_route(vars={"hold": {"value": seconds}})


def send(adapter: Adapter, alerts: list[dict], pause: float = 0) -> dict | None:
    """POST one webhook: the answer (asserted 200), or None when the server never answered."""
    time.sleep(pause)
    try:
        response = adapter.post("/api/v1/alertmanager", webhook(alerts), timeout=60)
    except httpx.TransportError:
        return None
    assert response.status_code == 200, response.text
    return response.json()


def services_of(rows) -> collections.Counter:
    """Remediate runs per service, from (extravars,) rows."""
    return collections.Counter(json.loads(extravars)["target"]["service"] for (extravars,) in rows)


def sqlite_rows(adapter: Adapter, sql: str) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(adapter.folder / "remediate.db")) as db:
        return db.execute(sql).fetchall()


def event_kinds(adapter: Adapter, incident_id: str, run_id: int) -> list[str]:
    return [event["kind"] for event in adapter.timeline(incident_id) if event["run_id"] == run_id]


def test_sigkill_mid_storm_keeps_every_answered_alert_and_runs_nothing_twice(tmp_path):
    services = [f"svc-{index:02d}" for index in range(24)]
    groups = [[alert(service=service) for service in services[start : start + 2]] for start in range(0, 24, 2)]
    storm = [group for _ in range(5) for group in groups]  # 5 repeats of 12 webhooks of 2 alerts
    with adapter_process(tmp_path / "adapter", [hold_route(2)], safety={"caps": CAPS}) as adapter:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(send, adapter, group, 0.25) for group in storm]
            # Kill once a run is running and about a third of the storm is answered.
            wait_for(
                lambda: (sum(f.done() and f.result() is not None for f in futures), adapter.runs("running")),
                lambda seen: seen[0] >= len(storm) // 3 and seen[1],
                timeout=60,
                interval=0.05,
            )
            adapter.kill()
        answers = [future.result() for future in futures]
        answered = [answer for answer in answers if answer is not None]
        unanswered = [group for group, answer in zip(storm, answers, strict=True) if answer is None]
        assert answered and unanswered, "the kill did not fall in the middle of the storm"

        at_crash = dict(sqlite_rows(adapter, "SELECT id, state FROM runs WHERE kind = 'remediate'"))
        running = {run_id for run_id, state in at_crash.items() if state == "running"}
        queued = {run_id for run_id, state in at_crash.items() if state == "queued"}
        assert running and queued, at_crash

        adapter.start()
        # Alertmanager sends again what was not answered.
        answered += [adapter.fire(group) for group in unanswered]
        runs = {run["id"]: run for run in adapter.wait_runs_final(timeout=600)}

        stored = set(sqlite_rows(adapter, "SELECT id, fingerprint, decision FROM alerts"))
        for answer in answered:
            for decision in answer["decisions"]:
                assert (decision["alert_id"], decision["fingerprint"], decision["decision"]) in stored, decision

        service_of = {
            run_id: json.loads(extravars)["target"]["service"]
            for run_id, extravars in sqlite_rows(adapter, "SELECT id, extravars FROM runs WHERE kind = 'remediate'")
        }
        assert collections.Counter(service_of.values()) == dict.fromkeys(services, 1)
        # A run cut short may have left its file before the kill; none ran again.
        cut_short = {service_of[run_id] for run_id in running}
        records = adapter.records()
        assert max(records.values()) == 1, records
        assert {service for service in services if records[service] != 1} <= cut_short, records

        # Each run cut short escalates: one notify run says so (its notify_reason).
        notices = collections.defaultdict(list)
        for notice_id, incident_id, extravars in sqlite_rows(
            adapter, "SELECT id, incident_id, extravars FROM runs WHERE kind = 'notify'"
        ):
            if json.loads(extravars)["notify_reason"] == "interrupted":
                notices[incident_id].append(runs[notice_id]["state"])
        for run_id in running:
            run = runs[run_id]
            assert run["state"] == "interrupted", run
            assert "interrupted" in event_kinds(adapter, run["incident_id"], run_id)
            assert notices[run["incident_id"]] == ["successful"], notices
        for run_id in queued:
            assert runs[run_id]["state"] == "successful", runs[run_id]
            assert "started" in event_kinds(adapter, runs[run_id]["incident_id"], run_id)


def test_an_interrupted_run_is_requeued_when_the_settings_say_so(tmp_path):
    with adapter_process(
        tmp_path / "adapter", [hold_route(5)], safety={"caps": CAPS, "interrupted": "requeue"}
    ) as adapter:
        answer = adapter.fire([alert(service="svc-requeue")])
        run_id = answer["decisions"][0]["run_id"]
        # Killed while the playbook holds, after it left its file.
        wait_for(adapter.records, lambda records: records == {"svc-requeue": 1}, timeout=120)
        assert [run["state"] for run in adapter.runs()] == ["running"]
        adapter.kill()
        adapter.start()
        runs = adapter.wait_runs_final(timeout=300)
        assert [(run["id"], run["kind"], run["state"], run["attempt"]) for run in runs] == [
            (run_id, "remediate", "successful", 2)
        ]
        timeline = adapter.timeline(answer["decisions"][0]["incident_id"])
        kinds = [event["kind"] for event in timeline if event["run_id"] == run_id]
        assert "requeued" in kinds and "interrupted" not in kinds
        assert [event["reason"] for event in timeline if event["kind"] == "started"] == [
            "adapter_test.playbooks.record (auto, attempt 1)",
            "adapter_test.playbooks.record (auto, attempt 2)",
        ]
        assert adapter.records() == {"svc-requeue": 2}


# PostgreSQL: two replicas on one database.


@pytest.fixture(scope="module")
def postgres():
    with postgres_server() as server:
        yield server


@pytest.fixture
def database(postgres) -> str:
    name = f"remediate_{uuid.uuid4().hex[:8]}"
    postgres.execute(f'CREATE DATABASE "{name}"')
    return name


def store_url(postgres, database: str) -> str:
    return f"postgresql://postgres:{postgres.password}@{postgres.host}:{postgres.port}/{database}"


@contextlib.contextmanager
def replicas(tmp_path, postgres, database: str, route: dict, count: int = 2):
    """``count`` adapters on the same PostgreSQL store, the record playbook's files in one folder."""
    shared = tmp_path / "records"
    shared.mkdir()
    adapters = [
        write_settings(
            tmp_path / f"replica-{index}", [route], store=store_url(postgres, database), safety={"caps": CAPS}
        )
        for index in range(count)
    ]
    try:
        for adapter in adapters:
            adapter.records_dir = shared
            adapter.start()
        yield adapters
    finally:
        for adapter in adapters:
            adapter.stop()


def pg_rows(postgres, database: str, sql: str, args=None) -> list[tuple]:
    with contextlib.closing(postgres.connect(dbname=database)) as connection, connection.cursor() as cursor:
        cursor.execute(sql, args)
        return cursor.fetchall()


def test_two_replicas_given_the_same_storm_run_each_remediation_once(tmp_path, postgres, database):
    services = [f"svc-{index:02d}" for index in range(20)]
    with replicas(tmp_path, postgres, database, hold_route(2)) as adapters:
        # Every alert to both replicas, 3 times; a service's six POSTs go out together.
        storm = [(adapter, service) for service in services for _ in range(3) for adapter in adapters]
        # Decisions are serialised by an advisory lock: hold it (as a slow database would)
        # so the storm piles up: in each replica one group-commit leader waits for the
        # lock and every other request waits for the next group.
        with contextlib.closing(postgres.connect(dbname=database)) as blocker:
            with blocker.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_lock(%s)", (DECISION_LOCK,))
            with concurrent.futures.ThreadPoolExecutor(64) as pool:
                futures = [pool.submit(send, adapter, [alert(service=service)]) for adapter, service in storm]
                wait_for(
                    lambda: pg_rows(
                        postgres, database, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                    )[0][0],
                    lambda waiting: waiting >= 2,
                    timeout=60,
                )
                time.sleep(2)  # the rest of the storm arrives and waits
                assert not any(future.done() for future in futures), "nothing is answered before it is stored"
                with blocker.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", (DECISION_LOCK,))
        answers = [future.result() for future in futures]
        assert None not in answers

        adapters[0].wait_runs_final(timeout=600)
        assert adapters[0].records() == dict.fromkeys(services, 1)
        remediations = pg_rows(postgres, database, "SELECT extravars FROM runs WHERE kind = 'remediate'")
        assert services_of(remediations) == dict.fromkeys(services, 1)
        states = pg_rows(postgres, database, "SELECT kind, state, count(*) FROM runs GROUP BY kind, state")
        assert states == [("remediate", "successful", len(services))]

        answered = collections.defaultdict(collections.Counter)
        for answer in answers:
            (decision,) = answer["decisions"]
            answered[decision["fingerprint"]][decision["decision"]] += 1
        expected = {"accepted": 1, "deduplicated": 5}
        assert len(answered) == len(services) and all(counts == expected for counts in answered.values()), answered
        stored = pg_rows(postgres, database, "SELECT decision, count(*) FROM alerts GROUP BY decision ORDER BY 1")
        assert stored == [("accepted", len(services)), ("deduplicated", 5 * len(services))]


def test_a_replica_marks_a_dead_replicas_run_interrupted_once_its_heartbeat_is_stale(tmp_path, postgres, database):
    with replicas(tmp_path, postgres, database, hold_route(15)) as adapters:
        answer = adapters[0].fire([alert(service="svc-dead")])
        run_id = answer["decisions"][0]["run_id"]
        # Killed while the playbook holds, after it left its file (the orphaned playbook
        # finishes on its own; the store still says running).
        wait_for(adapters[0].records, lambda records: records == {"svc-dead": 1}, timeout=120)
        ((owner,),) = pg_rows(postgres, database, "SELECT owner FROM runs WHERE id = %s", (run_id,))
        pid = int(owner.split(":")[1])
        (victim,) = [adapter for adapter in adapters if adapter.process.pid == pid]
        (survivor,) = [adapter for adapter in adapters if adapter is not victim]
        victim.kill()

        # A fresh heartbeat is respected: the run is not taken over at once.
        time.sleep(5)
        assert [run["state"] for run in survivor.runs()] == ["running"]
        wait_for(survivor.runs, lambda runs: runs[0]["state"] == "interrupted", timeout=120)
        incident = answer["decisions"][0]["incident_id"]
        assert "interrupted" in event_kinds(survivor, incident, run_id)
        runs = survivor.wait_runs_final(timeout=300)
        assert [(run["kind"], run["state"]) for run in runs] == [
            ("remediate", "interrupted"),
            ("notify", "successful"),
        ]
        ((owner, extravars),) = pg_rows(
            postgres, database, "SELECT owner, extravars FROM runs WHERE id = %s", (runs[1]["id"],)
        )
        assert json.loads(extravars)["notify_reason"] == "interrupted"
        assert int(owner.split(":")[1]) == survivor.process.pid
        assert survivor.records() == {"svc-dead": 1}
