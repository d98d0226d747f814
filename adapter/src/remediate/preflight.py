"""Can this adapter really run playbooks? Checked before `serve` and `fire` start, and
by `remediate check`: an adapter that accepts alerts and then fails every run tells
nobody, so it refuses to start instead, naming what is missing."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import yaml

from remediate.config import Settings
from remediate.executor import run_envvars
from remediate.routes import RouteError, load_routes, playbook_path


def preflight(settings: Settings) -> list[str]:
    """Everything that would stop a run, as sentences; empty when the adapter can run."""
    executor = settings.executor
    collections = executor.collections
    problems = _ansible_playbook(settings)
    if settings.collection() is None:
        problems.append(
            f"the collection incident.remediation is not on the collections path ({collections});"
            " install it or set executor.collections_path"
        )
    playbooks = {settings.notify_playbook}
    if settings.routes_file is None:
        problems.append("routes_file is not set and there is no collection to take routes/routes.yml from")
    else:
        try:
            playbooks |= {route.playbook for route in load_routes(settings.routes_file).routes}
        except RouteError as error:
            problems.append(f"routes: {error}")
    roots = [Path(path) for path in collections.split(":") if path]
    problems += [
        f"playbook {name} is not on the collections path ({collections})"
        for name in sorted(playbooks)
        if playbook_path(name, roots) is None
    ]
    problems += _policy(settings.escalation_policy_file)
    if executor.inventory is None or not _readable(executor.inventory):
        problems.append(f"the inventory {executor.inventory} is not readable")
    if executor.ansible_config is not None and not _readable(executor.ansible_config):
        problems.append(f"executor.ansible_config {executor.ansible_config} is not readable")
    folders = [settings.state_dir]
    if settings.store.startswith("sqlite:///"):
        folders.append(Path(settings.store.removeprefix("sqlite://")).parent)
    problems += [f"{folder} is not writable" for folder in dict.fromkeys(folders) if not _writable(folder)]
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
