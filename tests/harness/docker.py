"""Throwaway containers of the project's test images, on loopback ports."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import docker
import redis

from tests.harness.ansible import wait_for

REDIS_IMAGE = "incident-remediation/redis:latest"


@contextlib.contextmanager
def redis_server(*args: str) -> Iterator[tuple[int, docker.models.containers.Container]]:
    """A Redis container (redis-server ARGS...) published on a free 127.0.0.1 port;
    yields (port, container) once it answers PING (or, with --requirepass, once it
    answers at all), and removes the container afterwards."""
    engine = docker.from_env()
    container = engine.containers.run(
        REDIS_IMAGE,
        ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--save", "", *args],
        name=f"ir-test-redis-{uuid.uuid4().hex[:8]}",
        ports={"6379/tcp": ("127.0.0.1", None)},
        detach=True,
        labels={"incident-remediation.test": "1"},
    )
    try:
        container.reload()
        port = int(container.ports["6379/tcp"][0]["HostPort"])
        wait_for(lambda: _answers(port), bool, timeout=30)
        yield port, container
    finally:
        container.remove(force=True)


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
