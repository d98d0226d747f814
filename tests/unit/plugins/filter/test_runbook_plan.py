"""Unit tests for the runbook role's filters: runbook_plan and runbook_tier_problems."""

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.incident.remediation.plugins.filter.runbook_plan import runbook_plan
from ansible_collections.incident.remediation.plugins.filter.runbook_tier_problems import tier_table_problems

ACTION_VARS = {"start": [], "restart": [], "recreate": [], "scale": ["replicas", "max_replicas"], "set_env": ["env"]}
PLATFORMS = ["compose", "kubernetes", "systemd"]
REDIS_TIERS = [
    {"name": "start", "action": "start", "states": ["missing", "stopped"], "reason": "not running"},
    {"name": "restart", "action": "restart", "states": ["running", "unhealthy"], "reason": "no PING"},
    {
        "name": "recreate",
        "action": "recreate",
        "platforms": ["compose"],
        "platform_note": "on Kubernetes a recreate is the restart",
        "reason": "last",
    },
]


def applied(plan):
    return [tier["name"] for tier in plan if tier["applies"]]


@pytest.mark.parametrize(
    ("platform", "state", "expected"),
    [
        ("compose", "stopped", ["start", "recreate"]),
        ("compose", "running", ["restart", "recreate"]),
        ("kubernetes", "running", ["restart"]),
        ("systemd", "missing", ["start"]),
    ],
)
def test_tiers_apply_by_platform_and_state(platform, state, expected):
    assert applied(runbook_plan(REDIS_TIERS, platform=platform, state=state)) == expected


def test_every_skipped_tier_says_why():
    plan = {tier["name"]: tier for tier in runbook_plan(REDIS_TIERS, platform="kubernetes", state="stopped")}
    assert plan["start"]["skipped_because"] == ""
    assert plan["restart"]["skipped_because"] == "the service is stopped (the tier is for running, unhealthy)"
    assert plan["recreate"]["skipped_because"] == "on Kubernetes a recreate is the restart"


def test_a_platform_without_a_note_is_named():
    tiers = [{"name": "rollback", "action": "rollback", "platforms": ["kubernetes"], "reason": "r"}]
    (tier,) = runbook_plan(tiers, platform="systemd", state="running")
    assert tier["skipped_because"] == "does not apply on systemd (only kubernetes)"


def test_a_tier_that_requires_a_finding_applies_only_with_it():
    tiers = [{"name": "undo", "action": "rollback", "requires": "recent_rollout", "reason": "r"}]
    assert applied(runbook_plan(tiers, platform="kubernetes", state="running")) == []
    assert applied(runbook_plan(tiers, platform="kubernetes", state="running", findings=["recent_rollout"])) == ["undo"]


def test_a_handover_tier_needs_a_dependency_of_that_role():
    tiers = [{"name": "database", "handover": "database", "reason": "the errors come from the database"}]
    dependency = {"role": "database", "playbook": "database_down", "target": {"platform": "compose", "service": "db"}}
    (skipped,) = runbook_plan(tiers, platform="compose", state="running", depends_on=[{"role": "cache"}])
    assert not skipped["applies"]
    assert skipped["skipped_because"] == "the target names no database in depends_on"
    (handed,) = runbook_plan(tiers, platform="compose", state="running", depends_on=[dependency])
    assert handed["applies"]
    assert handed["handover_to"] == dependency


def test_the_plan_needs_a_list():
    with pytest.raises(AnsibleFilterError):
        runbook_plan({"name": "x"}, platform="compose", state="running")


def test_a_sound_table_has_no_problems():
    assert tier_table_problems(REDIS_TIERS, ACTION_VARS, PLATFORMS) == []


@pytest.mark.parametrize(
    ("tier", "problem"),
    [
        ({"name": "x", "reason": "r"}, "tier x needs exactly one of action, tasks or handover"),
        ({"name": "x", "action": "start", "tasks": "/t.yml", "reason": "r"}, "needs exactly one of"),
        ({"name": "x", "action": "start", "states": ["sleeping"], "reason": "r"}, "unknown service states sleeping"),
        ({"name": "x", "action": "start", "platforms": ["nomad"], "reason": "r"}, "does not support: nomad"),
        (
            {"name": "x", "action": "scale", "vars": {"replica": 3}, "reason": "r"},
            "scale takes replicas, max_replicas, not replica",
        ),
        ({"name": "x", "action": "restart", "vars": {"env": {}}, "reason": "r"}, "restart takes no vars, not env"),
        ({"name": "x", "handover": "database", "vars": {"a": 1}, "reason": "r"}, "hands over and takes no vars"),
    ],
)
def test_a_wrong_tier_is_named(tier, problem):
    (found,) = tier_table_problems([tier], ACTION_VARS, PLATFORMS)
    assert problem in found


def test_a_name_used_twice_is_a_problem():
    tiers = [dict(REDIS_TIERS[0]), dict(REDIS_TIERS[0])]
    assert tier_table_problems(tiers, ACTION_VARS, PLATFORMS) == ["tier name start is used twice"]
