"""The metrics the adapter's own alerting rules read (extensions/prometheus/remediate.rules.yml)
move on real runs of a real adapter process: a run stopped at its timeout is counted as
`timeout`, and an escalated incident is counted while its alert fires, as overdue once a
later step of the escalation policy came due, and no more once it resolves."""

import sqlite3

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.harness.adapter import adapter_process, alert, record_route
from tests.harness.ansible import wait_for

pytestmark = pytest.mark.integration

POLICY = """
notify_escalation_policy:
  warning:
    channels: [webhook]
    steps:
      - {after_minutes: 0, who: on-call engineer, how: chat}
      - {after_minutes: 30, who: secondary on-call, how: chat}
"""


def samples(adapter) -> dict[tuple, float]:
    """/metrics as {(name, sorted label pairs): value}; it needs no authentication, as Prometheus scrapes it."""
    text = httpx.get(adapter.url + "/metrics", timeout=10).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def gauge(adapter, name: str) -> float:
    return samples(adapter)[(name, ())]


@pytest.fixture
def adapter(tmp_path):
    policy = tmp_path / "policy.yml"
    policy.write_text(POLICY)
    routes = [
        record_route("TestDown", vars={"fail": {"value": True}}, safety={"cooldown_minutes": 0}),
        record_route("TestSlow", vars={"hold": {"value": 60}}),
    ]
    with adapter_process(
        tmp_path / "adapter", routes, escalation_policy_file=str(policy), executor={"timeout_seconds": 5}
    ) as server:
        yield server


def test_a_run_stopped_at_its_timeout_is_counted_as_timeout(adapter):
    timeouts = ("remediate_runs_total", (("kind", "remediate"), ("result", "timeout")))
    assert samples(adapter).get(timeouts, 0) == 0
    adapter.fire([alert("TestSlow", service="svc-slow")])
    runs = wait_for(
        adapter.wait_runs_final,
        lambda runs: any(run["kind"] == "remediate" and run["state"] == "timeout" for run in runs),
        timeout=120,
    )
    assert [run["result"] for run in runs if run["kind"] == "remediate"] == ["timeout"]
    assert samples(adapter)[timeouts] == 1


def test_an_escalated_incident_is_counted_until_it_resolves_and_overdue_after_its_next_step(adapter):
    assert (gauge(adapter, "remediate_incidents_escalated"), gauge(adapter, "remediate_incidents_overdue")) == (0, 0)
    adapter.fire([alert("TestDown", service="svc-1")])
    wait_for(
        adapter.wait_runs_final,
        lambda runs: (
            [(run["kind"], run["state"]) for run in runs] == [("remediate", "failed"), ("notify", "successful")]
        ),
        timeout=120,
    )
    # Escalated (step 0 sent), the alert fires, the next step is 30 minutes away.
    wait_for(lambda: gauge(adapter, "remediate_incidents_escalated"), lambda value: value == 1, timeout=10)
    assert gauge(adapter, "remediate_incidents_overdue") == 0

    # The next step comes due while the alert still fires: unhealed past its escalation time.
    with sqlite3.connect(adapter.folder / "remediate.db") as db:
        db.execute("UPDATE escalations SET due_at = 0 WHERE step = 1")
    wait_for(lambda: gauge(adapter, "remediate_incidents_overdue"), lambda value: value == 1, timeout=10)
    assert gauge(adapter, "remediate_incidents_escalated") == 1

    adapter.fire([alert("TestDown", service="svc-1", status="resolved")])
    wait_for(
        lambda: (gauge(adapter, "remediate_incidents_escalated"), gauge(adapter, "remediate_incidents_overdue")),
        lambda values: values == (0, 0),
        timeout=10,
    )
