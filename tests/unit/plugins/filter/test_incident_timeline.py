"""Unit tests for plugins/filter/incident_timeline.py."""

import datetime
import json

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.incident.remediation.plugins.filter.incident_timeline import (
    FilterModule,
    human_duration,
    incident_timeline,
    markdown_escape,
    parse_time,
)

CONTEXT = {"incident": "abc123-20261122144000", "playbook": "redis_down", "host": "localhost", "dry_run": False}


def event(name, at, **details):
    return json.dumps(dict(CONTEXT, event=name, at=at, **details), sort_keys=True)


DETECTED = event(
    "detected",
    "2026-11-22T14:47:17.545318Z",
    alertname="RedisDown",
    labels={"alertname": "RedisDown", "service": "redis", "severity": "critical"},
    annotations={"summary": "Redis unreachable for more than 2 minutes"},
    target={"platform": "compose", "service": "cache", "host": "localhost"},
    thresholds={"verify_timeout": 30},
)
DIAGNOSED = event("diagnosed", "2026-11-22T14:47:22.591453Z", service_state="stopped", plan=["start", "recreate"])
TIER_FAILED = event(
    "tier", "2026-11-22T14:47:55.000000Z", tier="start", result="not_verified", why="the container is not running",
    started_at="2026-11-22T14:47:22.737112Z", duration_s=32.26, error="PING still refused",
)
TIER_HEALED = event(
    "tier", "2026-11-22T14:48:01.000000Z", tier="recreate", result="verified", why="the earlier tiers did not help",
    started_at="2026-11-22T14:47:55.100000Z", details={"ping_ms": 0.28},
)
RESOLVED = event("resolved", "2026-11-22T14:48:01.500000Z", outcome="healed",
                 actions=[{"tier": "start", "result": "not_verified"}, {"tier": "recreate", "result": "verified"}])
TIMELINE = [DETECTED, DIAGNOSED, TIER_FAILED, TIER_HEALED, RESOLVED]


def test_the_summary_comes_from_detection_and_the_outcome():
    report = incident_timeline(TIMELINE)
    assert report["incident"] == "abc123-20261122144000"
    assert report["playbook"] == "redis_down"
    assert report["alertname"] == "RedisDown"
    assert (report["severity"], report["priority"]) == ("critical", "P0/P1")
    assert (report["service"], report["platform"]) == ("cache", "compose")  # the target's, not the label's
    assert report["annotations"] == {"summary": "Redis unreachable for more than 2 minutes"}
    assert report["start"] == "2026-11-22 14:47:17 UTC"
    assert report["end"] == "2026-11-22 14:48:01 UTC"
    assert report["date"] == "2026-11-22"
    assert report["duration_s"] == pytest.approx(43.955, abs=0.001)
    assert report["duration"] == "44.0 s"
    assert (report["status"], report["outcome"], report["dry_run"]) == ("resolved", "healed", False)
    assert report["unreadable"] == []


def test_every_event_is_a_row_with_its_time_offset_and_details():
    rows = incident_timeline(TIMELINE)["events"]
    assert [row["event"] for row in rows] == ["detected", "diagnosed", "tier", "tier", "resolved"]
    assert rows[0]["time"] == "14:47:17"
    assert rows[0]["offset"] == "+0.0 s"
    assert rows[1]["offset"] == "+5.0 s"
    assert rows[1]["details"] == 'plan: ["start", "recreate"]; service_state: stopped'
    assert "incident" not in rows[0]["details"] and "playbook" not in rows[0]["details"]
    assert rows[4]["details"] == "actions: start (not_verified), recreate (verified); outcome: healed"


def test_tiers_carry_their_result_and_duration():
    first, second = incident_timeline(TIMELINE)["tiers"]
    assert (first["tier"], first["result"], first["duration"], first["error"]) == (
        "start", "not_verified", "32.3 s", "PING still refused")
    assert first["time"] == "14:47:22"  # when the tier started
    # Without duration_s the duration is from started_at to the tier event.
    assert (second["tier"], second["result"]) == ("recreate", "verified")
    assert second["duration_s"] == pytest.approx(5.9)
    assert second["details"] == 'details: {"ping_ms": 0.28}'


def test_actions_are_sentences_in_order():
    actions = incident_timeline(TIMELINE)["actions"]
    assert [a["text"] for a in actions] == [
        "tier `start` (the container is not running): not_verified after 32.3 s: PING still refused",
        "tier `recreate` (the earlier tiers did not help): verified after 5.9 s",
        "resolved (outcome healed)",
    ]


def test_a_dry_run_reports_what_would_run():
    lines = [
        DETECTED,
        event("tier", "2026-11-22T14:47:23Z", tier="start", result="would_run", why="stopped", would_change=True,
              dry_run=True),
        event("dry_run_reported", "2026-11-22T14:47:24Z", outcome="dry_run", dry_run=True),
    ]
    report = incident_timeline(lines)
    assert (report["status"], report["outcome"], report["dry_run"]) == ("dry_run_reported", "dry_run", True)
    (tier,) = report["tiers"]
    assert tier["duration"] is None
    assert report["actions"][0]["text"] == "tier `start` (stopped): would run (dry run), would change the service: yes"
    assert report["actions"][1]["text"] == "dry run reported; nothing was changed"


