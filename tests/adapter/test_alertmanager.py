"""A real Alertmanager (the project's image, 0.25) notifying the adapter over its webhook.

Alertmanager shares the host's network to reach the adapter on 127.0.0.1 and
authenticates as Alertmanager's http_config does: a bearer token or basic auth.
"""

import json
import subprocess
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from tests.harness.adapter import adapter_process, free_port, record_route
from tests.harness.alertmanager import alertmanager_server
from tests.harness.ansible import wait_for
from tests.harness.docker import CacheApp, pings

pytestmark = pytest.mark.integration


def alertmanager_config(adapter, http_config: dict, repeat_interval: str = "1h") -> str:
    """Every alert to the adapter's webhook, grouped per alertname, with short timers."""
    return yaml.safe_dump(
        {
            "route": {
                "receiver": "remediate",
                "group_by": ["alertname"],
                "group_wait": "1s",
                "group_interval": "1s",
                "repeat_interval": repeat_interval,
            },
            "receivers": [
                {
                    "name": "remediate",
                    "webhook_configs": [
                        {
                            "url": f"{adapter.url}/api/v1/alertmanager",
                            "send_resolved": True,
                            "http_config": http_config,
                        }
                    ],
                }
            ],
        }
    )


def bearer(adapter) -> dict:
    return {"authorization": {"type": "Bearer", "credentials": adapter.token}}


def decisions(adapter) -> dict[str, list[str]]:
    """The decisions taken for each incident, in order (one per webhook delivery of its alert)."""
    incidents = adapter.get("/api/v1/incidents").json()
    return {
        incident["id"]: [event["kind"] for event in adapter.timeline(incident["id"]) if event["alert_id"] is not None]
        for incident in incidents
    }


def remediations(adapter) -> list[dict]:
    return [run for run in adapter.runs() if run["kind"] == "remediate"]


def test_alertmanager_resends_run_the_playbook_once_per_target(tmp_path):
    services = ["svc-a", "svc-b", "svc-c"]
    # `hold` keeps each run busy while Alertmanager repeats the notification every ~2 s.
    with adapter_process(tmp_path / "adapter", [record_route(vars={"hold": {"value": 10}})]) as adapter:
        config = alertmanager_config(adapter, bearer(adapter), repeat_interval="2s")
        with alertmanager_server(config=config, host_port=free_port()) as alertmanager:
            alertmanager.post_alerts(
                [
                    {"labels": {"alertname": "TestDown", "service": name}, "annotations": {"summary": name}}
                    for name in services
                ]
            )
            # Every alert delivered at least twice: the first delivery and a repeat.
            seen = wait_for(
                lambda: decisions(adapter),
                lambda found: len(found) == 3 and all(len(kinds) >= 2 for kinds in found.values()),
                timeout=180,
                interval=1,
            )
        runs = adapter.wait_runs_final(timeout=240)
        assert adapter.records() == dict.fromkeys(services, 1)
        assert [run["state"] for run in runs if run["kind"] == "remediate"] == ["successful"] * 3
        for kinds in decisions(adapter).values():
            assert kinds[0] == "accepted", seen
            assert set(kinds[1:]) <= {"deduplicated", "cooled_down"}, seen


def test_a_resolved_alert_reaches_the_adapter_as_resolved(tmp_path):
    with adapter_process(tmp_path / "adapter", [record_route()]) as adapter:
        config = alertmanager_config(adapter, bearer(adapter))
        with alertmanager_server(config=config, host_port=free_port()) as alertmanager:
            started = datetime.now(UTC) - timedelta(minutes=5)
            firing = {
                "labels": {"alertname": "TestDown", "service": "svc-r"},
                "annotations": {"summary": "svc-r down"},
                "startsAt": started.isoformat(),
            }
            alertmanager.post_alerts([firing])
            (incident,) = wait_for(lambda: decisions(adapter), lambda found: found, timeout=120, interval=1)
            assert decisions(adapter)[incident] == ["accepted"]
            assert [run["state"] for run in adapter.wait_runs_final()] == ["successful"]

            alertmanager.post_alerts([{**firing, "endsAt": (datetime.now(UTC) - timedelta(seconds=5)).isoformat()}])
            kinds = wait_for(
                lambda: decisions(adapter)[incident], lambda found: "resolved" in found, timeout=120, interval=1
            )
        assert kinds == ["accepted", "resolved"]
        (resolved,) = [event for event in adapter.timeline(incident) if event["kind"] == "resolved"]
        assert resolved["reason"].startswith("recorded; nothing runs for a resolved alert")
        assert adapter.records() == {"svc-r": 1}
        assert len(adapter.runs()) == 1


