"""routes/routes.yml: well-formed, safe label mappings, playbooks that exist,
and a route for every alert of the playbooks shipped so far."""

import re
from pathlib import Path

import pytest
import yaml

COLLECTION = Path(__file__).resolve().parents[2]
ROUTES = yaml.safe_load((COLLECTION / "routes" / "routes.yml").read_text())["routes"]

# routes/catalog.yml (shared/alert-catalog.md), the rows whose playbooks exist.
CATALOG = {
    playbook: set(names)
    for playbook, names in yaml.safe_load((COLLECTION / "routes" / "catalog.yml").read_text())["playbooks"].items()
    if (COLLECTION / "playbooks" / f"{playbook}.yml").is_file()
}
SEVERITIES = {"critical", "warning", "info"}
MODES = {"auto", "dry_run", "approve", "notify_only"}
PLATFORMS = {"compose", "kubernetes", "systemd"}
# The same paths as the adapter's remediate.routes.NEVER_FROM_LABELS (this test ships without the adapter).
NEVER_FROM_LABELS = {"project_src", "mount", "certificate.file", "database.password_var"}


def target_fields(target, prefix=""):
    """(dotted name, mapping) for every leaf of a route's target."""
    for name, spec in target.items():
        if "value" in spec or "label" in spec:
            yield prefix + name, spec
        else:
            yield from target_fields(spec, prefix + name + ".")


@pytest.mark.parametrize("playbook", sorted(CATALOG))
def test_every_catalog_alert_has_a_route(playbook):
    routed = {route["alertname"] for route in ROUTES if route["playbook"] == f"incident.remediation.{playbook}"}
    assert CATALOG[playbook] <= routed


@pytest.mark.parametrize("route", ROUTES, ids=lambda route: route["alertname"])
def test_route_is_well_formed(route):
    assert set(route) <= {
        "name",
        "alertname",
        "matchers",
        "playbook",
        "severity",
        "mode",
        "target",
        "vars",
        "thresholds",
        "safety",
        "executor",
        "job_template",
        "runbook",
    }
    namespace, name, playbook = route["playbook"].split(".")
    assert (namespace, name) == ("incident", "remediation")
    assert (COLLECTION / "playbooks" / f"{playbook}.yml").is_file()
    assert route["severity"] in SEVERITIES
    assert route["mode"] in MODES
    assert route["target"]["platform"]["value"] in PLATFORMS


@pytest.mark.parametrize("route", ROUTES, ids=lambda route: route["alertname"])
def test_label_mappings_are_checked(route):
    for name, spec in target_fields(route["target"]):
        assert ("value" in spec) != ("label" in spec), name
        if "label" in spec:
            assert name not in NEVER_FROM_LABELS, f"{name} must never come from a label"
            assert "pattern" in spec or "allow" in spec, f"{name} takes a label without a check"
            if "pattern" in spec:
                pattern = re.compile(spec["pattern"])
                for hostile in ("a; rm -rf /", "$(id)", "{{ 7*7 }}", "../x", "a\nb", "a b"):
                    assert not pattern.fullmatch(hostile), (name, hostile)
                if "default" in spec:
                    assert pattern.fullmatch(str(spec["default"])), name
