"""Every safety rule of the adapter, against the real `remediate serve` process and
real ansible-runner runs of the record playbook (`hold` keeps a run busy, `fail`
fails it). Notify runs run the real notify playbook (no channels: it sends nothing).
Every decision is also checked in its incident's timeline, with its reason."""

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from remediate.store import FINAL_STATES

from tests.harness.adapter import adapter_process, alert, record_route, webhook
from tests.harness.ansible import wait_for

pytestmark = pytest.mark.integration

NOTIFY_PLAYBOOK = "incident.remediation.notify"


def hold(seconds: int) -> dict:
    return {"hold": {"value": seconds}}


def fire(server, *alerts: dict) -> list[dict]:
    return server.fire(list(alerts))["decisions"]


def kinds(decisions: list[dict]) -> list[str]:
    return [decision["decision"] for decision in decisions]


def of_kind(runs: list[dict], kind: str) -> list[dict]:
    return [run for run in runs if run["kind"] == kind]


def run_of(server, run_id: int) -> dict:
    return next(run for run in server.runs() if run["id"] == run_id)


def wait_state(server, run_id: int, states, timeout: float = 90) -> dict:
    return wait_for(lambda: run_of(server, run_id), lambda run: run["state"] in states, timeout=timeout)


def assert_recorded(server, decisions: list[dict]) -> None:
    """Each decision is in its incident's timeline once, as answered, with a reason."""
    for decision in decisions:
        assert decision["reason"], decision
        events = [e for e in server.timeline(decision["incident_id"]) if e["alert_id"] == decision["alert_id"]]
        assert [(e["kind"], e["reason"], e["run_id"]) for e in events] == [
            (decision["decision"], decision["reason"], decision["run_id"])
        ]


def event_kinds(server, incident_id: str) -> list[str]:
    return [event["kind"] for event in server.timeline(incident_id)]


def remediation_started(timeline: list[dict]) -> bool:
    return any(event["kind"] == "started" and event["data"]["kind"] == "remediate" for event in timeline)


def assert_escalated(server, decision: dict, reason: str) -> None:
    """The decision queued a notify run of the notify playbook, which succeeded, and
    the incident's timeline says why it escalated."""
    run = wait_state(server, decision["run_id"], FINAL_STATES)
    assert (run["kind"], run["playbook"], run["state"]) == ("notify", NOTIFY_PLAYBOOK, "successful")
    escalations = [e for e in server.timeline(decision["incident_id"]) if e["kind"] == "escalated"]
    assert reason in [event["reason"] for event in escalations]


# Concurrency and deduplication.


def test_a_hundred_identical_alerts_at_once_give_one_run(tmp_path):
    routes = [record_route(vars=hold(10))]
    with adapter_process(tmp_path / "adapter", routes) as server:
        payload = webhook([alert(service="svc-1")])
        barrier = threading.Barrier(100)

        def send(_):
            barrier.wait()
            return server.post("/api/v1/alertmanager", payload, timeout=120)

        with ThreadPoolExecutor(100) as pool:
            responses = list(pool.map(send, range(100)))
        assert [response.status_code for response in responses] == [200] * 100
        decisions = [response.json()["decisions"][0] for response in responses]
        assert (kinds(decisions).count("accepted"), kinds(decisions).count("deduplicated")) == (1, 99)
        assert len({decision["alert_id"] for decision in decisions}) == 100
        (run_id,) = {decision["run_id"] for decision in decisions}
        runs = server.wait_runs_final()
        assert [(run["id"], run["kind"], run["state"]) for run in runs] == [(run_id, "remediate", "successful")]
        assert server.records() == {"svc-1": 1}
        assert_recorded(server, decisions)
        timeline = event_kinds(server, decisions[0]["incident_id"])
        assert (timeline.count("accepted"), timeline.count("deduplicated"), timeline.count("started")) == (1, 99, 1)


