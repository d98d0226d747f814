"""Unit tests of remediate.outcomes (the playbook's verdict, checked) and of the route's
checks on a hand-over target (no server)."""

import pytest
from remediate.outcomes import BadVerdict, parse_verdict, run_result
from remediate.routes import Rejected

from tests.adapter.test_routes_unit import route, table

INCIDENT = "5e1c0ffee0000001-20261122030000"


def verdict(**fields) -> dict:
    return {
        "version": 1,
        "incident_id": INCIDENT,
        "playbook": "redis_down",
        "outcome": "healed",
        "summary": "Redis answers PING again after tier start",
        "notified": True,
        "actions": [{"tier": "start", "result": "verified"}],
        **fields,
    }


HANDOVER = {
    "playbook": "incident.remediation.database_down",
    "target": {"platform": "compose", "service": "db", "endpoint": {"host": "127.0.0.1", "port": 5432}},
    "reason": "the errors come from the database",
}


def test_a_good_verdict_is_kept_as_reported():
    assert parse_verdict(verdict(), INCIDENT) == {
        "outcome": "healed",
        "playbook": "redis_down",
        "summary": "Redis answers PING again after tier start",
        "notified": True,
        "actions": [{"tier": "start", "result": "verified"}],
    }
    handed = parse_verdict(verdict(outcome="handed_over", handover=HANDOVER), INCIDENT)
    assert handed["handover"] == HANDOVER


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"version": 2}, "version must be 1"),
        ({"incident_id": "0000000000000000-20261122030000"}, "incident_id is not the run's incident"),
        ({"outcome": "fixed"}, "outcome must be one of healed, already_healthy"),
        ({"notified": "yes"}, "notified must be true or false"),
        ({"summary": "x" * 1025}, "summary must be a string of at most 1024"),
        ({"summary": "line\x1b[31m"}, "without control characters"),
        ({"actions": [{"tier": "start", "result": "rm -rf"}]}, "each action must be"),
        ({"actions": [{"tier": "t", "result": "verified"}] * 65}, "actions must be a list of at most 64"),
        ({"extra": 1}, "unknown keys ['extra']"),
        ({"outcome": "handed_over"}, "handover goes with outcome handed_over"),
        ({"handover": HANDOVER}, "handover goes with outcome handed_over"),
        ({"outcome": "handed_over", "handover": {**HANDOVER, "playbook": "database_down"}}, "fully qualified"),
        ({"outcome": "handed_over", "handover": {**HANDOVER, "playbook": "a.b.c; id"}}, "fully qualified"),
        ({"outcome": "handed_over", "handover": {**HANDOVER, "target": {"Service": "db"}}}, "lower-case identifiers"),
        ({"outcome": "handed_over", "handover": {**HANDOVER, "target": {"service": ["db"]}}}, "a string, a number"),
        ({"outcome": "handed_over", "handover": {**HANDOVER, "target": {}}}, "small non-empty mapping"),
        ({"outcome": "handed_over", "handover": {**HANDOVER, "extra": 1}}, "{playbook, target, reason}"),
    ],
)
def test_a_bad_verdict_is_refused_naming_the_field(fields, message):
    with pytest.raises(BadVerdict) as refused:
        parse_verdict(verdict(**fields), INCIDENT)
    assert message in str(refused.value)


@pytest.mark.parametrize(
    ("kind", "status", "outcome", "expected"),
    [
        ("remediate", "failed", "unhealed", "unhealed"),  # the verdict wins over the failed play
        ("remediate", "successful", "healed", "healed"),
        ("remediate", "timeout", "healed", "timeout"),  # a timeout or a cancel wins over everything
        ("remediate", "canceled", "healed", "canceled"),
        ("remediate", "failed", None, "failed"),
        ("remediate", "successful", None, "no_verdict"),
        ("notify", "successful", None, "notified"),
        ("notify", "failed", None, "failed"),
        ("notify", "timeout", None, "timeout"),
    ],
)
def test_run_result(kind, status, outcome, expected):
    found = parse_verdict(verdict(outcome=outcome, notified=False), INCIDENT) if outcome else None
    assert run_result(kind, status, found) == expected


def test_a_hand_over_target_passes_the_route_target_checks(tmp_path):
    (checked,) = table(tmp_path, route()).routes
    good = {"platform": "compose", "service": "db-1"}
    assert checked.check_target(good) == {
        "platform": "compose",
        "host": "localhost",
        "service": "db-1",
        "project_src": "/srv/test",
    }
    refusals = {
        "service": ({"platform": "compose", "service": "$(id)"}, "does not match the route's pattern"),
        "missing": ({"platform": "compose"}, "is missing and the route sets no default"),
        "fixed": ({"platform": "compose", "service": "db", "project_src": "/etc"}, "differs from the route's fixed"),
        "platform": ({"platform": "kubernetes", "service": "db"}, "target.platform: differs"),
        "unknown": ({"platform": "compose", "service": "db", "become": "root"}, "is not a field of the route"),
    }
    for case, (target, message) in refusals.items():
        with pytest.raises(Rejected) as refused:
            checked.check_target(target)
        assert message in str(refused.value), case
