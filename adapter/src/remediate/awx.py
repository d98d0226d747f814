"""The `awx` executor: a run as a job of an AWX / Ansible Automation Platform job
template, through the controller's REST API v2 (docs/adapter.md, "AWX / AAP").

The job gets the run's extra variables as they are, not marked `__ansible_unsafe`:
AWX writes launch-time extra variables for ansible-playbook as YAML with every key
and string tagged `!unsafe` (awx/main/utils/safe_yaml.py, used by
awx/main/tasks/jobs.py build_extra_vars_file), and it would hand the markers to the
playbook as plain mappings. (ansible-core 2.19 reads such a tagged scalar's type
again as plain YAML: a string `true` or `6379` arrives as a boolean or a number;
docs/adapter.md says what that means for alerts.)
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from remediate.config import Awx, Settings
from remediate.executor import (
    HOST_STATS,
    RunResult,
    check_verdict,
    job_template_for,
    refuse_marker_keys,
    task_event,
)
from remediate.routes import RouteTable
from remediate.store import Run

log = logging.getLogger("remediate.awx")
# Every request is a line at INFO otherwise: one per poll.
logging.getLogger("httpx").setLevel(logging.WARNING)

FINAL = ("successful", "failed", "error", "canceled")
# A limit that names one host and nothing else (no pattern, group, list or exclusion).
HOST_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,252}")
# How long a canceled job, or AWX's saving of a finished job's events, is waited for.
SETTLE_SECONDS = 30.0
MAX_BODY = 600
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class AwxError(Exception):
    """AWX refused or could not do what a run needs; the message says what (never the token)."""


def read_token(path: Path) -> str:
    try:
        token = Path(path).read_text().strip()
    except OSError as error:
        raise AwxError(f"executor.awx.token_file {path} is not readable: {type(error).__name__}") from None
    if not token or CONTROL.search(token):
        raise AwxError(f"executor.awx.token_file {path} does not hold one token on one line")
    return token


def _body(response: httpx.Response) -> str:
    """AWX's answer, bounded and on one line, for messages."""
    try:
        text = json.dumps(response.json(), sort_keys=True)
    except ValueError:
        text = response.text
    text = CONTROL.sub(" ", text)
    return text[:MAX_BODY] + ("..." if len(text) > MAX_BODY else "")


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    return CONTROL.sub(" ", str(detail))[:MAX_BODY] if detail else _body(response)


class AwxClient:
    """Requests to one controller with the token; reads (and cancels) retried after a
    connection error or a 5xx, a launch only when it surely never reached AWX."""

    def __init__(self, settings: Awx):
        self.settings = settings
        verify = str(settings.verify_tls) if isinstance(settings.verify_tls, Path) else settings.verify_tls
        self.http = httpx.Client(
            base_url=settings.url + settings.api_path,
            headers={"Authorization": f"Bearer {read_token(settings.token_file)}", "Accept": "application/json"},
            timeout=settings.request_timeout_seconds,
            verify=verify,
            follow_redirects=False,
        )

    def __enter__(self) -> AwxClient:
        return self

    def __exit__(self, *_) -> None:
        self.http.close()

    def send(
        self, method: str, path: str, *, params: dict | None = None, body=None, repeatable: bool
    ) -> httpx.Response:
        """One request; ``repeatable`` ones are tried again after any transport error or 5xx,
        others only after an error that proves the request never left (no connection)."""
        wait, problem = self.settings.retry_backoff_seconds, ""
        for attempt in range(self.settings.retries + 1):
            if attempt:
                log.warning("AWX request failed, trying again: %s %s: %s", method, path, problem)
                time.sleep(wait)
                wait = min(2 * wait, 30)
            try:
                # No params at all keeps a `next` link's own query.
                response = self.http.request(method, path, params=params or None, json=body)
            except (httpx.ConnectError, httpx.ConnectTimeout) as error:
                problem = f"{type(error).__name__}: {error}"
                continue
            except httpx.TransportError as error:
                problem = f"{type(error).__name__}: {error}"
                if not repeatable:
                    raise AwxError(f"{method} {path}: {problem}; not tried again: AWX may have acted on it") from None
                continue
            if response.status_code < 500 or not repeatable:
                return response
            problem = f"answered {response.status_code}: {_body(response)}"
        raise AwxError(f"AWX at {self.settings.url} does not answer {method} {path}: {problem}")

    def get(self, path: str, **params) -> dict:
        response = self.send("GET", path, params=params, repeatable=True)
        if response.status_code != 200:
            raise AwxError(refusal(response, "read", path))
        return response.json()

    def pages(self, path: str, **params) -> Iterator[dict]:
        """The results of a paginated list, page after page (`next` links, same controller)."""
        page = self.get(path, **params)
        while True:
            yield from page.get("results") or []
            link = page.get("next")
            if not link:
                return
            parts = urlsplit(link)
            page = self.get(self.settings.url + parts.path + (f"?{parts.query}" if parts.query else ""))

    def job_template(self, template: str | int) -> tuple[int, str]:
        """(id, name) of a job template, by name or id; AwxError when there is none,
        several, or it would ignore the run's extra variables or limit."""
        if isinstance(template, int):
            template_id = template
        else:
            found = self.get("job_templates/", name=template)
            if not found.get("count"):
                raise AwxError(
                    f"AWX has no job template named {template!r} that the token's user can see; create it"
                    " (playbooks/awx_configure.yml), let the user see it, or set the route's job_template"
                )
            if found["count"] > 1:
                raise AwxError(
                    f"AWX has {found['count']} job templates named {template!r} (in several organizations);"
                    " set the route's job_template to the id of the one to run"
                )
            template_id = found["results"][0]["id"]
        response = self.send("GET", f"job_templates/{template_id}/launch/", repeatable=True)
        if response.status_code != 200:
            raise AwxError(refusal(response, "read", f"job template #{template_id}"))
        prompts = response.json()
        name = str((prompts.get("job_template_data") or {}).get("name", template))
        missing = [
            what
            for key, what in (("ask_variables_on_launch", "extra variables"), ("ask_limit_on_launch", "limit"))
            if not prompts.get(key)
        ]
        if missing:
            raise AwxError(
                f"job template {name!r} (#{template_id}) does not prompt for {' and '.join(missing)} on launch:"
                " its job would ignore the alert; refusing to launch it (enable prompt on launch)"
            )
        return template_id, name

    def cancel(self, job_id: int) -> None:
        """Ask AWX to cancel a job; a job that has already ended (405) is fine."""
        try:
            response = self.send("POST", f"jobs/{job_id}/cancel/", body={}, repeatable=True)
        except AwxError as error:
            log.error("could not cancel AWX job %s: %s", job_id, error)
            return
        if response.status_code not in (202, 405):
            log.error("could not cancel AWX job %s: %s", job_id, refusal(response, "cancel", f"job {job_id}"))


