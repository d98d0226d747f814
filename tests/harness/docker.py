"""Throwaway containers of the project's test images, on loopback ports."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import redis

from tests.harness.adapter import free_port
from tests.harness.ansible import REPO_ROOT, wait_for

REDIS_IMAGE = "incident-remediation/redis:latest"
TEST_LABELS = {"incident-remediation.test": "1"}


@contextlib.contextmanager
def redis_server(
    *args: str,
    network: str | None = None,
    volumes: dict | None = None,
    ready: Callable[[int], bool] | None = None,
    ready_timeout: float = 30,
) -> Iterator[tuple[int, docker.models.containers.Container]]:
    """A Redis container (redis-server ARGS...) published on a free 127.0.0.1 port;
    yields (port, container) once it answers PING (or, with --requirepass, once it
    answers at all), and removes the container afterwards.

    network: a user-defined Docker network to join (other containers on it reach
    this one by ``container.name``); volumes: docker SDK bind mounts, e.g.
    ``{str(folder): {"bind": "/tls", "mode": "ro"}}``; ready: a predicate on the
    published port replacing the plain PING probe (for TLS-only servers)."""
    engine = docker.from_env()
    container = engine.containers.run(
        REDIS_IMAGE,
        ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--save", "", *args],
        name=f"ir-test-redis-{uuid.uuid4().hex[:8]}",
        ports={"6379/tcp": ("127.0.0.1", None)},
        detach=True,
        labels=TEST_LABELS,
        network=network,
        volumes=volumes,
    )
    try:
        container.reload()
        port = int(container.ports["6379/tcp"][0]["HostPort"])
        wait_for(lambda: (ready or _answers)(port), bool, timeout=ready_timeout)
        yield port, container
    finally:
        container.remove(force=True)


@contextlib.contextmanager
def docker_network() -> Iterator[str]:
    """A user-defined bridge network (containers on it resolve each other by name);
    yields its name and removes it afterwards (remove the containers first)."""
    engine = docker.from_env()
    network = engine.networks.create(f"ir-test-net-{uuid.uuid4().hex[:8]}", driver="bridge", labels=TEST_LABELS)
    try:
        yield network.name
    finally:
        network.remove()


class CacheApp:
    """The lab's cache-app compose project (Redis and its app) in ``folder`` on free
    loopback ports, as scripts/demo.sh runs it; up on enter, down on exit."""

    def __init__(self, folder: Path, prefix: str):
        self.folder = folder
        shutil.copy(REPO_ROOT / "lab" / "compose" / "cache-app" / "compose.yaml", folder)
        self.redis_port = free_port()
        (folder / ".env").write_text(f"REDIS_PORT={self.redis_port}\nAPP_PORT={free_port()}\n")
        self.name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        self.compose = ["docker", "compose", "--project-name", self.name, "--project-directory", str(folder)]

    def __enter__(self) -> CacheApp:
        subprocess.run([*self.compose, "up", "-d", "--wait"], check=True, capture_output=True, timeout=180)
        return self

    def __exit__(self, *_exc) -> None:
        subprocess.run(
            [*self.compose, "down", "--volumes", "--timeout", "1"], capture_output=True, timeout=180, check=False
        )

    def redis_container(self) -> str:
        return subprocess.run(
            [*self.compose, "ps", "-aq", "redis"], check=True, capture_output=True, text=True, timeout=60
        ).stdout.strip()


def pings(port: int, timeout: float = 2.0) -> bool:
    """Whether Redis on 127.0.0.1:port answers PING within timeout seconds."""
    client = redis.Redis(port=port, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        return client.ping()
    except redis.RedisError:
        return False
    finally:
        client.close()


def _answers(port: int) -> bool:
    client = redis.Redis(port=port, socket_timeout=1, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.AuthenticationError:
        return True
    except redis.RedisError:
        return False
    finally:
        client.close()
    return True
