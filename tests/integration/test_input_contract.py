"""The playbook input contract: bad or hostile input is rejected before anything
acts, and alert text is carried as inert data. Runs the real redis_down playbook."""

import datetime
import json
import re

import pytest
from ansible_collections.incident.remediation.plugins.filter.target_problems import (
    CERTIFICATE_CHECKS,
    DATABASE_CHECKS,
    ENDPOINT_CHECKS,
    TARGET_KEYS,
)

from tests.harness import ansible
from tests.harness.ansible import REPO_ROOT, unsafe

pytestmark = pytest.mark.integration

PLAYBOOK = "incident.remediation.redis_down"


@pytest.fixture
def canary(tmp_path):
    path = tmp_path / "canary"
    yield path
    assert not path.exists(), "injected code ran"


def base_input(tmp_path):
    return {
        "alert": {"status": "firing", "labels": {"alertname": "RedisDown"}, "fingerprint": "0123abcd"},
        "target": {"platform": "compose", "service": "redis", "project_src": str(tmp_path / "project")},
        "incident_records_dir": str(tmp_path / "incidents"),
    }


def with_change(document, path, value):
    *parents, leaf = path.split(".")
    node = document
    for key in parents:
        node = node[key]
    node[leaf] = value
    return document


TEMPLATE = "{{{{ lookup('ansible.builtin.pipe', 'touch {canary}') }}}}"
RESOLVED_DEPENDENCY = {"platform": "systemd", "service": "postgresql", "host": "db-1"}

