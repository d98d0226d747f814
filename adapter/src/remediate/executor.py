"""Executors run one playbook for one run. ``LocalRunner`` uses ansible-runner on
this host; ``remediate.awx.AwxExecutor`` launches an AWX/AAP job template. Both
return the same ``RunResult``; ``ByRoute`` picks one per run."""

from __future__ import annotations

import json
import logging
import os
import shlex
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import ansible_runner

from remediate.config import Settings
from remediate.outcomes import BadVerdict, parse_verdict
from remediate.routes import Route, RouteTable
from remediate.store import Run

log = logging.getLogger("remediate.executor")

# What reaches the incident timeline from a run: the start of each play and each
# task's outcome (skipped tasks left out), never the module's result, which can
# hold anything the module saw.
TASK_RESULTS = {"runner_on_ok": "ok", "runner_on_failed": "failed", "runner_on_unreachable": "unreachable"}
# The per-host counts of the playbook_on_stats event, as ansible-runner's Runner.stats gives them.
HOST_STATS = ("skipped", "ok", "dark", "failures", "ignored", "rescued", "processed", "changed")


@dataclass
class RunResult:
    status: str  # successful | failed | timeout | canceled
    rc: int | None
    host_stats: dict
    # The playbook's checked `remediation` data (docs/outcomes.md), None when it gave none.
    verdict: dict | None = None
    # Why the data it gave was refused, if it was.
    verdict_problem: str | None = None
    # Why the run could not be run at all (the executor broke), if it could not.
    error: str | None = None
    # How it ended when there is no exit code to tell (an AWX job's id and status).
    detail: str | None = None


class Executor(Protocol):
    def run(self, run: Run, on_event: Callable[[dict], None], should_cancel: Callable[[], bool]) -> RunResult: ...


def refuse_marker_keys(value) -> None:
    """Raise ValueError for a key Ansible reads as a marker (__ansible_*) anywhere in value."""
    if isinstance(value, dict):
        marker = next((key for key in value if str(key).startswith("__ansible")), None)
        if marker is not None:
            raise ValueError(f"refusing extra variable key {marker[:64]!r}: Ansible reads it as a marker")
        value = list(value.values())
    if isinstance(value, list):
        for item in value:
            refuse_marker_keys(item)


def unsafe(value):
    """Every string as data Ansible will not template ({"__ansible_unsafe": ...}).
    Keys cannot be marked: a key Ansible reads as a marker (__ansible_*) would make it
    load the whole file as plain YAML, every string a template, so it is refused."""
    refuse_marker_keys(value)
    return _wrap(value)


