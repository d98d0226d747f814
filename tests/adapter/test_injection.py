"""Hostile alert data through the real adapter, ansible-runner and the record playbook.

Every hostile label or annotation is either rejected (a decision with a reason,
no run) or carried inert: the run happens for a safe service and the value
reaches the playbook as text, never templated and never in a shell. Each value
would create a canary file if it were ever executed; none may appear.
"""

import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from remediate.executor import unsafe
from remediate.routes import FieldSpec, RouteError, load_routes

from tests.harness.adapter import REPO_ROOT, adapter_process, alert, record_route, write_settings

pytestmark = pytest.mark.integration

SAFE_SERVICE = "inj-carried"


def hostile(canaries: Path) -> dict[str, str]:
    """Values that would create a file in ``canaries`` if a shell or Jinja ever ran them."""
    canary = str(canaries / "canary")
    return {
        "semicolon": f"x; touch {canary}-semicolon",
        "subshell": f"$(touch {canary}-subshell)",
        "backticks": f"`touch {canary}-backticks`",
        "jinja_lookup": "{{ lookup('pipe', 'touch %s-lookup') }}" % canary,
        "jinja_statement": "{%% set x = lookup('pipe', 'touch %s-statement') %%}{{ x }}" % canary,
        "jinja_compact": "{{lookup('pipe','touch %s-compact')}}" % canary,
        "traversal": "../../etc/passwd",
        "newline": f"x\ntouch {canary}-newline",
        "trailing_newline": "svc-1\n",
        "long": "a" * 1100 + f"; touch {canary}-long",
        "unicode": "\u202eevil\u200b\u200f\ufeff\U0001f525e\u0301\u0327\u0338",
    }


# Values the input contract refuses in any label: control characters, over 1024 characters.
CONTRACT_REFUSES = {"newline", "trailing_newline", "long"}


@pytest.fixture
def canaries(tmp_path):
    folder = tmp_path / "canaries"
    folder.mkdir()
    yield folder
    assert list(folder.iterdir()) == [], "a hostile value was executed"


@pytest.fixture
def adapter(tmp_path):
    with adapter_process(tmp_path / "adapter", [record_route()]) as server:
        yield server


def incident_fact(adapter, run_id: int) -> dict:
    """The `incident` fact the run's incident_context role set, from the run's job events."""
    events = adapter.folder / "state" / "runs" / f"{run_id:08d}-1" / "artifacts" / "run" / "job_events"
    for path in events.glob("*.json"):
        event = json.loads(path.read_text())
        if event["event"] == "runner_on_ok" and event["event_data"].get("task") == "Open the incident":
            return event["event_data"]["res"]["ansible_facts"]["incident"]
    raise AssertionError(f"no 'Open the incident' result in {events}")


def test_hostile_values_in_the_routed_label_are_rejected(adapter, canaries):
    values = hostile(canaries)
    answer = adapter.fire([alert(service=value) for value in values.values()])
    decisions = dict(zip(values, answer["decisions"], strict=True))
    for name, decision in decisions.items():
        assert decision["decision"] == "rejected", (name, decision)
        assert decision["run_id"] is None
        assert decision["reason"].endswith("; nothing runs")
        expected = "input contract: " if name in CONTRACT_REFUSES else "target.service: label 'service' does not match"
        assert decision["reason"].startswith(expected), (name, decision["reason"])
        # The reason quotes at most 64 characters of the value, escaped: no raw control characters.
        assert len(decision["reason"]) < 200 and not re.search(r"[\x00-\x1f]", decision["reason"])
    assert adapter.runs() == []
    assert adapter.records() == {}


def test_hostile_label_names_are_rejected(adapter, canaries):
    alerts = [alert(labels={name: "x"}) for name in ("a;b", "{{x}}", "bad-name", "../x", "a\nb")]
    answer = adapter.fire(alerts)
    assert [d["decision"] for d in answer["decisions"]] == ["rejected"] * len(alerts), answer
    assert {d["reason"] for d in answer["decisions"]} == {
        "input contract: label names must be Prometheus label names; nothing runs"
    }
    assert adapter.runs() == []


