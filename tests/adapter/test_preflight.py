"""An adapter that cannot fail silently: `remediate serve` started the way a systemd
unit starts it (absolute path, bare PATH, cwd /) finds ansible-playbook beside its
own interpreter; started where it could not run a playbook it refuses, naming what
is missing; and its defaults work for an installed collection, not only a checkout."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness.adapter import REMEDIATE, TEST_COLLECTIONS, alert, record_route, write_settings
from tests.harness.ansible import REPO_ROOT

pytestmark = pytest.mark.integration

BARE = {"HOME": "/root", "PATH": "/usr/bin:/bin"}
BIN = Path(sys.executable).parent


def test_serve_with_a_bare_path_runs_playbooks(tmp_path):
    server = write_settings(tmp_path / "adapter", [record_route()])
    server.start(env=BARE, cwd=Path("/"))
    try:
        server.fire([alert(service="svc-1")])
        (run,) = server.wait_runs_final()
        assert (run["state"], run["result"]) == ("successful", "healed"), run
        assert server.records() == {"svc-1": 1}
    finally:
        server.stop()


def test_serve_refuses_to_start_naming_everything_that_is_missing(tmp_path):
    routes = [record_route(), {**record_route("Other"), "playbook": "adapter_test.playbooks.missing"}]
    server = write_settings(
        tmp_path / "adapter",
        routes,
        state_dir="/dev/null/state",
        executor={
            "collections_path": str(TEST_COLLECTIONS),
            "inventory": str(tmp_path / "no-such-inventory"),
            "ansible_playbook": str(tmp_path / "no-such-ansible-playbook"),
        },
    )
    refused = server.cli("serve", "--port", str(server.port), timeout=120)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    lines = refused.stderr.splitlines()
    assert lines[0] == "remediate serve: cannot run playbooks, refusing to start:"
    assert lines[1:] == [
        f"  - ansible-playbook ({tmp_path}/no-such-ansible-playbook) does not run: FileNotFoundError:"
        f" [Errno 2] No such file or directory: '{tmp_path}/no-such-ansible-playbook'",
        f"  - the collection incident.remediation is not on the collections path ({TEST_COLLECTIONS});"
        " install it or set executor.collections_path",
        f"  - playbook adapter_test.playbooks.missing is not on the collections path ({TEST_COLLECTIONS})",
        f"  - playbook incident.remediation.notify is not on the collections path ({TEST_COLLECTIONS})",
        "  - escalation_policy_file is not set and there is no collection to take the notify role's policy from",
        f"  - the inventory {tmp_path}/no-such-inventory is not readable",
        "  - /dev/null/state is not writable",
    ]
    assert not (tmp_path / "adapter" / "remediate.db").exists(), "nothing was started"

    checked = server.cli("check")
    assert checked.returncode == 1
    assert checked.stderr.splitlines() == ["remediate check: cannot run playbooks:", *lines[1:]]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"playbook": "adapter_test.playbooks.gone"}, "playbook adapter_test.playbooks.gone is not on the"),
        ({"executor": {"inventory": "/nonexistent/inventory"}}, "the inventory /nonexistent/inventory is not readable"),
    ],
)
def test_each_missing_piece_alone_refuses_the_start(tmp_path, change, message):
    route = {**record_route(), **{key: value for key, value in change.items() if key == "playbook"}}
    overrides = {key: value for key, value in change.items() if key != "playbook"}
    server = write_settings(tmp_path / "adapter", [route], **overrides)
    refused = server.cli("serve", "--port", str(server.port), timeout=120)
    assert refused.returncode == 2
    (problem,) = [line for line in refused.stderr.splitlines() if line.startswith("  - ")]
    assert message in problem


def test_the_defaults_work_for_an_installed_collection(tmp_path):
    built = tmp_path / "built"
    subprocess.run(
        [BIN / "ansible-galaxy", "collection", "build", "--output-path", built, REPO_ROOT],
        check=True,
        capture_output=True,
        cwd=REPO_ROOT,
    )
    (tarball,) = built.glob("incident-remediation-*.tar.gz")
    installed = tmp_path / "collections"
    subprocess.run(
        [BIN / "ansible-galaxy", "collection", "install", "--offline", "--no-deps", "-p", installed, tarball],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    root = installed / "ansible_collections" / "incident" / "remediation"
    settings = tmp_path / "settings.yml"
    # Only where the collection is and where state goes: routes, policy, inventory from the collection.
    settings.write_text(
        f"store: sqlite:///{tmp_path}/remediate.db\nstate_dir: {tmp_path}/state\n"
        f"executor: {{collections_path: {installed}}}\n"
    )

    def remediate(*args):
        return subprocess.run(
            [str(REMEDIATE), "--config", str(settings), *args],
            capture_output=True,
            text=True,
            cwd="/",
            env=BARE,
            timeout=120,
            check=False,
        )

    checked = remediate("check")
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout == f"ok: ansible-playbook {BIN / 'ansible-playbook'}, collections {installed}\n"
    routes = remediate("routes", "--check")
    assert routes.returncode == 0, routes.stdout + routes.stderr
    assert routes.stdout.splitlines()[-1] == f"routes: ok ({root.resolve() / 'routes' / 'routes.yml'})"
