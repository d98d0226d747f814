"""Escalation: a failed run tells people through the notify playbook, the policy's
timers send the next steps while the alert fires and stop when it resolves; the
inventory's secrets never reach the store, the logs or the run artifacts."""

import sqlite3

import pytest

from tests.harness.adapter import adapter_process, alert, record_route
from tests.harness.ansible import wait_for
from tests.harness.http_receiver import HttpReceiver

pytestmark = pytest.mark.integration

SECRET = "s3cr3t-webhook-token-7f1c"
POLICY = """
notify_escalation_policy:
  warning:
    channels: [webhook]
    steps:
      - {after_minutes: 0, who: on-call engineer, how: chat}
      - {after_minutes: 30, who: secondary on-call, how: chat}
      - {after_minutes: 60, who: engineering lead, how: email}
"""


@pytest.fixture
def receiver():
    with HttpReceiver() as server:
        yield server


@pytest.fixture
def failing_adapter(tmp_path, receiver):
    """A route whose runs fail, notifications to a local webhook whose header carries a secret."""
    policy = tmp_path / "policy.yml"
    policy.write_text(POLICY)
    route = record_route(vars={"fail": {"value": True}}, safety={"cooldown_minutes": 0})
    with adapter_process(
        tmp_path / "adapter",
        [route],
        escalation_policy_file=str(policy),
        inventory_vars={
            "notify_webhook_url": receiver.url("/hooks/incident"),
            "notify_webhook_headers": {"X-Webhook-Token": SECRET},
        },
    ) as server:
        yield server


def due_now(server, step: int) -> None:
    """Move one escalation step's timer to now (the policy counts in minutes)."""
    with sqlite3.connect(server.folder / "remediate.db") as db:
        db.execute("UPDATE escalations SET due_at = 0 WHERE step = ?", (step,))


def hooks(receiver):
    return [request.json for request in receiver.requests_to("/hooks/incident")]


def test_a_failed_run_escalates_and_the_timers_follow_the_policy(failing_adapter, receiver):
    decision = failing_adapter.fire([alert(service="svc-1")])["decisions"][0]
    incident = decision["incident_id"]
    runs = wait_for(
        failing_adapter.wait_runs_final,
        lambda runs: [r["kind"] for r in runs] == ["remediate", "notify"],
        timeout=120,
    )
    assert [r["state"] for r in runs] == ["failed", "successful"]
    (first,) = hooks(receiver)
    assert first["event"] == "update" and "failed" in first["status"].lower()

    due_now(failing_adapter, 1)
    wait_for(lambda: hooks(receiver), lambda sent: len(sent) == 2, timeout=120)
    assert "secondary on-call" in hooks(receiver)[1]["status"]
    kinds = [event["kind"] for event in failing_adapter.timeline(incident)]
    assert kinds.count("escalated") == 1 and "escalation_step" in kinds

    # Resolved: the pending step is canceled and the resolved message goes out.
    failing_adapter.fire([alert(service="svc-1", status="resolved")])
    wait_for(lambda: hooks(receiver), lambda sent: len(sent) == 3, timeout=120)
    assert hooks(receiver)[2]["event"] == "resolved"
    due_now(failing_adapter, 2)
    failing_adapter.wait_runs_final()
    with sqlite3.connect(failing_adapter.folder / "remediate.db") as db:
        states = dict(db.execute("SELECT step, state FROM escalations").fetchall())
    assert states == {0: "closed", 1: "closed", 2: "canceled"}
    assert len(hooks(receiver)) == 3, "no step is sent after the alert resolved"


def test_secrets_never_reach_the_store_logs_or_artifacts(failing_adapter, receiver):
    failing_adapter.fire([alert(service="svc-2")])
    wait_for(lambda: hooks(receiver), lambda sent: len(sent) == 1, timeout=120)
    failing_adapter.wait_runs_final()
    assert receiver.requests_to("/hooks/incident")[0].headers.get("X-Webhook-Token") == SECRET, "the secret was used"
    leaks = [
        path
        for path in failing_adapter.folder.rglob("*")
        if path.is_file() and path.name != "inventory.yml" and SECRET.encode() in path.read_bytes()
    ]
    assert leaks == []
    # The run's extra variables are removed after the run; the artifacts stay.
    runs_dir = failing_adapter.folder / "state" / "runs"
    assert all(not (run / "env").exists() for run in runs_dir.iterdir())
    assert any((run / "artifacts").is_dir() for run in runs_dir.iterdir())
