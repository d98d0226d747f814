"""Run the collection's playbooks the way an ops host does, from tests."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

# The adapter's own marking of alert data as unsafe, so tests pass it exactly as the adapter does.
from remediate.executor import unsafe  # noqa: F401 - re-exported for the tests

REPO_ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = Path(sys.executable).with_name("ansible-playbook")

T = TypeVar("T")


def run_playbook(
    playbook: str | Path, extra_vars: dict, *, check: bool = False, timeout: float = 300
) -> subprocess.CompletedProcess:
    """Run a playbook (a path, or a collection name such as incident.remediation.redis_down)
    on localhost over a local connection, with the repository's ansible.cfg."""
    args = [
        str(ANSIBLE_PLAYBOOK),
        "-i",
        "localhost,",
        "-e",
        json.dumps({"ansible_connection": "local", "ansible_python_interpreter": sys.executable, **extra_vars}),
        str(playbook),
    ]
    if check:
        args.append("--check")
    return subprocess.run(args, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout, check=False)


def wait_for(read: Callable[[], T], done: Callable[[T], bool], timeout: float = 60, interval: float = 0.2) -> T:
    """Poll ``read()`` until ``done`` accepts its result and return it; raise TimeoutError with the last value."""
    deadline = time.monotonic() + timeout
    while not done(value := read()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout}s; last seen: {value!r}")
        time.sleep(interval)
    return value
