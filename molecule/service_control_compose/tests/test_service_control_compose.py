"""Final state of the service_control_compose scenario, read from Docker and the
files the role keeps beside the project."""

import json
import os
from pathlib import Path

import yaml

PROJECT = f"{os.environ['IR_MOLECULE_RUN']}-service-control"
STATE = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "compose" / ".incident-remediation"


def inspect(host, service):
    ids = host.check_output(
        "docker ps -aq --filter label=com.docker.compose.project=%s --filter label=com.docker.compose.service=%s",
        PROJECT,
        service,
    ).split()
    return [json.loads(host.check_output("docker inspect %s", cid))[0] for cid in ids]


def test_one_app_container_runs_v2_with_the_remediations(host):
    (app,) = inspect(host, "app")
    assert app["State"]["Running"]
    assert app["Config"]["Labels"]["incident-remediation.release"] == "v2"
    assert "APP_RELEASE=remediated" in app["Config"]["Env"]
    assert app["HostConfig"]["Memory"] == 268435456
    assert app["HostConfig"]["NanoCpus"] == 500000000


def test_the_containers_were_created_with_the_override_file(host):
    (app,) = inspect(host, "app")
    files = app["Config"]["Labels"]["com.docker.compose.project.config_files"].split(",")
    assert files[0].endswith("/compose/compose.yaml")
    assert files[-1] == str(STATE / "override.yml")


def test_override_file_holds_env_and_limits_and_no_stale_image_pin():
    override = yaml.safe_load((STATE / "override.yml").read_text())
    assert override == {
        "services": {
            "app": {"environment": {"APP_RELEASE": "remediated"}, "mem_limit": 268435456, "cpus": 0.5},
        },
    }
    assert oct((STATE / "override.yml").stat().st_mode & 0o777) == "0o600"


def test_history_is_append_only_and_linked():
    history = json.loads((STATE / "app.images.json").read_text())
    assert [entry["source"] for entry in history] == ["observed", "observed", "rollback", "observed"]
    assert [entry["previous"] for entry in history] == [None, 0, None, 2]
    assert history[0]["image_id"] == history[2]["image_id"] != history[1]["image_id"] == history[3]["image_id"]
    for entry in history:
        assert set(entry) == {"image", "image_id", "recorded_at", "deployed_at", "previous", "source"}


def test_redis_was_left_alone(host):
    (redis,) = inspect(host, "redis")
    assert redis["State"]["Running"]
    assert redis["RestartCount"] == 0