def test_repeats_while_the_run_is_running_join_it(tmp_path):
    with adapter_process(tmp_path / "adapter", [record_route(vars=hold(3))]) as server:
        (first,) = fire(server, alert(service="svc-1"))
        assert first["decision"] == "accepted"
        wait_state(server, first["run_id"], {"running"})
        repeats = fire(server, alert(service="svc-1")) + fire(server, alert(service="svc-1"))
        assert [(d["decision"], d["run_id"]) for d in repeats] == [("deduplicated", first["run_id"])] * 2
        assert [run["kind"] for run in server.wait_runs_final()] == ["remediate"]
        assert server.records() == {"svc-1": 1}
        assert_recorded(server, [first, *repeats])


# Cooldown.


def test_cooldown_escalates_a_refire_and_zero_cooldown_runs_again(tmp_path):
    routes = [record_route(), record_route("TestQuick", safety={"cooldown_minutes": 0})]
    with adapter_process(tmp_path / "adapter", routes) as server:
        first = fire(server, alert(service="svc-1"), alert("TestQuick", service="svc-2"))
        assert kinds(first) == ["accepted", "accepted"]
        server.wait_runs_final()
        again = fire(server, alert(service="svc-1"), alert("TestQuick", service="svc-2"))
        assert kinds(again) == ["cooled_down", "accepted"]
        assert "cooldown 600 s" in again[0]["reason"]
        assert_escalated(server, again[0], "cooldown")
        runs = server.wait_runs_final()
        remediations = of_kind(runs, "remediate")
        assert [(run["route"], run["state"]) for run in remediations] == [
            ("TestDown", "successful"),
            ("TestQuick", "successful"),
            ("TestQuick", "successful"),
        ]
        assert [run["route"] for run in of_kind(runs, "notify")] == ["TestDown"]
        assert server.records() == {"svc-1": 1, "svc-2": 2}
        assert_recorded(server, first + again)


# Caps.


def test_per_target_cap(tmp_path):
    routes = [record_route(safety={"per_target_per_hour": 1, "cooldown_minutes": 0})]
    with adapter_process(tmp_path / "adapter", routes) as server:
        decisions = fire(server, alert(service="svc-1"))
        server.wait_runs_final()
        decisions += fire(server, alert(service="svc-1"), alert(service="svc-2"))
        assert kinds(decisions) == ["accepted", "capped", "accepted"]
        assert decisions[1]["reason"] == "cap: 1 runs per target per hour: escalated"
        assert_escalated(server, decisions[1], "capped")
        runs = server.wait_runs_final()
        assert len(of_kind(runs, "remediate")) == 2
        assert server.records() == {"svc-1": 1, "svc-2": 1}
        assert_recorded(server, decisions)


def test_per_route_cap(tmp_path):
    routes = [record_route(safety={"per_route_per_hour": 2}), record_route("TestOther")]
    with adapter_process(tmp_path / "adapter", routes) as server:
        decisions = fire(
            server,
            alert(service="svc-1"),
            alert(service="svc-2"),
            alert(service="svc-3"),
            alert("TestOther", service="svc-4"),
        )
        assert kinds(decisions) == ["accepted", "accepted", "capped", "accepted"]
        assert decisions[2]["reason"] == "cap: 2 runs of this route per hour: escalated"
        assert_escalated(server, decisions[2], "capped")
        runs = server.wait_runs_final()
        assert len(of_kind(runs, "remediate")) == 3
        assert server.records() == {"svc-1": 1, "svc-2": 1, "svc-4": 1}
        assert_recorded(server, decisions)


def test_total_cap(tmp_path):
    routes = [record_route(), record_route("TestOther")]
    with adapter_process(tmp_path / "adapter", routes, safety={"caps": {"total_per_hour": 2}}) as server:
        decisions = fire(
            server, alert(service="svc-1"), alert("TestOther", service="svc-2"), alert("TestOther", service="svc-3")
        )
        assert kinds(decisions) == ["accepted", "accepted", "capped"]
        assert decisions[2]["reason"] == "cap: 2 runs per hour in total: escalated"
        assert_escalated(server, decisions[2], "capped")
        runs = server.wait_runs_final()
        assert len(of_kind(runs, "remediate")) == 2
        assert server.records() == {"svc-1": 1, "svc-2": 1}
        assert_recorded(server, decisions)