def refusal(response: httpx.Response, action: str, thing: str) -> str:
    """A clear sentence for AWX's refusal to ``action`` ``thing``."""
    code = response.status_code
    if code == 401:
        return f"AWX refused the token (401: {_detail(response)}); check executor.awx.token_file"
    if code == 403:
        return f"the token's user may not {action} {thing} (403: {_detail(response)})"
    if code == 404:
        return f"AWX has no {thing} (404: {_detail(response)})"
    return f"AWX refused to {action} {thing} ({code}): {_body(response)}"


class JobEvents:
    """A job's events into the timeline in counter order, each once: events AWX has
    not saved yet (a gap in the counters) are held until it has, or the job ended."""

    def __init__(self, client: AwxClient, job_id: int, on_event: Callable[[dict], None]):
        self.client = client
        self.path = f"jobs/{job_id}/job_events/"
        self.on_event = on_event
        self.emitted = 0
        self.held: dict[int, dict] = {}
        self.stats: dict = {}

    def read(self, *, final: bool = False) -> None:
        for event in self.client.pages(self.path, counter__gt=self.emitted, order_by="counter"):
            if event.get("counter", 0) > self.emitted:
                self.held[event["counter"]] = event
        while self.held and (final or self.emitted + 1 in self.held):
            counter = min(self.held)
            self._emit(self.held.pop(counter))
            self.emitted = counter

    def _emit(self, event: dict) -> None:
        if event.get("event") == "playbook_on_stats":
            data = event.get("event_data") or {}
            self.stats = {key: data.get(key, {}) for key in HOST_STATS}
        kept = task_event(event)
        if kept is not None:
            self.on_event(kept)


