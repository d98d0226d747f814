"""One alert through the real server, ansible-runner and the record playbook."""

import pytest

from tests.harness.adapter import alert

pytestmark = pytest.mark.integration


def test_an_alert_runs_its_playbook_once(adapter):
    answer = adapter.fire([alert(service="svc-1")])
    assert [d["decision"] for d in answer["decisions"]] == ["accepted"]
    runs = adapter.wait_runs_final()
    assert [(run["state"], run["kind"]) for run in runs] == [("successful", "remediate")]
    assert adapter.records() == {"svc-1": 1}
    kinds = [event["kind"] for event in adapter.timeline(answer["decisions"][0]["incident_id"])]
    assert kinds[0] == "accepted" and "started" in kinds and kinds[-1] == "finished"
