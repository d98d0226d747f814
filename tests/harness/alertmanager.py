"""A throwaway Alertmanager (the project's image, Debian's 0.25) on a loopback port.

The container publishes its port on 127.0.0.1 only (a free port chosen by Docker).
Its baked-in configuration routes every alert to a receiver that notifies nobody,
so tests can POST alerts to ``/api/v2/alerts`` (as Prometheus does) and read them
back through the API the collection uses.

To notify a server on the host's loopback (the remediate adapter), pass ``config``
(alertmanager.yml text, mounted over the baked-in file) and ``host_port``: the
container then shares the host's network and listens on 127.0.0.1:<host_port>.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker

from tests.harness.ansible import wait_for

ALERTMANAGER_IMAGE = "incident-remediation/alertmanager:latest"
LABELS = {"incident-remediation.test": "1"}


@dataclass
class Alertmanager:
    url: str
    container: docker.models.containers.Container

    def post_alerts(self, alerts: list[dict]) -> None:
        """Send alerts the way Prometheus does: a list of {labels, annotations, startsAt?, endsAt?}."""
        request = urllib.request.Request(
            self.url + "/api/v2/alerts",
            data=json.dumps(alerts).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            response.read()

    def active_alerts(self) -> list[dict]:
        with urllib.request.urlopen(self.url + "/api/v2/alerts?active=true", timeout=5) as response:
            return json.load(response)


@contextlib.contextmanager
def alertmanager_server(
    alerts: list[dict] | None = None,
    timeout: float = 60,
    *,
    config: str | None = None,
    host_port: int | None = None,
    files: dict[str, Path] | None = None,
) -> Iterator[Alertmanager]:
    """Alertmanager on a free 127.0.0.1 port; yields once it is ready (and, when
    ``alerts`` are given, once they are posted and listed), and removes the container.

    config: alertmanager.yml text replacing the baked-in one; host_port: share the
    host's network (to reach servers on its loopback) and listen on 127.0.0.1:host_port;
    files: more files the configuration names (a token's credentials_file), container path
    to host path, mounted read-only (they must be readable by the container's user)."""
    engine = docker.from_env()
    options: dict = {"ports": {"9093/tcp": ("127.0.0.1", None)}}
    if host_port is not None:
        options = {
            "network_mode": "host",
            "environment": {"ALERTMANAGER_PORT": str(host_port)},
            "command": [
                "--config.file=/etc/prometheus/alertmanager.yml",
                "--storage.path=/tmp/alertmanager",
                "--cluster.listen-address=",
                f"--web.listen-address=127.0.0.1:{host_port}",
            ],
        }
    with tempfile.TemporaryDirectory(prefix="ir-alertmanager-") as folder:
        if config is not None:
            config_file = Path(folder) / "alertmanager.yml"
            config_file.write_text(config)
            config_file.chmod(0o644)  # the container runs as user prometheus
            options["volumes"] = {str(config_file): {"bind": "/etc/prometheus/alertmanager.yml", "mode": "ro"}}
        for inside, outside in (files or {}).items():
            options.setdefault("volumes", {})[str(outside)] = {"bind": inside, "mode": "ro"}
        container = engine.containers.run(
            ALERTMANAGER_IMAGE,
            name="ir-test-alertmanager-%s" % uuid.uuid4().hex[:8],
            labels=LABELS,
            detach=True,
            **options,
        )
        try:
            container.reload()
            port = host_port if host_port is not None else int(container.ports["9093/tcp"][0]["HostPort"])
            server = Alertmanager("http://127.0.0.1:%d" % port, container)
            wait_for(lambda: _ready(server), bool, timeout=timeout)
            if alerts:
                server.post_alerts(alerts)
                wait_for(server.active_alerts, lambda listed: len(listed) >= len(alerts), timeout=timeout)
            yield server
        finally:
            container.remove(force=True)


def _ready(server: Alertmanager) -> bool:
    server.container.reload()
    if server.container.status == "exited":
        raise RuntimeError("Alertmanager exited: %s" % server.container.logs(tail=20).decode(errors="replace"))
    try:
        with urllib.request.urlopen(server.url + "/-/ready", timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False
