"""Unit tests of remediate.routes and remediate.alerts (no server)."""

import re

import pytest
import yaml
from remediate.alerts import Alert, contract_problem
from remediate.routes import Rejected, RouteError, load_routes, target_key

SERVICE = {"label": "service", "pattern": "[a-z0-9][a-z0-9-]{0,31}"}


def route(**overrides) -> dict:
    return {
        "alertname": "TestDown",
        "playbook": "adapter_test.playbooks.record",
        "severity": "warning",
        "mode": "auto",
        "target": {
            "platform": {"value": "compose"},
            "host": {"value": "localhost"},
            "service": SERVICE,
            "project_src": {"value": "/srv/test"},
        },
        **overrides,
    }


def target(**fields) -> dict:
    return {**route()["target"], **fields}


def write(tmp_path, document) -> object:
    path = tmp_path / "routes.yml"
    path.write_text(document if isinstance(document, str) else yaml.safe_dump(document))
    return path


def table(tmp_path, *routes):
    return load_routes(write(tmp_path, {"version": 1, "routes": list(routes)}))


def load_error(tmp_path, *routes) -> str:
    with pytest.raises(RouteError) as caught:
        table(tmp_path, *routes)
    return str(caught.value)


# load_routes: whole-file errors.
@pytest.mark.parametrize(
    "document",
    ["- just a list\n", "version: 2\nroutes: []\n", "version: 1\nroutes: {}\n", "version: 1\n"],
    ids=["not a mapping", "wrong version", "routes not a list", "no routes"],
)
def test_load_routes_refuses_a_bad_document(tmp_path, document):
    with pytest.raises(RouteError, match="expected a mapping with version: 1 and a routes list"):
        load_routes(write(tmp_path, document))


def test_load_routes_reports_unreadable_files(tmp_path):
    broken = write(tmp_path, "version: 1\nroutes: [unclosed\n")
    with pytest.raises(RouteError, match=re.escape(f"{broken}: ")):
        load_routes(broken)
    with pytest.raises(RouteError, match=re.escape(f"{tmp_path / 'missing.yml'}: ")):
        load_routes(tmp_path / "missing.yml")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("not a mapping", "a route must be a mapping"),
        (route(colour="red"), "unknown keys ['colour']"),
        ({k: v for k, v in route().items() if k != "playbook"}, "playbook is required"),
        (route(playbook="record.yml"), "playbook must be a fully qualified name"),
        (route(severity="urgent"), "severity must be one of critical, warning, info"),
        (route(mode="yolo"), "mode must be one of auto, dry_run, approve, notify_only"),
        (route(target={}), "target must be a non-empty mapping"),
        (route(target=target(platform={"value": "bare-metal"})), "target.platform must be a fixed value"),
        (route(target=target(platform={"label": "platform", "allow": ["compose"]})), "target.platform must be a fixed"),
        (route(target=target(service={"label": "service"})), "target.service: a value taken from a label needs"),
        (route(target=target(service={"label": "service", "pattern": ".*"})), "pattern accepts unsafe values"),
        (route(target=target(service={"label": "service", "pattern": "[a-z$()]+"})), "such as '$(id)'"),
        (route(target=target(service={"label": "service", "pattern": "("})), "invalid regular expression"),
        (route(target=target(service={"label": "service", "allow": "redis"})), "allow must be a list of strings"),
        (route(target=target(service={**SERVICE, "type": "float"})), "type must be str or int"),
        (route(target=target(service={**SERVICE, "default": "Bad Name"})), "the default fails the route's own check"),
        (route(target=target(service={"value": "a", "label": "service"})), "either {value: ...} or {label: NAME"),
        (route(target=target(project_src={**SERVICE, "label": "project"})), "project_src must never come from a label"),
        (route(target=target(mount={**SERVICE, "label": "mount"})), "target.mount must never come from a label"),
        (
            route(target=target(certificate={"file": {**SERVICE, "label": "cert"}})),
            "certificate.file must never come from a label",
        ),
        (
            route(target=target(database={"password_var": {**SERVICE, "label": "pw"}})),
            "database.password_var must never come from a label",
        ),
        (route(vars={"alert": {"value": 1}}), "vars.alert: not a variable name a route may set"),
        (route(vars={"ansible_become": {"value": True}}), "vars.ansible_become: not a variable name"),
        (route(vars={"Hold": {"value": 1}}), "vars.Hold: not a variable name"),
        (route(matchers={"env": 3}), "matchers.env: a string or {regex: ...}"),
        (route(thresholds={"max": "high"}), "thresholds must map names to numbers"),
        (route(safety={"cooldown_minutes": -1}), "safety values must be non-negative numbers"),
        (route(safety={"dry_run": 1}), "safety may set only"),
    ],
)
def test_load_routes_refuses_a_bad_route(tmp_path, raw, message):
    error = load_error(tmp_path, raw)
    assert error.startswith("route 1 (")
    assert message in error