def test_basic_auth_from_alertmanager_is_accepted(tmp_path):
    users = tmp_path / "users"
    password = uuid.uuid4().hex
    users.write_text(f"alertmanager:{password}\n")
    with adapter_process(tmp_path / "adapter", [record_route()], auth={"basic_users_file": str(users)}) as adapter:
        config = alertmanager_config(adapter, {"basic_auth": {"username": "alertmanager", "password": password}})
        with alertmanager_server(config=config, host_port=free_port()) as alertmanager:
            alertmanager.post_alerts([{"labels": {"alertname": "TestDown", "service": "svc-basic"}}])
            wait_for(lambda: decisions(adapter), lambda found: found, timeout=120, interval=1)
            runs = adapter.wait_runs_final()
        assert [run["state"] for run in runs] == ["successful"]
        assert adapter.records() == {"svc-basic": 1}
        assert "unauthenticated request refused" not in adapter.log_path.read_text()


def test_a_wrong_password_is_refused_and_runs_nothing(tmp_path):
    users = tmp_path / "users"
    users.write_text(f"alertmanager:{uuid.uuid4().hex}\n")
    with adapter_process(tmp_path / "adapter", [record_route()], auth={"basic_users_file": str(users)}) as adapter:
        config = alertmanager_config(adapter, {"basic_auth": {"username": "alertmanager", "password": "wrong"}})
        with alertmanager_server(config=config, host_port=free_port()) as alertmanager:
            alertmanager.post_alerts([{"labels": {"alertname": "TestDown", "service": "svc-basic"}}])
            wait_for(
                adapter.log_path.read_text, lambda log: "unauthenticated request refused" in log, timeout=60, interval=1
            )
        assert adapter.runs() == []
        assert adapter.get("/api/v1/incidents").json() == []


@pytest.fixture
def cache_app(tmp_path):
    """The lab's cache-app compose project (Redis and its app) on free loopback ports, as scripts/demo.sh runs it."""
    folder = tmp_path / "cache-app"
    folder.mkdir()
    with CacheApp(folder, "ir-test-am") as app:
        yield app


def test_alertmanager_fires_redis_down_and_the_adapter_heals_redis(tmp_path, cache_app):
    route = {
        "alertname": "RedisDown",
        "playbook": "incident.remediation.redis_down",
        "severity": "warning",
        "mode": "auto",
        "target": {
            "platform": {"value": "compose"},
            "host": {"value": "localhost"},
            "service": {"label": "service", "pattern": "[a-z0-9][a-z0-9_.-]{0,62}"},
            "project_src": {"value": str(cache_app.folder)},
            "project_name": {"value": cache_app.name},
            "endpoint": {"host": {"value": "127.0.0.1"}, "port": {"value": cache_app.redis_port}},
        },
    }
    subprocess.run(["docker", "stop", cache_app.redis_container()], check=True, capture_output=True, timeout=60)
    assert not pings(cache_app.redis_port)
    with adapter_process(tmp_path / "adapter", [route]) as adapter:
        config = alertmanager_config(adapter, bearer(adapter))
        with alertmanager_server(config=config, host_port=free_port()) as alertmanager:
            alertmanager.post_alerts(
                [
                    {
                        "labels": {"alertname": "RedisDown", "service": "redis", "severity": "warning"},
                        "annotations": {"summary": "Redis unreachable for more than 2 minutes"},
                    }
                ]
            )
            (incident,) = wait_for(lambda: decisions(adapter), lambda found: found, timeout=120, interval=1)
            runs = wait_for(
                lambda: remediations(adapter),
                lambda found: found and found[0]["state"] not in ("queued", "running"),
                timeout=400,
                interval=2,
            )
        assert decisions(adapter)[incident][0] == "accepted"
        assert [(run["playbook"], run["state"]) for run in runs] == [("incident.remediation.redis_down", "successful")]
        assert pings(cache_app.redis_port)
        records = adapter.folder / "incidents" / incident / "timeline.jsonl"
        outcomes = [event for event in map(json.loads, records.read_text().splitlines()) if "outcome" in event]
        assert [(event["event"], event["outcome"]) for event in outcomes] == [("resolved", "healed")]
