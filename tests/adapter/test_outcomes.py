"""Outcomes (docs/outcomes.md): each verdict a playbook reports is recorded distinctly,
people get exactly one message per outcome with the right words, the breaker counts
only real failures and unhealed runs, and a hand-over queues the named playbook
under the same incident through the same safety rules. Every run is a real
ansible-runner run of the record stub, which reports the outcome its alert's
`outcome` label asks for."""

import sqlite3

import httpx
import pytest

from tests.adapter.test_intake import metric_values, value
from tests.harness.adapter import adapter_process, alert, record_route
from tests.harness.ansible import wait_for
from tests.harness.http_receiver import HttpReceiver

pytestmark = pytest.mark.integration

OUTCOME_LABELS = ["healed", "already_healthy", "unhealed", "cannot_judge", "dry_run", "resolved", "none"]
POLICY = """
notify_escalation_policy:
  warning:
    channels: [webhook]
    steps:
      - {after_minutes: 0, who: on-call engineer, how: chat}
      - {after_minutes: 30, who: secondary on-call, how: chat}
"""


def outcome_route(name="TestOutcome", **extra):
    """A route whose alerts say what the run reports: labels `outcome` and `notified`."""
    return record_route(
        name,
        vars={
            "outcome": {"label": "outcome", "allow": OUTCOME_LABELS, "default": "healed"},
            "notified": {"label": "notified", "allow": ["true", "false"], "default": "false"},
        },
        safety={"cooldown_minutes": 0, "breaker_failures": 10},
        **extra,
    )


def outcome_alert(service, outcome, *, notified=False, name="TestOutcome"):
    return alert(name, service, labels={"outcome": outcome, "notified": str(notified).lower()})


@pytest.fixture
def receiver():
    with HttpReceiver() as server:
        yield server


def hooks(receiver):
    return [request.json for request in receiver.requests_to("/hooks/")]


def by_incident(runs):
    found = {}
    for run in runs:
        found.setdefault(run["incident_id"], []).append(run)
    return found


