"""The adapter's `awx` executor (docs/adapter.md, "AWX / AAP") through a real adapter
process against the AWX API stand-in (tests/harness/awx.py: AWX's API v2 whose jobs
really run, with ansible-runner, the tests' record playbook as the project). AWX
itself cannot run here.

Proved: the same playbook gives the same timeline (plays, tasks, stats) and the same
outcome from AWX as from a local run, side by side; AWX's failed, error and canceled
job statuses; a timeout or a person's cancel cancels the job in AWX; 400, 401, 403,
404 and a template without prompts fail the run clearly and launch nothing; reads
are tried again, a launch only when it never reached AWX; the token is in neither
the log nor the store; `serve` and `check` refuse to start naming AWX problems; label
values that YAML 1.1 reads as booleans or numbers (AWX's !unsafe extra variables under
ansible-core 2.19) heal on AWX as they do locally."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx
import pytest

from tests.adapter.test_injection import hostile
from tests.harness.adapter import (
    RECORD_PLAYBOOK,
    TEST_COLLECTIONS,
    Adapter,
    alert,
    free_port,
    record_route,
    write_settings,
)
from tests.harness.ansible import REPO_ROOT, wait_for
from tests.harness.awx import AwxStandIn

pytestmark = pytest.mark.integration

PROJECT = TEST_COLLECTIONS / "ansible_collections" / "adapter_test" / "playbooks"
PLAYBOOK = "playbooks/record.yml"
INVENTORY = {"localhost": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}}
OUTCOMES = {"label": "outcome", "allow": ["healed", "already_healthy", "unhealed", "cannot_judge", "none"]}
# Timeline events a run leaves, local or on AWX.
RUN_EVENTS = ("started", "play_started", "task", "finished", "escalated")


@pytest.fixture
def records(tmp_path, monkeypatch) -> Path:
    """The stand-in's jobs run in this process's environment (ansible-runner passes it on):
    the checkout's ansible.cfg (its collections path holds the collection the record
    playbook's role comes from, as a project's requirements would on AWX) and the
    adapter's records folder, shared with its local runs."""
    folder = tmp_path / "adapter" / "records"
    folder.mkdir(parents=True)
    monkeypatch.setenv("ANSIBLE_CONFIG", str(REPO_ROOT / "ansible.cfg"))
    monkeypatch.setenv("ADAPTER_TEST_RECORDS", str(folder))
    return folder


@pytest.fixture
def awx(records) -> Iterator[AwxStandIn]:
    with AwxStandIn(project_dir=PROJECT, inventory=INVENTORY) as stand_in:
        yield stand_in


def seed(awx: AwxStandIn, name: str = RECORD_PLAYBOOK, **fields) -> int:
    """A job template of the record playbook that prompts for extra variables and limit."""
    options = {"ask_variables_on_launch": True, "ask_limit_on_launch": True, "allow_simultaneous": True}
    return awx.job_template(name, PLAYBOOK, **{**options, **fields})


def awx_settings(folder: Path, url: str, token: str, **awx) -> dict:
    """executor.awx for an adapter in ``folder``, the token in a file beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    token_file = folder / "awx.token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    options = {"poll_seconds": 0.2, "retries": 2, "retry_backoff_seconds": 0.2}
    return {"awx": {"url": url, "token_file": str(token_file), **options, **awx}}


@contextlib.contextmanager
def awx_adapter(folder: Path, url: str, token: str, routes: list[dict], *, awx=None, **overrides) -> Iterator[Adapter]:
    """A running adapter whose executor.awx points at ``url``, logging at DEBUG (so a
    leaked token would show)."""
    executor = {**awx_settings(folder, url, token, **(awx or {})), **overrides.pop("executor", {})}
    server = write_settings(folder, routes, executor=executor, **overrides)
    server.start(env={**os.environ, "REMEDIATE_LOG_LEVEL": "DEBUG"})
    try:
        yield server
    finally:
        server.stop()


def awx_route(name: str, **extra) -> dict:
    return record_route(name, executor="awx", safety={"cooldown_minutes": 0}, **extra)


def runs_by_incident(runs: list[dict]) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for run in runs:
        found.setdefault(run["incident_id"], []).append(run)
    return found


def run_timeline(server: Adapter, incident: str) -> list[tuple]:
    """The runs' events of an incident, without what differs by nature: the route's name,
    durations, exit codes, and the summary of a run without a verdict (an exit code, or
    the AWX job)."""
    kept = []
    for event in server.timeline(incident):
        if event["kind"] not in RUN_EVENTS:
            continue
        data = {key: value for key, value in event["data"].items() if key not in ("duration", "rc", "route")}
        reason = event["reason"]
        if event["kind"] == "finished" and data["result"] in ("failed", "no_verdict"):
            reason = "(no verdict)"
        kept.append((event["kind"], reason, json.dumps(data, sort_keys=True)))
    return kept


def secrets_absent(server: Adapter, *secrets: str) -> None:
    """None of the secrets in the adapter's log, its store (database and WAL) or state dir."""
    files = [server.log_path, *server.folder.glob("remediate.db*")]
    files += [path for path in (server.folder / "state").rglob("*") if path.is_file()]
    for path in files:
        content = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in content, f"a token is in {path}"


