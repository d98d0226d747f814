"""Generated payloads against one real adapter: never a 5xx, never a run.

The adapter's only route is for an alert name no strategy here produces, so every
alert that gets through is answered `rejected` or `no_route`; afterwards the
adapter still answers /healthz, lists no run and logged no traceback.
"""

import base64
import json
import uuid
from datetime import UTC
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.harness.adapter import adapter_process, record_route

pytestmark = pytest.mark.integration

# Longer than any alert name the strategies below can draw (at most 41 characters).
ROUTED = f"Never{uuid.uuid4().hex}Routed"
FUZZ = settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
# Alert payloads pass more checks before an answer: more of them.
FUZZ_ALERTS = settings(FUZZ, max_examples=1200)


def mostly(valid: st.SearchStrategy, other: st.SearchStrategy) -> st.SearchStrategy:
    """``valid`` nine times in ten, else ``other``: near-valid payloads."""
    return st.sampled_from([False] + [True] * 9).flatmap(lambda good: valid if good else other)


# Any character, surrogates included (json.dumps writes them as \ud800 escapes), and near misses.
TEXT = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=30),
    st.sampled_from(
        [
            "",
            " ",
            "firing",
            "resolved",
            "4",
            "TestDown",
            ROUTED.lower(),
            ROUTED + " ",
            ROUTED[:-1],
            "{{ 7*7 }}",
            "$(id)",
            "__ansible_unsafe",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59-23:59",
            "0001-01-01T00:00:00+23:59",
        ]
    ),
    st.integers(1000, 70000).map(lambda size: "a" * size),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(2**63 - 2, 2**200),
    st.integers(-(2**200), -(2**63) + 2),
    st.floats(),
    TEXT,
)
JSON = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4), max_leaves=12
)
ALERTNAME = st.from_regex(r"[A-Za-z_:][A-Za-z0-9 _:-]{0,40}", fullmatch=True)
LABEL_NAME = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True)
LABEL_VALUE = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
LABELS = mostly(
    st.builds(
        lambda name, extra: {**extra, "alertname": name},
        mostly(ALERTNAME, TEXT),
        st.dictionaries(mostly(LABEL_NAME, TEXT), mostly(LABEL_VALUE, TEXT), max_size=4),
    ),
    st.one_of(st.dictionaries(TEXT, TEXT | SCALARS, max_size=4), JSON),
)
MOMENT = mostly(
    st.datetimes(timezones=st.just(UTC)).map(lambda moment: moment.isoformat()),
    st.one_of(st.datetimes().map(lambda moment: moment.isoformat()), TEXT, SCALARS),
)
ALERT = st.builds(
    lambda alert, extra: {**extra, **alert},
    st.fixed_dictionaries(
        {"labels": LABELS},
        optional={
            "status": mostly(st.sampled_from(["firing", "resolved"]), SCALARS),
            "annotations": mostly(st.dictionaries(LABEL_NAME, LABEL_VALUE | TEXT, max_size=4), LABELS),
            "startsAt": MOMENT,
            "endsAt": MOMENT,
            "generatorURL": mostly(LABEL_VALUE, TEXT | SCALARS),
            "fingerprint": mostly(st.text("0123456789abcdef", min_size=1, max_size=70), TEXT | SCALARS),
        },
    ),
    st.dictionaries(TEXT, JSON, max_size=2),
)
WEBHOOK = st.fixed_dictionaries(
    {
        "version": mostly(st.just("4"), SCALARS),
        "status": mostly(st.sampled_from(["firing", "resolved"]), SCALARS),
        "alerts": mostly(st.lists(ALERT, min_size=1, max_size=4), JSON),
    },
    optional={
        "receiver": mostly(LABEL_VALUE, TEXT | SCALARS),
        "groupLabels": LABELS,
        "commonLabels": LABELS,
        "commonAnnotations": LABELS,
        "externalURL": mostly(LABEL_VALUE, TEXT | SCALARS),
        "groupKey": mostly(LABEL_VALUE, TEXT | SCALARS),
        "truncatedAlerts": mostly(st.integers(0, 2**70), SCALARS),
    },
)
SILENCE = st.fixed_dictionaries(
    {
        "matchers": mostly(st.dictionaries(LABEL_NAME, LABEL_VALUE, min_size=1, max_size=4), LABELS),
        "minutes": mostly(st.floats(0.01, 43200) | st.integers(1, 43200), SCALARS),
    },
    optional={"comment": TEXT | SCALARS, "starts_at": SCALARS},
)
# Bodies no JSON encoder writes: bytes, deep nesting, numbers with thousands of digits.
RAW = st.one_of(
    st.binary(max_size=512),
    st.integers(1, 300_000).map(lambda depth: b"[" * depth + b"]" * depth),
    st.integers(1, 50_000).map(lambda depth: b'{"a":' * depth + b"1" + b"}" * depth),
    st.integers(20, 200_000).map(
        lambda digits: b'{"version": "4", "status": "firing", "alerts": [], "truncatedAlerts": %s}' % (b"9" * digits)
    ),
    st.sampled_from([b"1e999999", b"-1e-999999", b'{"minutes": 1e999, "matchers": {"a": "b"}}', b"", b"null"]),
)