def test_each_outcome_is_recorded_distinctly_with_one_message_each(tmp_path, receiver):
    policy = tmp_path / "policy.yml"
    policy.write_text(POLICY)
    cases = {
        "svc-healed": ("healed", True),
        "svc-healthy": ("already_healthy", False),
        "svc-unhealed": ("unhealed", True),
        "svc-unhealed-quiet": ("unhealed", False),
        "svc-judge": ("cannot_judge", False),
        "svc-dry": ("dry_run", True),
        "svc-resolved": ("resolved", False),
        "svc-silent": ("none", False),
    }
    routes = [outcome_route(), record_route("TestBroken", vars={"fail": {"value": True}})]
    with adapter_process(
        tmp_path / "adapter",
        routes,
        escalation_policy_file=str(policy),
        inventory_vars={"notify_webhook_url": receiver.url("/hooks/incident")},
    ) as server:
        answer = server.fire(
            [outcome_alert(service, outcome, notified=notified) for service, (outcome, notified) in cases.items()]
            + [alert("TestBroken", "svc-broken")]
        )
        incident_of = {
            service: decision["incident_id"]
            for service, decision in zip([*cases, "svc-broken"], answer["decisions"], strict=True)
        }
        runs = by_incident(server.wait_runs_final(timeout=300))

        results = {
            service: [(run["kind"], run["result"], run["reason"]) for run in runs[incident]]
            for service, incident in incident_of.items()
        }
        told = ("notify", "notified")
        assert results == {
            "svc-healed": [("remediate", "healed", "alert TestOutcome")],
            "svc-healthy": [("remediate", "already_healthy", "alert TestOutcome")],
            # The playbook sent `declared` itself: the adapter sends nothing now.
            "svc-unhealed": [("remediate", "unhealed", "alert TestOutcome")],
            "svc-unhealed-quiet": [("remediate", "unhealed", "alert TestOutcome"), (*told, "unhealed")],
            "svc-judge": [("remediate", "cannot_judge", "alert TestOutcome"), (*told, "cannot_judge")],
            "svc-dry": [("remediate", "dry_run", "alert TestOutcome")],
            "svc-resolved": [("remediate", "resolved", "alert TestOutcome")],
            "svc-silent": [("remediate", "no_verdict", "alert TestOutcome"), (*told, "no_verdict")],
            "svc-broken": [("remediate", "failed", "alert TestBroken"), (*told, "failed")],
        }
        # The verdict wins over the failed play (the playbooks fail it for people).
        (unhealed,) = runs[incident_of["svc-unhealed"]]
        assert (unhealed["state"], unhealed["outcome"]) == ("failed", "unhealed (record stub) for svc-unhealed")

        # Exactly one message per outcome that calls for one, worded for it.
        statuses = sorted(hook["status"] for hook in hooks(receiver))
        assert statuses == sorted(
            [
                "ESCALATED: unhealed - the remediation tried every tier that applied and the service is still"
                " unhealthy",
                "ESCALATED: cannot_judge - the remediation could not judge the service's health, so it did nothing",
                "ESCALATED: no_verdict - the remediation playbook ended without reporting an outcome; the service's"
                " state is unknown",
                "ESCALATED: failed - the remediation playbook failed before it reported an outcome (it may have"
                " acted partly); the service's state is unknown",
            ]
        )

        # The timeline's finished event and the metric say the same.
        finished = [e for e in server.timeline(incident_of["svc-judge"]) if e["kind"] == "finished"]
        assert [(e["data"]["result"], e["data"]["status"]) for e in finished] == [
            ("cannot_judge", "failed"),
            ("notified", "successful"),
        ]
        metrics = metric_values(server)
        for result, count in {"healed": 1, "already_healthy": 1, "unhealed": 2, "cannot_judge": 1}.items():
            assert value(metrics, "remediate_runs_total", kind="remediate", result=result) == count, result
        for result in ("dry_run", "resolved", "no_verdict", "failed"):
            assert value(metrics, "remediate_runs_total", kind="remediate", result=result) == 1, result
        assert value(metrics, "remediate_runs_total", kind="notify", result="notified") == 4

        # Unhealed and told by the playbook: the adapter owns the later steps, not step 0.
        with sqlite3.connect(server.folder / "remediate.db") as db:
            steps = db.execute(
                "SELECT step, state FROM escalations WHERE incident_id = ? ORDER BY step",
                (incident_of["svc-unhealed"],),
            ).fetchall()
            assert steps == [(0, "sent"), (1, "pending")]
            db.execute(
                "UPDATE escalations SET due_at = 0 WHERE incident_id = ? AND step = 1", (unhealed["incident_id"],)
            )
        wait_for(lambda: hooks(receiver), lambda sent: len(sent) == 5, timeout=120)
        assert "ESCALATED to secondary on-call (chat)" in hooks(receiver)[-1]["status"]


def test_the_breaker_counts_failures_and_unhealed_runs_and_a_healed_one_resets_it(tmp_path):
    route = record_route(
        "TestOutcome",
        vars={"outcome": {"label": "outcome", "allow": OUTCOME_LABELS}},
        safety={"cooldown_minutes": 0, "breaker_failures": 2},
    )
    with adapter_process(tmp_path / "adapter", [route]) as server:

        def breaker():
            with sqlite3.connect(server.folder / "remediate.db") as db:
                return db.execute("SELECT failures, is_open FROM breakers").fetchone()

        # unhealed 1, healed resets, unhealed 1, cannot_judge and dry_run leave it, no verdict 2: open.
        sequence = [
            ("unhealed", (1, 0)),
            ("healed", (0, 0)),
            ("unhealed", (1, 0)),
            ("cannot_judge", (1, 0)),
            ("dry_run", (1, 0)),
            ("none", (2, 1)),
        ]
        for index, (outcome, expected) in enumerate(sequence):
            server.fire([alert("TestOutcome", f"svc-{index}", labels={"outcome": outcome})])
            server.wait_runs_final()
            assert breaker() == expected, outcome
        decision = server.fire([alert("TestOutcome", "svc-next", labels={"outcome": "healed"})])["decisions"][0]
        assert decision["decision"] == "breaker_open"


