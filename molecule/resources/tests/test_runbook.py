"""The checks of every runbook scenario, whatever its playbook: the timeline of
the converge (detected, diagnosed as SCENARIO_STATE, the tier SCENARIO_TIER
verified, the outcome SCENARIO_OUTCOME), the idempotence run that found the
service healthy and did nothing, the service status saved as evidence before
acting, and the check step's dry run on the broken service: it reported the tier
it would run and left the service broken.

The playbook's own checks (its service healthy again, its evidence) live in
molecule/resources/tests/<playbook>/, the scenario's verifier directory."""

import json
import os

OUTCOME = os.environ["SCENARIO_OUTCOME"]
TIER = os.environ["SCENARIO_TIER"]
STATE = os.environ["SCENARIO_STATE"]


def first_run(timeline):
    """The converge's events: up to its resolution (the idempotence run's follow)."""
    end = next(i for i, event in enumerate(timeline) if event["event"] == "resolved")
    return timeline[: end + 1]


def test_timeline_records_detection_diagnosis_the_tier_and_the_outcome(timeline):
    events = first_run(timeline)
    assert [event["event"] for event in events[:2]] == ["detected", "diagnosed"]
    assert events[1]["service_state"] == STATE
    tiers = [event for event in events if event["event"] == "tier"]
    assert tiers[-1] == {**tiers[-1], "tier": TIER, "result": "verified"}
    assert events[-1]["outcome"] == OUTCOME


def test_second_run_found_the_service_healthy_and_did_nothing(timeline):
    resolved = [event for event in timeline if event["event"] == "resolved"]
    assert len(resolved) >= 2
    assert resolved[-1]["outcome"] == "already_healthy"
    assert resolved[-1]["actions"] == []


def test_service_status_was_saved_before_acting(incident_dir, target):
    evidence = sorted((incident_dir / "evidence").iterdir())
    status = json.loads(next(path for path in evidence if path.name.endswith("-service-status.json")).read_text())
    assert status["state"] == STATE
    assert status["service"] == target["service"]


def test_dry_run_reported_the_tier_it_would_run_and_acted_on_nothing(dry_run_timeline):
    (outcome,) = [event for event in dry_run_timeline if event["event"] == "dry_run_reported"]
    assert [event["result"] for event in dry_run_timeline if event["event"] == "tier"] == ["would_run"]
    assert not [event for event in dry_run_timeline if event["event"] in ("resolved", "escalated")]
    assert outcome["dry_run"] is True
    assert outcome["actions"] == [
        {"tier": TIER, "result": "would_run", "why": outcome["actions"][0]["why"], "would_change": True}
    ]


def test_dry_run_left_the_service_broken(timeline):
    """The converge runs right after the check step: it must find the service still broken."""
    diagnosed = first_run(timeline)[1]
    assert diagnosed["status"] != "ok", "check mode must leave the service broken"
    assert diagnosed["plan"], "the converge after the dry run found nothing to do"
