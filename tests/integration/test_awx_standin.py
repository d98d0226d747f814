"""The AWX stand-in (tests/harness/awx.py) answers as AWX does where the adapter, ansible-rulebook
and the awx.awx modules rely on it, and its jobs really run: these tests fail if it fakes them."""

import asyncio
import sys
import textwrap
import time

import httpx
import pytest
from ansible_rulebook.job_template_runner import JobTemplateRunner

from tests.harness.ansible import wait_for
from tests.harness.awx import AwxStandIn

pytestmark = pytest.mark.integration

NOT_AUTHENTICATED = {
    "detail": "Authentication credentials were not provided. To establish a login session, visit /api/login/."
}
DENIED = {"detail": "You do not have permission to perform this action."}
PLAYBOOKS = {
    "report.yml": """
        - name: Report what the job was given
          hosts: all
          gather_facts: false
          tasks:
            - name: Show the note
              ansible.builtin.debug:
                msg: "{{ note | default('no note') }}"
            - name: Report the outcome
              ansible.builtin.set_stats:
                data:
                  remediation:
                    outcome: "{{ outcome | default('healed') }}"
                    note: "{{ note | default('') }}"
                    greeting: "{{ greeting | default('') }}"
                    service: "{{ service | default('') }}"
                per_host: false
                aggregate: false
            - name: Fail when asked
              ansible.builtin.fail:
                msg: asked to fail
              when: fail | default(false) | bool
    """,
    "sleep.yml": """
        - name: Sleep, then leave a mark
          hosts: all
          gather_facts: false
          tasks:
            - name: Sleep a while
              ansible.builtin.command: sleep 30
              changed_when: false
            - name: Leave a mark
              ansible.builtin.file:
                path: "{{ mark }}"
                state: touch
                mode: "0644"
    """,
}
SURVEY = {
    "name": "Service",
    "description": "What to act on",
    "spec": [
        {"question_name": "Service", "variable": "service", "type": "text", "required": True, "min": 1, "max": 20},
        {
            "question_name": "Outcome",
            "variable": "outcome",
            "type": "multiplechoice",
            "choices": ["healed", "unhealed"],
            "required": False,
            "default": "healed",
        },
    ],
}


@pytest.fixture
def awx(tmp_path):
    project = tmp_path / "project"
    (project / "playbooks").mkdir(parents=True)
    for name, text in PLAYBOOKS.items():
        (project / "playbooks" / name).write_text(textwrap.dedent(text))
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    with AwxStandIn(project_dir=project, inventory={"localhost": local, "otherhost": local}) as stand_in:
        yield stand_in


def api(awx: AwxStandIn, token: str | None = None) -> httpx.Client:
    return httpx.Client(base_url=f"{awx.url}/api/v2/", headers={"Authorization": f"Bearer {token or awx.token}"})


def finished(client: httpx.Client, job_id: int, timeout: float = 120) -> dict:
    return wait_for(
        lambda: client.get(f"jobs/{job_id}/").json(),
        lambda job: job["status"] in ("successful", "failed", "error", "canceled"),
        timeout=timeout,
    )


def test_no_token_or_an_unknown_one_is_401_with_awx_body(awx):
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": f"Token {awx.token}"}):
        response = httpx.get(f"{awx.url}/api/v2/job_templates/", headers=headers)
        assert response.status_code == 401
        assert response.json() == NOT_AUTHENTICATED
        assert response.headers["WWW-Authenticate"] == "Bearer realm=api authorization_url=/api/o/authorize/"
        assert "X-API-Product-Version" not in response.headers
    assert httpx.get(f"{awx.url}/api/v2/ping/").status_code == 200
    me = api(awx).get("me/")
    assert me.json()["results"][0]["is_superuser"] is True
    assert me.headers["X-API-Product-Name"] == "AWX"