def test_awx_runs_map_exactly_as_local_runs_of_the_same_playbook(tmp_path, awx):
    """Each outcome of the record playbook, once locally and once as an AWX job: the same
    results, summaries, play and task events, host stats and escalations."""
    canaries = tmp_path / "canaries"
    canaries.mkdir()
    annotations = {"summary": "side by side", **{f"hostile_{k}": v for k, v in hostile(canaries).items()}}
    template = seed(awx)
    # Label values are not YAML 1.1 words such as true, yes or 1 (see the last test).
    cases = {
        "healed": ("healed", "told"),
        "healthy": ("already_healthy", "quiet"),
        "unhealed": ("unhealed", "told"),
        "judge": ("cannot_judge", "quiet"),
        "silent": ("none", "quiet"),
        "broken": ("healed", "broken"),
    }
    routes = []
    for where in ("local", "awx"):
        for told, variables in (
            ("told", {"notified": {"value": True}}),
            ("quiet", {"notified": {"value": False}}),
            ("broken", {"fail": {"value": True}}),
        ):
            route = record_route(
                "TestOutcome",
                vars={"outcome": OUTCOMES, **variables},
                matchers={"where": where, "told": told},
                safety={"breaker_failures": 10},
            )
            routes.append({**route, "name": f"{where}-{told}", **({"executor": "awx"} if where == "awx" else {})})
    with awx_adapter(tmp_path / "adapter", awx.url, awx.token, routes) as server:
        alerts = [
            alert(
                "TestOutcome",
                f"{case}-{where}",
                labels={"where": where, "outcome": outcome, "told": told},
                annotations=annotations,
            )
            for where in ("local", "awx")
            for case, (outcome, told) in cases.items()
        ]
        decisions = server.fire(alerts)["decisions"]
        incident_of = {a["labels"]["service"]: d["incident_id"] for a, d in zip(alerts, decisions, strict=True)}
        runs = runs_by_incident(server.wait_runs_final(timeout=600))

        expected = {
            "healed": [("remediate", "healed")],
            "healthy": [("remediate", "already_healthy")],
            "unhealed": [("remediate", "unhealed")],
            "judge": [("remediate", "cannot_judge"), ("notify", "notified")],
            "silent": [("remediate", "no_verdict"), ("notify", "notified")],
            "broken": [("remediate", "failed"), ("notify", "notified")],
        }
        for case in cases:
            local, remote = (runs[incident_of[f"{case}-{where}"]] for where in ("local", "awx"))
            assert [(run["kind"], run["result"]) for run in remote] == expected[case], case
            assert [(run["kind"], run["result"], run["state"], run["reason"]) for run in local] == [
                (run["kind"], run["result"], run["state"], run["reason"]) for run in remote
            ], case
            local_events = run_timeline(server, incident_of[f"{case}-local"])
            remote_events = run_timeline(server, incident_of[f"{case}-awx"])
            assert remote_events == [
                (kind, reason.replace(f"{case}-local", f"{case}-awx"), data.replace(f"{case}-local", f"{case}-awx"))
                for kind, reason, data in local_events
            ], case
            assert [kind for kind, _, _ in remote_events].count("task") >= 4, "the job's tasks are in the timeline"

        # What differs by nature: the summary of a run without a verdict names the AWX job.
        summaries = {case: runs[incident_of[f"{case}-awx"]][0]["outcome"] for case in ("silent", "broken")}
        assert re.fullmatch(r"AWX job \d+ successful", summaries["silent"])
        assert re.fullmatch(r"AWX job \d+ failed", summaries["broken"])
        assert runs[incident_of["broken-local"]][0]["outcome"] == "rc=2"
        # The verdict wins over the failed job, as over the failed local play.
        assert runs[incident_of["unhealed-awx"]][0]["state"] == "failed"
        assert {job["status"] for job in awx.jobs.values()} == {"successful", "failed"}

        # The AWX timeline also follows the job: launched, then its status changes.
        timeline = server.timeline(incident_of["healed-awx"])
        (launched,) = [event for event in timeline if event["kind"] == "awx_job"]
        job_id = launched["data"]["job"]
        assert (
            launched["reason"] == f"AWX job {job_id} of job template {RECORD_PLAYBOOK!r} (#{template}), limit localhost"
        )
        statuses = [event["reason"] for event in timeline if event["kind"] == "awx_job_status"]
        assert statuses[-1] == f"AWX job {job_id} successful"

        # Each job got the run's own extra variables, unmarked (AWX marks them !unsafe), and
        # the target's host as its limit.
        assert len(awx.launches) == len(cases)
        with sqlite3.connect(server.folder / "remediate.db") as db:
            sent = {
                json.dumps(json.loads(row[0]), sort_keys=True)
                for row in db.execute("SELECT extravars FROM runs WHERE route LIKE 'awx-%' AND kind = 'remediate'")
            }
        assert {json.dumps(launch["extra_vars"], sort_keys=True) for launch in awx.launches} == sent
        assert {launch["limit"] for launch in awx.launches} == {"localhost"}
        assert "__ansible_unsafe" not in json.dumps(awx.launches)
        # The hostile annotations reached the AWX job's playbook as text, never run.
        assert opened_incident(awx, job_id)["alert"]["annotations"] == annotations
        assert list(canaries.iterdir()) == []
        assert sorted(server.records()) == sorted(incident_of)
        secrets_absent(server, awx.token)