def test_concurrent_runs_cap(tmp_path):
    routes = [record_route(vars=hold(2))]
    with adapter_process(tmp_path / "adapter", routes, safety={"caps": {"concurrent_runs": 1}}) as server:
        decisions = fire(server, alert(service="svc-1"), alert(service="svc-2"))
        assert kinds(decisions) == ["accepted"] * 2
        samples = []

        def sample() -> list[dict]:
            remediations = of_kind(server.runs(), "remediate")
            samples.append([run["state"] for run in remediations])
            return remediations

        runs = wait_for(sample, lambda runs: all(run["state"] in FINAL_STATES for run in runs), timeout=120)
        assert max(states.count("running") for states in samples) == 1
        assert any(states.count("running") == 1 and "queued" in states for states in samples)
        assert [run["state"] for run in runs] == ["successful"] * 2
        spans = sorted((run["started_at"], run["finished_at"]) for run in runs)
        assert all(later[0] >= earlier[1] for earlier, later in itertools.pairwise(spans))
        assert server.records() == {"svc-1": 1, "svc-2": 1}
        assert_recorded(server, decisions)


# Circuit breaker.


def test_circuit_breaker_opens_and_is_reset_by_cli_and_api(tmp_path):
    route = record_route(
        vars={"fail": {"value": True}},
        safety={"cooldown_minutes": 0, "breaker_failures": 2, "per_target_per_hour": 20},
    )
    with adapter_process(tmp_path / "adapter", [route]) as server:
        decisions = []

        def fail_twice() -> None:
            for _ in range(2):
                decisions.extend(fire(server, alert(service="svc-1")))
                assert decisions[-1]["decision"] == "accepted"
                assert wait_state(server, decisions[-1]["run_id"], FINAL_STATES)["state"] == "failed"

        def assert_open() -> None:
            decisions.extend(fire(server, alert(service="svc-1")))
            assert decisions[-1]["decision"] == "breaker_open"
            assert_escalated(server, decisions[-1], "breaker_open")

        fail_twice()
        assert_open()
        reset = server.cli("reset-breaker", "TestDown")
        assert reset.returncode == 0, reset.stderr
        fail_twice()
        assert_open()
        assert server.post("/api/v1/breakers/TestDown/reset").status_code == 200
        decisions.extend(fire(server, alert(service="svc-1")))
        assert decisions[-1]["decision"] == "accepted"
        runs = server.wait_runs_final()
        assert [run["state"] for run in of_kind(runs, "remediate")] == ["failed"] * 5
        assert server.records() == {"svc-1": 5}
        assert_recorded(server, decisions)
        assert event_kinds(server, decisions[0]["incident_id"]).count("breaker_opened") == 2
        resets = server.timeline("route-TestDown")
        assert [event["kind"] for event in resets] == ["breaker_reset"] * 2
        assert resets[1]["reason"] == "reset by bearer" and resets[0]["reason"].startswith("reset by ")


# Silences.


def test_silences_from_settings_cli_and_api(tmp_path):
    silences = [{"matchers": {"service": "svc-9"}, "comment": "planned maintenance"}]
    with adapter_process(tmp_path / "adapter", [record_route()], silences=silences) as server:
        added = server.cli("silence", "--match", "service=svc-2", "--minutes", "5", "--comment", "disk swap")
        assert added.returncode == 0, added.stderr
        answer = server.post("/api/v1/silences", {"matchers": {"service": "svc-3"}, "minutes": 5, "comment": "api"})
        assert answer.status_code == 200, answer.text
        decisions = fire(server, *(alert(service=f"svc-{n}") for n in (9, 2, 3, 1)))
        assert kinds(decisions) == ["silenced", "silenced", "silenced", "accepted"]
        assert [d["run_id"] for d in decisions[:3]] == [None] * 3
        for decision, comment in zip(decisions[:3], ("planned maintenance", "disk swap", "api"), strict=True):
            assert decision["reason"].endswith(comment)
        runs = server.wait_runs_final()
        assert [(run["kind"], run["state"]) for run in runs] == [("remediate", "successful")]
        assert server.records() == {"svc-1": 1}
        assert_recorded(server, decisions)


# Resolved alerts.


