"""Unit tests of remediate.rulebook: the EDA rulebooks generated from the routes file.

The generated conditions are parsed by ansible-rulebook's own parser and evaluated
here over a grid of label sets, and the generated extra variables are rendered by
ansible-rulebook's own Jinja rendering; both must agree with the adapter's routing
(Route.matches, RouteTable.match, Route.resolve). The rule engine itself (Java) is
exercised by tests/integration/test_eda_rulebook.py.
"""

import itertools
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ansible_rulebook.condition_parser import parse_condition
from ansible_rulebook.condition_types import (
    Condition,
    Identifier,
    Integer,
    OperatorExpression,
    SearchType,
    String,
)
from ansible_rulebook.util import substitute_variables
from ansible_rulebook.validators import Validate
from remediate.alerts import Alert
from remediate.routes import Rejected, RouteError, load_routes, playbook_path
from remediate.rulebook import generate

from tests.harness.ansible import REPO_ROOT

REMEDIATE = Path(sys.executable).with_name("remediate")
CHECKED_IN = {"run_playbook": "alertmanager.yml", "run_job_template": "alertmanager_controller.yml"}
SERVICE = {"label": "service", "pattern": "svc-[a-z]+"}


def routes_file(tmp_path, routes: list[dict]) -> Path:
    path = tmp_path / "routes.yml"
    path.write_text(yaml.safe_dump({"version": 1, "routes": routes}))
    return path


def route(alertname="TestDown", **overrides) -> dict:
    return {
        "alertname": alertname,
        "playbook": "incident.remediation.redis_down",
        "severity": "warning",
        "mode": "auto",
        "target": {"platform": {"value": "compose"}, "service": SERVICE, "project_src": {"value": "/srv/app"}},
        **overrides,
    }


def rulebook(tmp_path, routes: list[dict], variant="run_playbook", **options) -> tuple[list[dict], str]:
    table = load_routes(routes_file(tmp_path, routes))
    text = generate(table, variant, routes_path="routes.yml", cooldown_minutes=options.pop("cooldown", 10), **options)
    document = yaml.safe_load(text)
    Validate.rulebook(document)
    return document[0]["rules"], text


# A small interpreter for the conditions the generator writes, on ansible-rulebook's parse tree.
def holds(node, event: dict) -> bool:
    if isinstance(node, Condition):
        return holds(node.value, event)
    assert isinstance(node, OperatorExpression), node
    if node.operator in ("and", "or"):
        combine = all if node.operator == "and" else any
        return combine(holds(side, event) for side in (node.left, node.right))
    return passes(node, event)


def passes(node: OperatorExpression, event: dict) -> bool:
    present, value = lookup(node.left, event)
    positive = node.operator in ("is", "==", "in")
    if node.right == String("defined"):
        return present == positive
    if not present:  # the rule engine: every other test on an absent attribute is false
        return False
    if isinstance(node.right, SearchType):
        assert node.right.kind == String("match") and node.right.pattern.value.endswith("\\z")
        return (re.search(node.right.pattern.value[:-2] + r"\Z", value) is not None) == positive
    if node.operator in ("in", "not in"):
        return (value in [item.value for item in node.right]) == positive
    assert isinstance(node.right, String | Integer), node.right
    return (value == node.right.value) == positive


def lookup(identifier: Identifier, event: dict) -> tuple[bool, object]:
    value = event
    for part in re.findall(r'\.(\w+)|\["([^"]*)"\]', identifier.value[len("event") :]):
        key = part[0] or part[1]
        if not isinstance(value, dict) or key not in value:
            return False, None
        value = value[key]
    return True, value


def firing(labels: dict, status="firing") -> dict:
    return {"alert": {"status": status, "labels": labels, "annotations": {}, "fingerprint": "ab12"}}


def rendered(rule: dict, event: dict) -> dict:
    """The action's extra vars as ansible-rulebook renders them for the event."""
    action = rule["action"]
    extra_vars = action["run_playbook"]["extra_vars"] if "run_playbook" in action else None
    extra_vars = extra_vars or action["run_job_template"]["job_args"]["extra_vars"]
    return substitute_variables(extra_vars, {"event": event})