def opened_incident(awx: AwxStandIn, job_id: int) -> dict:
    """The `incident` fact the record playbook's role set in an AWX job, from its events."""
    events = httpx.get(
        f"{awx.url}/api/v2/jobs/{job_id}/job_events/",
        params={"event": "runner_on_ok", "page_size": 200},
        headers={"Authorization": f"Bearer {awx.token}"},
        timeout=30,
    ).json()["results"]
    (opened,) = [event for event in events if event["event_data"].get("task") == "Open the incident"]
    return opened["event_data"]["res"]["ansible_facts"]["incident"]


def test_timeout_cancel_and_the_job_statuses_of_awx(tmp_path, records):
    """The run's timeout cancels the job in AWX (`timeout`, escalated); a person's cancel
    in the adapter cancels it too, and so does one in AWX (`canceled`); a job AWX could
    not run (`error`) fails the run."""
    project = tmp_path / "project"
    shutil.copytree(PROJECT, project)
    with AwxStandIn(project_dir=project, inventory=INVENTORY) as awx:
        seed(awx)
        with awx_adapter(
            tmp_path / "adapter",
            awx.url,
            awx.token,
            [awx_route("TestHold", vars={"hold": {"value": 60}})],
            executor={"timeout_seconds": 20},
            workers=3,
            safety={"caps": {"concurrent_runs": 3}},
        ) as server:
            started = time.monotonic()
            decisions = server.fire([alert("TestHold", service) for service in ("timeout", "adapter", "in-awx")])[
                "decisions"
            ]
            incident = {
                service: d["incident_id"]
                for service, d in zip(("timeout", "adapter", "in-awx"), decisions, strict=True)
            }
            jobs = wait_for(lambda: awx.jobs, lambda jobs: [j["status"] for j in jobs.values()] == ["running"] * 3)
            job_of = {
                service: next(j["id"] for j in jobs.values() if incident[service] in j["extra_vars"])
                for service in incident
            }
            # A person cancels one run in the adapter, and someone another job in AWX.
            run_ids = {r["incident_id"]: r["id"] for r in server.runs("running")}
            assert server.post(f"/api/v1/runs/{run_ids[incident['adapter']]}/cancel").status_code == 200
            canceled = httpx.post(
                f"{awx.url}/api/v2/jobs/{job_of['in-awx']}/cancel/",
                headers={"Authorization": f"Bearer {awx.token}"},
                timeout=30,
            )
            assert canceled.status_code == 202

            runs = runs_by_incident(
                wait_for(server.wait_runs_final, lambda runs: len(runs) == 4, timeout=180)  # + the timeout's message
            )
            assert time.monotonic() - started < 60, "nobody waited for the held jobs"
            results = {
                service: [(r["kind"], r["state"], r["result"]) for r in runs[incident[service]]] for service in incident
            }
            assert results == {
                "timeout": [("remediate", "timeout", "timeout"), ("notify", "successful", "notified")],
                "adapter": [("remediate", "canceled", "canceled")],
                "in-awx": [("remediate", "canceled", "canceled")],
            }
            assert {service: awx.jobs[job]["status"] for service, job in job_of.items()} == {
                "timeout": "canceled",
                "adapter": "canceled",
                "in-awx": "canceled",
            }
            assert runs[incident["timeout"]][0]["outcome"] == (
                f"AWX job {job_of['timeout']} ran over the run's timeout: canceled in AWX"
            )
            assert runs[incident["adapter"]][0]["outcome"] == (
                f"AWX job {job_of['adapter']} was canceled with its run: canceled in AWX"
            )
            assert runs[incident["in-awx"]][0]["outcome"] == f"AWX job {job_of['in-awx']} canceled"
            assert ("escalated", "timeout") in [(e["kind"], e["reason"]) for e in server.timeline(incident["timeout"])]
            # The cancel stopped the playbook itself: it never reached its report.
            assert all(not awx.jobs[job]["artifacts"] for job in job_of.values())

            # The project's checkout is broken: AWX cannot run the job at all.
            shutil.rmtree(project)
            project.write_text("not a project folder")
            decision = server.fire([alert("TestHold", "broken-project")])["decisions"][0]
            runs = wait_for(server.wait_runs_final, lambda runs: len(runs) == 6, timeout=180)
            broken = [run for run in runs if run["incident_id"] == decision["incident_id"]]
            assert [(r["kind"], r["state"], r["result"], r["reason"]) for r in broken] == [
                ("remediate", "failed", "failed", "alert TestHold"),
                ("notify", "successful", "notified", "failed"),
            ]
            (job,) = [job for job in awx.jobs.values() if decision["incident_id"] in job["extra_vars"]]
            assert job["status"] == "error"
            assert broken[0]["outcome"] == (
                f"AWX job {job['id']} error: AWX could not run it (the job's result_traceback in AWX says why)"
            )