def test_read_user_cannot_launch_and_none_user_cannot_see_the_template(awx):
    template = awx.job_template("report", "playbooks/report.yml", ask_variables_on_launch=True)
    reader, runner, nobody = (api(awx, awx.token_for(role)) for role in ("read", "execute", "none"))
    assert reader.get(f"job_templates/{template}/").status_code == 200
    assert reader.get(f"job_templates/{template}/launch/").json()["ask_variables_on_launch"] is True
    refused = reader.post(f"job_templates/{template}/launch/", json={})
    assert (refused.status_code, refused.json()) == (403, DENIED)

    assert nobody.get(f"job_templates/{template}/").json() == DENIED
    assert nobody.get(f"job_templates/{template}/").status_code == 403
    assert nobody.get("job_templates/", params={"name": "report"}).json()["count"] == 0
    assert nobody.get("unified_job_templates/", params={"name": "report"}).json()["count"] == 0
    assert nobody.post(f"job_templates/{template}/launch/", json={}).status_code == 403
    assert api(awx).get("job_templates/999/").json() == {"detail": "Not found."}
    assert api(awx).get("job_templates/999/").status_code == 404

    launched = runner.post(f"job_templates/{template}/launch/", json={"extra_vars": {"outcome": "healed"}})
    assert launched.status_code == 201
    job = launched.json()["job"]
    assert reader.post(f"jobs/{job}/cancel/").status_code == 403, "only the launcher or an admin cancels"
    assert finished(runner, job)["status"] == "successful"
    assert [job["id"] for job in awx.jobs.values()] == [job]
    assert reader.post("job_templates/", json={"name": "x"}).json() == DENIED


def test_a_missing_required_survey_answer_is_400_and_starts_nothing(awx):
    template = awx.job_template("report", "playbooks/report.yml", survey_spec=SURVEY)
    client = api(awx)
    prompts = client.get(f"job_templates/{template}/launch/").json()
    assert prompts["variables_needed_to_start"] == ["service"]
    assert prompts["survey_enabled"] is True
    assert prompts["can_start_without_user_input"] is False

    missing = client.post(f"job_templates/{template}/launch/", json={"extra_vars": {}})
    assert (missing.status_code, missing.json()) == (400, {"variables_needed_to_start": ["'service' value missing"]})
    wrong = client.post(f"job_templates/{template}/launch/", json={"extra_vars": {"service": 5, "outcome": "x"}})
    assert wrong.status_code == 400
    assert wrong.json()["variables_needed_to_start"] == [
        "Value 5 for 'service' expected to be a string.",
        "Value x for 'outcome' expected to be one of ['healed', 'unhealed'].",
    ]
    assert awx.jobs == {}
    assert len(awx.launches) == 2, "rejected launches are recorded as sent"

    launched = client.post(f"job_templates/{template}/launch/", json={"extra_vars": {"service": "redis"}})
    assert launched.status_code == 201
    job = finished(client, launched.json()["job"])
    assert job["artifacts"]["remediation"] == {"outcome": "healed", "note": "", "greeting": "", "service": "redis"}


def test_fields_not_prompted_on_launch_are_ignored_and_reported(awx):
    template = awx.job_template("report", "playbooks/report.yml", ask_limit_on_launch=True)
    client = api(awx)
    body = {"extra_vars": {"outcome": "unhealed"}, "limit": "otherhost", "job_tags": "x", "verbosity": 1}
    launched = client.post(f"job_templates/{template}/launch/", json=body)
    assert launched.status_code == 201
    assert launched.json()["ignored_fields"] == {"extra_vars": {"outcome": "unhealed"}, "job_tags": "x", "verbosity": 1}
    job = finished(client, launched.json()["job"])
    assert job["limit"] == "otherhost"
    assert job["artifacts"]["remediation"]["outcome"] == "healed", "the ignored variable must not reach the play"
    events = client.get(f"jobs/{job['id']}/job_events/", params={"event": "runner_on_ok"}).json()["results"]
    assert {event["host_name"] for event in events} == {"otherhost"}, "the limit applies"

    bad = client.post(f"job_templates/{template}/launch/", json={"limit": ["a"], "verbosity": 9})
    assert (bad.status_code, bad.json()) == (
        400,
        {"limit": ["Not a valid string."], "verbosity": ['"9" is not a valid choice.']},
    )


