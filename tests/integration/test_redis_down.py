"""redis_down decisions that the Molecule scenarios do not cover."""

import json

import pytest

from tests.harness import ansible
from tests.harness.adapter import free_port
from tests.harness.docker import redis_server

pytestmark = pytest.mark.integration


def redis_down(tmp_path, port: int, fingerprint: str):
    """redis_down for a compose service `redis` in tmp_path/project, checked at 127.0.0.1:port;
    the run and the incident's timeline events."""
    run = ansible.run_playbook(
        "incident.remediation.redis_down",
        {
            "alert": {"status": "firing", "labels": {"alertname": "RedisDown"}, "fingerprint": fingerprint},
            "target": {
                "platform": "compose",
                "service": "redis",
                "project_src": str(tmp_path / "project"),
                "endpoint": {"host": "127.0.0.1", "port": port},
            },
            "incident_records_dir": str(tmp_path / "incidents"),
        },
        timeout=180,
    )
    (incident,) = (tmp_path / "incidents").iterdir()
    return run, [json.loads(line) for line in (incident / "timeline.jsonl").read_text().splitlines()]


def test_a_redis_that_refuses_our_credentials_is_escalated_not_restarted(tmp_path):
    with redis_server("--requirepass", "not-what-we-have") as (port, container):
        started_at = container.attrs["State"]["StartedAt"]
        run, events = redis_down(tmp_path, port, "beef")
        container.reload()
        assert container.attrs["State"]["StartedAt"] == started_at, "Redis must not be touched"
        assert container.attrs["State"]["Running"]
    assert run.returncode != 0
    assert "nothing was done, the check could not judge" in run.stdout
    assert [event["event"] for event in events][:3] == ["detected", "diagnosed", "escalated"]
    assert {event["event"] for event in events[3:]} <= {"escalation_scheduled", "notified"}
    assert events[1]["plan"] == []
    assert events[2]["outcome"] == "cannot_judge"
    assert not [event for event in events if event["event"] == "tier"]


def test_a_redis_no_tier_can_bring_back_is_unhealed_and_escalated(tmp_path):
    """No container and no compose file: every tier fails to act; the play reports
    unhealed with each tier's error, and fails for the person running it."""
    (tmp_path / "project").mkdir()
    run, events = redis_down(tmp_path, free_port(), "cafe")
    assert run.returncode != 0
    assert "still failing after start, recreate" in run.stdout
    diagnosed = next(event for event in events if event["event"] == "diagnosed")
    assert diagnosed["plan"] == ["start", "recreate"]
    assert diagnosed["skipped"] == {
        "restart": "the service is missing (the tier is for running, unhealthy, paused, crash-looping)"
    }
    tiers = [event for event in events if event["event"] == "tier"]
    assert [(tier["tier"], tier["result"]) for tier in tiers] == [
        ("start", "not_verified"),
        ("recreate", "not_verified"),
    ]
    assert all(tier["error"] for tier in tiers)
    escalated = next(event for event in events if event["event"] == "escalated")
    assert escalated["outcome"] == "unhealed"
