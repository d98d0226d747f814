"""Can this adapter really run playbooks? Checked before `serve` and `fire` start, and
by `remediate check`: an adapter that accepts alerts and then fails every run tells
nobody, so it refuses to start instead, naming what is missing. Playbooks that run
on this host need ansible-playbook, the collection and the inventory; those that run
on AWX need AWX to answer with the token and their job templates to prompt for extra
variables and limit."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import yaml

from remediate.awx import AwxClient, AwxError
from remediate.config import Settings
from remediate.executor import executor_kind, job_template_for, run_envvars
from remediate.routes import Route, RouteError, load_routes, playbook_path


def preflight(settings: Settings) -> list[str]:
    """Everything that would stop a run, as sentences; empty when the adapter can run."""
    executor = settings.executor
    collections = executor.collections
    routes, route_problems = _routes(settings)
    local, on_awx = _placement(settings, routes)
    problems = _ansible_playbook(settings) if local else []
    if settings.collection() is None:
        problems.append(
            f"the collection incident.remediation is not on the collections path ({collections});"
            " install it or set executor.collections_path"
        )
    problems += route_problems
    roots = [Path(path) for path in collections.split(":") if path]
    problems += [
        f"playbook {name} is not on the collections path ({collections})"
        for name in sorted(local)
        if playbook_path(name, roots) is None
    ]
    problems += _policy(settings.escalation_policy_file)
    if local and (executor.inventory is None or not _readable(executor.inventory)):
        problems.append(f"the inventory {executor.inventory} is not readable")
    if local and executor.ansible_config is not None and not _readable(executor.ansible_config):
        problems.append(f"executor.ansible_config {executor.ansible_config} is not readable")
    folders = [settings.state_dir]
    if settings.store.startswith("sqlite:///"):
        folders.append(Path(settings.store.removeprefix("sqlite://")).parent)
    problems += [f"{folder} is not writable" for folder in dict.fromkeys(folders) if not _writable(folder)]
    return problems + _awx(settings, on_awx)


def _routes(settings: Settings) -> tuple[list[Route], list[str]]:
    if settings.routes_file is None:
        return [], ["routes_file is not set and there is no collection to take routes/routes.yml from"]
    try:
        return list(load_routes(settings.routes_file).routes), []
    except RouteError as error:
        return [], [f"routes: {error}"]


def _placement(settings: Settings, routes: list[Route]) -> tuple[set[str], dict[str | int, list[str]]]:
    """The playbooks that run on this host, and the AWX job templates with who runs them."""
    runs = [(None, "notify", settings.notify_playbook, "notify runs")]
    runs += [(route, "remediate", route.playbook, f"route {route.name!r}") for route in routes]
    local: set[str] = set()
    on_awx: dict[str | int, list[str]] = {}
    for route, kind, playbook, who in runs:
        if executor_kind(settings, route, kind) == "local":
            local.add(playbook)
        else:
            on_awx.setdefault(job_template_for(route, kind, playbook), []).append(who)
    return local, on_awx


def _awx(settings: Settings, on_awx: dict[str | int, list[str]]) -> list[str]:
    """AWX answers with the token, and has every job template runs need, prompting for
    extra variables and limit."""
    if not on_awx:
        return []
    awx = settings.executor.awx
    if awx is None:
        users = ", ".join(who for users in on_awx.values() for who in users)
        return [f"executor.awx is not set, but these run on AWX: {users}"]
    problems = []
    try:
        with AwxClient(awx) as client:
            client.get("me/")
            for template, users in on_awx.items():
                try:
                    client.job_template(template)
                except AwxError as error:
                    problems.append(f"{', '.join(users)}: {error}")
    except AwxError as error:
        return [str(error)]
    return problems


def _ansible_playbook(settings: Settings) -> list[str]:
    binary = settings.executor.playbook_binary
    if binary is None:
        return ["ansible-playbook is found neither beside this Python nor on PATH; set executor.ansible_playbook"]
    try:
        subprocess.run(
            [str(binary), "--version"],
            env={**os.environ, **run_envvars(settings)},
            capture_output=True,
            timeout=120,
            check=True,
        )
    except (OSError, subprocess.SubprocessError) as error:
        return [f"ansible-playbook ({binary}) does not run: {type(error).__name__}: {str(error)[:200]}"]
    return []


def _policy(path: Path | None) -> list[str]:
    if path is None:
        return ["escalation_policy_file is not set and there is no collection to take the notify role's policy from"]
    try:
        document = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        return [f"escalation_policy_file {path}: {type(error).__name__}: {str(error)[:200]}"]
    if not isinstance(document, dict) or not isinstance(document.get("notify_escalation_policy"), dict):
        return [f"escalation_policy_file {path} has no notify_escalation_policy mapping"]
    return []


def _readable(path: Path) -> bool:
    try:
        if Path(path).is_dir():
            os.listdir(path)
        else:
            with Path(path).open("rb") as handle:
                handle.read(1)
    except OSError:
        return False
    return True


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False
