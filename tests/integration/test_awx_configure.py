"""playbooks/awx_configure.yml against the AWX stand-in: what it creates, idempotence, check
mode, and a created job template running the collection's real playbook."""

import json
import os
import re
import subprocess
import sys

import httpx
import pytest
import yaml

from tests.harness.ansible import ANSIBLE_PLAYBOOK, REPO_ROOT, wait_for
from tests.harness.awx import AwxStandIn, find_playbooks
from tests.harness.docker import CacheApp

pytestmark = pytest.mark.integration


class VarsLoader(yaml.SafeLoader):
    """Reads Ansible's !unsafe strings as plain strings."""


VarsLoader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))
SETTINGS = yaml.load((REPO_ROOT / "playbooks" / "vars" / "awx_configure.yml").read_text(), Loader=VarsLoader)
LOCAL = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
EXTRA_VARS = {
    "awx_inventory_hosts": {"localhost": LOCAL},
    "awx_execution_environment_image": "localhost/incident-remediation-ee:test",
}


def configure(awx: AwxStandIn, *args: str) -> subprocess.CompletedProcess:
    """ansible-playbook awx_configure.yml with the awx.awx modules' usual environment."""
    env = {**os.environ, "CONTROLLER_HOST": awx.url, "CONTROLLER_OAUTH_TOKEN": awx.token}
    return subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "playbooks/awx_configure.yml", "-e", json.dumps(EXTRA_VARS), *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def recap(run: subprocess.CompletedProcess) -> dict[str, int]:
    assert run.returncode == 0, run.stdout + run.stderr
    (line,) = re.findall(r"^localhost\s+:.*$", run.stdout, re.MULTILINE)
    return {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", line)}


def everything(client: httpx.Client) -> dict[str, list]:
    collections = ("organizations", "projects", "inventories", "hosts", "credential_types", "credentials")
    return {name: client.get(f"{name}/").json()["results"] for name in (*collections, "job_templates")}


def finished(client: httpx.Client, job_id: int, timeout: float = 300) -> dict:
    return wait_for(
        lambda: client.get(f"jobs/{job_id}/").json(),
        lambda job: job["status"] in ("successful", "failed", "error", "canceled"),
        timeout=timeout,
        interval=1,
    )


@pytest.fixture(scope="module")
def configured():
    """A stand-in whose project is this checkout, configured once by the playbook."""
    with AwxStandIn(project_dir=REPO_ROOT) as awx:
        first = configure(awx)
        client = httpx.Client(base_url=f"{awx.url}/api/v2/", headers={"Authorization": f"Bearer {awx.token}"})
        yield awx, client, first


def template(client: httpx.Client, playbook: str) -> dict:
    (found,) = client.get("job_templates/", params={"name": f"incident.remediation.{playbook}"}).json()["results"]
    return found


def test_every_playbook_of_the_collection_has_exactly_one_job_template():
    listed = [entry["playbook"] for entry in SETTINGS["awx_playbooks"]]
    runnable = {path.removeprefix("playbooks/").removesuffix(".yml") for path in find_playbooks(REPO_ROOT)}
    in_folder = {path.stem for path in (REPO_ROOT / "playbooks").glob("*.yml")} & runnable
    assert sorted(listed) == sorted(in_folder - {"awx_configure"})
    routes = yaml.safe_load((REPO_ROOT / "routes" / "routes.yml").read_text())["routes"]
    assert {route["playbook"] for route in routes} <= {f"incident.remediation.{name}" for name in listed}
    assert all(entry["survey"] in SETTINGS["awx_surveys"] for entry in SETTINGS["awx_playbooks"])


def test_check_mode_against_an_empty_awx_creates_nothing(tmp_path):
    with AwxStandIn(project_dir=REPO_ROOT) as awx:
        client = httpx.Client(base_url=f"{awx.url}/api/v2/", headers={"Authorization": f"Bearer {awx.token}"})
        before = everything(client)
        counts = recap(configure(awx, "--check"))
        assert counts["changed"] >= 2, "the organization and the credential type would be created"
        assert everything(client) == before
        assert awx.jobs == {}


def test_configure_creates_the_project_inventory_credentials_and_job_templates(configured):
    _awx, client, first = configured
    assert recap(first)["changed"] > 0
    (organization,) = client.get("organizations/", params={"name": SETTINGS["awx_organization"]}).json()["results"]
    (project,) = client.get("projects/", params={"name": SETTINGS["awx_project_name"]}).json()["results"]
    assert (project["scm_type"], project["scm_url"], project["scm_branch"]) == (
        "git",
        SETTINGS["awx_project_scm_url"],
        SETTINGS["awx_project_scm_branch"],
    )
    assert (project["organization"], project["status"], project["scm_update_on_launch"]) == (
        organization["id"],
        "successful",
        True,
    )
    (inventory,) = client.get("inventories/", params={"name": SETTINGS["awx_inventory_name"]}).json()["results"]
    (host,) = client.get("hosts/", params={"inventory": inventory["id"]}).json()["results"]
    assert (host["name"], json.loads(host["variables"])) == ("localhost", LOCAL)
    (credential_type,) = client.get("credential_types/", params={"managed": False}).json()["results"]
    assert credential_type["kind"] == "cloud"
    assert set(credential_type["injectors"]["extra_vars"]) == {
        "notify_slack_webhook_url",
        "notify_pagerduty_routing_key",
        "notify_status_page_url",
        "notify_status_page_token",
        "notify_webhook_url",
    }
    credentials = {item["name"]: item for item in client.get("credentials/").json()["results"]}
    machine, notifications = (
        credentials[SETTINGS["awx_machine_credential"]],
        credentials[SETTINGS["awx_notification_credential"]],
    )
    assert (machine["kind"], machine["inputs"]) == ("ssh", {})
    assert (notifications["credential_type"], notifications["inputs"]) == (credential_type["id"], {})
    (environment,) = client.get("execution_environments/").json()["results"]
    assert environment["image"] == EXTRA_VARS["awx_execution_environment_image"]

    names = sorted(item["name"] for item in client.get("job_templates/").json()["results"])
    assert names == sorted(f"incident.remediation.{entry['playbook']}" for entry in SETTINGS["awx_playbooks"])
    for entry in SETTINGS["awx_playbooks"]:
        found = template(client, entry["playbook"])
        assert found["playbook"] == f"playbooks/{entry['playbook']}.yml"
        assert (found["project"], found["inventory"], found["organization"]) == (
            project["id"],
            inventory["id"],
            organization["id"],
        )
        assert found["ask_variables_on_launch"] and found["ask_limit_on_launch"] and found["survey_enabled"]
        assert found["execution_environment"] == environment["id"]
        assert {item["id"] for item in found["summary_fields"]["credentials"]} == {machine["id"], notifications["id"]}
        survey = client.get(f"job_templates/{found['id']}/survey_spec/").json()
        asked = {question["variable"]: question for question in survey["spec"]}
        if SETTINGS["awx_surveys"][entry["survey"]]["target"]:
            assert {"survey_target_host", "survey_target_platform", "survey_target_service", "incident_id"} <= set(
                asked
            )
            assert set(json.loads(found["extra_vars"])) == {"target", "dry_run"}
        assert all(not question["required"] for name, question in asked.items() if name.startswith("survey_"))
    report = client.get(f"job_templates/{template(client, 'incident_report')['id']}/launch/").json()
    assert report["variables_needed_to_start"] == ["incident_id"]


def test_a_second_run_and_a_check_run_change_nothing(configured):
    awx, client, _first = configured
    before = everything(client)
    assert recap(configure(awx))["changed"] == 0
    assert recap(configure(awx, "--check"))["changed"] == 0
    after = everything(client)
    assert {name: [item["id"] for item in items] for name, items in after.items()} == {
        name: [item["id"] for item in items] for name, items in before.items()
    }


def test_a_configured_job_template_heals_nothing_on_a_healthy_redis(configured, tmp_path):
    """Launched as the adapter does (alert and target as extra variables, limit to target.host):
    the job runs the real redis_down against a real compose Redis and reports already_healthy."""
    _awx, client, _first = configured
    folder = tmp_path / "cache-app"
    folder.mkdir()
    with CacheApp(folder, "ir-test-awx") as app:
        target = {
            "platform": "compose",
            "host": "localhost",
            "service": "redis",
            "project_src": str(folder),
            "project_name": app.name,
            "endpoint": {"host": "127.0.0.1", "port": app.redis_port},
        }
        alert = {
            "status": "firing",
            "labels": {"alertname": "RedisDown", "service": "redis", "severity": "warning"},
            "annotations": {"summary": "Redis unreachable"},
            "startsAt": "2026-11-22T03:00:00Z",
            "fingerprint": "5e1c0ffee0000001",
        }
        records = tmp_path / "incidents"
        body = {
            "extra_vars": {"alert": alert, "target": target, "incident_records_dir": str(records)},
            "limit": "localhost",
        }
        launched = client.post(f"job_templates/{template(client, 'redis_down')['id']}/launch/", json=body)
        assert launched.status_code == 201, launched.text
        assert launched.json()["ignored_fields"] == {}
        job = finished(client, launched.json()["job"])
    stdout = client.get(f"jobs/{job['id']}/stdout/", params={"format": "txt"}).text
    assert job["status"] == "successful", stdout
    outcome = job["artifacts"]["remediation"]
    assert (outcome["playbook"], outcome["outcome"]) == ("redis_down", "already_healthy")
    assert outcome["incident_id"] == "5e1c0ffee0000001-20261122030000"
    assert (records / outcome["incident_id"] / "timeline.jsonl").is_file()
    events = client.get(f"jobs/{job['id']}/job_events/", params={"event": "runner_on_ok", "page_size": 200}).json()
    assert {event["host_name"] for event in events["results"]} == {"localhost"}


def test_a_person_launching_by_hand_gives_the_target_through_the_survey(configured, tmp_path):
    """The survey's survey_target_* answers become target through the job template's own
    (trusted) variables; an answer carrying a template is data and is rejected."""
    _awx, client, _first = configured
    notify = template(client, "notify")["id"]
    records, canary = tmp_path / "incidents", tmp_path / "canary"
    answers = {
        "notify_reason": "notify_only",
        "notify_event": "declared",
        "incident_id": "manual-survey-1",
        "survey_target_platform": "compose",
        "survey_target_service": "redis",
        "survey_target_project_src": str(tmp_path),
        "incident_records_dir": str(records),
    }
    job = finished(client, client.post(f"job_templates/{notify}/launch/", json={"extra_vars": answers}).json()["job"])
    assert job["status"] == "successful", client.get(f"jobs/{job['id']}/stdout/", params={"format": "txt"}).text
    timeline = [json.loads(line) for line in (records / "manual-survey-1" / "timeline.jsonl").read_text().splitlines()]
    detected = next(event for event in timeline if event["event"] == "detected")
    assert detected["target"] == {
        "host": "localhost",
        "namespace": "default",
        "platform": "compose",
        "service": "redis",
        "project_src": str(tmp_path),
    }

    injected = {**answers, "incident_id": "manual-survey-2"}
    injected["survey_target_service"] = f"{{{{ lookup('pipe', 'touch {canary}') }}}}"
    job = finished(client, client.post(f"job_templates/{notify}/launch/", json={"extra_vars": injected}).json()["job"])
    assert job["status"] == "failed"
    assert "Rejected input" in client.get(f"jobs/{job['id']}/stdout/", params={"format": "txt"}).text
    assert not canary.exists()
    assert not (records / "manual-survey-2").exists()