def test_lists_are_filtered_and_paginated_as_awx_does(awx):
    for number in range(30):
        awx.job_template(f"report-{number:02}", "playbooks/report.yml")
    client = api(awx)
    first = client.get("job_templates/").json()
    assert (first["count"], len(first["results"]), first["previous"]) == (30, 25, None)
    assert first["next"] == "/api/v2/job_templates/?page=2"
    second = client.get(first["next"].removeprefix("/api/v2/")).json()
    assert (len(second["results"]), second["next"]) == (5, None)
    assert second["previous"] == "/api/v2/job_templates/?page=1"
    assert client.get("job_templates/", params={"page": 3}).json() == {"detail": "Invalid page."}
    small = client.get("job_templates/", params={"page_size": 7, "order_by": "-name"}).json()
    assert small["next"] == "/api/v2/job_templates/?order_by=-name&page=2&page_size=7"
    assert small["results"][0]["name"] == "report-29"
    named = client.get("job_templates/", params={"name": "report-07"}).json()
    assert [item["name"] for item in named["results"]] == ["report-07"]
    either = client.get("job_templates/", params={"or__name": "report-01", "or__id": named["results"][0]["id"]}).json()
    assert sorted(item["name"] for item in either["results"]) == ["report-01", "report-07"]
    assert client.get("job_templates/", params={"nosuchfield": "1"}).status_code == 400
    project, inventory = first["results"][0]["project"], first["results"][0]["inventory"]
    unknown = client.post(
        "job_templates/", json={"name": "x", "project": project, "inventory": inventory, "playbook": "x.yml"}
    )
    assert (unknown.status_code, unknown.json()) == (400, {"playbook": ["Playbook not found for project."]})

    job = client.post(f"job_templates/{named['results'][0]['id']}/launch/", json={}).json()["job"]
    finished(client, job)
    events = client.get(f"jobs/{job}/job_events/", params={"order_by": "counter", "page_size": 3}).json()
    assert [event["counter"] for event in events["results"]] == [1, 2, 3]
    later = client.get(f"jobs/{job}/job_events/", params={"counter__gt": 3, "order_by": "counter"}).json()
    assert later["results"][0]["counter"] == 4
    assert later["count"] == events["count"] - 3
    assert "count" not in client.get(f"jobs/{job}/job_events/", params={"limit": 2}).json()


def test_cancel_stops_the_running_playbook(awx, tmp_path):
    mark = tmp_path / "mark"
    template = awx.job_template(
        "sleep", "playbooks/sleep.yml", ask_limit_on_launch=True, extra_vars=f'{{"mark": "{mark}"}}'
    )
    client = api(awx)
    job = client.post(f"job_templates/{template}/launch/", json={"limit": "localhost"}).json()["job"]
    wait_for(
        lambda: client.get(f"jobs/{job}/job_events/", params={"event": "runner_on_start"}).json()["count"],
        lambda started: started == 1,
        timeout=60,
    )
    assert client.get(f"jobs/{job}/").json()["status"] == "running"
    waiting = client.post(f"job_templates/{template}/launch/", json={"limit": "localhost"}).json()["job"]
    time.sleep(1)
    assert client.get(f"jobs/{waiting}/").json()["status"] == "pending", "one job of a template runs at a time"
    assert client.post(f"jobs/{waiting}/cancel/").status_code == 202
    canceled = client.get(f"jobs/{waiting}/").json()
    assert (canceled["status"], canceled["started"]) == ("canceled", None), "a pending job is canceled at once"
    assert client.get(f"jobs/{job}/cancel/").json() == {"can_cancel": True}
    started = time.monotonic()
    assert client.post(f"jobs/{job}/cancel/").status_code == 202
    ended = finished(client, job, timeout=20)
    assert time.monotonic() - started < 20
    assert (ended["status"], ended["failed"]) == ("canceled", True)
    assert ended["canceled_on"] is not None
    assert client.get(f"jobs/{job}/cancel/").json() == {"can_cancel": False}
    late = client.post(f"jobs/{job}/cancel/")
    assert (late.status_code, late.json()) == (405, {"detail": 'Method "POST" not allowed.'})
    time.sleep(2)
    assert not mark.exists(), "the playbook went on after the cancel"


