"""A real Alertmanager (the project's image, 0.25) notifying the adapter over its webhook,
configured by the shipped example extensions/alertmanager/alertmanager.yml with only the
addresses, the token file and the timers changed.

Alertmanager shares the host's network to reach the adapter on 127.0.0.1 and
authenticates as Alertmanager's http_config does: a bearer token from a file, or basic auth.
"""

import copy
import json
import subprocess
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from tests.harness.adapter import adapter_process, free_port, record_route, redis_down_route
from tests.harness.alertmanager import alertmanager_server
from tests.harness.ansible import REPO_ROOT, wait_for
from tests.harness.docker import CacheApp, pings
from tests.harness.http_receiver import HttpReceiver

pytestmark = pytest.mark.integration

EXAMPLE = REPO_ROOT / "extensions" / "alertmanager" / "alertmanager.yml"
ALERTMANAGER_IMAGE = "incident-remediation/alertmanager"
TOKEN_FILE = "/etc/alertmanager/remediate.token"


def example() -> dict:
    return yaml.safe_load(EXAMPLE.read_text())


def alertmanager_config(adapter, *, basic_auth: dict | None = None, repeat_interval: str = "1h", people=None) -> str:
    """The example for this test bed: the adapter's and the people receiver's URLs, the
    token file where the test mounts it (or basic auth), and short timers."""
    config = example()
    config["route"].update(group_wait="1s", group_interval="1s", repeat_interval=repeat_interval)
    receivers = {receiver["name"]: receiver for receiver in config["receivers"]}
    (hook,) = receivers["remediate"]["webhook_configs"]
    hook["url"] = f"{adapter.url}/api/v1/alertmanager"
    if basic_auth is not None:
        hook["http_config"] = {"basic_auth": basic_auth}
    else:
        assert hook["http_config"]["authorization"]["credentials_file"] == TOKEN_FILE
    if people is not None:
        receivers["people"]["webhook_configs"][0]["url"] = people.url("/alerts")
    return yaml.safe_dump(config)


def token_file(adapter) -> dict:
    """The adapter's token file, mounted where the example's credentials_file names it."""
    (adapter.folder / "token").chmod(0o644)  # the container runs as user prometheus
    return {TOKEN_FILE: adapter.folder / "token"}


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
        config = alertmanager_config(adapter, repeat_interval="2s")
        with alertmanager_server(config=config, host_port=free_port(), files=token_file(adapter)) as alertmanager:
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
        config = alertmanager_config(adapter)
        with alertmanager_server(config=config, host_port=free_port(), files=token_file(adapter)) as alertmanager:
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
        config = alertmanager_config(adapter, basic_auth={"username": "alertmanager", "password": password})
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
        config = alertmanager_config(adapter, basic_auth={"username": "alertmanager", "password": "wrong"})
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
    route = redis_down_route(cache_app.folder, cache_app.name, cache_app.redis_port)
    subprocess.run(["docker", "stop", cache_app.redis_container()], check=True, capture_output=True, timeout=60)
    assert not pings(cache_app.redis_port)
    with adapter_process(tmp_path / "adapter", [route]) as adapter:
        config = alertmanager_config(adapter)
        with alertmanager_server(config=config, host_port=free_port(), files=token_file(adapter)) as alertmanager:
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


def amtool_check(folder) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            *("docker", "run", "--rm", "--network", "none", "-v", f"{folder}:/config:ro", "-w", "/config"),
            *("--entrypoint", "/usr/bin/amtool", ALERTMANAGER_IMAGE, "check-config", "alertmanager.yml"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_example_passes_amtool_check_config(tmp_path):
    folder = tmp_path / "config"
    folder.mkdir()
    (folder / "alertmanager.yml").write_text(EXAMPLE.read_text())
    for path in (tmp_path, folder, folder / "alertmanager.yml"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    checked = amtool_check(folder)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout
    # What adopting it takes: the adapter's alerts to people, a bearer token from a file, resolved alerts sent.
    config = example()
    (hook,) = next(r for r in config["receivers"] if r["name"] == "remediate")["webhook_configs"]
    assert hook["send_resolved"] is True and "credentials" not in hook["http_config"]["authorization"]
    assert config["route"]["routes"][0] == {**config["route"]["routes"][0], "receiver": "people"}

    # The same check refuses a broken copy: it is a real check.
    broken = copy.deepcopy(config)
    broken["route"]["receiver"] = "nobody"
    (folder / "alertmanager.yml").write_text(yaml.safe_dump(broken))
    assert amtool_check(folder).returncode != 0


def test_the_example_sends_the_adapters_own_alerts_to_people_and_mutes_what_a_down_alert_explains(tmp_path):
    """RedisDown mutes LowCacheHitRate on the same service, not on another; RemediateDown
    reaches the people receiver and never the adapter."""
    routes = [record_route("RedisDown"), record_route("LowCacheHitRate")]
    with HttpReceiver() as people, adapter_process(tmp_path / "adapter", routes) as adapter:
        config = alertmanager_config(adapter, people=people)
        with alertmanager_server(config=config, host_port=free_port(), files=token_file(adapter)) as alertmanager:
            alertmanager.post_alerts([{"labels": {"alertname": "RedisDown", "service": "cache-a"}}])
            wait_for(alertmanager.active_alerts, lambda listed: len(listed) == 1, timeout=30, interval=0.5)
            alertmanager.post_alerts(
                [
                    {"labels": {"alertname": "LowCacheHitRate", "service": "cache-a", "severity": "info"}},
                    {"labels": {"alertname": "LowCacheHitRate", "service": "cache-b", "severity": "info"}},
                    {"labels": {"alertname": "RemediateDown", "job": "remediate", "instance": "ops:9787"}},
                ]
            )
            listed = wait_for(alertmanager.active_alerts, lambda listed: len(listed) == 4, timeout=30, interval=0.5)
            (told,) = people.wait_for(1, timeout=60)
            runs = wait_for(adapter.runs, lambda runs: len(runs) == 2, timeout=120, interval=1)
            adapter.wait_runs_final()
        muted = {
            a["labels"]["service"]
            for a in listed
            if a["labels"]["alertname"] == "LowCacheHitRate" and a["status"]["inhibitedBy"]
        }
        assert muted == {"cache-a"}
        assert [a["labels"]["alertname"] for a in told.json["alerts"]] == ["RemediateDown"]
        assert sorted(run["route"] for run in runs) == ["LowCacheHitRate", "RedisDown"]
        assert len(decisions(adapter)) == 2  # RemediateDown never reached it, not even to be refused
        assert adapter.records() == {"cache-a": 1, "cache-b": 1}