# (where, hostile value, what the rejection names). Unknown keys are refused by the
# role's argument spec where it lists the keys, by the contract's own check below that.
HOSTILE = [
    ("target.service", "redis; touch {canary}", "target.service"),
    ("target.service", "$(touch {canary})", "target.service"),
    ("target.service", TEMPLATE, "target.service"),
    ("target.project_src", "/srv/../tmp", "target.project_src"),
    ("target.project_src", "relative/path", "target.project_src"),
    ("target.project_name", "App Name", "target.project_name"),
    ("target.host", "localhost,otherhost", "target.host"),
    ("target.namespace", "default; touch {canary}", "target.namespace"),
    ("target.endpoint", {"host": "127.0.0.1", "port": 70000}, "target.endpoint.port"),
    ("target.endpoint", {"host": "`touch {canary}`", "port": 6379}, "target.endpoint.host"),
    ("alert.labels", {"alertname": "RedisDown", "service": "redis\ntouch {canary}"}, "Label values"),
    ("alert.labels", {"alertname": "RedisDown", "bad-name": "x"}, "Label names"),
    ("alert.labels", {"alertname": "RedisDown", TEMPLATE: "x"}, "Label names"),
    ("alert.labels", {"alertname": "RedisDown", "__reserved": "x"}, "Label names"),
    ("alert.annotations", {"__reserved": "x"}, "Label names"),
    ("alert.labels", {"alertname": TEMPLATE}, "alertname label"),
    ("alert.labels", {"alertname": "RedisDown", "service": "x" * 1025}, "Label values"),
    ("alert.fingerprint", "not-hex", "alert.fingerprint"),
    ("alert.status", "exploding", "alert.status"),
    ("alert.startsAt", "2026-11-22T14:47:17Z; touch {canary}", "alert.startsAt"),
    ("alert.startsAt", TEMPLATE, "alert.startsAt"),
    ("alert.endsAt", "yesterday", "alert.endsAt"),
    ("incident_id", "../../etc/cron.d/x", "incident_id"),
    ("thresholds", {"verify_timeout": "30; touch {canary}"}, "thresholds"),
    ("thresholds", {"no_such_threshold": 1}, "unknown: no_such_threshold"),
    # Unknown and misspelled keys fail, at every level.
    ("target.servcie", "redis", "incident_context_target.servcie"),
    ("target.endpoint", {"port": 6379, "urll": "http://127.0.0.1/health"}, "incident_context_target.endpoint.urll"),
    ("target.database", {"name": "app", "password": "hunter2"}, "incident_context_target.database.password"),
    ("target.certificate", {"secret": "tls", "namespace": "x"}, "incident_context_target.certificate.namespace"),
    # target.endpoint.url and metrics_url
    ("target.endpoint", {"url": "http://127.0.0.1/$(touch {canary})"}, "target.endpoint.url: must be an http"),
    ("target.endpoint", {"url": "http://127.0.0.1/health; touch {canary}"}, "target.endpoint.url: must be an http"),
    ("target.endpoint", {"url": "http://127.0.0.1/" + TEMPLATE}, "target.endpoint.url: must be an http"),
    ("target.endpoint", {"url": "http://admin:hunter2@127.0.0.1/health"}, "target.endpoint.url: must not carry"),
    ("target.endpoint", {"url": "http://127.0.0.1/health?token=hunter2"}, "target.endpoint.url: must not carry"),
    (
        "target.endpoint",
        {"url": "file:///etc/passwd"},
        "target.endpoint.url: must be an http:// or https:// URL (other",
    ),
    (
        "target.endpoint",
        {"url": "javascript://alert"},
        "target.endpoint.url: must be an http:// or https:// URL (other",
    ),
    ("target.endpoint", {"url": "http://127.0.0.1/../../etc/passwd"}, "target.endpoint.url"),
    ("target.endpoint", {"url": "http://127.0.0.1/" + "a" * 2100}, "target.endpoint.url"),
    ("target.endpoint", {"metrics_url": "javascript:alert(1)"}, "target.endpoint.metrics_url: must be an http"),
    # target.database
    ("target.database", {"name": "app; touch {canary}"}, "target.database.name"),
    ("target.database", {"name": "app", "user": TEMPLATE}, "target.database.user"),
    ("target.database", {"name": "a" * 64}, "target.database.name"),
    ("target.database", {"name": "app", "password_var": "hunter2!"}, "target.database.password_var"),
    ("target.database", {"name": "app", "password_var": "ansible_become_password"}, "target.database.password_var"),
    # target.backups
    ("target.backups", ["http://rpc:hunter2@127.0.0.1:8545"], "target.backups[0]: must not carry credentials"),
    ("target.backups", ["file:///etc/passwd"], "target.backups[0]: must be an http:// or https:// URL"),
    ("target.backups", ["http://127.0.0.1:8545", "https://rpc/`touch {canary}`"], "target.backups[1]"),
    ("target.backups", ["http://127.0.0.1:8545"] * 17, "target.backups: at most 16 entries"),
    # target.mount and target.volume
    ("target.mount", "/var/lib/../../etc", "target.mount"),
    ("target.mount", "/mnt/$(touch {canary})", "target.mount"),
    ("target.mount", "/" + "a" * 1100, "target.mount"),
    ("target.volume", "data; touch {canary}", "target.volume"),
    ("target.volume", "../data", "target.volume"),
    ("target.volume", TEMPLATE, "target.volume"),
    # target.certificate
    ("target.certificate", {"endpoint": "127.0.0.1:443", "file": "/etc/ssl/api.pem"}, "exactly one of endpoint"),
    ("target.certificate", {"file": "/etc/ssl/../shadow"}, "target.certificate.file"),
    ("target.certificate", {"endpoint": "h;touch {canary}:443"}, "target.certificate.endpoint"),
    ("target.certificate", {"secret": TEMPLATE}, "target.certificate.secret"),
    # target.prometheus_url, target.alertmanager_url, target.kind
    ("target.prometheus_url", "http://admin:admin@127.0.0.1:9090", "target.prometheus_url: must not carry"),
    ("target.prometheus_url", "file:///etc/prometheus/prometheus.yml", "target.prometheus_url: must be an http"),
    ("target.alertmanager_url", "javascript:alert(document.cookie)", "target.alertmanager_url: must be an http"),
    ("target.alertmanager_url", "http://127.0.0.1:9093/" + TEMPLATE, "target.alertmanager_url"),
    ("target.kind", "DaemonSet", "kind must be one of: Deployment, StatefulSet"),
    # target.depends_on
    ("target.depends_on", [{"role": "root", "target": RESOLVED_DEPENDENCY}], "role must be one of"),
    (
        "target.depends_on",
        [{"role": "database", "playbook": "../../site", "target": RESOLVED_DEPENDENCY}],
        "target.depends_on[0].playbook: must be the short name",
    ),
    (
        "target.depends_on",
        [{"role": "database", "playbook": "drop_all", "target": RESOLVED_DEPENDENCY}],
        "target.depends_on[0].playbook: must be the short name",
    ),
    (
        "target.depends_on",
        [{"role": "database", "target": {**RESOLVED_DEPENDENCY, "service": "pg; touch {canary}"}}],
        "target.depends_on[0].target.service",
    ),
    (
        "target.depends_on",
        [{"role": "database", "target": {**RESOLVED_DEPENDENCY, "service": TEMPLATE}}],
        "target.depends_on[0].target.service",
    ),
    (
        "target.depends_on",
        [{"role": "database", "target": {**RESOLVED_DEPENDENCY, "servcie": "pg"}}],
        "target.depends_on[0].target.servcie: unknown key",
    ),
    (
        "target.depends_on",
        [{"role": "database", "target": {**RESOLVED_DEPENDENCY, "mount": "/srv/../etc"}}],
        "target.depends_on[0].target.mount",
    ),
    (
        "target.depends_on",
        [{"role": "database", "target": {**RESOLVED_DEPENDENCY, "endpoint": {"url": "file:///x"}}}],
        "target.depends_on[0].target.endpoint.url",
    ),
    (
        "target.depends_on",
        [
            {
                "role": "cache",
                "target": {**RESOLVED_DEPENDENCY, "depends_on": [{"role": "database", "target": RESOLVED_DEPENDENCY}]},
            }
        ],
        "target.depends_on[0].target.depends_on: a dependency's target cannot have dependencies",
    ),
    (
        "target.depends_on",
        [{"role": "cache", "target": RESOLVED_DEPENDENCY, "extra": 1}],
        "incident_context_target.depends_on.extra",
    ),
    ("target.depends_on", [{"role": "cache", "target": RESOLVED_DEPENDENCY}] * 9, "target.depends_on: at most 8"),
]


