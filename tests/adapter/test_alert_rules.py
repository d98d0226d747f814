"""The adapter's alerting rules (adapter/alerts/remediate.rules.yml) in the real
Prometheus image: `promtool check rules` accepts them, and `promtool test rules`
shows each alert firing on the series the adapter exports, and not before."""

import shutil
import subprocess

import pytest
import yaml

from tests.harness.ansible import REPO_ROOT

pytestmark = pytest.mark.integration

RULES = REPO_ROOT / "adapter" / "alerts" / "remediate.rules.yml"
IMAGE = "incident-remediation/prometheus"


RUNS_SERIES = 'remediate_runs_total{{instance="ops:9787",job="remediate",kind="remediate",result="{result}"}}'
RULE_DOCUMENT = yaml.safe_load(RULES.read_text())
DESCRIPTIONS = {
    rule["alert"]: " ".join(rule["annotations"]["description"].split())
    for rule in RULE_DOCUMENT["groups"][0]["rules"]
    if "description" in rule["annotations"]
}


def alert(name, severity, at, summary=None):
    """An expected alert at `at` with its rendered summary; summary=None: none expected."""
    case = {"eval_time": at, "alertname": name, "exp_alerts": []}
    if summary is not None:
        annotations = {"summary": summary}
        if name in DESCRIPTIONS:
            annotations["description"] = DESCRIPTIONS[name]
        case["exp_alerts"] = [
            {"exp_labels": {"severity": severity, "instance": "ops:9787"}, "exp_annotations": annotations}
        ]
    return case


UNIT_TESTS = {
    "rule_files": ["remediate.rules.yml"],
    "evaluation_interval": "1m",
    "tests": [
        {
            "interval": "1m",
            "input_series": [
                # A notification fails at minute 2; someone acknowledges at minute 10.
                {
                    "series": 'remediate_notifications_failing{instance="ops:9787",job="remediate"}',
                    "values": "0 0 1x7 0x5",
                },
                # Three failed notify runs within an hour.
                {
                    "series": 'remediate_notifications_failed_total{instance="ops:9787",job="remediate"}',
                    "values": "0 1 2 3x10",
                },
                {
                    "series": RUNS_SERIES.format(result="no_verdict"),
                    "values": "0 1 2 3x10",
                },
                # Unhealed runs are the playbooks' to escalate: no alert from these.
                {
                    "series": RUNS_SERIES.format(result="unhealed"),
                    "values": "0 5 10 15x10",
                },
                {"series": 'remediate_breakers_open{instance="ops:9787",job="remediate"}', "values": "0 1x12"},
                {"series": 'remediate_queue_depth{instance="ops:9787",job="remediate"}', "values": "0 30x15"},
            ],
            "alert_rule_test": [
                alert("RemediateNotificationsFailing", "critical", "2m"),
                alert(
                    "RemediateNotificationsFailing",
                    "critical",
                    "4m",
                    "remediate on ops:9787 cannot tell people about incidents",
                ),
                alert("RemediateNotificationsFailing", "critical", "12m"),
                alert("RemediateNotificationsFailed", "warning", "1m"),
                alert(
                    "RemediateNotificationsFailed",
                    "warning",
                    "4m",
                    "remediate on ops:9787: 3 notification runs failed in an hour",
                ),
                alert(
                    "RemediateRunsFailing",
                    "warning",
                    "4m",
                    "remediate on ops:9787: 3 runs failed without a verdict in 30 minutes",
                ),
                alert(
                    "RemediateBreakerOpen",
                    "warning",
                    "5m",
                    "remediate on ops:9787: 1 route(s) switched to notify only by their circuit breaker",
                ),
                alert("RemediateQueueBacklog", "warning", "5m"),
                alert(
                    "RemediateQueueBacklog", "warning", "12m", "remediate on ops:9787: 30 runs waiting for 10 minutes"
                ),
            ],
        }
    ],
}


@pytest.fixture(scope="module")
def prometheus_image():
    found = subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True, check=False)
    if found.returncode != 0:
        pytest.fail(f"{IMAGE} is not built: run scripts/setup.sh images")
    return IMAGE


def promtool(folder, *args):
    return subprocess.run(
        [
            *("docker", "run", "--rm", "--network", "none", "-v", f"{folder}:/rules:ro", "-w", "/rules"),
            *("--entrypoint", "/usr/bin/promtool", IMAGE, *args),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_promtool_checks_and_tests_the_rules(tmp_path, prometheus_image):
    folder = tmp_path / "rules"
    folder.mkdir()
    shutil.copy(RULES, folder / RULES.name)
    (folder / "tests.yml").write_text(yaml.safe_dump(UNIT_TESTS, sort_keys=False))
    # The image runs as the prometheus user: the files must be readable by others.
    for path in (tmp_path, folder, *folder.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)

    checked = promtool(folder, "check", "rules", RULES.name)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 5 rules found" in checked.stdout

    tested = promtool(folder, "test", "rules", "tests.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout
