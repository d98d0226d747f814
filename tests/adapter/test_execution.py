"""Execution: `remediate fire` on an ops host without the service, the run timeout,
task results and host stats in the timeline, and the artifacts kept for the last N runs."""

import json

import pytest

from tests.harness.adapter import adapter_process, alert, record_route, webhook, write_settings
from tests.harness.ansible import wait_for

pytestmark = pytest.mark.integration


def test_fire_routes_and_runs_one_payload_with_progress(tmp_path):
    server = write_settings(
        tmp_path / "adapter", [record_route(), record_route("Broken", vars={"fail": {"value": True}})]
    )
    payload = tmp_path / "alert.json"
    payload.write_text(json.dumps(webhook([alert(service="svc-1"), alert("Unrouted")])))

    fired = server.cli("fire", str(payload))

    assert fired.returncode == 0, fired.stdout + fired.stderr
    assert "TestDown: accepted - run 1 queued (auto)" in fired.stdout
    assert "Unrouted: no_route" in fired.stdout
    assert "started: adapter_test.playbooks.record" in fired.stdout
    assert "task changed: Leave a file for this run" in fired.stdout
    assert "finished healed: healed (record stub) for svc-1" in fired.stdout
    assert "outcome of run 1 (adapter_test.playbooks.record): healed - healed (record stub) for svc-1" in fired.stdout
    assert server.records() == {"svc-1": 1}

    payload.write_text(json.dumps(alert("Broken", service="svc-2")))
    failed = server.cli("fire", str(payload))
    assert failed.returncode == 1, "a failed run fails the command"
    assert "task failed: Fail when the route says so" in failed.stdout
    assert "finished failed: rc=2" in failed.stdout
    assert "outcome of run 2 (adapter_test.playbooks.record): failed - rc=2" in failed.stdout

    payload.write_text("{not json")
    assert server.cli("fire", str(payload)).returncode == 2


def test_a_run_over_the_timeout_ends_timeout_and_escalates(tmp_path):
    route = record_route(vars={"hold": {"value": 60}})
    with adapter_process(tmp_path / "adapter", [route], executor={"timeout_seconds": 15}) as server:
        decision = server.fire([alert(service="svc-1")])["decisions"][0]
        runs = wait_for(
            server.wait_runs_final, lambda runs: [r["kind"] for r in runs] == ["remediate", "notify"], timeout=120
        )
        assert (runs[0]["state"], runs[0]["result"]) == ("timeout", "timeout")
        assert runs[0]["finished_at"] - runs[0]["started_at"] < 30
        assert (runs[1]["state"], runs[1]["result"], runs[1]["reason"]) == ("successful", "notified", "timeout")
        events = server.timeline(decision["incident_id"])
        assert ("escalated", "timeout") in [(event["kind"], event["reason"]) for event in events]


def test_task_results_host_stats_and_artifacts_of_the_last_runs(tmp_path):
    with adapter_process(tmp_path / "adapter", [record_route()], executor={"keep_artifacts": 2}) as server:
        incidents = []
        for index in range(4):
            incidents.append(server.fire([alert(service=f"svc-{index}")])["decisions"][0]["incident_id"])
            server.wait_runs_final()
        assert server.records() == {f"svc-{index}": 1 for index in range(4)}

        events = server.timeline(incidents[-1])
        tasks = {event["reason"]: event["data"] for event in events if event["kind"] == "task"}
        left = tasks["Leave a file for this run"]
        assert (left["result"], left["host"], left["action"]) == ("changed", "localhost", "ansible.builtin.tempfile")
        assert "res" not in left, "never a module's result"
        (finished,) = [event for event in events if event["kind"] == "finished"]
        assert finished["data"]["host_stats"]["changed"] == {"localhost": 1}
        assert finished["data"]["host_stats"]["failures"] == {}

        kept = sorted(path.name for path in (server.folder / "state" / "runs").iterdir())
        assert kept == ["00000003-1", "00000004-1"]
        for name in kept:
            run_dir = server.folder / "state" / "runs" / name
            assert (run_dir / "artifacts" / "run" / "job_events").is_dir()
            assert not (run_dir / "env").exists(), "the extra variables are removed after the run"