def test_awx_refusals_fail_the_run_clearly_and_launch_nothing(tmp_path, awx):
    survey = {
        "name": "",
        "description": "",
        "spec": [{"variable": "change_ticket", "question_name": "Change ticket", "type": "text", "required": True}],
    }
    record = seed(awx)
    surveyed = seed(awx, "adapter_test.survey", survey_spec=survey)
    gone = seed(awx, "adapter_test.gone")
    unprompted = seed(awx, "adapter_test.unprompted")
    routes = [
        awx_route("TestRecord"),
        awx_route("TestSurvey", job_template="adapter_test.survey"),
        awx_route("TestGone", job_template=gone),
        awx_route("TestUnprompted", job_template="adapter_test.unprompted"),
    ]
    admin = {"Authorization": f"Bearer {awx.token}"}
    read_only, bad = awx.token_for("read"), "0" * 30
    with awx_adapter(tmp_path / "adapter", awx.url, awx.token, routes) as server:
        # After the start (whose checks would refuse them): one template deleted, one no longer prompting.
        assert httpx.delete(f"{awx.url}/api/v2/job_templates/{gone}/", headers=admin).status_code == 204
        patched = httpx.patch(
            f"{awx.url}/api/v2/job_templates/{unprompted}/", json={"ask_limit_on_launch": False}, headers=admin
        )
        assert patched.status_code == 200

        def outcome_of(alertname: str, token: str | None = None) -> str:
            if token is not None:
                (server.folder / "awx.token").write_text(token + "\n")  # read again by each run
            service = f"svc-{len(server.runs())}"
            incident = server.fire([alert(alertname, service)])["decisions"][0]["incident_id"]
            runs = wait_for(
                server.wait_runs_final,
                lambda runs: [r["kind"] for r in runs if r["incident_id"] == incident] == ["remediate", "notify"],
                timeout=180,
            )
            run, message = [r for r in runs if r["incident_id"] == incident]
            assert (run["state"], run["result"], message["reason"]) == ("failed", "failed", "failed")
            (finished,) = [e for e in server.timeline(incident) if e["kind"] == "finished" and e["run_id"] == run["id"]]
            assert finished["reason"] == run["outcome"]
            return run["outcome"]

        assert outcome_of("TestSurvey") == (
            f"AWX refused to launch job template 'adapter_test.survey' (#{surveyed}) (400):"
            ' {"variables_needed_to_start": ["\'change_ticket\' value missing"]}'
        )
        assert outcome_of("TestGone") == f"AWX has no job template #{gone} (404: Not found.)"
        assert outcome_of("TestUnprompted") == (
            f"job template 'adapter_test.unprompted' (#{unprompted}) does not prompt for limit on launch:"
            " its job would ignore the alert; refusing to launch it (enable prompt on launch)"
        )
        assert outcome_of("TestRecord", read_only) == (
            f"the token's user may not launch job template {RECORD_PLAYBOOK!r} (#{record})"
            " (403: You do not have permission to perform this action.)"
        )
        assert outcome_of("TestRecord", bad).startswith(
            "AWX refused the token (401: Authentication credentials were not provided."
        )
        assert awx.jobs == {}, "nothing was launched"
        # Only the two launches AWX itself refused reached it.
        assert [sorted(launch) for launch in awx.launches] == [["extra_vars", "limit"]] * 2
        assert server.records() == {}
        log = server.log_path.read_text()
        assert "does not prompt for limit on launch" in log
        secrets_absent(server, awx.token, read_only, bad)


