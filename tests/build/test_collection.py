"""The built collection: exactly the expected files, and documentation that renders."""

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
MANIFEST = REPO_ROOT / "tests" / "build" / "manifest.txt"
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def tarball(tmp_path_factory):
    out = tmp_path_factory.mktemp("build")
    subprocess.run(
        [BIN / "ansible-galaxy", "collection", "build", "--output-path", out, REPO_ROOT],
        check=True,
        capture_output=True,
        cwd=REPO_ROOT,
    )
    (path,) = out.glob("incident-remediation-*.tar.gz")
    return path


def test_tarball_holds_exactly_the_manifest(tarball):
    with tarfile.open(tarball) as archive:
        shipped = sorted(member.name for member in archive.getmembers() if member.isfile())
    expected = [line for line in MANIFEST.read_text().splitlines() if line and not line.startswith("#")]
    unexpected = sorted(set(shipped) - set(expected))
    missing = sorted(set(expected) - set(shipped))
    assert not unexpected and not missing, (
        f"update tests/build/manifest.txt if intended.\nunexpected: {unexpected}\nmissing: {missing}"
    )


def test_manifest_names_the_collection_and_its_dependencies(tarball):
    with tarfile.open(tarball) as archive:
        manifest = json.load(archive.extractfile("MANIFEST.json"))
    info = manifest["collection_info"]
    assert (info["namespace"], info["name"]) == ("incident", "remediation")
    assert set(info["dependencies"]) == {
        "community.docker",
        "community.postgresql",
        "community.general",
        "kubernetes.core",
        "community.crypto",
    }


def plugins(kind):
    folder = REPO_ROOT / "plugins" / kind
    return sorted(path.stem for path in folder.glob("*.py") if path.stem != "__init__")


@pytest.mark.parametrize(("kind", "folder"), [("module", "modules"), ("filter", "filter")])
def test_every_plugin_documentation_renders(kind, folder):
    names = [f"incident.remediation.{name}" for name in plugins(folder)]
    assert names
    run = subprocess.run(
        [BIN / "ansible-doc", "-t", kind, "--json", *names], capture_output=True, text=True, cwd=REPO_ROOT, check=False
    )
    assert run.returncode == 0, run.stderr
    docs = json.loads(run.stdout)
    for name in names:
        doc = docs[name]["doc"]
        assert doc["short_description"], name
        assert doc.get("options") is not None, name
        if kind == "module":
            assert docs[name]["examples"].strip(), name
            assert docs[name]["return"], name


def test_every_action_plugin_has_a_documented_module():
    assert set(plugins("action")) <= set(plugins("modules"))