def _wrap(value):
    if isinstance(value, dict):
        return {key: _wrap(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_wrap(item) for item in value]
    if isinstance(value, str):
        return {"__ansible_unsafe": value}
    return value


def task_event(event: dict) -> dict | None:
    """The part of an ansible-runner event that the timeline keeps, or None."""
    data = event.get("event_data") or {}
    if event.get("event") == "playbook_on_play_start":
        return {"kind": "play_started", "task": data.get("play", "")}
    result = TASK_RESULTS.get(event.get("event", ""))
    if result is None:
        return None
    outcome = data.get("res") if isinstance(data.get("res"), dict) else {}
    return {
        "kind": "task",
        "task": data.get("task", ""),
        "action": data.get("task_action", ""),
        "host": data.get("host", ""),
        "result": "changed" if result == "ok" and outcome.get("changed") else result,
        "ignored": bool(data.get("ignore_errors")),
        "duration": data.get("duration"),
    }


class LocalRunner:
    """ansible-runner on this host, a fresh private_data_dir for every run."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.runs_dir = settings.state_dir / "runs"
        self.runs_dir.mkdir(parents=True, exist_ok=True)

    def run(self, run: Run, on_event: Callable[[dict], None], should_cancel: Callable[[], bool]) -> RunResult:
        private_data_dir = self.runs_dir / f"{run.id:08d}-{run.attempt}"
        shutil.rmtree(private_data_dir, ignore_errors=True)
        (private_data_dir / "env").mkdir(parents=True)
        # A file, not -e on the command line: alert data stays off process lists and
        # out of artifacts/command; unsafe-marked so Ansible never templates it.
        extravars = private_data_dir / "env" / "extravars"
        extravars.write_text(json.dumps(unsafe(run.extravars)))
        extravars.chmod(0o600)

        stats: dict = {}

        def handle(event: dict) -> bool:
            if event.get("event") == "playbook_on_stats":
                stats.update((event.get("event_data") or {}).get("artifact_data") or {})
            kept = task_event(event)
            if kept is not None:
                on_event(kept)
            return True

        executor = self.settings.executor
        binary = executor.playbook_binary
        try:
            runner = ansible_runner.run(
                private_data_dir=str(private_data_dir),
                ident="run",
                # An explicit ansible-playbook: a service started with a bare PATH still finds it.
                # With `binary` ansible-runner adds no playbook argument: it is the command line.
                binary=str(binary or "ansible-playbook"),
                cmdline=shlex.quote(run.playbook),
                inventory=str(executor.inventory),
                envvars=run_envvars(self.settings),
                event_handler=handle,
                cancel_callback=should_cancel,
                timeout=executor.timeout_seconds,
                quiet=True,
                json_mode=False,
            )
            result = RunResult(status=runner.status, rc=runner.rc, host_stats=runner.stats or {})
        finally:
            shutil.rmtree(private_data_dir / "env", ignore_errors=True)
            self._prune()
        check_verdict(result, stats, run)
        return result

    def _prune(self) -> None:
        """Keep the private data dirs (artifacts) of the last N runs."""
        keep = self.settings.executor.keep_artifacts
        runs = sorted(path for path in self.runs_dir.iterdir() if path.is_dir())
        for stale in runs[: max(0, len(runs) - keep)]:
            shutil.rmtree(stale, ignore_errors=True)


def run_envvars(settings: Settings) -> dict[str, str]:
    """The environment of ansible-playbook: its own bin directory first on PATH (its
    helpers, such as ansible-connection, are found beside it), the collections path,
    the configuration file and the records folder; then the settings' envvars."""
    executor = settings.executor
    path = os.environ.get("PATH", "/usr/bin:/bin")
    binary = executor.playbook_binary
    envvars = {
        "PATH": f"{binary.parent}:{path}" if binary is not None else path,
        "ANSIBLE_COLLECTIONS_PATH": executor.collections,
        "ANSIBLE_FORCE_COLOR": "0",
    }
    if executor.ansible_config is not None:
        envvars["ANSIBLE_CONFIG"] = str(executor.ansible_config)
    if settings.incident_records_dir is not None:
        envvars["INCIDENT_RECORDS_DIR"] = str(settings.incident_records_dir)
    return {**envvars, **executor.envvars}


def check_verdict(result: RunResult, reported: dict, run: Run) -> None:
    """The playbook's `remediation` data (set_stats) into the result, checked."""
    if "remediation" not in reported:
        return
    try:
        result.verdict = parse_verdict(reported["remediation"], run.incident_id)
    except BadVerdict as error:
        result.verdict_problem = str(error)
        log.error("run %s: remediation data refused: %s", run.id, error)


def executor_kind(settings: Settings, route: Route | None, run_kind: str) -> str:
    """Where a run goes: a remediation to its route's `executor`, else (and every
    notify run) to the settings' executor.kind."""
    if run_kind == "remediate" and route is not None and route.executor is not None:
        return route.executor
    return settings.executor.kind


def job_template_for(route: Route | None, run_kind: str, playbook: str) -> str | int:
    """The AWX job template (a name or an id) of a run: its route's `job_template`, else the playbook's
    fully qualified name (the name playbooks/awx_configure.yml gives it)."""
    if run_kind == "remediate" and route is not None and route.job_template is not None:
        return route.job_template
    return playbook


class ByRoute:
    """Each run on the executor its route names."""

    def __init__(self, settings: Settings, routes: RouteTable):
        from remediate.awx import AwxExecutor  # noqa: PLC0415 - awx builds on this module

        self.settings = settings
        self.routes = routes
        self.executors: dict[str, Executor] = {"local": LocalRunner(settings), "awx": AwxExecutor(settings, routes)}

    def run(self, run: Run, on_event: Callable[[dict], None], should_cancel: Callable[[], bool]) -> RunResult:
        kind = executor_kind(self.settings, self.routes.by_name(run.route), run.kind)
        return self.executors[kind].run(run, on_event, should_cancel)


def make_executor(settings: Settings, routes: RouteTable) -> Executor:
    return ByRoute(settings, routes)