def test_a_resolved_alert_cancels_its_queued_run_and_runs_nothing(tmp_path):
    routes = [record_route(vars=hold(8))]
    with adapter_process(tmp_path / "adapter", routes, safety={"caps": {"concurrent_runs": 1}}) as server:
        (busy,) = fire(server, alert(service="svc-1"))
        wait_state(server, busy["run_id"], {"running"})
        queued = fire(
            server,
            alert(service="svc-2"),
            alert(service="svc-4"),
            alert(service="svc-4", labels={"instance": "b"}),
            alert(service="svc-5"),
        )
        assert kinds(queued) == ["accepted", "accepted", "deduplicated", "accepted"]
        svc2, svc4, svc4b, svc5 = (d["run_id"] for d in queued)
        assert svc4b == svc4

        (resolved,) = fire(server, alert(service="svc-2", status="resolved"))
        assert resolved["decision"] == "resolved"
        assert resolved["reason"].endswith(f"canceled queued run(s) {svc2}")
        # A run stays queued while one of its alerts still fires.
        (half,) = fire(server, alert(service="svc-4", status="resolved"))
        assert half["reason"] == "recorded; nothing runs for a resolved alert"
        assert run_of(server, svc4)["state"] == "queued"
        (both,) = fire(server, alert(service="svc-4", status="resolved", labels={"instance": "b"}))
        assert both["reason"].endswith(f"canceled queued run(s) {svc4}")
        # A resolution that fails the route's label check is not `resolved`, but the
        # worker still sees the fingerprint resolved when it claims the run.
        (odd,) = fire(
            server,
            alert(
                service="svc-5", status="resolved", labels={"service": "Svc 5"}, fingerprint=queued[3]["fingerprint"]
            ),
        )
        assert odd["decision"] == "rejected"
        assert run_of(server, svc5)["state"] == "queued"
        (alone,) = fire(server, alert(service="svc-3", status="resolved"))
        assert (alone["decision"], alone["run_id"]) == ("resolved", None)
        assert run_of(server, busy["run_id"])["state"] == "running"

        runs = {run["id"]: run for run in server.wait_runs_final()}
        assert len(runs) == 4
        assert runs[busy["run_id"]]["state"] == "successful"
        for run_id in (svc2, svc4, svc5):
            assert (runs[run_id]["state"], runs[run_id]["started_at"]) == ("canceled", None)
        assert runs[svc5]["outcome"] == "the alert resolved before the run started"
        assert server.records() == {"svc-1": 1}
        assert_recorded(server, [busy, *queued, resolved, half, both, odd, alone])
        for decision in (queued[0], queued[1], queued[3]):
            timeline = server.timeline(decision["incident_id"])
            assert not remediation_started(timeline)
            assert [event["reason"] for event in timeline if event["kind"] == "canceled"] == [
                "the alert resolved before the run started"
            ]
        assert event_kinds(server, alone["incident_id"]) == ["resolved"]


# Approval.


def test_approval_by_cli_and_api_and_expiry(tmp_path):
    routes = [
        record_route(mode="approve"),
        record_route("TestHurry", mode="approve", safety={"approval_timeout_minutes": 0.02}),
    ]
    with adapter_process(tmp_path / "adapter", routes) as server:
        waiting = fire(server, alert(service="svc-1"), alert(service="svc-2"), alert("TestHurry", service="svc-3"))
        assert kinds(waiting) == ["awaiting_approval"] * 3
        by_cli, by_api, hurry = (d["run_id"] for d in waiting)

        approved = server.cli("approve", str(by_cli))
        assert (approved.returncode, approved.stdout.strip()) == (0, "approved"), approved.stderr
        assert wait_state(server, by_cli, FINAL_STATES)["state"] == "successful"
        expired = wait_state(server, hurry, FINAL_STATES)
        assert (expired["state"], expired["started_at"]) == ("expired", None)
        # The worker ran svc-1 and svc-3 expired; svc-2 still waits, unrun.
        assert run_of(server, by_api)["state"] == "awaiting_approval"
        assert server.records() == {"svc-1": 1}

        assert server.post(f"/api/v1/runs/{by_api}/approve").status_code == 200
        assert server.post(f"/api/v1/runs/{hurry}/approve").status_code == 409
        runs = {run["id"]: run for run in server.wait_runs_final()}
        assert runs[by_api]["state"] == "successful"
        assert runs[by_api]["approved_by"] == "bearer" and runs[by_cli]["approved_by"]
        assert runs[hurry]["state"] == "expired"
        assert server.records() == {"svc-1": 1, "svc-2": 1}
        (notify,) = of_kind(runs.values(), "notify")
        assert (notify["route"], notify["playbook"], notify["state"]) == ("TestHurry", NOTIFY_PLAYBOOK, "successful")
        assert_recorded(server, waiting)
        for decision in waiting[:2]:
            assert "approved" in event_kinds(server, decision["incident_id"])
        timeline = server.timeline(waiting[2]["incident_id"])
        assert ("expired", "nobody approved it in time") in [(e["kind"], e["reason"]) for e in timeline]
        assert ("escalated", "expired") in [(e["kind"], e["reason"]) for e in timeline]
        assert not remediation_started(timeline)