def test_load_routes_lists_every_problem(tmp_path):
    error = load_error(
        tmp_path,
        route(),
        route(alertname="Two", mode="yolo"),
        route(alertname="Three", severity="urgent"),
        route(),
    )
    assert error.splitlines() == [
        "route 2 (Two): mode must be one of auto, dry_run, approve, notify_only",
        "route 3 (Three): severity must be one of critical, warning, info",
        "route name 'TestDown' is used twice",
    ]


# Matching.
def test_match_takes_the_first_route_whose_labels_match(tmp_path):
    routes = table(
        tmp_path,
        route(name="prod", matchers={"env": "prod"}),
        route(name="eu", matchers={"region": {"regex": "eu-[a-z]+"}}),
        route(name="any"),
    )
    assert routes.match({"alertname": "TestDown", "env": "prod", "region": "eu-west"}).name == "prod"
    assert routes.match({"alertname": "TestDown", "env": "staging", "region": "eu-west"}).name == "eu"
    # A regex must match the whole value; a missing label is the empty string.
    assert routes.match({"alertname": "TestDown", "region": "eu-west-1"}).name == "any"
    assert routes.match({"alertname": "TestDown", "region": "xeu-west"}).name == "any"
    assert routes.match({"alertname": "TestDown"}).name == "any"
    assert routes.match({"alertname": "testdown"}) is None
    assert routes.match({"env": "prod"}) is None
    assert routes.by_name("eu").matchers["region"].pattern == "eu-[a-z]+"
    assert routes.by_name("nope") is None


def test_a_regex_matcher_can_require_an_absent_label(tmp_path):
    routes = table(tmp_path, route(matchers={"canary": {"regex": ""}}))
    assert routes.match({"alertname": "TestDown"}) is not None
    assert routes.match({"alertname": "TestDown", "canary": "yes"}) is None


# Resolving labels into a target and variables.
def test_resolve_applies_defaults_patterns_allow_lists_and_types(tmp_path):
    [parsed] = table(
        tmp_path,
        route(
            target=target(
                host={"label": "host", "pattern": "[a-z0-9.-]+", "default": "localhost"},
                endpoint={"port": {"label": "port", "pattern": "[0-9]{1,5}", "type": "int", "default": 6379}},
            ),
            vars={
                "signal": {"label": "signal", "allow": ["TERM", "HUP"]},
                "hold": {"value": 5},
            },
        ),
    ).routes
    resolved_target, variables = parsed.resolve(
        {"alertname": "TestDown", "service": "redis", "port": "6380", "signal": "HUP"}
    )
    assert resolved_target == {
        "platform": "compose",
        "host": "localhost",
        "service": "redis",
        "project_src": "/srv/test",
        "endpoint": {"port": 6380},
    }
    assert variables == {"signal": "HUP", "hold": 5}
    defaulted, _ = parsed.resolve({"alertname": "TestDown", "service": "redis", "host": "db-1", "signal": "TERM"})
    assert (defaulted["host"], defaulted["endpoint"]["port"]) == ("db-1", 6379)


@pytest.mark.parametrize(("default", "expected"), [("6379", 6379), (6379, 6379)])
def test_a_default_has_the_fields_type(tmp_path, default, expected):
    port = {"label": "port", "pattern": "[0-9]{1,5}", "type": "int", "default": default}
    name = {"label": "name", "pattern": "[0-9a-z]+", "default": 7}
    [parsed] = table(tmp_path, route(vars={"port": port, "name": name})).routes
    assert parsed.resolve({"alertname": "TestDown", "service": "redis"})[1] == {"port": expected, "name": "7"}


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ({}, "target.service: label 'service' is missing and the route sets no default"),
        ({"service": "redis; rm -rf /"}, "target.service: label 'service' does not match the route's pattern"),
        ({"service": "Redis"}, 'does not match the route\'s pattern ("Redis")'),
        ({"service": "redis", "signal": "KILL"}, "signal: label 'signal' is not in the route's allow list (\"KILL\")"),
        ({"service": "a\nb"}, '("a\\nb")'),
        ({"service": "x" * 100}, '("' + "x" * 64 + '...")'),
    ],
)
def test_resolve_rejects_labels_that_fail_the_checks(tmp_path, labels, message):
    [parsed] = table(tmp_path, route(vars={"signal": {"label": "signal", "allow": ["TERM"], "default": "TERM"}})).routes
    with pytest.raises(Rejected) as caught:
        parsed.resolve({"alertname": "TestDown", **labels})
    assert message in str(caught.value)