def handover_route(name, playbook, service_to=None, **extra):
    """A route to `playbook` whose runs hand over to the takeover stub for `service_to`."""
    variables = {}
    if service_to is not None:
        variables = {
            "outcome": {"value": "handed_over"},
            "notified": {"value": True},
            "handover_playbook": {"value": "adapter_test.playbooks.takeover"},
            "handover_service": {"value": service_to},
        }
    return {**record_route(name, vars=variables, safety={"cooldown_minutes": 0}), "playbook": playbook, **extra}


def test_handed_over_queues_the_named_playbook_under_the_same_incident(tmp_path):
    routes = [
        handover_route("TestCache", "adapter_test.playbooks.record", service_to="db-1"),
        handover_route("TestDatabase", "adapter_test.playbooks.takeover"),
    ]
    with adapter_process(tmp_path / "adapter", routes) as server:
        incident = server.fire([alert("TestCache", "cache-1")])["decisions"][0]["incident_id"]
        runs = wait_for(server.wait_runs_final, lambda runs: len(runs) == 2, timeout=180)
        assert [(run["playbook"], run["result"], run["incident_id"]) for run in runs] == [
            ("adapter_test.playbooks.record", "handed_over", incident),
            ("adapter_test.playbooks.takeover", "healed", incident),
        ]
        assert runs[1]["route"] == "TestDatabase"
        assert runs[1]["reason"] == "hand-over from adapter_test.playbooks.record: the record stub hands over"
        # The second playbook really ran, for the named target, under the same incident.
        assert server.record_incidents() == [("cache-1", incident), ("db-1", incident)]
        handed = [event for event in server.timeline(incident) if event["kind"] == "handed_over"]
        assert [event["data"]["decision"] for event in handed] == ["accepted"]


def test_a_hand_over_goes_through_the_safety_rules_or_is_refused_with_a_reason(tmp_path):
    routes = [
        handover_route("TestNowhere", "adapter_test.playbooks.record", service_to="db-1"),
        handover_route("TestApprove", "adapter_test.playbooks.takeover", mode="approve"),
    ]
    routes[0]["vars"]["handover_playbook"] = {"label": "to", "allow": ["adapter_test.playbooks.takeover", "x.y.z"]}
    routes[0]["vars"]["handover_service"] = {"label": "to_service", "pattern": "[A-Za-z0-9-]{1,16}"}
    with adapter_process(tmp_path / "adapter", routes) as server:
        cases = {
            "svc-unrouted": {"to": "x.y.z", "to_service": "db-1"},
            "svc-bad-target": {"to": "adapter_test.playbooks.takeover", "to_service": "DB-Upper"},
            "svc-approve": {"to": "adapter_test.playbooks.takeover", "to_service": "db-2"},
        }
        decisions = server.fire([alert("TestNowhere", service, labels=labels) for service, labels in cases.items()])
        incidents = [decision["incident_id"] for decision in decisions["decisions"]]
        runs = by_incident(wait_for(server.wait_runs_final, lambda runs: len(runs) == 6, timeout=240))

        unrouted, bad_target, approve = (runs[incident] for incident in incidents)
        refused = ("notify", "notified", "handover_refused")
        assert [(r["kind"], r["result"], r["reason"]) for r in unrouted][1] == refused
        assert [(r["kind"], r["result"], r["reason"]) for r in bad_target][1] == refused
        reasons = {
            event["reason"]
            for incident in incidents[:2]
            for event in server.timeline(incident)
            if event["kind"] == "handover_refused"
        }
        assert reasons == {
            "hand-over to x.y.z refused: no route runs that playbook",
            "hand-over to adapter_test.playbooks.takeover refused: the route 'TestApprove' refuses it:"
            " target.service: label 'service' does not match the route's pattern (\"DB-Upper\")",
        }
        # The route's mode applies to a hand-over: it waits for a person, under the same incident.
        assert [(r["playbook"], r["state"]) for r in approve] == [
            ("adapter_test.playbooks.record", "successful"),
            ("adapter_test.playbooks.takeover", "awaiting_approval"),
        ]
        assert server.records()["db-2"] == 0