def test_a_later_run_finding_the_service_healthy_does_not_hide_the_healing_run():
    lines = [*TIMELINE, DETECTED.replace("14:47:17", "14:55:00"),
             event("resolved", "2026-11-22T14:55:05Z", outcome="already_healthy", actions=[])]
    report = incident_timeline(lines)
    assert report["outcome"] == "healed"
    assert report["end"] == "2026-11-22 14:48:01 UTC"
    assert [run["outcome"] for run in report["runs"]] == ["healed", "already_healthy"]


def test_an_escalated_incident():
    lines = [DETECTED, DIAGNOSED, TIER_FAILED, event("escalated", "2026-11-22T14:50:17Z", outcome="unhealed")]
    report = incident_timeline(lines)
    assert (report["status"], report["outcome"], report["duration"]) == ("escalated", "unhealed", "2 min 59 s")
    assert report["actions"][-1]["text"] == "escalated to a person (outcome unhealed)"


def test_an_unfinished_incident_is_open():
    report = incident_timeline([DETECTED, DIAGNOSED])
    assert (report["status"], report["outcome"], report["end"], report["duration"]) == ("open", None, None, None)
    assert report["actions"] == []


def test_other_events_are_listed_as_they_are():
    lines = [DETECTED, event("notified", "2026-11-22T14:47:30Z", channel="#alerts-critical")]
    (action,) = incident_timeline(lines)["actions"]
    assert action["text"] == "notified: channel: #alerts-critical"


def test_bad_lines_are_left_out_and_named_blank_lines_skipped():
    report = incident_timeline([DETECTED, "", "{not json", "[1, 2]", RESOLVED])
    assert [row["event"] for row in report["events"]] == ["detected", "resolved"]
    assert report["unreadable"] == [3, 4]


def test_parsed_events_are_accepted():
    report = incident_timeline([json.loads(line) for line in TIMELINE])
    assert report["outcome"] == "healed"


def test_an_incident_over_midnight_shows_dates():
    lines = [DETECTED.replace("2026-11-22T14:47:17", "2026-11-21T23:59:50"), RESOLVED]
    report = incident_timeline(lines)
    assert report["events"][0]["time"] == "2026-11-21 23:59:50"
    assert report["duration"] == "14 h 48 min"


def test_markdown_mode_escapes_alert_text():
    hostile = {"summary": "a | b <script>x</script> [link](javascript:x) *bold* `code`\nsecond line",
               "_note_": "snake_case stays readable"}
    lines = [DETECTED.replace('"summary": "Redis unreachable for more than 2 minutes"',
                              json.dumps(hostile)[1:-1]), RESOLVED]
    report = incident_timeline(lines, markdown=True)
    assert report["annotations"]["summary"] == (
        r"a \| b \<script\>x\</script\> \[link](javascript:x) \*bold\* \`code\` second line")
    assert report["annotations"][r"\_note\_"] == "snake_case stays readable"
    assert report["outcome"] == "healed"
    assert "\n" not in report["events"][0]["details"]
    assert "|" not in report["events"][0]["details"].replace(r"\|", "")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, None), (0, "0.0 s"), (2.44, "2.4 s"), (59.94, "59.9 s"), (61, "1 min 1 s"), (3599.6, "1 h 0 min"),
     (3600, "1 h 0 min"), (4325, "1 h 12 min"), (-3, "0.0 s")],
)
def test_human_duration(seconds, text):
    assert human_duration(seconds) == text


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2026-11-22T14:47:17.545318Z", datetime.datetime(2026, 11, 22, 14, 47, 17, 545318)),
        ("2026-11-22T14:47:17Z", datetime.datetime(2026, 11, 22, 14, 47, 17)),
        ("2026-11-22T16:47:17.5+02:00", datetime.datetime(2026, 11, 22, 14, 47, 17, 500000)),
        ("2026-11-22T14:47:17.123456789Z", datetime.datetime(2026, 11, 22, 14, 47, 17, 123456)),
    ],
)
def test_parse_time(text, moment):
    assert parse_time(text) == moment.replace(tzinfo=datetime.timezone.utc)


@pytest.mark.parametrize("text", [None, "", "yesterday", "2026-11-22"])
def test_parse_time_rejects_what_is_not_a_time(text):
    assert parse_time(text) is None


def test_markdown_escape_keeps_words_readable():
    assert markdown_escape("already_healthy & not_verified") == r"already_healthy \& not_verified"


def test_input_must_be_a_list():
    with pytest.raises(AnsibleFilterError, match="expects a list"):
        incident_timeline("one line")


def test_the_filter_is_registered():
    assert FilterModule().filters()["incident_timeline"] is incident_timeline