def test_launch_variables_are_unsafe_and_the_template_variables_are_not(awx, tmp_path):
    canary = tmp_path / "canary"
    template = awx.job_template(
        "report", "playbooks/report.yml", ask_variables_on_launch=True, extra_vars="greeting: \"{{ 'hel' ~ 'lo' }}\""
    )
    client = api(awx)
    note = f"{{{{ lookup('pipe', 'touch {canary}') }}}}"
    job = client.post(f"job_templates/{template}/launch/", json={"extra_vars": {"note": note}}).json()["job"]
    ended = finished(client, job)
    assert ended["status"] == "successful"
    assert not canary.exists(), "a launch-time extra variable was templated"
    assert ended["artifacts"]["remediation"]["note"] == note
    assert ended["artifacts"]["remediation"]["greeting"] == "hello", "the job template's own variables are trusted"
    assert note in client.get(f"jobs/{job}/stdout/", params={"format": "txt"}).text


def test_events_status_and_artifacts_come_from_the_real_run(awx):
    template = awx.job_template("report", "playbooks/report.yml", ask_variables_on_launch=True, timeout=0)
    client = api(awx)
    launched = client.post(f"job_templates/{template}/launch/", json={"extra_vars": {"outcome": "unhealed"}}).json()
    assert launched["status"] == "pending"
    job = finished(client, launched["job"])
    assert (job["status"], job["failed"], job["event_processing_finished"]) == ("successful", False, True)
    assert job["started"] and job["finished"] and job["elapsed"] > 0
    assert job["artifacts"] == {"remediation": {"outcome": "unhealed", "note": "", "greeting": "", "service": ""}}
    events = client.get(f"jobs/{job['id']}/job_events/", params={"page_size": 200}).json()["results"]
    assert [event["counter"] for event in events] == list(range(1, len(events) + 1))
    assert events[0]["event"] == "playbook_on_start"
    assert events[-1]["event"] == "playbook_on_stats"
    assert events[-1]["event_data"]["artifact_data"] == job["artifacts"]
    ok = [event for event in events if event["event"] == "runner_on_ok"]
    assert {(event["host_name"], event["task"]) for event in ok} >= {("localhost", "Show the note")}
    assert {event["play"] for event in ok} == {"Report what the job was given"}
    assert "PLAY RECAP" in client.get(f"jobs/{job['id']}/stdout/", params={"format": "txt"}).text

    failing = client.post(f"job_templates/{template}/launch/", json={"extra_vars": {"fail": True}}).json()["job"]
    failed = finished(client, failing)
    assert (failed["status"], failed["failed"]) == ("failed", True)
    failures = client.get(f"jobs/{failing}/job_events/", params={"event": "runner_on_failed"}).json()["results"]
    assert failures and all(event["failed"] for event in failures)
    assert failures[0]["event_data"]["res"]["msg"] == "asked to fail"


def test_a_job_over_its_timeout_fails_with_awx_explanation(awx, tmp_path):
    template = awx.job_template("sleep", "playbooks/sleep.yml", timeout=3, extra_vars=f"mark: {tmp_path / 'mark'}")
    client = api(awx)
    job = finished(client, client.post(f"job_templates/{template}/launch/", json={}).json()["job"], timeout=60)
    assert (job["status"], job["job_explanation"]) == ("failed", "Job terminated due to timeout")


def test_ansible_rulebook_runs_a_job_template_by_name_and_organization(awx):
    awx.job_template("report", "playbooks/report.yml", ask_variables_on_launch=True, ask_limit_on_launch=True)

    async def run() -> dict:
        runner = JobTemplateRunner(host=awx.url, token=awx.token_for("execute"))
        runner.refresh_delay = 0.5
        try:
            return await runner.run_job_template(
                "report", "Default", {"extra_vars": {"outcome": "already_healthy"}, "limit": "localhost"}
            )
        finally:
            await runner.close_session()

    job = asyncio.run(run())
    assert (job["status"], job["artifacts"]["remediation"]["outcome"]) == ("successful", "already_healthy")
    assert awx.launches == [{"extra_vars": {"outcome": "already_healthy"}, "limit": "localhost"}]