def test_target_key_is_stable_and_names_only_the_target():
    base = {"platform": "compose", "host": "h1", "service": "redis", "project_src": "/srv/app"}
    key = target_key(base)
    assert re.fullmatch(r"[0-9a-f]{24}", key)
    assert target_key(dict(reversed(base.items()))) == key
    assert target_key({**base, "endpoint": {"port": 6380}}) == key
    for field, other in (("host", "h2"), ("service", "web"), ("project_src", "/srv/b"), ("platform", "systemd")):
        assert target_key({**base, field: other}) != key, field
    assert target_key({**base, "namespace": "prod"}) != key


# Alerts: the input contract.
def make_alert(**fields) -> Alert:
    return Alert.model_validate({"labels": {"alertname": "TestDown", "service": "svc-1"}, **fields})


@pytest.mark.parametrize(
    ("labels", "fingerprint", "message"),
    [
        ({"alertname": ""}, "", "alertname must be"),
        ({"alertname": "1Down"}, "", "alertname must be"),
        ({"alertname": "A" * 129}, "", "alertname must be"),
        ({"alertname": "Down;id"}, "", "alertname must be"),
        ({"alertname": "X", "bad-name": "v"}, "", "label names must be Prometheus label names"),
        ({"alertname": "X", "service": "v" * 1025}, "", "label service is longer than 1024 characters"),
        ({"alertname": "X", "service": "a\x07b"}, "", "label service holds control characters"),
        ({"alertname": "X", "service": "a\x7f"}, "", "label service holds control characters"),
        ({"alertname": "X"}, "ABCDEF", "fingerprint must be hexadecimal"),
        ({"alertname": "X"}, "0" * 65, "fingerprint must be hexadecimal"),
    ],
)
def test_contract_problem_names_what_is_wrong(labels, fingerprint, message):
    problem = contract_problem(Alert.model_validate({"labels": labels, "fingerprint": fingerprint}))
    assert problem is not None and message in problem


@pytest.mark.parametrize(
    "labels",
    [{"alertname": "Database Outage"}, {"alertname": "a:b_c-d", "service": "v" * 1024, "_x": ""}],
)
def test_contract_problem_accepts_valid_alerts(labels):
    assert contract_problem(Alert.model_validate({"labels": labels, "fingerprint": "0123abcd"})) is None


def test_incident_id_is_the_fingerprint_and_the_start_in_utc():
    assert make_alert(startsAt="2026-11-22T03:04:05.678Z", fingerprint="abc123").incident_id() == (
        "abc123-20261122030405"
    )
    assert make_alert(startsAt="2026-11-22T03:04:05+02:00", fingerprint="abc123").incident_id() == (
        "abc123-20261122010405"
    )
    derived = make_alert(startsAt="2026-11-22T03:04:05Z")
    assert re.fullmatch(r"[0-9a-f]{16}-20261122030405", derived.incident_id())
    # No startsAt: the current time, still 14 digits.
    assert re.fullmatch(r"[0-9a-f]{16}-\d{14}", make_alert().incident_id())


def test_derived_fingerprint_depends_on_the_labels_only():
    one = Alert.model_validate({"labels": {"alertname": "A", "service": "s"}, "annotations": {"x": "1"}})
    same = Alert.model_validate({"labels": {"service": "s", "alertname": "A"}, "status": "resolved"})
    other = Alert.model_validate({"labels": {"alertname": "A", "service": "t"}})
    assert re.fullmatch(r"[0-9a-f]{16}", one.key())
    assert one.key() == same.key() != other.key()
    # Label boundaries count: {"a": "bc"} is not {"ab": "c"}.
    assert Alert.model_validate({"labels": {"a": "bc"}}).key() != Alert.model_validate({"labels": {"ab": "c"}}).key()
    assert make_alert(fingerprint="feed").key() == "feed"


def test_as_contract_renders_times_as_rfc3339_utc():
    contract = make_alert(
        startsAt="2026-11-22T03:00:00+01:00", endsAt="0001-01-01T00:00:00Z", fingerprint="feed"
    ).as_contract()
    assert contract == {
        "status": "firing",
        "labels": {"alertname": "TestDown", "service": "svc-1"},
        "annotations": {},
        "startsAt": "2026-11-22T02:00:00.000000Z",
        "endsAt": "0001-01-01T00:00:00.000000Z",
        "generatorURL": "",
        "fingerprint": "feed",
    }
    assert make_alert().as_contract()["startsAt"] == ""
