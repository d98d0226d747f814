"""The remediate image (images/remediate) deployed as docs/deploying.md says: settings
and token from mounted files, state in a volume, Docker's socket mounted; it heals a
stopped Redis of a compose project from a real Alertmanager payload."""

import json
import os
import subprocess
import uuid

import httpx
import pytest
import yaml

from tests.harness.adapter import Adapter, alert, free_port, redis_down_route, webhook
from tests.harness.ansible import wait_for
from tests.harness.deploy import IMAGE_UID, docker, remediate_image
from tests.harness.docker import TEST_LABELS, CacheApp, pings

pytestmark = pytest.mark.integration


@pytest.fixture
def cache_app(tmp_path):
    folder = tmp_path / "cache-app"
    folder.mkdir()
    with CacheApp(folder, "ir-test-deploy") as app:
        yield app


@pytest.fixture
def deployed(tmp_path, cache_app):
    """The image running against cache_app: its routes send RedisDown to redis_down for
    that project, whose folder is mounted at the same path; the container joins the
    project's network to reach Redis by its service name."""
    name = f"ir-test-deploy-{uuid.uuid4().hex[:8]}"
    config = tmp_path / "etc-remediate"
    config.mkdir()
    route = redis_down_route(cache_app.folder, cache_app.name, 6379, redis_host="redis")
    (config / "routes.yml").write_text(yaml.safe_dump({"version": 1, "routes": [route]}))
    # The image's defaults plus the routes file; no notification channel in the test.
    settings = {
        "listen_host": "0.0.0.0",
        "store": "sqlite:////var/lib/remediate/remediate.db",
        "state_dir": "/var/lib/remediate/runs",
        "incident_records_dir": "/var/lib/remediate/incidents",
        "routes_file": "/etc/remediate/routes.yml",
        "notify_required": False,
        "auth": {"bearer_token_file": "/run/secrets/remediate/token"},
    }
    (config / "settings.yml").write_text(yaml.safe_dump(settings))
    token = uuid.uuid4().hex
    secret = tmp_path / "token"
    secret.write_text(token + "\n")
    os.chown(secret, IMAGE_UID, -1)
    secret.chmod(0o400)
    port = free_port()
    socket_group = str(os.stat("/var/run/docker.sock").st_gid)
    labels = [arg for key, value in TEST_LABELS.items() for arg in ("--label", f"{key}={value}")]
    docker("volume", "create", *labels, name)
    try:
        docker(
            "run", "--detach", "--name", name, *labels,
            "--network", f"{cache_app.name}_default",
            "--publish", f"127.0.0.1:{port}:9787",
            "--volume", f"{config}:/etc/remediate:ro",
            "--volume", f"{secret}:/run/secrets/remediate/token:ro",
            "--volume", f"{name}:/var/lib/remediate",
            "--volume", f"{cache_app.folder}:{cache_app.folder}:ro",
            "--volume", "/var/run/docker.sock:/var/run/docker.sock",
            "--group-add", socket_group,
            # The image's health check, asked more often than its 10 s so the test waits less.
            "--health-interval", "2s",
            remediate_image(),
        )  # fmt: skip
        yield name, Adapter(config, config / "settings.yml", port, token, tmp_path / "records")
    finally:
        subprocess.run(["docker", "logs", name], check=False, timeout=60)  # shown by pytest on failure
        subprocess.run(["docker", "rm", "--force", name], capture_output=True, check=False, timeout=60)
        subprocess.run(["docker", "volume", "rm", name], capture_output=True, check=False, timeout=60)


def health(container: str) -> str:
    return docker("inspect", "--format", "{{.State.Health.Status}}", container)


def test_the_image_heals_a_stopped_redis_of_a_compose_project(deployed, cache_app):
    container, adapter = deployed
    assert wait_for(lambda: health(container), lambda status: status != "starting", timeout=90, interval=1) == (
        "healthy"
    )
    assert docker("exec", container, "id", "-u") == "10001"
    # The token comes from the mounted file: without it nothing is accepted.
    payload = webhook([alert("RedisDown", "redis", labels={"severity": "warning"})])
    assert httpx.post(f"{adapter.url}/api/v1/alertmanager", json=payload, timeout=10).status_code == 401

    docker("stop", cache_app.redis_container())
    assert not pings(cache_app.redis_port)
    response = adapter.post("/api/v1/alertmanager", payload)
    assert response.status_code == 200, response.text
    (decision,) = response.json()["decisions"]
    assert decision["decision"] == "accepted", decision

    runs = adapter.wait_runs_final(timeout=400)
    assert [(run["playbook"], run["state"], run["result"]) for run in runs] == [
        ("incident.remediation.redis_down", "successful", "healed")
    ]
    assert pings(cache_app.redis_port)
    # The incident is recorded in the state volume, by the playbook and by the adapter.
    incident = runs[0]["incident_id"]
    timeline = docker("exec", container, "cat", f"/var/lib/remediate/incidents/{incident}/timeline.jsonl")
    outcomes = [event for event in map(json.loads, timeline.splitlines()) if "outcome" in event]
    assert [(event["event"], event["outcome"]) for event in outcomes] == [("resolved", "healed")]
    assert "accepted" in [event["kind"] for event in adapter.timeline(incident)]
    assert health(container) == "healthy"