@pytest.mark.parametrize("variant", sorted(CHECKED_IN))
def test_the_checked_in_rulebooks_are_what_the_routes_file_generates(variant):
    """Change routes/routes.yml, then: remediate rulebook --routes routes/routes.yml --variant VARIANT
    --output extensions/eda/rulebooks/FILE (docs/eda.md)."""
    generated = subprocess.run(
        [REMEDIATE, "rulebook", "--routes", "routes/routes.yml", "--variant", variant],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    checked_in = (REPO_ROOT / "extensions" / "eda" / "rulebooks" / CHECKED_IN[variant]).read_text()
    assert generated == checked_in, f"regenerate extensions/eda/rulebooks/{CHECKED_IN[variant]} (docs/eda.md)"
    document = yaml.safe_load(checked_in)
    Validate.rulebook(document)
    table = load_routes(REPO_ROOT / "routes" / "routes.yml")
    assert [rule["name"].split(":")[0] for rule in document[0]["rules"]] == [r.name for r in table.routes]


def test_every_playbook_a_rulebook_names_exists(tmp_path):
    (tmp_path / "ansible_collections" / "incident").mkdir(parents=True)
    (tmp_path / "ansible_collections" / "incident" / "remediation").symlink_to(REPO_ROOT)
    for name in CHECKED_IN.values():
        for rule in yaml.safe_load((REPO_ROOT / "extensions" / "eda" / "rulebooks" / name).read_text())[0]["rules"]:
            action = next(iter(rule["action"].values()))
            assert playbook_path(action["name"], [tmp_path]), action["name"]


def test_the_source_is_the_token_protected_webhook_with_the_collections_filter(tmp_path):
    _, text = rulebook(tmp_path, [route()])
    (source,) = yaml.safe_load(text)[0]["sources"]
    assert source["eda.builtin.webhook"] == {
        "host": "{{ webhook_host }}",
        "port": "{{ webhook_port }}",
        "token": "{{ webhook_token | string }}",
    }
    assert source["filters"] == [{"incident.remediation.alertmanager_alerts": {}}]


def test_conditions_and_extra_vars_follow_the_adapters_routing(tmp_path):
    """Every label set of a grid: the rule that fires (at most one) is the route the adapter
    picks, none fires when the adapter rejects the alert, and the rendered target and
    variables are the adapter's, types included."""
    routes = [
        route(name="prod-web", matchers={"env": "prod", "tier": {"regex": "web|api"}}, mode="approve"),
        route(
            name="zone-less",
            matchers={"zone": ""},
            target={
                "platform": {"value": "compose"},
                "host": {"label": "host", "allow": ["h1", "123"], "default": "h1"},
                "service": {"value": "fixed"},
                "project_src": {"value": "/srv/app"},
            },
            vars={"depth": {"label": "depth", "pattern": "[0-9]{1,3}", "type": "int", "default": 5}},
        ),
        route(
            name="catch-all",
            target={
                "platform": {"value": "compose"},
                "service": SERVICE,
                "project_src": {"value": "/srv/app"},
                "endpoint": {"port": {"label": "port", "pattern": "[0-9]{2,5}", "type": "int", "default": 6379}},
            },
            vars={"mode_name": {"label": "flavour", "allow": ["fast", "slow"], "default": "fast"}},
            thresholds={"verify_timeout": 5},
        ),
        route(name="never", mode="dry_run"),
        route("OtherDown", mode="notify_only"),
    ]
    rules, text = rulebook(tmp_path, routes)
    assert "# Left out, an earlier route takes all their alerts: never." in text
    table = load_routes(routes_file(tmp_path, routes))
    by_name = {rule["name"].split(":")[0]: rule for rule in rules}
    conditions = {name: parse_condition(rule["condition"]) for name, rule in by_name.items()}
    grid = {
        "alertname": ["TestDown", "OtherDown", "Else"],
        "env": [None, "prod", "dev"],
        "tier": [None, "web", "db"],
        "zone": [None, "", "z1"],
        "service": [None, "svc-a", "svc-1"],
        "host": [None, "h1", "123", "h3"],
        "port": [None, "7000", "x"],
        "flavour": [None, "slow", "odd"],
    }
    checked = 0
    for values in itertools.product(*grid.values()):
        labels = {name: value for name, value in zip(grid, values, strict=True) if value is not None}
        event = firing(labels)
        fired = [name for name, condition in conditions.items() if holds(condition, event)]
        chosen = table.match(labels)
        try:
            expected_target, expected_vars = chosen.resolve(labels) if chosen else (None, None)
        except Rejected:
            chosen = None
        assert fired == ([chosen.name] if chosen else []), labels
        if chosen:
            checked += 1
            extra_vars = rendered(by_name[chosen.name], event)
            assert extra_vars.pop("target") == expected_target, labels  # "123" stays a string, 7000 an int
            expected = {"severity": "warning", "dry_run": chosen.mode != "auto", **expected_vars}
            if chosen.mode == "notify_only":
                expected = {"severity": "warning", "dry_run": False, "notify_reason": "notify_only"}
            if chosen.thresholds:
                expected["thresholds"] = chosen.thresholds
            assert extra_vars == expected, labels
    assert checked > 100
    assert not any(holds(condition, firing({"alertname": "TestDown"}, "resolved")) for condition in conditions.values())


def test_modes(tmp_path):
    modes = ["auto", "dry_run", "approve", "notify_only"]
    routes = [route(f"Alert{index}", mode=mode) for index, mode in enumerate(modes)]
    rules, _ = rulebook(tmp_path, routes)
    actions = [rule["action"]["run_playbook"] for rule in rules]
    assert [action["name"] for action in actions] == ["incident.remediation.redis_down"] * 3 + [
        "incident.remediation.notify"
    ]
    assert [action["extra_vars"]["dry_run"] for action in actions] == [False, True, True, False]
    assert actions[3]["extra_vars"]["notify_reason"] == "notify_only"
    rules, _ = rulebook(tmp_path, routes, dry_run=True)
    assert [rule["action"]["run_playbook"]["extra_vars"]["dry_run"] for rule in rules] == [True, True, True, False]


def test_the_job_template_variant_launches_the_template_named_after_the_playbook(tmp_path):
    rules, text = rulebook(tmp_path, [route(), route("OtherDown", mode="notify_only")], "run_job_template")
    assert "controller_organization" in text
    launches = [rule["action"]["run_job_template"] for rule in rules]
    assert [(launch["name"], launch["organization"]) for launch in launches] == [
        ("incident.remediation.redis_down", "{{ controller_organization }}"),
        ("incident.remediation.notify", "{{ controller_organization }}"),
    ]
    extra_vars = rendered(rules[0], firing({"alertname": "TestDown", "service": "svc-a"}))
    assert extra_vars == {
        "target": {"platform": "compose", "service": "svc-a", "project_src": "/srv/app"},
        "severity": "warning",
        "dry_run": False,
    }
    (rule,), _ = rulebook(tmp_path, [route(job_template="Redis down (prod)")], "run_job_template")
    assert rule["action"]["run_job_template"]["name"] == "Redis down (prod)"
    with pytest.raises(RouteError, match="launches a job template by its name"):
        rulebook(tmp_path, [route(job_template=42)], "run_job_template")


@pytest.mark.parametrize(
    ("safety", "cooldown", "window"),
    [({}, 10, "10 minutes"), ({"cooldown_minutes": 2.5}, 10, "150 seconds"), ({}, 0, "1 minute")],
)
def test_each_rule_is_throttled_per_fingerprint_for_the_cooldown(tmp_path, safety, cooldown, window):
    (rule,), _ = rulebook(tmp_path, [route(safety=safety)], cooldown=cooldown)
    assert rule["throttle"] == {"once_within": window, "group_by_attributes": ["event.alert.fingerprint"]}


def test_a_fixed_target_is_plain_yaml(tmp_path):
    fixed = {"platform": {"value": "compose"}, "service": {"value": "redis"}, "project_src": {"value": "/srv/app"}}
    (rule,), _ = rulebook(tmp_path, [route(target=fixed)])
    assert rule["action"]["run_playbook"]["extra_vars"]["target"] == {
        "platform": "compose",
        "service": "redis",
        "project_src": "/srv/app",
    }


def test_values_with_quotes_and_braces_survive(tmp_path):
    target = {
        "platform": {"value": "compose"},
        "service": {"label": "service", "allow": ['it"s', "b}}"]},
        "project_src": {"value": "/srv/a}}b"},
    }
    (rule,), _ = rulebook(tmp_path, [route(target=target, matchers={"team": "o'neil"})])
    event = firing({"alertname": "TestDown", "team": "o'neil", "service": 'it"s'})
    assert holds(parse_condition(rule["condition"]), event)
    assert rendered(rule, event)["target"] == {"platform": "compose", "service": 'it"s', "project_src": "/srv/a}}b"}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"matchers": {"team": {"regex": "(?P<x>a)"}}}, "means something else to the rule engine"),
        ({"matchers": {"team": {"regex": "(?i)a"}}}, "flags cannot be carried over"),
        ({"matchers": {"team": "a\"b'c"}}, "both quote characters"),
        ({"matchers": {"team": "a\\tb"}}, "backslash before t"),
        ({"vars": {"count": {"label": "count", "pattern": "[0-9]+"}}}, "would reach the playbook as a number"),
        ({"vars": {"flag": {"label": "flag", "allow": ["yes", "True"]}}}, "would reach the playbook as a number"),
    ],
)
def test_what_the_rule_engine_would_read_otherwise_is_refused(tmp_path, overrides, message):
    with pytest.raises(RouteError, match=message):
        rulebook(tmp_path, [route(**overrides)])


def test_labels_never_reach_paths(tmp_path):
    """The routes parser refuses a path from a label, so no rulebook can pass one."""
    bad = route(target={"platform": {"value": "compose"}, "project_src": {"label": "dir", "pattern": "/[a-z]+"}})
    result = subprocess.run(
        [REMEDIATE, "rulebook", "--routes", routes_file(tmp_path, [bad]), "--variant", "run_playbook"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "target.project_src must never come from a label" in result.stderr
    assert result.stdout == ""


def test_the_filter_derives_the_fingerprint_the_adapter_derives():
    plugin = REPO_ROOT / "extensions" / "eda" / "plugins" / "event_filter" / "alertmanager_alerts.py"
    labels = {"alertname": "RedisDown", "service": "redis", "host": "db1"}
    (event,) = runpy.run_path(str(plugin))["main"]({"payload": {"alerts": [{"labels": labels}]}, "meta": {}})
    assert event["alert"]["fingerprint"] == Alert(labels=labels).key()
