"""Unit tests for plugins/filter/alert_strings.py: an alert written as AWX/AAP writes
launch-time extra variables (every string tagged !unsafe), read by ansible-core's own
YAML loader, comes back with the strings Alertmanager sent."""

import pytest
from ansible.parsing.yaml.loader import AnsibleLoader
from ansible_collections.incident.remediation.plugins.filter import alert_strings as plugin
from ansible_collections.incident.remediation.plugins.filter.alert_strings import alert_strings


def as_awx_writes(labels, fingerprint):
    """YAML with every key and string tagged !unsafe (AWX's safe_dump), as ansible-core reads it."""
    lines = ["labels:"] + [f"  !unsafe '{name}': !unsafe '{value}'" for name, value in labels.items()]
    lines.append(f"fingerprint: !unsafe '{fingerprint}'")
    return AnsibleLoader("\n".join(lines)).get_single_data()


# Label values the round trip gives back exactly.
EXACT = {"flag": "true", "down": "false", "port": "6379", "day": "2026-11-22", "empty": "", "name": "redis"}


def test_the_loader_still_types_tagged_strings():
    """The reason for the filter: if ansible-core stops typing !unsafe strings, it can go."""
    alert = as_awx_writes(EXACT, "1234567890123456")
    assert alert["labels"]["flag"] is True and alert["labels"]["port"] == 6379
    assert alert["fingerprint"] == 1234567890123456


def test_values_names_and_fingerprint_come_back_as_sent():
    alert = alert_strings(as_awx_writes({**EXACT, "true": "x"}, "1234567890123456"))
    assert alert["labels"] == {**EXACT, "true": "x"}
    assert alert["fingerprint"] == "1234567890123456"
    assert all(isinstance(value, str) for value in alert["labels"].values())


@pytest.mark.parametrize(
    ("sent", "normal"),
    [("yes", "true"), ("True", "true"), ("null", ""), ("~", ""), ("0x1f", "31"), ("1_000", "1000"), ("1.50", "1.5")],
)
def test_spellings_yaml_reads_alike_come_back_in_normal_form(sent, normal):
    assert alert_strings(as_awx_writes({"value": sent}, "ab"))["labels"]["value"] == normal


def test_annotations_and_other_fields():
    alert = {"annotations": {"summary": 3, "runbook": "https://x"}, "status": "firing", "startsAt": "2026-11-22"}
    assert alert_strings(alert) == {**alert, "annotations": {"summary": "3", "runbook": "https://x"}}


@pytest.mark.parametrize("value", [None, "text", ["a"], {"labels": ["not", "a", "mapping"]}, {"labels": {"a": ["b"]}}])
def test_leaves_what_the_contract_rejects(value):
    assert alert_strings(value) == value


def test_registered():
    assert plugin.FilterModule().filters()["alert_strings"] is alert_strings