def test_yaml_words_in_labels_heal_on_awx_as_they_do_locally(tmp_path, awx):
    """AWX writes launch-time extra variables as YAML with every string tagged !unsafe,
    and ansible-core 2.19 reads a tagged scalar's type again as if it were plain: a
    label value such as `true`, `6379` or `null` reaches the playbook as a boolean, a
    number or null. The input contract gives them back as strings (filter
    alert_strings), so the same alert heals on AWX as it does locally."""
    seed(awx)
    routes = [
        {**record_route("TestWords", matchers={"where": where}), "name": where, "executor": where}
        for where in ("local", "awx")
    ]
    words = {"port": "6379", "canary": "true", "empty": "null", "day": "2026-11-22"}
    with awx_adapter(tmp_path / "adapter", awx.url, awx.token, routes) as server:
        alerts = [alert("TestWords", f"words-{where}", labels={"where": where, **words}) for where in ("local", "awx")]
        local, remote = (d["incident_id"] for d in server.fire(alerts)["decisions"])
        runs = runs_by_incident(wait_for(server.wait_runs_final, lambda runs: len(runs) == 2, timeout=180))
        assert [(r["kind"], r["result"]) for r in runs[local]] == [("remediate", "healed")]
        assert [(r["kind"], r["result"]) for r in runs[remote]] == [("remediate", "healed")]
        assert server.records() == {"words-local": 1, "words-awx": 1}


