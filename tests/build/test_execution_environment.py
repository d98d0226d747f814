"""The execution environment (meta/execution-environment.yml): ansible-builder makes a
build context from it, its introspection finds the collection's dependencies in the
built collection, and its lists hold everything the collection's code uses."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
META = REPO_ROOT / "meta"
INTROSPECT = Path(__import__("ansible_builder").__file__).parent / "_target_scripts" / "introspect.py"
# Import name -> the distribution that provides it, where the two differ.
# Configures AWX/AAP from an admin's machine (needs awx.awx there); never runs in the
# execution environment.
AWX_CONFIGURATION = {"awx_configure.yml"}
DISTRIBUTIONS = {"psycopg2": "psycopg2-binary", "prometheus_client": "prometheus-client"}


def requirement_names(path: Path) -> set[str]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return {re.split(r"[<>=!~ \[]", line)[0].lower() for line in lines if line}


def third_party_imports() -> set[str]:
    """Top-level modules the collection's plugins import, outside the standard library and Ansible."""
    found = set()
    for path in (REPO_ROOT / "plugins").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"ansible", "ansible_collections"}


def collections_used() -> set[str]:
    """namespace.collection of every module (a task's key), filter, test and lookup
    named by its fully qualified name in the playbooks and roles."""
    name = r"([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)\.[a-z][a-z0-9_]*"
    patterns = [
        re.compile(rf"^\s*(?:- )?{name}:", re.MULTILINE),  # a module
        re.compile(rf"(?:\||\bis|\bnot)\s+{name}\b"),  # a filter or a test
        re.compile(rf"(?:lookup|query)\(\s*['\"]{name}['\"]"),  # a lookup
    ]
    used = set()
    for folder in ("playbooks", "roles"):
        for path in (REPO_ROOT / folder).rglob("*.yml"):
            if path.name in AWX_CONFIGURATION:
                continue
            text = path.read_text()
            used.update(f"{ns}.{coll}" for pattern in patterns for ns, coll in pattern.findall(text))
    return used


@pytest.fixture(scope="module")
def definition():
    return yaml.safe_load((META / "execution-environment.yml").read_text())


def test_create_makes_a_build_context_with_the_dependencies(tmp_path, definition):
    context = tmp_path / "context"
    subprocess.run(
        [BIN / "ansible-builder", "create", "-f", META / "execution-environment.yml", "-c", context],
        check=True,
        capture_output=True,
    )
    build = context / "_build"
    # Real files (ansible-builder copies links as links, which a build could not follow).
    for name in ("requirements.txt", "bindep.txt", "requirements.yml"):
        assert (build / name).is_file() and not (build / name).is_symlink(), name
        assert (build / name).read_text() == (META / name).read_text()
    (containerfile,) = [path for path in context.iterdir() if path.name in ("Containerfile", "Dockerfile")]
    text = containerfile.read_text()
    assert f'ARG EE_BASE_IMAGE="{definition["images"]["base_image"]["name"]}"' in text
    assert "--user-pip=requirements.txt --user-bindep=bindep.txt" in text
    assert "ansible-galaxy collection install" in text and "-r requirements.yml" in text
    assert "ansible-core>=2.19,<2.20" in text


def test_introspection_finds_the_dependencies_of_the_built_collection(tmp_path):
    """What ansible-builder reads when incident.remediation is installed in any execution
    environment: meta/execution-environment.yml, paths relative to the collection root."""
    subprocess.run(
        [BIN / "ansible-galaxy", "collection", "build", "--output-path", tmp_path, REPO_ROOT],
        check=True,
        capture_output=True,
    )
    (tarball,) = tmp_path.glob("incident-remediation-*.tar.gz")
    installed = tmp_path / "collections"
    install = [BIN / "ansible-galaxy", "collection", "install", "--force", "--offline", "--no-deps"]
    subprocess.run([*install, "-p", installed, tarball], check=True, capture_output=True)
    found = subprocess.run(
        [sys.executable, INTROSPECT, "introspect", installed], check=True, capture_output=True, text=True
    )
    report = yaml.safe_load(found.stdout)
    python = {re.split(r"[<>=]", line)[0] for line in report["python"]}
    system = {line.split(" ")[0] for line in report["system"]}
    assert python == requirement_names(META / "requirements.txt")
    assert system == requirement_names(META / "bindep.txt")


def test_python_requirements_cover_every_import_of_the_plugins():
    needed = {DISTRIBUTIONS.get(name, name) for name in third_party_imports()}
    assert needed, "the plugins import no third-party package: the scan is broken"
    assert needed <= requirement_names(META / "requirements.txt")


def test_collections_are_galaxy_dependencies_and_cover_what_the_code_uses():
    galaxy = yaml.safe_load((REPO_ROOT / "galaxy.yml").read_text())
    listed = {item["name"] for item in yaml.safe_load((META / "requirements.yml").read_text())["collections"]}
    assert listed == set(galaxy["dependencies"]) | {"incident.remediation"}
    used = collections_used() - {"ansible.builtin", "incident.remediation"}
    assert "community.docker" in used, "the scan for fully qualified names is broken"
    assert used <= listed, f"used but not in meta/requirements.yml: {sorted(used - listed)}"
