"""compose_snapshot against a real compose project: a service scaled to two containers,
one of them stopped, a recorded image history, and a service that has no container."""

import json
import shutil
import subprocess
import uuid

import pytest

from tests.harness import ansible

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def scaled_redis(tmp_path_factory):
    """The test Redis image scaled to two containers (no published port), the second stopped."""
    folder = tmp_path_factory.mktemp("snapshot")
    (folder / "compose.yaml").write_text("services:\n  redis:\n    image: incident-remediation/redis:latest\n")
    name = f"ir-test-snapshot-{uuid.uuid4().hex[:8]}"
    compose = ["docker", "compose", "--project-name", name, "--project-directory", str(folder)]
    try:
        subprocess.run(
            [*compose, "up", "-d", "--wait", "--scale", "redis=2", "redis"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        subprocess.run(["docker", "stop", f"{name}-redis-2"], check=True, capture_output=True, timeout=60)
        history = folder / ".incident-remediation" / "redis.images.json"
        history.parent.mkdir()
        history.write_text(
            json.dumps(
                [
                    {
                        "image": "incident-remediation/redis:latest",
                        "image_id": "sha256:1",
                        "recorded_at": "2026-12-01T00:00:00Z",
                        "deployed_at": "2026-11-30T00:00:00Z",
                    }
                ]
            )
        )
        yield {"folder": folder, "name": name, "history": history}
    finally:
        subprocess.run([*compose, "down", "--timeout", "1"], capture_output=True, timeout=120, check=False)
        shutil.rmtree(folder, ignore_errors=True)


def snapshot(tmp_path, check: bool = False, **args) -> dict:
    playbook = tmp_path / "snapshot.yml"
    out = tmp_path / "snapshot.json"
    playbook.write_text(
        f"""
- hosts: localhost
  gather_facts: false
  tasks:
    - incident.remediation.compose_snapshot: {json.dumps(args)}
      register: found
    - ansible.builtin.copy:
        content: "{{{{ found | to_json }}}}"
        dest: {out}
        mode: "0600"
      check_mode: false
"""
    )
    run = ansible.run_playbook(playbook, {}, check=check, timeout=120)
    assert run.returncode == 0, run.stdout[-3000:]
    return json.loads(out.read_text())


def test_two_containers_one_stopped(tmp_path, scaled_redis):
    found = snapshot(
        tmp_path, project=scaled_redis["name"], service="redis", log_lines=5, history_file=str(scaled_redis["history"])
    )
    status = found["status"]
    assert (status["platform"], status["project"], status["service"]) == ("compose", scaled_redis["name"], "redis")
    assert status["state"] == "stopped"  # the worst of running and stopped
    assert (status["replicas_desired"], status["replicas_ready"]) == (2, 1)
    assert [i["state"] for i in status["instances"]] == ["running", "stopped"]
    assert (status["revision"], status["last_rollout_time"]) == (1, "2026-11-30T00:00:00Z")
    assert found["containers"] == [f"{scaled_redis['name']}-redis-1", f"{scaled_redis['name']}-redis-2"]
    # Log lines of both containers, each named; usage only for the running one.
    assert f"{scaled_redis['name']}-redis-1  | " in found["logs"]
    assert f"{scaled_redis['name']}-redis-2  | " in found["logs"]
    assert "Ready to accept connections" in found["logs"]
    (usage,) = found["resources"]["containers"]
    assert usage["name"] == f"{scaled_redis['name']}-redis-1"
    assert usage["memory_bytes"] > 0 and usage["pids"] >= 1
    assert found["changed"] is False


def test_check_mode_reads_the_same(tmp_path, scaled_redis):
    found = snapshot(tmp_path, check=True, project=scaled_redis["name"], service="redis", log_lines=0, resources=False)
    assert found["status"]["replicas_desired"] == 2
    assert found["logs"] == ""
    assert found["resources"]["containers"] == []


def test_a_service_without_a_container_is_missing_not_an_error(tmp_path, scaled_redis):
    found = snapshot(tmp_path, project=scaled_redis["name"], service="nothing-here")
    assert found["status"]["state"] == "missing"
    assert found["containers"] == []
    assert found["resources"]["note"] == "the service has no container"
