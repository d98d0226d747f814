"""A throwaway RabbitMQ (the project's image, with the management plugin) on loopback ports.

Messages are published over the management API's publish endpoint, so no AMQP
client library is needed on the host; consumers are real AMQP consumers
(`amqp-consume` from Debian's amqp-tools) run inside the container.
"""

from __future__ import annotations

import base64
import contextlib
import json
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import docker

from tests.harness.ansible import wait_for

RABBITMQ_IMAGE = "incident-remediation/rabbitmq:latest"
# The image's default user (images/rabbitmq/rabbitmq.conf).
USER = "incident"
PASSWORD = "incident-pass"


@dataclass
class RabbitMQ:
    container: docker.models.containers.Container
    amqp_port: int
    api_port: int
    user: str = USER
    password: str = PASSWORD
    _consumers: list[str] = field(default_factory=list)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def api(self, method: str, path: str, document: dict | None = None) -> tuple[int, object]:
        """(HTTP status, parsed JSON or None) of one management API call as the image's user."""
        body = None if document is None else json.dumps(document).encode()
        request = urllib.request.Request(f"{self.api_url}{path}", data=body, method=method)
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        return status, json.loads(raw) if raw else None

    @staticmethod
    def quoted(vhost: str, name: str) -> str:
        return f"{urllib.parse.quote(vhost, safe='')}/{urllib.parse.quote(name, safe='')}"

    def declare_queue(self, name: str, vhost: str = "/") -> None:
        status, body = self.api("PUT", f"/api/queues/{self.quoted(vhost, name)}", {"durable": False})
        assert status in (201, 204), (status, body)

    def publish(self, queue: str, count: int = 1, vhost: str = "/", timestamp: int | None = None) -> None:
        """Publish count messages to queue through the default exchange."""
        properties = {} if timestamp is None else {"timestamp": timestamp}
        path = f"/api/exchanges/{self.quoted(vhost, 'amq.default')}/publish"
        for index in range(count):
            document = {
                "properties": properties,
                "routing_key": queue,
                "payload": f"job {index}",
                "payload_encoding": "string",
            }
            status, body = self.api("POST", path, document)
            assert status == 200 and body == {"routed": True}, (status, body)

    def queue_info(self, name: str, vhost: str = "/") -> dict:
        status, body = self.api("GET", f"/api/queues/{self.quoted(vhost, name)}")
        assert status == 200, (status, body)
        return body

    def start_consumer(self, queue: str, prefetch: int) -> str:
        """A real AMQP consumer inside the container that takes `prefetch` messages and
        holds them unacknowledged (its per-message command never ends); returns its id
        for stop_consumer."""
        consumer_id = uuid.uuid4().hex[:8]
        url = f"amqp://{self.user}:{self.password}@localhost:5672"
        script = (
            f"echo $$ > /tmp/consumer-{consumer_id}.pid; "
            f"exec amqp-consume --url={url} -q {queue} -p {prefetch} sleep 3600"
        )
        self.container.exec_run(["sh", "-c", script], detach=True)
        self._consumers.append(consumer_id)
        return consumer_id

    def stop_consumer(self, consumer_id: str) -> None:
        """Stop one consumer by its process id; its unacknowledged messages return to the queue."""
        self.container.exec_run(["sh", "-c", f'kill "$(cat /tmp/consumer-{consumer_id}.pid)"'])
        self._consumers.remove(consumer_id)


@contextlib.contextmanager
def rabbitmq_server(timeout: float = 90) -> Iterator[RabbitMQ]:
    """A RabbitMQ container with AMQP (5672) and the management API (15672) published
    on free 127.0.0.1 ports; yields once the API answers the image's user, and removes
    the container afterwards."""
    engine = docker.from_env()
    container = engine.containers.run(
        RABBITMQ_IMAGE,
        name=f"ir-test-rabbitmq-{uuid.uuid4().hex[:8]}",
        ports={"5672/tcp": ("127.0.0.1", None), "15672/tcp": ("127.0.0.1", None)},
        detach=True,
        labels={"incident-remediation.test": "1"},
    )
    try:
        container.reload()
        broker = RabbitMQ(
            container=container,
            amqp_port=int(container.ports["5672/tcp"][0]["HostPort"]),
            api_port=int(container.ports["15672/tcp"][0]["HostPort"]),
        )
        wait_for(lambda: _answers(broker), bool, timeout=timeout, interval=0.5)
        yield broker
    finally:
        container.remove(force=True)


def _answers(broker: RabbitMQ) -> bool:
    try:
        status, _ = broker.api("GET", "/api/overview")
    except (OSError, ValueError):
        return False
    return status == 200