class FaultyProxy:
    """HTTP between the adapter and the stand-in, one connection per request: it can
    answer a 502 instead of AWX (before or after passing the request on), or stop
    listening for a while (connections refused) once it has answered a request."""

    def __init__(self, upstream: str):
        self.upstream = httpx.Client(base_url=upstream, timeout=30)
        self.port = free_port()
        self.faults: list[tuple[str, str, str, float]] = []  # method, path regex, what, seconds
        self.seen: list[str] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._down_until = 0.0
        self._stop = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fault(self, method: str, path: str, what: str, seconds: float = 0) -> None:
        """The next request matching ``method`` and ``path`` (a regex) meets ``what``:
        `502` (not passed on), `slow` (passed on after ``seconds``), `down-after` (passed
        on and answered, then no listener for ``seconds``). `502-after`: passed on, then
        answered 502 (a gateway that gave up while AWX acted)."""
        with self._lock:
            self.faults.append((method, path, what, seconds))

    def __enter__(self) -> FaultyProxy:
        self._listen()
        threading.Thread(target=self._serve, daemon=True).start()
        return self

    def __exit__(self, *_) -> None:
        self._stop.set()
        with self._lock:
            if self._listener is not None:
                self._listener.close()
        self.upstream.close()

    def _listen(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        listener.settimeout(0.05)
        self._listener = listener

    def _serve(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                if self._listener is None and time.monotonic() >= self._down_until:
                    self._listen()
                listener = self._listener
            if listener is None:
                time.sleep(0.02)
                continue
            try:
                connection, address = listener.accept()
            except OSError:  # a timeout, or the listener closed meanwhile
                continue
            connection.settimeout(None)
            threading.Thread(target=self._handle, args=(connection, address), daemon=True).start()

    def _handle(self, connection: socket.socket, address) -> None:
        try:
            _ProxyHandler(connection, address, self)
        finally:
            connection.close()

    def take_fault(self, method: str, path: str) -> tuple[str, float] | None:
        with self._lock:
            self.seen.append(f"{method} {path}")
            for index, (fault_method, pattern, what, seconds) in enumerate(self.faults):
                if fault_method == method and re.search(pattern, path):
                    del self.faults[index]
                    return what, seconds
        return None

    def go_down(self, seconds: float) -> None:
        with self._lock:
            # Out of LISTEN at once (close alone waits for a pending accept): connections are refused.
            self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
            self._down_until = time.monotonic() + seconds


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        self._forward()

    def do_POST(self):
        self._forward()

    def _forward(self):
        proxy: FaultyProxy = self.server
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        fault = proxy.take_fault(self.command, self.path)
        what, seconds = fault or ("", 0)
        if what == "502":
            return self._answer(502, b'{"detail": "bad gateway"}')
        if what == "slow":
            time.sleep(seconds)
        headers = {
            name: value for name, value in self.headers.items() if name.lower() in ("authorization", "content-type")
        }
        upstream = proxy.upstream.request(self.command, self.path, content=body, headers=headers)
        if what == "502-after":
            return self._answer(502, b'{"detail": "bad gateway"}')
        if what == "down-after":
            proxy.go_down(seconds)  # before answering: the client's next connection is refused
        return self._answer(upstream.status_code, upstream.content)

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True


def test_reads_are_tried_again_and_a_launch_only_when_it_never_reached_awx(tmp_path, awx):
    template = seed(awx)
    with (
        FaultyProxy(awx.url) as proxy,
        awx_adapter(
            tmp_path / "adapter",
            proxy.url,
            awx.token,
            [awx_route("TestRecord")],
            awx={"retries": 4, "retry_backoff_seconds": 0.5},
        ) as server,
    ):

        def run_of(service: str) -> dict:
            incident = server.fire([alert("TestRecord", service)])["decisions"][0]["incident_id"]
            runs = wait_for(
                server.wait_runs_final,
                lambda runs: any(r["incident_id"] == incident and r["result"] for r in runs),
                timeout=180,
            )
            return next(r for r in runs if r["incident_id"] == incident and r["kind"] == "remediate")

        # 502s on reads: tried again, the run goes on.
        proxy.fault("GET", r"^/api/v2/job_templates/\?", "502")
        proxy.fault("GET", r"^/api/v2/jobs/\d+/$", "502")
        proxy.fault("GET", r"^/api/v2/jobs/\d+/job_events/", "502")
        proxy.fault("GET", r"^/api/v2/jobs/\d+/$", "slow", 8)
        assert run_of("svc-reads")["result"] == "healed"
        assert len(awx.launches) == 1
        assert proxy.faults == [], "every fault was met"
        # The job's events, read once it had ended (the slow read), came in two pages (AWX's 25 a page).
        assert any(re.match(r"GET /api/v2/jobs/1/job_events/\?.*page=2", seen) for seen in proxy.seen)

        # AWX stops listening right before the launch: refused, so surely not launched: tried again.
        proxy.fault("GET", rf"^/api/v2/job_templates/{template}/launch/$", "down-after", 1.2)
        assert run_of("svc-refused")["result"] == "healed"
        assert len(awx.launches) == 2, "one job for the run"
        assert proxy.seen.count(f"POST /api/v2/job_templates/{template}/launch/") == 2

        # A 502 after AWX got the launch: it may have started a job, so never a second one.
        proxy.fault("POST", rf"^/api/v2/job_templates/{template}/launch/$", "502-after")
        run = run_of("svc-lost")
        assert (run["result"], run["outcome"]) == (
            "failed",
            f"AWX answered 502 to the launch of job template {RECORD_PLAYBOOK!r} (#{template}):"
            " not tried again, a job may have started",
        )
        assert len(awx.launches) == 3
        assert proxy.seen.count(f"POST /api/v2/job_templates/{template}/launch/") == 3
        log = server.log_path.read_text()
        assert "trying again: GET jobs/1/: answered 502" in log
        assert f"trying again: POST job_templates/{template}/launch/: ConnectError" in log
        secrets_absent(server, awx.token)


def check(server: Adapter) -> list[str]:
    """`remediate check`'s problems."""
    checked = server.cli("check", timeout=120)
    lines = [line for line in checked.stderr.splitlines() if not line.startswith("{")]  # not the JSON log
    assert checked.returncode == (1 if lines else 0), checked.stdout + checked.stderr
    return [line.removeprefix("  - ") for line in lines[1:]]


def test_start_refuses_naming_what_awx_lacks(tmp_path, awx):
    seed(awx)
    unprompted = seed(awx, "adapter_test.unprompted", ask_variables_on_launch=False)
    folder = tmp_path / "adapter"
    down = f"http://127.0.0.1:{free_port()}"

    # AWX does not answer: `serve` refuses to start.
    server = write_settings(folder, [awx_route("TestRecord")], executor=awx_settings(folder, down, awx.token))
    refused = server.cli("serve", "--port", str(server.port), timeout=120)
    assert refused.returncode == 2
    log = [json.loads(line)["message"] for line in refused.stderr.splitlines() if line.startswith("{")]
    assert log == ["AWX request failed, trying again: GET me/: ConnectError: [Errno 111] Connection refused"] * 2
    assert [line for line in refused.stderr.splitlines() if not line.startswith("{")] == [
        "remediate serve: cannot run playbooks, refusing to start:",
        f"  - AWX at {down} does not answer GET me/: ConnectError: [Errno 111] Connection refused",
    ]
    assert not (folder / "remediate.db").exists(), "nothing was started"

    # Each problem named: the token, the settings, a missing or unprompted template.
    server = write_settings(folder, [awx_route("TestRecord")], executor=awx_settings(folder, awx.url, "0" * 30))
    assert check(server) == [
        "AWX refused the token (401: Authentication credentials were not provided. To establish a login session,"
        " visit /api/login/.); check executor.awx.token_file"
    ]
    routes = [
        awx_route("TestRecord"),
        awx_route("TestMissing", job_template="adapter_test.missing"),
        awx_route("TestUnprompted", job_template="adapter_test.unprompted"),
    ]
    server = write_settings(folder, routes, executor=awx_settings(folder, awx.url, awx.token))
    assert check(server) == [
        "route 'TestMissing': AWX has no job template named 'adapter_test.missing' that the token's user can see;"
        " create it (playbooks/awx_configure.yml), let the user see it, or set the route's job_template",
        f"route 'TestUnprompted': job template 'adapter_test.unprompted' (#{unprompted}) does not prompt for extra"
        " variables on"
        " launch: its job would ignore the alert; refusing to launch it (enable prompt on launch)",
    ]
    (folder / "awx.token").unlink()
    assert check(server) == [f"executor.awx.token_file {folder / 'awx.token'} is not readable: FileNotFoundError"]
    server = write_settings(folder, [awx_route("TestRecord")])
    assert check(server) == ["executor.awx is not set, but these run on AWX: route 'TestRecord'"]

    # Everything on AWX (notify runs too): nothing local is needed, AWX is.
    seed(awx, "incident.remediation.notify")
    executor = {
        "kind": "awx",
        "inventory": str(tmp_path / "no-such-inventory"),
        "ansible_playbook": str(tmp_path / "no-such-ansible-playbook"),
        **awx_settings(folder, awx.url, awx.token),
    }
    server = write_settings(folder, [record_route()], executor=executor)
    assert check(server) == []
    server = write_settings(folder, [record_route()], executor={**executor, "kind": "local"})
    assert len(check(server)) == 2, "the same settings without AWX need ansible-playbook and the inventory"