# notify_only and dry runs.


def test_notify_only_and_dry_run_modes(tmp_path):
    routes = [record_route("TestNotify", mode="notify_only"), record_route("TestDry", mode="dry_run")]
    with adapter_process(tmp_path / "adapter", routes) as server:
        decisions = fire(server, alert("TestNotify", service="svc-1"), alert("TestDry", service="svc-2"))
        assert kinds(decisions) == ["notify_only", "accepted"]
        assert decisions[1]["reason"].endswith("(dry_run)")
        assert_escalated(server, decisions[0], "notify_only")
        runs = server.wait_runs_final()
        assert [(run["kind"], run["route"], run["mode"], run["state"]) for run in runs] == [
            ("notify", "TestNotify", "auto", "successful"),
            ("remediate", "TestDry", "dry_run", "successful"),
        ]
        (record,) = server.records_dir.iterdir()
        assert record.name.startswith("svc-2.") and record.name.endswith(".dry_run")
        assert_recorded(server, decisions)


def test_the_dry_run_setting_forces_dry_runs(tmp_path):
    routes = [record_route(), record_route("TestApprove", mode="approve")]
    with adapter_process(tmp_path / "adapter", routes, safety={"dry_run": True}) as server:
        decisions = fire(server, alert(service="svc-1"), alert("TestApprove", service="svc-2"))
        assert kinds(decisions) == ["accepted", "accepted"]
        runs = server.wait_runs_final()
        assert [(run["mode"], run["state"]) for run in runs] == [("dry_run", "successful")] * 2
        records = sorted(path.name for path in server.records_dir.iterdir())
        assert [name.split(".")[0] for name in records] == ["svc-1", "svc-2"]
        assert all(name.endswith(".dry_run") for name in records)
        assert_recorded(server, decisions)


# Cancel.


def test_cancel_a_queued_and_a_running_run(tmp_path):
    routes = [record_route(vars=hold(30))]
    with adapter_process(tmp_path / "adapter", routes, safety={"caps": {"concurrent_runs": 1}}) as server:
        running, queued = fire(server, alert(service="svc-1"), alert(service="svc-2"))
        wait_for(server.records, lambda records: records == {"svc-1": 1})

        answer = server.cli("cancel", str(queued["run_id"]))
        assert (answer.returncode, answer.stdout.strip()) == (0, "canceled"), answer.stderr
        answer = server.cli("cancel", str(running["run_id"]))
        assert (answer.returncode, answer.stdout.strip()) == (0, "cancel requested"), answer.stderr
        # Well before the 30 s hold ends: ansible-runner's cancel_callback stops the playbook.
        assert wait_state(server, running["run_id"], FINAL_STATES, timeout=60)["state"] == "canceled"

        runs = server.wait_runs_final()
        assert [(run["id"], run["state"]) for run in runs] == [
            (running["run_id"], "canceled"),
            (queued["run_id"], "canceled"),
        ]
        assert runs[1]["started_at"] is None
        assert server.records() == {"svc-1": 1}
        assert_recorded(server, [running, queued])
        timeline = server.timeline(running["incident_id"])
        assert [(e["kind"], e.get("data", {}).get("status")) for e in timeline if e["kind"] == "finished"] == [
            ("finished", "canceled")
        ]
        assert "cancel_requested" in [event["kind"] for event in timeline]
        assert "canceled" in event_kinds(server, queued["incident_id"])