@pytest.mark.parametrize(("path", "value", "named"), HOSTILE, ids=[f"{p}={str(v)[:30]!r}" for p, v, _ in HOSTILE])
def test_hostile_input_is_rejected_and_runs_nothing(tmp_path, canary, path, value, named):
    value = json.loads(json.dumps(value).replace("{canary}", str(canary)).replace("{{{{", "{{").replace("}}}}", "}}"))
    document = with_change(base_input(tmp_path), path, value)
    run = ansible.run_playbook(PLAYBOOK, unsafe(document), timeout=120)
    output = run.stdout + run.stderr
    assert run.returncode != 0
    rejected = "Rejected input" in output and "Nothing was run" in output
    assert rejected or "Validation of arguments failed" in output, output[-3000:]
    assert named in output, output[-3000:]
    assert not (tmp_path / "incidents").exists(), "no incident may be opened for rejected input"
    assert "docker_compose_v2" not in output and "service_control" not in output
    assert "hunter2" not in output, "a secret was repeated"


GOOD_TARGET = {
    "platform": "kubernetes",
    "service": "api",
    "namespace": "shop",
    "kind": "StatefulSet",
    "endpoint": {
        "host": "127.0.0.1",
        "port": 8080,
        "url": "http://127.0.0.1:8080/health/detailed?verbose=1",
        "metrics_url": "http://[::1]:8080/metrics",
    },
    "database": {"name": "shop", "user": "shop_app", "password_var": "vault_shop_db_password"},
    "backups": ["https://rpc-2.example.org/v1/mainnet", "http://127.0.0.1:8545"],
    "mount": "/var/lib/postgresql/data",
    "volume": "pgdata",
    "certificate": {"endpoint": "api.shop.svc:443"},
    "prometheus_url": "http://127.0.0.1:9090",
    "alertmanager_url": "https://alertmanager.example.org",
    "depends_on": [
        {
            "role": "cache",
            "playbook": "redis_down",
            "target": {
                "platform": "compose",
                "service": "redis",
                "project_src": "/srv/app",
                "endpoint": {"host": "127.0.0.1", "port": 6379},
            },
        },
        {
            "role": "database",
            "target": {
                "platform": "systemd",
                "service": "postgresql",
                "host": "db-1",
                "database": {"name": "shop"},
                "certificate": {"file": "/etc/ssl/pg.pem"},
            },
        },
    ],
}


def test_good_values_in_every_field_pass(tmp_path):
    document = base_input(tmp_path)
    document["alert"]["status"] = "resolved"  # the contract passes; a resolved alert then stops before acting
    document["target"] = GOOD_TARGET
    run = ansible.run_playbook(PLAYBOOK, unsafe(document), timeout=120)
    assert run.returncode == 0, run.stdout[-3000:]
    (incident,) = (tmp_path / "incidents").iterdir()
    events = [json.loads(line) for line in (incident / "timeline.jsonl").read_text().splitlines()]
    assert [event["event"] for event in events] == ["alert_resolved"]


def open_incident(tmp_path, document):
    """The `incident` fact the contract role sets for this input."""
    out = tmp_path / "incident.json"
    playbook = tmp_path / "contract.yml"
    playbook.write_text(
        f"""
- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.include_role:
        name: incident.remediation.incident_context
      vars:
        incident_context_playbook: contract_test
    - ansible.builtin.copy:
        content: "{{{{ incident | to_json }}}}"
        dest: {out}
        mode: "0600"
"""
    )
    run = ansible.run_playbook(playbook, unsafe(document), timeout=120)
    assert run.returncode == 0, run.stdout[-3000:]
    return json.loads(out.read_text())


