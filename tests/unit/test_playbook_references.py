"""Every playbook that something names exists: the routes, the AWX/AAP job templates
(playbooks/vars/awx_configure.yml) and the Event-Driven Ansible rulebooks; and every
playbook a route can run has a job template and a rule in both rulebooks."""

from pathlib import Path

import pytest
import yaml

COLLECTION = Path(__file__).resolve().parents[2]
PREFIX = "incident.remediation."


class AnsibleYaml(yaml.SafeLoader):
    """YAML as Ansible writes it: `!unsafe` strings."""


AnsibleYaml.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))
RULEBOOKS = sorted((COLLECTION / "extensions" / "eda" / "rulebooks").glob("*.yml"))


def playbook_file(name: str) -> Path:
    """playbooks/<short name>.yml of a fully qualified playbook name."""
    assert name.startswith(PREFIX), f"{name} is not one of the collection's playbooks"
    return COLLECTION / "playbooks" / f"{name.removeprefix(PREFIX)}.yml"


def routed() -> set[str]:
    routes = yaml.safe_load((COLLECTION / "routes" / "routes.yml").read_text())["routes"]
    return {route["playbook"] for route in routes}


def job_templates() -> set[str]:
    settings = yaml.load((COLLECTION / "playbooks" / "vars" / "awx_configure.yml").read_text(), AnsibleYaml)
    return {PREFIX + entry["playbook"] for entry in settings["awx_playbooks"]}


def rulebook_playbooks(path: Path) -> set[str]:
    named = set()
    for ruleset in yaml.safe_load(path.read_text()):
        for rule in ruleset["rules"]:
            for action in rule.get("actions", [rule.get("action")]):
                for kind in ("run_playbook", "run_job_template"):
                    if kind in action:
                        named.add(action[kind]["name"])
    return named


def test_the_lists_are_not_empty():
    assert routed() and job_templates() and len(RULEBOOKS) == 2
    assert all(rulebook_playbooks(path) for path in RULEBOOKS)


@pytest.mark.parametrize(
    ("source", "names"),
    [("routes/routes.yml", routed()), ("playbooks/vars/awx_configure.yml", job_templates())]
    + [(str(path.relative_to(COLLECTION)), rulebook_playbooks(path)) for path in RULEBOOKS],
)
def test_every_named_playbook_exists(source, names):
    missing = sorted(name for name in names if not playbook_file(name).is_file())
    assert not missing, f"{source} names playbooks that do not exist: {missing}"


def test_every_runnable_playbook_has_a_job_template():
    runnable = {PREFIX + path.stem for path in (COLLECTION / "playbooks").glob("*.yml")} - {PREFIX + "awx_configure"}
    assert job_templates() == runnable
    assert routed() <= job_templates()


@pytest.mark.parametrize("rulebook", RULEBOOKS, ids=lambda path: path.name)
def test_every_routed_playbook_has_a_rule(rulebook):
    assert routed() <= rulebook_playbooks(rulebook)