def bodies(values) -> st.SearchStrategy[bytes]:
    return mostly(
        values.map(lambda value: json.dumps(value).encode()),
        st.one_of(
            # Raw UTF-8, lone surrogates written as (invalid) bytes.
            values.map(lambda value: json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")),
            RAW,
        ),
    )


@pytest.fixture(scope="module")
def adapter(tmp_path_factory):
    with adapter_process(tmp_path_factory.mktemp("fuzz") / "adapter", [record_route(ROUTED)]) as server:
        yield server


@pytest.fixture(scope="module")
def client(adapter):
    with httpx.Client(base_url=adapter.url, headers=adapter.headers(), timeout=60) as session:
        yield session


@pytest.fixture(scope="module")
def anonymous(adapter):
    with httpx.Client(base_url=adapter.url, timeout=60) as session:
        yield session


@pytest.fixture(autouse=True)
def nothing_ran(adapter):
    """After each test: the adapter is up, ran nothing and logged no traceback."""
    yield
    assert httpx.get(adapter.url + "/healthz", timeout=30).status_code == 200
    assert adapter.runs() == []
    assert "Traceback" not in adapter.log_path.read_text()


def post(client, path: str, body: bytes) -> httpx.Response:
    response = client.post(path, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code < 500, (response.status_code, response.text, body[:300])
    event(f"HTTP {response.status_code}")
    return response


def nothing_routed(response: httpx.Response) -> None:
    if response.status_code == 200:
        decisions = {d["decision"] for d in response.json()["decisions"]}
        event("decisions: " + ", ".join(sorted(decisions)))
        assert decisions <= {"rejected", "no_route"}, response.text
    else:
        assert response.status_code in (400, 413), response.text


@FUZZ_ALERTS
@given(body=bodies(WEBHOOK | JSON))
def test_alertmanager_webhook(client, body):
    nothing_routed(post(client, "/api/v1/alertmanager", body))


@FUZZ_ALERTS
@given(body=bodies(ALERT | JSON))
def test_generic_alert(client, body):
    nothing_routed(post(client, "/api/v1/alerts", body))


@FUZZ
@given(body=bodies(SILENCE | JSON))
def test_silences(client, body):
    response = post(client, "/api/v1/silences", body)
    assert response.status_code in (200, 400, 413), response.text


PATH_PARTS = st.one_of(
    st.integers().map(str),
    st.integers(2**63 - 2, 2**300).map(str),
    st.integers(-(2**300), -(2**63) + 2).map(str),
    st.text(st.characters(exclude_categories=()), max_size=60).map(
        lambda text: quote(text.encode("utf-8", "surrogatepass"), safe="")
    ),
    st.integers(100, 4000).map(lambda size: "a" * size),
    st.binary(min_size=1, max_size=40).map(lambda raw: quote(raw, safe="")),
)


@FUZZ
@given(run_id=PATH_PARTS, action=st.sampled_from(["approve", "cancel"]))
def test_run_actions_with_any_id(client, run_id, action):
    response = post(client, f"/api/v1/runs/{run_id}/{action}", b"")
    assert response.status_code in (307, 400, 404, 405), response.text


@FUZZ
@given(incident_id=PATH_PARTS)
def test_incidents_with_any_id(client, incident_id):
    response = client.get(f"/api/v1/incidents/{incident_id}")
    assert response.status_code in (200, 307, 404), (response.status_code, response.text)


HEADER_TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=80)
AUTHORIZATION = st.one_of(
    HEADER_TEXT,
    st.tuples(st.sampled_from(["Bearer ", "bearer ", "Basic ", "BASIC "]), HEADER_TEXT).map("".join),
    st.binary(max_size=60).map(lambda raw: "Basic " + base64.b64encode(raw).decode()),
).map(str.strip)


@FUZZ
@given(authorization=AUTHORIZATION)
def test_any_authorization_header_is_refused(anonymous, authorization):
    response = anonymous.post("/api/v1/alertmanager", content=b"{}", headers={"Authorization": authorization})
    assert response.status_code == 401, response.text
