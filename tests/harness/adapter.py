"""The remediate adapter as a real server process, for tests and benchmarks.

``adapter_process`` writes a settings file, a routes file and a bearer token into
a temporary folder, starts ``remediate serve`` on a free loopback port and waits
for /healthz. Runs go through real ansible-runner and real playbooks: the
collection's, or the test collection's ``adapter_test.playbooks.record``, which
leaves one file per run in ``records_dir`` (named ``<service>.<random>.<incident id>``)
and reports the outcome its route asks for.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from tests.harness.ansible import REPO_ROOT, wait_for

REMEDIATE = Path(sys.executable).with_name("remediate")
TEST_COLLECTIONS = REPO_ROOT / "tests" / "adapter" / "collections"
RECORD_PLAYBOOK = "adapter_test.playbooks.record"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def record_route(name: str = "TestDown", *, mode: str = "auto", **extra) -> dict:
    """A route to the record playbook; the target's service comes from the `service` label."""
    return {
        "alertname": name,
        "playbook": RECORD_PLAYBOOK,
        "severity": "warning",
        "mode": mode,
        "target": {
            "platform": {"value": "compose"},
            "host": {"value": "localhost"},
            "service": {"label": "service", "pattern": "[a-z0-9][a-z0-9-]{0,31}"},
            "project_src": {"value": "/srv/test"},
        },
        **extra,
    }


def redis_down_route(project_src: Path, project_name: str, redis_port: int, redis_host: str = "127.0.0.1") -> dict:
    """RedisDown -> the collection's redis_down playbook, for a Redis in a compose project
    (on loopback, or at redis_host where the adapter reaches it)."""
    return {
        "alertname": "RedisDown",
        "playbook": "incident.remediation.redis_down",
        "severity": "warning",
        "mode": "auto",
        "target": {
            "platform": {"value": "compose"},
            "host": {"value": "localhost"},
            "service": {"label": "service", "pattern": "[a-z0-9][a-z0-9_.-]{0,62}"},
            "project_src": {"value": str(project_src)},
            "project_name": {"value": project_name},
            "endpoint": {"host": {"value": redis_host}, "port": {"value": redis_port}},
        },
    }


def alert(
    name: str = "TestDown",
    service: str = "svc-1",
    *,
    status: str = "firing",
    labels: dict | None = None,
    annotations: dict | None = None,
    starts_at: str = "2026-11-22T03:00:00Z",
    fingerprint: str | None = None,
) -> dict:
    """One alert as Alertmanager puts it in a webhook."""
    all_labels = {"alertname": name, "service": service, **(labels or {})}
    return {
        "status": status,
        "labels": all_labels,
        "annotations": annotations or {"summary": f"{name} on {service}"},
        "startsAt": starts_at,
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-11-22T03:10:00Z",
        "generatorURL": "http://127.0.0.1:9090/graph",
        "fingerprint": fingerprint or uuid.uuid5(uuid.NAMESPACE_OID, json.dumps(all_labels, sort_keys=True)).hex[:16],
    }


