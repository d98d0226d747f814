"""incident_report.yml on a real incident folder: redis_down heals a stopped
compose Redis (as in the Molecule scenario), then the report is rendered from the
folder it wrote. Check mode writes nothing; a traversal incident_id is rejected."""

import json
import re
import subprocess

import pytest

from tests.harness import ansible
from tests.harness.ansible import unsafe
from tests.harness.docker import CacheApp

pytestmark = pytest.mark.integration

REPORT = "incident.remediation.incident_report"
INCIDENT = "redis-down-report"
# Alert text is data: shown as written, never templated, never Markdown or HTML.
HOSTILE_DESCRIPTION = "cache down | see <a href=x>runbook</a> [click](javascript:x) {{ 7*7 }}"


@pytest.fixture(scope="module")
def incident(tmp_path_factory):
    """A real incident folder: redis_down run against a compose Redis that was stopped."""
    records = tmp_path_factory.mktemp("incidents")
    with CacheApp(tmp_path_factory.mktemp("project"), "ir-test-report") as app:
        subprocess.run([*app.compose, "stop", "--timeout", "1", "redis"], check=True, capture_output=True, timeout=60)
        run = ansible.run_playbook(
            "incident.remediation.redis_down",
            {
                "alert": {
                    "status": "firing",
                    "labels": {"alertname": "RedisDown", "service": "redis", "severity": "critical"},
                    "annotations": {
                        "summary": "Redis unreachable for more than 2 minutes",
                        "description": unsafe(HOSTILE_DESCRIPTION),
                    },
                    "startsAt": "2026-11-22T03:00:00Z",
                    "fingerprint": "5e1c0ffee0000001",
                },
                "target": {
                    "platform": "compose",
                    "service": "redis",
                    "project_src": str(app.folder),
                    "project_name": app.name,
                    "endpoint": {"host": "127.0.0.1", "port": app.redis_port},
                },
                "incident_id": INCIDENT,
                "incident_records_dir": str(records),
            },
            timeout=240,
        )
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
        yield records


def report(records, check=False, **extra):
    return ansible.run_playbook(
        REPORT, {"incident_id": INCIDENT, "incident_records_dir": str(records), **extra}, check=check, timeout=120
    )


def section(text, title):
    """The body of a `## title` section."""
    match = re.search(r"^## %s\n(.*?)(?=^## |\Z)" % re.escape(title), text, re.S | re.M)
    assert match, f"no section {title!r}"
    return match.group(1)


def table_rows(text):
    """The body rows of the Markdown table in text."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    return lines[2:]


def test_check_mode_shows_the_report_and_writes_nothing(incident):
    before = sorted(p.name for p in (incident / INCIDENT).iterdir())
    run = report(incident, check=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "Check mode: would write %s" % (incident / INCIDENT / "report.md") in run.stdout
    assert "# Incident Report: %s" % INCIDENT in run.stdout
    assert sorted(p.name for p in (incident / INCIDENT).iterdir()) == before
    assert not (incident / INCIDENT / "report.md").exists()


def test_the_report_of_a_healed_redis(incident):
    run = report(incident)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    text = (incident / INCIDENT / "report.md").read_text()
    events = [json.loads(line) for line in (incident / INCIDENT / "timeline.jsonl").read_text().splitlines()]

    assert text.startswith("# Incident Report: %s\n" % INCIDENT)
    summary = section(text, "Summary")
    assert "- **Incident**: %s\n" % INCIDENT in summary
    assert "- **Alert**: RedisDown\n" in summary
    assert "- **Service**: redis (compose)\n" in summary
    assert "- **Severity**: critical (P0/P1)\n" in summary
    assert "- **Outcome**: healed (resolved)\n" in summary
    assert "- **Start**: %s %s UTC\n" % (events[0]["at"][:10], events[0]["at"][11:19]) in summary
    assert "- **End**: %s %s UTC\n" % (events[-1]["at"][:10], events[-1]["at"][11:19]) in summary
    assert re.search(r"- \*\*Duration\*\*: \d+\.\d s\n", summary)
    assert "- **Playbook**: redis_down on localhost\n" in summary

    events_table, tiers_table = section(text, "Timeline").split("### Remediation tiers")
    event_rows = table_rows(events_table)
    assert [row.split(" | ")[3] for row in event_rows] == ["detected", "diagnosed", "tier", "resolved"]
    assert "service_state: stopped" in event_rows[1]
    (tier_row,) = table_rows(tiers_table)
    cells = [cell.strip() for cell in tier_row.strip("|").split(" | ")]
    assert cells[1] == "start"
    assert re.fullmatch(r"\d+\.\d s", cells[3])
    assert cells[4] == "verified"
    assert cells[5] == "Redis is not running"

    actions = section(text, "Actions Taken")
    assert re.search(r"^1\. \d\d:\d\d:\d\d: tier `start` \(Redis is not running\): verified after", actions, re.M)
    assert re.search(r"^2\. \d\d:\d\d:\d\d: resolved \(outcome healed\)$", actions, re.M)

    impact = section(text, "Impact")
    assert "- **summary**: Redis unreachable for more than 2 minutes\n" in impact
    assert r"- **description**: cache down \| see \<a href=x\>runbook\</a\> \[click](javascript:x) {{ 7\*7 }}" in impact
    assert "- **Users affected**: _To be completed._" in impact
    for title in ("Root Cause", "Lessons Learned", "Action Items"):
        assert "_To be completed._" in section(text, title), title
    assert "service_state: stopped" in section(text, "Root Cause")
    assert "- [ ] [Action item] - [Owner] - [Due date]" in section(text, "Action Items")

    evidence = section(text, "Evidence")
    listed = re.findall(r"^\| `evidence/([^`]+)` \| \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \| \d+ bytes \|$", evidence, re.M)
    assert listed == sorted(p.name for p in (incident / INCIDENT / "evidence").iterdir())
    assert {name.split("-", 1)[1] for name in listed} >= {
        "service-status.json",
        "service-logs.log",
        "resource-usage.json",
        "check.json",
    }

    again = report(incident)
    assert again.returncode == 0
    assert "Report unchanged at" in again.stdout, "the same record renders the same report"


def test_the_report_can_be_written_elsewhere(incident, tmp_path):
    (tmp_path / "reports").mkdir()
    run = report(incident, report_path=str(tmp_path / "reports" / "redis.md"))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert (tmp_path / "reports" / "redis.md").read_text().startswith("# Incident Report: %s\n" % INCIDENT)


@pytest.mark.parametrize(
    "extra",
    [
        {"incident_id": "../" + INCIDENT},
        {"incident_id": INCIDENT + "/../../etc"},
        {"report_path": "/tmp/../etc/report.md"},
    ],
    ids=["parent", "nested-traversal", "report-path-traversal"],
)
def test_bad_input_is_rejected_and_nothing_written(incident, extra):
    before = {p: p.stat().st_mtime_ns for p in incident.rglob("*")}
    run = report(incident, **extra)
    assert run.returncode != 0
    assert "Rejected input" in run.stdout
    assert {p: p.stat().st_mtime_ns for p in incident.rglob("*")} == before


def test_a_missing_incident_is_named(incident):
    run = report(incident, incident_id="no-such-incident")
    assert run.returncode != 0
    assert "No incident record at %s" % (incident / "no-such-incident") in run.stdout
