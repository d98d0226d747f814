"""The event filter incident.remediation.alertmanager_alerts, loaded as ansible-rulebook loads it (runpy)."""

import logging
import runpy
from pathlib import Path

import pytest

COLLECTION = Path(__file__).resolve().parents[6]
FILTER = runpy.run_path(str(COLLECTION / "extensions" / "eda" / "plugins" / "event_filter" / "alertmanager_alerts.py"))
LOGGER = "incident.remediation.alertmanager_alerts"
CANARY = "{{ lookup('ansible.builtin.pipe', 'touch /tmp/canary') }}"


def alert(name="RedisDown", **fields) -> dict:
    return {
        "status": "firing",
        "labels": {"alertname": name, "service": "redis"},
        "annotations": {"summary": "Redis is down"},
        "startsAt": "2026-11-22T03:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph",
        "fingerprint": "c0ffee0123456789",
        **fields,
    }


def received(*alerts, endpoint="alertmanager") -> dict:
    """What eda.builtin.webhook puts on the queue for an Alertmanager notification."""
    payload = {
        "version": "4",
        "receiver": "eda",
        "status": "firing",
        "alerts": list(alerts),
        "groupLabels": {"alertname": "RedisDown"},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "groupKey": '{}:{alertname="RedisDown"}',
        "truncatedAlerts": 0,
    }
    return {"payload": payload, "meta": {"endpoint": endpoint, "headers": {"User-Agent": "Alertmanager/0.25.0"}}}


def test_one_event_per_alert_shaped_as_ansible_eda_alertmanager_shapes_them():
    first, second = alert(), alert("RedisConnectionFailure", fingerprint="0123456789abcdef")
    events = FILTER["main"](received(first, second))
    assert events == [
        {"alert": first, "meta": {"endpoint": "alertmanager"}},
        {"alert": second, "meta": {"endpoint": "alertmanager"}},
    ]


def test_an_alert_without_fingerprint_gets_one_from_its_labels():
    bare = {"status": "firing", "labels": {"alertname": "RedisDown", "service": "redis"}}
    (event,) = FILTER["main"](received(bare))
    (again,) = FILTER["main"](received({**bare, "labels": {"service": "redis", "alertname": "RedisDown"}}))
    assert event["alert"]["fingerprint"] == again["alert"]["fingerprint"]
    assert len(event["alert"]["fingerprint"]) == 16
    (other,) = FILTER["main"](received({**bare, "labels": {"alertname": "RedisDown", "service": "cache"}}))
    assert other["alert"]["fingerprint"] != event["alert"]["fingerprint"]


@pytest.mark.parametrize(
    ("hostile", "field"),
    [
        ({"labels": {"alertname": "RedisDown", "service": CANARY}}, "event.alert.labels.service"),
        ({"annotations": {"summary": "{% if true %}x{% endif %}"}}, "event.alert.annotations.summary"),
        ({"annotations": {"summary": "a {# comment #}"}}, "event.alert.annotations.summary"),
        ({"annotations": {"how": "#jinja2:variable_start_string:'[['\n[[ 7 ]]"}}, "event.alert.annotations.how"),
        ({"annotations": {"runbook": "#JINJA2:trim_blocks:True"}}, "event.alert.annotations.runbook"),
        ({"labels": {"alertname": "RedisDown", "{{ x }}": "1"}}, "event.alert.labels.{{ x }}"),
        ({"generatorURL": "http://x/{{ y }}"}, "event.alert.generatorURL"),
        ({"extra": {"deep": [{"deeper": CANARY}]}}, "event.alert.extra.deep[0].deeper"),
    ],
)
def test_an_alert_with_a_template_marker_anywhere_is_dropped_and_logged(caplog, hostile, field):
    caplog.set_level(logging.ERROR, logger=LOGGER)
    events = FILTER["main"](received(alert(**hostile), alert("RedisConnectionFailure", fingerprint="abc")))
    assert [event["alert"]["labels"]["alertname"] for event in events] == ["RedisConnectionFailure"]
    (record,) = caplog.records
    assert record.levelno == logging.ERROR and record.name == LOGGER
    message = record.getMessage()
    assert message.startswith('dropped alert "RedisDown" (fingerprint "c0ffee0123456789"): ')
    assert f'"{field}"' in message.replace('\\"', '"')
    assert message.endswith("nothing runs for it")


def test_a_reserved_key_is_dropped(caplog):
    caplog.set_level(logging.ERROR, logger=LOGGER)
    assert FILTER["main"](received(alert(annotations={"__ansible_unsafe": "x"}))) == []
    assert "starts with __ (reserved)" in caplog.text


def test_a_template_in_the_endpoint_drops_every_alert_of_the_request(caplog):
    caplog.set_level(logging.ERROR, logger=LOGGER)
    assert FILTER["main"](received(alert(), endpoint="{{ 7*7 }}")) == []
    assert '"event.meta.endpoint" holds the template marker' in caplog.text


def test_headers_and_hosts_are_not_passed_on():
    (event,) = FILTER["main"](received(alert(labels={"alertname": "RedisDown", "instance": "db1:9121"})))
    assert event["meta"] == {"endpoint": "alertmanager"}


@pytest.mark.parametrize(
    "body", [{"payload": {"alerts": "x"}}, {"payload": ["x"]}, {"payload": None}, {"meta": {}}, {"payload": {}}]
)
def test_what_is_not_an_alertmanager_notification_yields_nothing(caplog, body):
    caplog.set_level(logging.ERROR, logger=LOGGER)
    assert FILTER["main"](body) == []
    assert "not Alertmanager's" in caplog.text


def test_an_alert_without_string_labels_or_annotations_is_dropped(caplog):
    caplog.set_level(logging.ERROR, logger=LOGGER)
    odd = [
        {"status": "firing"},
        "x",
        alert(labels={"alertname": "RedisDown", "port": 6379}),
        alert(annotations={"summary": ["a", "b"]}),
        alert(annotations="text"),
    ]
    assert FILTER["main"](received(*odd, alert())) == [{"alert": alert(), "meta": {"endpoint": "alertmanager"}}]
    assert caplog.text.count("labels are not a mapping of names to strings") == 3
    assert caplog.text.count('dropped alert "RedisDown": its annotations are not a mapping') == 2


def test_documentation_is_yaml_with_the_usual_keys():
    import yaml  # noqa: PLC0415

    documentation = yaml.safe_load(FILTER["DOCUMENTATION"])
    assert {"short_description", "description", "options", "author"} <= set(documentation)
    assert yaml.safe_load(FILTER["EXAMPLES"])[0]["sources"][0]["filters"] == [
        {"incident.remediation.alertmanager_alerts": None}
    ]