def test_a_hand_over_loop_stops_after_three_hand_overs(tmp_path):
    routes = [
        handover_route("TestPing", "adapter_test.playbooks.record", service_to="pong"),
        handover_route("TestPong", "adapter_test.playbooks.takeover", service_to="ping"),
    ]
    # The takeover stub hands back to record: ping -> pong -> ping -> ...
    routes[1]["vars"]["handover_playbook"] = {"value": "adapter_test.playbooks.record"}
    with adapter_process(tmp_path / "adapter", routes) as server:
        incident = server.fire([alert("TestPing", "ping")])["decisions"][0]["incident_id"]
        runs = wait_for(server.wait_runs_final, lambda runs: len(runs) == 5, timeout=300)
        assert [(run["kind"], run["result"]) for run in runs] == [("remediate", "handed_over")] * 4 + [
            ("notify", "notified")
        ]
        assert {run["incident_id"] for run in runs} == {incident}
        (refused,) = [event for event in server.timeline(incident) if event["kind"] == "handover_refused"]
        assert refused["reason"].endswith("this incident was handed over 3 times already")


def test_a_failed_notification_is_logged_counted_and_degrades_healthz(tmp_path, receiver):
    receiver.answer(500, {"error": "down"}, path="/hooks/")
    route = record_route(vars={"fail": {"value": True}}, safety={"cooldown_minutes": 0})
    with adapter_process(
        tmp_path / "adapter",
        [route],
        notify_required=True,
        inventory_vars={"notify_webhook_url": receiver.url("/hooks/incident")},
    ) as server:
        assert httpx.get(server.url + "/healthz", timeout=10).json()["status"] == "ok"
        server.fire([alert(service="svc-1")])
        runs = wait_for(server.wait_runs_final, lambda runs: len(runs) == 2, timeout=180)
        assert [(run["kind"], run["result"]) for run in runs] == [("remediate", "failed"), ("notify", "failed")]
        assert len(hooks(receiver)) == 1, "the message was tried"

        health = httpx.get(server.url + "/healthz", timeout=10)
        assert health.status_code == 200
        assert health.json()["status"] == "degraded"
        assert f"notify run {runs[1]['id']} ended failed" in health.json()["problems"][0]
        metrics = wait_for(
            lambda: metric_values(server), lambda m: value(m, "remediate_notifications_failing") == 1, timeout=30
        )
        assert value(metrics, "remediate_notifications_failed_total") == 1
        log = server.log_path.read_text()
        assert '"levelname": "ERROR", "name": "remediate.worker", "message": "notification run failed' in log

        # A person acknowledges: ok again.
        assert server.post("/api/v1/notifications/acknowledge").status_code == 200
        assert httpx.get(server.url + "/healthz", timeout=10).json()["status"] == "ok"

        # Fails again, then a later notification gets through: ok without anyone acknowledging.
        server.fire([alert(service="svc-2")])
        wait_for(server.wait_runs_final, lambda runs: len(runs) == 4, timeout=180)
        assert httpx.get(server.url + "/healthz", timeout=10).json()["status"] == "degraded"
        receiver.answer(200, {"ok": True}, path="/hooks/")
        server.fire([alert(service="svc-3")])
        runs = wait_for(server.wait_runs_final, lambda runs: len(runs) == 6, timeout=180)
        assert runs[-1]["result"] == "notified"
        assert httpx.get(server.url + "/healthz", timeout=10).json()["status"] == "ok"
        metrics = wait_for(
            lambda: metric_values(server), lambda m: value(m, "remediate_notifications_failing") == 0, timeout=30
        )
        assert value(metrics, "remediate_notifications_failed_total") == 2