def webhook(alerts: list[dict], status: str | None = None) -> dict:
    """Alertmanager's webhook payload, version 4."""
    return {
        "version": "4",
        "receiver": "remediate",
        "status": status or ("firing" if any(a["status"] == "firing" for a in alerts) else "resolved"),
        "alerts": alerts,
        "groupLabels": {"alertname": alerts[0]["labels"]["alertname"]} if alerts else {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:9093",
        "groupKey": '{}:{alertname="%s"}' % (alerts[0]["labels"]["alertname"] if alerts else ""),
        "truncatedAlerts": 0,
    }


@dataclass
class Adapter:
    folder: Path
    settings_path: Path
    port: int
    token: str
    records_dir: Path
    extra_args: list[str] = field(default_factory=list)
    process: subprocess.Popen | None = None
    # "https" when the settings set tls_certfile; verify is then the client's CA context.
    scheme: str = "http"
    verify: ssl.SSLContext | bool = True

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.folder / "adapter.log"

    def start(self, timeout: float = 30, *, env: dict | None = None, cwd: Path = REPO_ROOT) -> None:
        """Start `remediate serve`, by default with this process's environment; ``env``
        replaces it (say, the bare PATH and / a systemd unit gives)."""
        environment = {**(os.environ if env is None else env), "ADAPTER_TEST_RECORDS": str(self.records_dir)}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    str(REMEDIATE),
                    "--config",
                    str(self.settings_path),
                    "serve",
                    "--port",
                    str(self.port),
                    *self.extra_args,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=environment,
                start_new_session=True,
            )
        wait_for(self._healthy, bool, timeout=timeout)

    def _healthy(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"remediate serve exited {self.process.returncode}: {self.log_path.read_text()[-2000:]}")
        try:
            return httpx.get(self.url + "/healthz", timeout=1, verify=self.verify).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        """SIGKILL the server process (its playbook children go on, orphaned, as in a real crash)."""
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)

    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}

    def post(
        self,
        path: str,
        payload=None,
        *,
        content: bytes | None = None,
        headers: dict | None = None,
        auth: bool = True,
        timeout: float = 30,
    ) -> httpx.Response:
        sent = {**(self.headers() if auth else {}), **(headers or {})}
        if content is None and payload is not None:
            content = json.dumps(payload).encode()
            sent.setdefault("Content-Type", "application/json")
        return httpx.post(self.url + path, content=content, headers=sent, timeout=timeout, verify=self.verify)

    def fire(self, alerts: list[dict]) -> dict:
        """POST a webhook and return its answer (asserting 200)."""
        response = self.post("/api/v1/alertmanager", webhook(alerts))
        assert response.status_code == 200, response.text
        return response.json()

    def get(self, path: str, **params) -> httpx.Response:
        return httpx.get(self.url + path, headers=self.headers(), params=params, timeout=30, verify=self.verify)

    def runs(self, state: str | None = None) -> list[dict]:
        response = self.get("/api/v1/runs", **({"state": state} if state else {}))
        response.raise_for_status()
        return response.json()

    def timeline(self, incident_id: str) -> list[dict]:
        response = self.get(f"/api/v1/incidents/{incident_id}")
        response.raise_for_status()
        return response.json()["timeline"]

    def wait_runs_final(self, timeout: float = 120) -> list[dict]:
        """Wait until no run is queued or running; return all runs."""
        return wait_for(
            self.runs, lambda runs: all(run["state"] not in ("queued", "running") for run in runs), timeout=timeout
        )

    def records(self) -> collections.Counter:
        """Runs of the record playbook so far, per service."""
        return collections.Counter(path.name.split(".")[0] for path in self.records_dir.iterdir())

    def record_incidents(self) -> list[tuple[str, str]]:
        """(service, incident id) of each run of the record playbook so far, sorted."""
        return sorted((path.name.split(".")[0], path.name.split(".")[2]) for path in self.records_dir.iterdir())

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(REMEDIATE), "--config", str(self.settings_path), *args],
            capture_output=True,
            text=True,
            cwd=REPO_ROOT,
            env={**os.environ, "ADAPTER_TEST_RECORDS": str(self.records_dir)},
            timeout=timeout,
            check=False,
        )


def write_settings(
    folder: Path, routes: list[dict], *, store: str | None = None, inventory_vars: dict | None = None, **overrides
) -> Adapter:
    """Settings, routes and a token for an adapter in ``folder`` (not started); ``inventory_vars``
    go to the runs' inventory (where playbook secrets such as notification URLs belong)."""
    folder.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex
    (folder / "token").write_text(token + "\n")
    (folder / "routes.yml").write_text(yaml.safe_dump({"version": 1, "routes": routes}, sort_keys=False))
    records = folder / "records"
    records.mkdir(exist_ok=True)
    inventory = folder / "inventory.yml"
    inventory.write_text(
        yaml.safe_dump(
            {
                "all": {
                    "hosts": {
                        "localhost": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
                    },
                    "vars": inventory_vars or {},
                }
            }
        )
    )
    settings = {
        "store": store or f"sqlite:///{folder}/remediate.db",
        "state_dir": str(folder / "state"),
        "incident_records_dir": str(folder / "incidents"),
        "routes_file": str(folder / "routes.yml"),
        "auth": {"bearer_token_file": str(folder / "token")},
        "workers": 2,
        # Most tests configure no notification channel; tests of failed notifications set it.
        "notify_required": False,
        "executor": {
            "inventory": str(inventory),
            "collections_path": f"{REPO_ROOT / '.collections'}:{TEST_COLLECTIONS}",
            "timeout_seconds": 120,
        },
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(settings.get(key), dict):
            settings[key] = {**settings[key], **value}
        else:
            settings[key] = value
    (folder / "settings.yml").write_text(yaml.safe_dump(settings, sort_keys=False))
    return Adapter(folder, folder / "settings.yml", free_port(), token, records)


@contextlib.contextmanager
def adapter_process(folder: Path, routes: list[dict], **overrides) -> Iterator[Adapter]:
    """A running adapter; stopped (and its process group killed) afterwards."""
    server = write_settings(folder, routes, **overrides)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        with contextlib.suppress(ProcessLookupError, TypeError):
            os.killpg(server.process.pid, signal.SIGKILL)