def test_names_ansible_reads_as_markers_are_rejected(tmp_path, canaries):
    """A label or annotation named __ansible_unsafe (or _vault, _type) would make Ansible
    load the extra variables as plain YAML, every string a template: with a route
    that does not set target.host, the annotation's lookup would run."""
    jinja = hostile(canaries)["jinja_lookup"]
    route = record_route()
    del route["target"]["host"]
    alerts = [
        alert(service="svc-1", labels={"__ansible_unsafe": "x"}, annotations={"summary": jinja}),
        alert(service="svc-2", labels={"__ansible_vault": "x"}, annotations={"summary": jinja}),
        alert(service="svc-3", annotations={"__ansible_unsafe": "x", "summary": jinja}),
        alert(service="svc-4", annotations={"__ansible_type": "x", "summary": jinja}),
        alert(service="svc-5", annotations={"__other": "x"}),
    ]
    with adapter_process(tmp_path / "adapter", [route]) as server:
        answer = server.fire(alerts)
        assert [d["reason"] for d in answer["decisions"]] == [
            "input contract: label and annotation names must not start with __ (reserved); nothing runs"
        ] * len(alerts)
        assert server.wait_runs_final() == []


def test_the_executor_refuses_keys_ansible_reads_as_markers():
    assert unsafe({"a": ["b", 1]}) == {"a": [{"__ansible_unsafe": "b"}, 1]}
    for key in ("__ansible_unsafe", "__ansible_vault", "__ansible_type"):
        with pytest.raises(ValueError, match="Ansible reads it as a marker"):
            unsafe({"alert": {"annotations": {key: "x"}}})


def test_hostile_values_elsewhere_are_carried_as_text(adapter, canaries):
    values = hostile(canaries)
    accepted_labels = {name: value for name, value in values.items() if name not in CONTRACT_REFUSES}
    annotations = {**values, "{{ lookup('pipe', 'touch %s/canary-name') }}" % canaries: "annotation name"}
    carried = alert(service=SAFE_SERVICE, labels=accepted_labels, annotations=annotations)
    refused = [alert(service="svc-refused", labels={name: values[name]}) for name in sorted(CONTRACT_REFUSES)]
    answer = adapter.fire([carried, *refused])
    kinds = [d["decision"] for d in answer["decisions"]]
    assert kinds == ["accepted"] + ["rejected"] * len(refused), answer
    for decision, name in zip(answer["decisions"][1:], sorted(CONTRACT_REFUSES), strict=True):
        assert decision["reason"].startswith(f"input contract: label {name} "), decision

    runs = adapter.wait_runs_final()
    assert [(run["kind"], run["state"]) for run in runs] == [("remediate", "successful")]
    assert adapter.records() == {SAFE_SERVICE: 1}
    # The playbook saw every value verbatim: nothing was rendered or interpreted.
    incident = incident_fact(adapter, runs[0]["id"])
    assert incident["alert"]["annotations"] == annotations
    assert incident["alert"]["labels"] == {"alertname": "TestDown", "service": SAFE_SERVICE, **accepted_labels}
    assert incident["target"]["service"] == SAFE_SERVICE


def test_the_generic_endpoint_carries_hostile_annotations_as_text(adapter, canaries):
    values = hostile(canaries)
    response = adapter.post("/api/v1/alerts", alert(service="inj-generic", annotations=values))
    assert response.status_code == 200, response.text
    (decision,) = response.json()["decisions"]
    assert decision["decision"] == "accepted"
    (run,) = adapter.wait_runs_final()
    assert run["state"] == "successful"
    assert incident_fact(adapter, run["id"])["alert"]["annotations"] == values


JINJA = st.tuples(st.text(max_size=20), st.sampled_from(["{{", "{%", "{#", "}}", "%}", "#}"]), st.text(max_size=20))


def label_patterns(tree: dict, where: str):
    for name, spec in tree.items():
        if isinstance(spec, FieldSpec):
            if spec.pattern is not None:
                yield f"{where}.{name}", spec.pattern
        else:
            yield from label_patterns(spec, f"{where}.{name}")


# Every label pattern of the repository's routes file and of the test route.
PATTERNS = [
    *(
        item
        for route in load_routes(REPO_ROOT / "routes" / "routes.yml").routes
        for item in label_patterns(route.target, route.name)
    ),
    ("record_route", re.compile(record_route()["target"]["service"]["pattern"])),
]


@given(parts=JINJA)
def test_no_route_pattern_accepts_a_value_carrying_jinja(parts):
    value = "".join(parts)
    for where, pattern in PATTERNS:
        assert not pattern.fullmatch(value), (where, value)


@pytest.mark.parametrize("pattern", [".*", ".+", "[^;]+", "[a-z{}]+", "[a-z{}%]{1,20}", "[a-z{}#]+"])
def test_a_route_whose_pattern_admits_jinja_is_refused(tmp_path, pattern):
    route = record_route()
    route["target"]["service"]["pattern"] = pattern
    server = write_settings(tmp_path, [route])
    with pytest.raises(RouteError, match="pattern accepts unsafe values"):
        load_routes(server.folder / "routes.yml")