def test_the_alert_is_normalised_once(tmp_path):
    document = base_input(tmp_path)
    # Alertmanager's own form: nanoseconds, here with an offset; no annotations, no endsAt.
    document["alert"]["startsAt"] = "2026-11-23T01:17:17.123456789+10:30"
    incident = open_incident(tmp_path, document)
    assert incident["alert"] == {
        "status": "firing",
        "labels": {"alertname": "RedisDown"},
        "annotations": {},
        "startsAt": "2026-11-22T14:47:17.123456Z",
        "endsAt": "",
        "fingerprint": "0123abcd",
        "generatorURL": "",
    }
    assert (incident["labels"], incident["annotations"]) == ({"alertname": "RedisDown"}, {})
    assert incident["id"] == "0123abcd-20261122144717"  # the start in UTC, as the adapter names it
    assert incident["dir"] == f"{tmp_path}/incidents/0123abcd-20261122144717"
    assert (incident["alertname"], incident["resolved"], incident["manual"]) == ("RedisDown", False, False)
    assert incident["target"] == {**document["target"], "host": "localhost", "namespace": "default"}


def test_a_manual_run_has_the_same_shape(tmp_path):
    document = base_input(tmp_path)
    del document["alert"]
    document["target"] = {"platform": "kubernetes", "service": "api"}
    before = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    incident = open_incident(tmp_path, document)
    after = datetime.datetime.now(datetime.UTC)
    assert incident["alert"] == {
        "status": "firing",
        "labels": {},
        "annotations": {},
        "startsAt": "",
        "endsAt": "",
        "fingerprint": "",
        "generatorURL": "",
    }
    assert (incident["alertname"], incident["manual"], incident["severity"]) == ("manual", True, "warning")
    assert incident["target"]["kind"] == "Deployment"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z", incident["started_at"])
    started = datetime.datetime.strptime(incident["started_at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.UTC)
    assert before <= started <= after
    assert incident["id"].startswith("manual-")
    opened = datetime.datetime.strptime(incident["id"], "manual-%Y%m%d%H%M%S").replace(tzinfo=datetime.UTC)
    assert before <= opened <= after


def test_the_contract_document_names_every_target_key():
    text = (REPO_ROOT / "docs" / "input-contract.md").read_text()
    nested = {
        "endpoint": ENDPOINT_CHECKS,
        "database": DATABASE_CHECKS,
        "certificate": CERTIFICATE_CHECKS,
        "depends_on": {"role": None, "playbook": None, "target": None},
    }
    names = [f"{key}.{sub}" if key in nested else key for key in TARGET_KEYS for sub in nested.get(key, [None])]
    missing = [name for name in names if f"`{name}`" not in text]
    assert missing == []


def test_unknown_platform_is_rejected_by_the_argument_spec(tmp_path):
    document = with_change(base_input(tmp_path), "target.platform", "bare-metal")
    run = ansible.run_playbook(PLAYBOOK, unsafe(document), timeout=120)
    assert run.returncode != 0
    assert "platform must be one of: compose, kubernetes, systemd" in run.stdout
    assert not (tmp_path / "incidents").exists()


def test_template_text_in_a_resolved_alert_is_recorded_verbatim_and_never_runs(tmp_path, canary):
    payload = f"{{{{ lookup('ansible.builtin.pipe', 'touch {canary}') }}}}"
    document = base_input(tmp_path)
    document["alert"].update(
        status="resolved",
        labels={"alertname": "RedisDown", "instance": payload},
        annotations={"summary": payload, "description": "line one\nline two; $(touch " + str(canary) + ")"},
    )
    run = ansible.run_playbook(PLAYBOOK, unsafe(document), timeout=120)
    assert run.returncode == 0, run.stdout[-3000:]
    (incident,) = (tmp_path / "incidents").iterdir()
    events = [json.loads(line) for line in (incident / "timeline.jsonl").read_text().splitlines()]
    assert [event["event"] for event in events] == ["alert_resolved"]
    assert events[0]["labels"]["instance"] == payload
    assert events[0]["annotations"]["summary"] == payload
    assert not (incident / "evidence").exists() or not any((incident / "evidence").iterdir())


def test_the_alert_is_also_taken_from_an_event_driven_ansible_event(tmp_path):
    document = base_input(tmp_path)
    del document["alert"]
    document["ansible_eda"] = {
        "event": {"alert": {"status": "resolved", "labels": {"alertname": "RedisConnectionFailure", "team": "cache"}}}
    }
    run = ansible.run_playbook(PLAYBOOK, unsafe(document), timeout=120)
    assert run.returncode == 0, run.stdout[-3000:]
    (incident,) = (tmp_path / "incidents").iterdir()
    (event,) = [json.loads(line) for line in (incident / "timeline.jsonl").read_text().splitlines()]
    assert event["event"] == "alert_resolved"
    assert event["labels"] == {"alertname": "RedisConnectionFailure", "team": "cache"}