class AwxExecutor:
    """Runs as jobs of the job template named by the route (default: the playbook's
    fully qualified name), limited to the target's host."""

    def __init__(self, settings: Settings, routes: RouteTable):
        self.settings = settings
        self.routes = routes

    def run(self, run: Run, on_event: Callable[[dict], None], should_cancel: Callable[[], bool]) -> RunResult:
        deadline = time.monotonic() + self.settings.executor.timeout_seconds
        awx = self.settings.executor.awx
        try:
            if awx is None:
                raise AwxError("the run's route uses executor awx but executor.awx is not set")
            with AwxClient(awx) as client:
                job_id = self._launch(client, run, on_event)
                return self._follow(
                    client, run, job_id, on_event=on_event, should_cancel=should_cancel, deadline=deadline
                )
        except AwxError as error:
            log.error("run %s: %s", run.id, error)
            return RunResult(status="failed", rc=None, host_stats={}, error=str(error))

    def _launch(self, client: AwxClient, run: Run, on_event: Callable[[dict], None]) -> int:
        template = job_template_for(self.routes.by_name(run.route), run.kind, run.playbook)
        limit = str((run.extravars.get("target") or {}).get("host", "localhost"))
        if not HOST_NAME.fullmatch(limit):
            raise AwxError(f"the target's host {limit[:64]!r} is not one host name: refusing it as the job's limit")
        try:
            refuse_marker_keys(run.extravars)
        except ValueError as error:
            raise AwxError(str(error)) from None
        template_id, name = client.job_template(template)
        what = f"job template {name!r} (#{template_id})"
        response = client.send(
            "POST",
            f"job_templates/{template_id}/launch/",
            body={"extra_vars": run.extravars, "limit": limit},
            repeatable=False,
        )
        if response.status_code >= 500:
            raise AwxError(
                f"AWX answered {response.status_code} to the launch of {what}: not tried again, a job may have started"
            )
        if response.status_code not in (200, 201):
            raise AwxError(refusal(response, "launch", what))
        launched = response.json()
        job_id = launched["job"]
        ignored = sorted({"extra_vars", "limit"} & set(launched.get("ignored_fields") or {}))
        if ignored:
            client.cancel(job_id)
            raise AwxError(f"AWX job {job_id} of {what} ignored {', '.join(ignored)}: canceled it")
        log.info("AWX job launched", extra={"run_id": run.id, "job": job_id, "job_template": template_id})
        on_event(
            {
                "kind": "awx_job",
                "reason": f"AWX job {job_id} of job template {name!r} (#{template_id}), limit {limit}",
                "job": job_id,
                "job_template": template_id,
                "url": f"{client.settings.url}/#/jobs/playbook/{job_id}",
            }
        )
        return job_id

    def _follow(
        self,
        client: AwxClient,
        run: Run,
        job_id: int,
        *,
        on_event: Callable[[dict], None],
        should_cancel: Callable[[], bool],
        deadline: float,
    ) -> RunResult:
        """The job's status and events until it ends; canceled in AWX on the run's
        timeout or the adapter's cancel, and then reported `timeout` or `canceled`."""
        events = JobEvents(client, job_id, on_event)
        stopped: str | None = None
        settle_until = float("inf")
        status = None
        try:
            while True:
                if stopped is None:
                    stopped = "canceled" if should_cancel() else "timeout" if time.monotonic() > deadline else None
                    if stopped is not None:
                        client.cancel(job_id)
                        settle_until = time.monotonic() + SETTLE_SECONDS
                job = client.get(f"jobs/{job_id}/")
                if job.get("status") != status:
                    status = job.get("status")
                    on_event({"kind": "awx_job_status", "reason": f"AWX job {job_id} {status}", "job": job_id})
                events.read()
                if status in FINAL or time.monotonic() > settle_until:
                    break
                time.sleep(client.settings.poll_seconds)
            # AWX saves a job's events after it ends; event_processing_finished says when it is done.
            settle_until = time.monotonic() + SETTLE_SECONDS
            while status in FINAL and not job.get("event_processing_finished") and time.monotonic() < settle_until:
                time.sleep(client.settings.poll_seconds)
                job = client.get(f"jobs/{job_id}/")
            events.read(final=True)
        except AwxError as error:
            raise AwxError(f"lost AWX job {job_id}, it may still run: {error}") from None
        return self._result(run, job, events.stats, stopped)

    def _result(self, run: Run, job: dict, stats: dict, stopped: str | None) -> RunResult:
        status = job.get("status")
        detail = f"AWX job {job['id']} {status}"
        if job.get("job_explanation"):
            detail += f": {CONTROL.sub(' ', str(job['job_explanation']))[:MAX_BODY]}"
        elif status == "error":
            detail += ": AWX could not run it (the job's result_traceback in AWX says why)"
        if stopped is not None:
            why = "ran over the run's timeout" if stopped == "timeout" else "was canceled with its run"
            if status == "canceled":
                end = "canceled in AWX"
            elif status in FINAL:
                end = f"it ended {status} before the cancel"
            else:
                end = f"AWX did not confirm the cancel ({status}), it may still run"
            detail = f"AWX job {job['id']} {why}: {end}"
        result = RunResult(
            status=stopped or ("failed" if status == "error" else status),
            rc=None,
            host_stats=stats,
            detail=detail,
        )
        check_verdict(result, job.get("artifacts") or {}, run)
        return result
