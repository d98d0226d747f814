"""A throwaway Prometheus (the project's image) scraping targets on loopback.

Network choice: the container runs with ``network_mode="host"`` and Prometheus
listens on ``127.0.0.1:<free port>`` only. The apps it scrapes are test objects
living in the test process (tests/harness/metrics_app.py), bound to 127.0.0.1
and driven by direct method calls; with the host's network namespace Prometheus
reaches them on loopback without publishing anything, and every byte of test
traffic stays on 127.0.0.1. The alternative, the app in a second container on a
user-defined network, would need a control API over HTTP for every traffic change
and an image for the app, for no gain in realism. The price: a free port is
picked before the container binds it, so a start that loses that race is retried
on another port.

The scrape configuration is copied into the container before it starts (no bind
mount, so it also works against a remote Docker engine's file system).
"""

from __future__ import annotations

import contextlib
import io
import json
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import docker
import yaml

from tests.harness.adapter import free_port
from tests.harness.ansible import wait_for

PROMETHEUS_IMAGE = "incident-remediation/prometheus:latest"
LABELS = {"incident-remediation.test": "1"}


@dataclass
class Prometheus:
    url: str
    port: int
    container: docker.models.containers.Container

    def query(self, promql: str, timeout: float = 2.0) -> list[tuple[dict, float]]:
        """An instant query: [(labels, value)] of a vector or [({}, value)] of a scalar."""
        return query(self.url, promql, timeout)


def query(base_url: str, promql: str, timeout: float = 2.0) -> list[tuple[dict, float]]:
    address = "%s/api/v1/query?%s" % (base_url, urllib.parse.urlencode({"query": promql}))
    with urllib.request.urlopen(address, timeout=timeout) as response:
        data = json.load(response)["data"]
    if data["resultType"] == "scalar":
        return [({}, float(data["result"][1]))]
    return [(series["metric"], float(series["value"][1])) for series in data["result"]]


def scrape_config(targets: Sequence[str], scrape_interval: str = "1s", job: str = "app") -> dict:
    return {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "scrape_configs": [
            {
                "job_name": job,
                "scrape_interval": scrape_interval,
                "scrape_timeout": scrape_interval,
                "static_configs": [{"targets": list(targets)}],
            }
        ],
    }


@contextlib.contextmanager
def prometheus_server(
    targets: Sequence[str], scrape_interval: str = "1s", job: str = "app", timeout: float = 60
) -> Iterator[Prometheus]:
    """Prometheus scraping targets (``host:port`` on 127.0.0.1) every scrape_interval
    as job; yields once it is ready and every target is up, and removes the container."""
    engine = docker.from_env()
    config = yaml.safe_dump(scrape_config(targets, scrape_interval, job)).encode()
    server = None
    try:
        for _attempt in range(3):
            server = _start(engine, config, timeout)
            if server.container.status != "exited":
                break
            # Most likely another process took the port between picking and binding it.
            server.container.remove(force=True)
        else:
            raise RuntimeError("Prometheus did not start: %s" % server.container.logs(tail=20).decode(errors="replace"))
        wait_for(lambda: _up_targets(server.url, job), lambda up: up >= len(targets), timeout=timeout)
        yield server
    finally:
        if server is not None:
            server.container.remove(force=True)


def _start(engine, config: bytes, timeout: float) -> Prometheus:
    """A started container on a free loopback port, once ready or exited."""
    port = free_port()
    container = engine.containers.create(
        PROMETHEUS_IMAGE,
        [
            "--config.file=/etc/prometheus/prometheus.yml",
            "--storage.tsdb.path=/tmp/prometheus",
            "--web.listen-address=127.0.0.1:%d" % port,
        ],
        name="ir-test-prometheus-%s" % uuid.uuid4().hex[:8],
        network_mode="host",
        environment={"PROMETHEUS_PORT": str(port)},
        labels=LABELS,
    )
    server = Prometheus("http://127.0.0.1:%d" % port, port, container)
    try:
        container.put_archive("/etc/prometheus", _tar("prometheus.yml", config))
        container.start()
        wait_for(lambda: _readiness(server), lambda state: state != "starting", timeout=timeout)
    except BaseException:
        container.remove(force=True)
        raise
    return server


def _readiness(server: Prometheus) -> str:
    server.container.reload()
    if server.container.status == "exited":
        return "exited"
    try:
        with urllib.request.urlopen(server.url + "/-/ready", timeout=1) as response:
            return "ready" if response.status == 200 else "starting"
    except (urllib.error.URLError, OSError):
        return "starting"


def _up_targets(url: str, job: str) -> int:
    try:
        return sum(1 for _, value in query(url, 'up{job="%s"}' % job) if value == 1)
    except (urllib.error.URLError, OSError, KeyError, ValueError):
        return 0


def _tar(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = 0o644
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
