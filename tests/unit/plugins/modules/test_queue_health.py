"""Unit tests for plugins/modules/queue_health.py and plugins/module_utils/_queues.py.

Pure logic: verdicts, thresholds, growth rate, BullMQ key names and worker
matching, ages, RabbitMQ documents. No queue server is needed: the unreachable
cases use a real loopback port that nothing listens on.
"""

import base64
import json
import time

import pytest
import yaml
from ansible_collections.incident.remediation.plugins.doc_fragments.redis import ModuleDocFragment
from ansible_collections.incident.remediation.plugins.module_utils import _redis
from ansible_collections.incident.remediation.plugins.module_utils._queues import (
    METRIC_KEYS,
    QueueReadError,
    QueueReading,
    age_seconds,
    basic_auth_header,
    bullmq_client_name,
    bullmq_job_key,
    bullmq_keys,
    bullmq_waiting_since_ms,
    count_bullmq_workers,
    describe_series,
    empty_metrics,
    gauge_matchers,
    metrics_from_rabbitmq,
    oldest_job_id,
    rabbitmq_queue_url,
    stream_id_ms,
)
from ansible_collections.incident.remediation.plugins.modules import queue_health
from ansible_collections.incident.remediation.plugins.modules.queue_health import (
    QUEUE_SPEC,
    SAMPLING_KEYS,
    THRESHOLD_SPEC,
    argument_spec,
    check,
    depth_of,
    growth,
    judge,
    queue_result,
    queue_thresholds,
)

DOC = yaml.safe_load(queue_health.DOCUMENTATION)
RETURN = yaml.safe_load(queue_health.RETURN)
QUEUE_METRIC_KEYS = set(RETURN["queues"]["contains"]["metrics"]["contains"])
DEFAULTS = {name: spec.get("default") for name, spec in THRESHOLD_SPEC.items()}


def default_params(**overrides):
    """Module params as AnsibleModule would fill them, queues with every suboption."""
    params = {name: spec.get("default") for name, spec in argument_spec().items()}
    params.update(overrides)
    params["queues"] = [dict(dict.fromkeys(QUEUE_SPEC), **queue) for queue in params.get("queues") or []]
    return params


def queue_metrics(**values):
    metrics = empty_metrics()
    metrics.update(dict.fromkeys(SAMPLING_KEYS))
    metrics.update(values)
    if "depth" not in values:
        metrics["depth"] = metrics["waiting"]
    return metrics


# ---------------------------------------------------------------- documentation matches the spec


def documented_options():
    options = dict(yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"])
    for name, option in DOC["options"].items():
        assert name not in options, "%s is documented in the module and the fragment" % name
        options[name] = option
    return options


def test_every_documented_option_is_in_the_spec_and_back():
    assert sorted(documented_options()) == sorted(argument_spec())


@pytest.mark.parametrize("name", sorted(argument_spec()))
def test_option_type_default_choices_and_required_match(name):
    option, spec = documented_options()[name], argument_spec()[name]
    assert option.get("type", "str") == spec.get("type", "str")
    assert option.get("default") == spec.get("default")
    assert option.get("choices") == spec.get("choices")
    assert bool(option.get("required")) == bool(spec.get("required"))
    assert option.get("elements") == spec.get("elements")


def test_queue_suboptions_match_the_spec():
    suboptions = DOC["options"]["queues"]["suboptions"]
    assert sorted(suboptions) == sorted(QUEUE_SPEC)
    for name, option in suboptions.items():
        assert option.get("type", "str") == QUEUE_SPEC[name].get("type", "str"), name
        assert bool(option.get("required")) == bool(QUEUE_SPEC[name].get("required")), name
        assert "default" not in option and "default" not in QUEUE_SPEC[name], name


def test_every_module_threshold_can_be_overridden_per_queue():
    assert set(THRESHOLD_SPEC) <= set(QUEUE_SPEC)


def test_runbook_defaults():
    assert DEFAULTS["depth_warning"] == 100
    assert DEFAULTS["depth_critical"] == 500


def test_only_the_passwords_are_no_log():
    assert sorted(name for name, spec in argument_spec().items() if spec.get("no_log")) == [
        "api_password",
        "login_password",
    ]


def test_documented_queue_metrics_are_the_reported_ones():
    assert set(METRIC_KEYS) | set(SAMPLING_KEYS) == QUEUE_METRIC_KEYS


def test_every_return_value_is_returned_always():
    assert {value["returned"] for value in RETURN.values()} == {"always"}


# ---------------------------------------------------------------- thresholds per queue


def test_queue_thresholds_inherit_the_module_ones():
    assert queue_thresholds(dict.fromkeys(QUEUE_SPEC), DEFAULTS) == DEFAULTS


def test_queue_thresholds_override_only_what_is_set():
    queue = dict(dict.fromkeys(QUEUE_SPEC), depth_warning=1000, age_critical_seconds=60.0)
    assert queue_thresholds(queue, DEFAULTS) == dict(DEFAULTS, depth_warning=1000, age_critical_seconds=60.0)


def test_a_zero_threshold_per_queue_is_applied():
    queue = dict(dict.fromkeys(QUEUE_SPEC), depth_warning=0)
    thresholds = queue_thresholds(queue, DEFAULTS)
    assert thresholds["depth_warning"] == 0
    assert judge(queue_metrics(waiting=1), thresholds).status == "warning"


# ---------------------------------------------------------------- depth


@pytest.mark.parametrize(
    ("waiting", "in_flight", "count_in_flight", "expected"),
    [
        (10, 5, False, 10),
        (10, 5, True, 15),
        (10, None, True, 10),
        (None, 5, True, None),
        (0, 0, True, 0),
    ],
)
def test_depth_of(waiting, in_flight, count_in_flight, expected):
    assert depth_of({"waiting": waiting, "in_flight": in_flight}, count_in_flight) == expected


# ---------------------------------------------------------------- growth rate and draining


@pytest.mark.parametrize(
    ("before", "after", "seconds", "expected"),
    [
        pytest.param(600, 540, 2.0, (-30.0, True, 18.0), id="draining"),
        pytest.param(10, 0, 1.0, (-10.0, True, 0.0), id="drained-empty"),
        pytest.param(100, 130, 2.0, (15.0, False, None), id="growing"),
        pytest.param(100, 100, 5.0, (0.0, False, None), id="stuck"),
        pytest.param(0, 7, 1.0, (7.0, False, None), id="filling-from-empty"),
        pytest.param(0, 0, 1.0, (0.0, None, None), id="empty-both-times"),
        pytest.param(3, 2, 3.0, (-0.333, True, 6.0), id="slow-drain"),
    ],
)
def test_growth(before, after, seconds, expected):
    assert growth(before, 10.0, after, 10.0 + seconds) == expected


@pytest.mark.parametrize(
    ("before", "after", "seconds"),
    [(None, 5, 1.0), (5, None, 1.0), (5, 3, 0.0), (5, 3, -1.0)],
)
def test_growth_unknown(before, after, seconds):
    assert growth(before, 10.0, after, 10.0 + seconds) == (None, None, None)


def test_growth_of_fractional_gauges():
    rate, draining, eta = growth(12.5, 0.0, 2.5, 4.0)
    assert (rate, draining, eta) == (-2.5, True, 1.0)


# ---------------------------------------------------------------- judge


@pytest.mark.parametrize(
    ("depth", "status"),
    [(0, "ok"), (100, "ok"), (101, "warning"), (500, "warning"), (501, "critical"), (10_000, "critical")],
)
def test_depth_against_the_runbook_thresholds(depth, status):
    verdict = judge(queue_metrics(waiting=depth, consumers=3), DEFAULTS)
    assert verdict.status == status
    if status != "ok":
        assert verdict.reasons == [
            "queue depth is %d, above the %s threshold of %d"
            % (depth, status, DEFAULTS["depth_%s" % status])
        ]


@pytest.mark.parametrize(
    ("consumers", "depth", "check_consumers", "status"),
    [
        pytest.param(0, 5, True, "critical", id="backlog-no-consumers"),
        pytest.param(0, 0, True, "ok", id="empty-no-consumers"),
        pytest.param(None, 5, True, "ok", id="consumers-unknown"),
        pytest.param(2, 5, True, "ok", id="consumers-present"),
        pytest.param(0, 5, False, "ok", id="check-off"),
    ],
)
def test_no_consumers_with_a_backlog_is_critical(consumers, depth, check_consumers, status):
    verdict = judge(queue_metrics(waiting=depth, consumers=consumers), DEFAULTS, check_consumers)
    assert verdict.status == status
    if status == "critical":
        assert verdict.reasons == ["no consumers: 5 jobs are waiting and no consumer is connected to take them"]


def test_no_consumers_and_a_deep_queue_give_both_reasons():
    verdict = judge(queue_metrics(waiting=150, consumers=0), DEFAULTS)
    assert verdict.status == "critical"
    assert [reason.split(":")[0] for reason in verdict.reasons] == [
        "queue depth is 150, above the warning threshold of 100",
        "no consumers",
    ]


def test_paused_queue_with_jobs_is_a_warning():
    assert judge(queue_metrics(waiting=3, paused=True, consumers=1), DEFAULTS).reasons == [
        "the queue is paused with 3 jobs waiting"
    ]
    assert judge(queue_metrics(waiting=0, paused=True, consumers=1), DEFAULTS).status == "ok"


@pytest.mark.parametrize(
    ("state", "status"),
    [("running", "ok"), ("idle", "ok"), ("crashed", "critical"), ("down", "critical"), ("minority", "warning")],
)
def test_rabbitmq_queue_state(state, status):
    assert judge(queue_metrics(waiting=0, consumers=1, state=state), DEFAULTS).status == status


@pytest.mark.parametrize(
    ("failed", "warning", "critical", "status"),
    [
        (1000, None, None, "ok"),
        (10, 10, 100, "ok"),
        (11, 10, 100, "warning"),
        (101, 10, 100, "critical"),
        (None, 10, 100, "ok"),
    ],
)
def test_failed_jobs(failed, warning, critical, status):
    thresholds = dict(DEFAULTS, failed_warning=warning, failed_critical=critical)
    verdict = judge(queue_metrics(waiting=0, failed=failed), thresholds)
    assert verdict.status == status
    if status != "ok":
        assert verdict.reasons[0].startswith("failed jobs is %d, above" % failed)


@pytest.mark.parametrize(
    ("age", "status"),
    [(None, "ok"), (59.9, "ok"), (60.5, "warning"), (600.1, "critical")],
)
def test_oldest_job_age(age, status):
    thresholds = dict(DEFAULTS, age_warning_seconds=60.0, age_critical_seconds=600.0)
    verdict = judge(queue_metrics(waiting=1, consumers=1, oldest_age_seconds=age), thresholds)
    assert verdict.status == status
    if status != "ok":
        assert verdict.reasons[0].startswith("oldest waiting job age is %s s" % age)


def test_sampled_growth_explains_a_deep_queue_without_changing_its_status():
    draining = queue_metrics(waiting=540, consumers=2, samples=[600, 540], sample_seconds=2.0,
                             growth_rate=-30.0, draining=True, drain_eta_seconds=18.0)
    verdict = judge(draining, DEFAULTS)
    assert verdict.status == "critical"
    assert verdict.reasons[1] == (
        "depth went from 600 to 540 in 2.0 s (-30 jobs/s): draining, empty in about 18.0 s at this rate"
    )
    growing = queue_metrics(waiting=130, consumers=2, samples=[100, 130], sample_seconds=2.0,
                            growth_rate=15.0, draining=False, drain_eta_seconds=None)
    verdict = judge(growing, DEFAULTS)
    assert verdict.status == "warning"
    assert verdict.reasons[1] == "depth went from 100 to 130 in 2.0 s (+15 jobs/s): not draining"


def test_sampled_growth_of_a_shallow_queue_is_no_reason():
    metrics = queue_metrics(waiting=20, consumers=1, samples=[10, 20], sample_seconds=1.0, growth_rate=10.0,
                            draining=False)
    assert judge(metrics, DEFAULTS).reasons == []


# ---------------------------------------------------------------- queue_result from readings


def reading(at, error=None, **metrics):
    values = empty_metrics()
    values.update(metrics)
    return QueueReading(values, notes=["a note"], error=error, at=at)


def test_one_reading_has_no_growth():
    params = default_params(backend="redis_list", queues=[{"name": "jobs"}])
    result = queue_result(params, params["queues"][0], [reading(1.0, waiting=5, consumers=None)], DEFAULTS)
    assert result["status"] == "ok"
    assert result["notes"] == ["a note"]
    assert result["metrics"]["samples"] == [5]
    assert result["metrics"]["growth_rate"] is None
    assert result["metrics"]["draining"] is None
    assert set(result["metrics"]) == QUEUE_METRIC_KEYS


def test_two_readings_give_growth_and_the_last_metrics():
    params = default_params(backend="bullmq", queues=[{"name": "emails"}], count_in_flight=True)
    readings = [reading(10.0, waiting=300, in_flight=10, consumers=2),
                reading(12.0, waiting=200, in_flight=10, consumers=2)]
    result = queue_result(params, params["queues"][0], readings, DEFAULTS)
    metrics = result["metrics"]
    assert metrics["depth"] == 210
    assert metrics["samples"] == [310, 210]
    assert metrics["sample_seconds"] == 2.0
    assert metrics["growth_rate"] == -50.0
    assert metrics["draining"] is True
    assert metrics["drain_eta_seconds"] == 4.2
    assert result["status"] == "warning"
    assert result["source"] == "bull:emails"


def test_an_unreadable_queue_is_unknown_with_its_reason():
    params = default_params(backend="redis_stream", queues=[{"name": "events", "group": "g"}])
    error = QueueReadError("consumer group g does not exist on stream events")
    result = queue_result(params, params["queues"][0], [reading(1.0, error=error)], DEFAULTS)
    assert result["status"] == "unknown"
    assert result["reasons"] == ["consumer group g does not exist on stream events"]
    assert result["error"] == result["reasons"][0]
    assert result["source"] == "events (group g)"
    assert set(result["metrics"]) == QUEUE_METRIC_KEYS


def test_an_unread_second_reading_keeps_no_growth():
    params = default_params(backend="rabbitmq", queues=[{"name": "jobs"}], api_url="http://127.0.0.1:1")
    error = QueueReadError("RabbitMQ answered HTTP 503 for this queue", "critical")
    result = queue_result(params, params["queues"][0], [reading(1.0, waiting=3), reading(2.0, error=error)],
                          DEFAULTS)
    assert result["status"] == "critical"
    assert result["metrics"]["draining"] is None


@pytest.mark.parametrize(
    ("backend", "queue", "extra", "source"),
    [
        ("redis_list", {"name": "jobs"}, {}, "jobs"),
        ("redis_stream", {"name": "events"}, {}, "events"),
        ("bullmq", {"name": "emails"}, {"bullmq_prefix": "{app}"}, "{app}:emails"),
        ("rabbitmq", {"name": "in voices"}, {}, "/api/queues/%2F/in%20voices"),
        ("rabbitmq", {"name": "q", "vhost": "prod/eu"}, {}, "/api/queues/prod%2Feu/q"),
        ("metrics", {"name": "default"}, {"metrics_labels": {"job": "worker"}},
         'queue_depth{job="worker",queue="default"}'),
    ],
)
def test_source(backend, queue, extra, source):
    params = default_params(backend=backend, queues=[queue], **extra)
    assert queue_health.queue_source(params, params["queues"][0]) == source


# ---------------------------------------------------------------- BullMQ


def test_bullmq_key_names():
    keys = bullmq_keys("bull", "emails")
    assert keys == {
        "base": "bull:emails",
        "wait": "bull:emails:wait",
        "active": "bull:emails:active",
        "delayed": "bull:emails:delayed",
        "failed": "bull:emails:failed",
        "paused": "bull:emails:paused",
        "prioritized": "bull:emails:prioritized",
        "completed": "bull:emails:completed",
        "meta": "bull:emails:meta",
    }
    assert bullmq_job_key("bull", "emails", "42") == "bull:emails:42"


def test_bullmq_key_names_keep_a_cluster_hash_tag_prefix():
    assert bullmq_keys("{myapp}", "q")["wait"] == "{myapp}:q:wait"


@pytest.mark.parametrize(
    ("queue", "encoded"),
    [("emails", "ZW1haWxz"), ("send-mail", "c2VuZC1tYWls"), ("é", "w6k=")],
)
def test_bullmq_client_name_is_prefix_and_base64_of_the_queue(queue, encoded):
    assert bullmq_client_name("bull", queue) == "bull:" + encoded
    assert base64.b64decode(encoded).decode() == queue


def test_count_bullmq_workers_matches_as_bullmq_does():
    names = [
        "bull:ZW1haWxz",  # unnamed worker
        "bull:ZW1haWxz:w:mailer-1",  # named worker
        "bull:ZW1haWxz:w:mailer-2",
        "bull:ZW1haWxz:qe",  # QueueEvents, not a worker
        "bull:ZW1haWxzZXhwb3J0cw==",  # another queue whose base64 starts alike
        "other:ZW1haWxz",  # another prefix
        "",
        None,
    ]
    assert count_bullmq_workers(names, "bull", "emails") == 3
    assert count_bullmq_workers(names, "other", "emails") == 1
    assert count_bullmq_workers([], "bull", "emails") == 0


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        ([b"9", b"8", b"7"], "7"),  # LPUSH puts new jobs at the head: the tail is the oldest
        ([b"9", b"0"], "9"),  # BullMQ 3 marker
        ([b"9", b"0:1500"], "9"),  # delayed marker
        ([b"0"], None),
        ([], None),
        (["12", "11"], "11"),
    ],
)
def test_oldest_job_id(tail, expected):
    assert oldest_job_id(tail) == expected


@pytest.mark.parametrize(
    ("timestamp", "delay", "expected"),
    [
        (b"1700000000000", b"0", 1_700_000_000_000),
        (b"1700000000000", None, 1_700_000_000_000),
        (b"1700000000000", b"5000", 1_700_000_005_000),
        ("1700000000000", "", 1_700_000_000_000),
        (None, b"5000", None),
        (b"", None, None),
    ],
)
def test_bullmq_waiting_since(timestamp, delay, expected):
    assert bullmq_waiting_since_ms(timestamp, delay) == expected


@pytest.mark.parametrize(
    ("now_ms", "since_ms", "expected"),
    [
        (1_700_000_060_000, 1_700_000_000_000, 60.0),
        (1_700_000_000_250, 1_700_000_000_000, 0.25),
        (1_700_000_000_000, 1_700_000_002_000, 0.0),  # producer clock ahead: never negative
        (None, 1, None),
        (1, None, None),
    ],
)
def test_age_seconds(now_ms, since_ms, expected):
    assert age_seconds(now_ms, since_ms) == expected


@pytest.mark.parametrize(
    ("entry_id", "expected"),
    [(b"1700000000000-0", 1_700_000_000_000), ("1700000000123-17", 1_700_000_000_123), ("0-1", 0)],
)
def test_stream_id_ms(entry_id, expected):
    assert stream_id_ms(entry_id) == expected


# ---------------------------------------------------------------- RabbitMQ


RABBITMQ_QUEUE = {
    "name": "jobs",
    "vhost": "/",
    "state": "running",
    "consumers": 1,
    "messages": 120,
    "messages_ready": 115,
    "messages_unacknowledged": 5,
    "head_message_timestamp": 1_700_000_000,
    "message_stats": {
        "publish": 120,
        "publish_details": {"rate": 12.5},
        "deliver_get": 5,
        "deliver_get_details": {"rate": 0.4},
        "ack": 0,
        "ack_details": {"rate": 0.0},
    },
}


def test_metrics_from_rabbitmq():
    metrics = metrics_from_rabbitmq(RABBITMQ_QUEUE, now_s=1_700_000_030.5)
    assert metrics == dict(
        empty_metrics(),
        waiting=115,
        in_flight=5,
        consumers=1,
        length=120,
        state="running",
        publish_rate=12.5,
        deliver_rate=0.4,
        ack_rate=0.0,
        oldest_age_seconds=30.5,
    )


def test_metrics_from_a_quiet_rabbitmq_queue_leave_unknowns_null():
    metrics = metrics_from_rabbitmq({"messages_ready": 0, "consumers": 0}, now_s=time.time())
    assert metrics["waiting"] == 0
    assert metrics["consumers"] == 0
    assert metrics["publish_rate"] is None
    assert metrics["oldest_age_seconds"] is None
    assert metrics["in_flight"] is None


@pytest.mark.parametrize(
    ("base", "vhost", "name", "url"),
    [
        ("http://h:15672", "/", "jobs", "http://h:15672/api/queues/%2F/jobs"),
        ("http://h:15672/", "/", "jobs", "http://h:15672/api/queues/%2F/jobs"),
        ("https://h/rabbit", "prod", "a/b c", "https://h/rabbit/api/queues/prod/a%2Fb%20c"),
    ],
)
def test_rabbitmq_queue_url(base, vhost, name, url):
    assert rabbitmq_queue_url(base, vhost, name) == url


def test_basic_auth_header():
    assert basic_auth_header("user", "pa:ss") == {"Authorization": "Basic " + base64.b64encode(b"user:pa:ss").decode()}
    assert basic_auth_header("user", None) == {"Authorization": "Basic " + base64.b64encode(b"user:").decode()}


# ---------------------------------------------------------------- metrics gauge


def test_gauge_matchers_put_the_queue_label_last_word():
    assert gauge_matchers("queue", "emails", {"job": "worker", "queue": "ignored"}) == {
        "job": "worker",
        "queue": "emails",
    }
    assert describe_series("queue_depth", {"queue": "emails"}) == 'queue_depth{queue="emails"}'


# ---------------------------------------------------------------- check() against closed ports


@pytest.mark.parametrize("backend", ["redis_list", "redis_stream", "bullmq"])
def test_unreachable_redis_is_critical_and_every_queue_unknown(closed_port, backend):
    params = default_params(backend=backend, login_port=closed_port, queues=[{"name": "a"}, {"name": "b"}])
    started = time.monotonic()
    result = check(params, DEFAULTS)
    assert time.monotonic() - started < 1.0
    assert result["status"] == "critical"
    assert result["is_available"] is False
    assert result["error"].startswith("Redis at 127.0.0.1:%d refused or dropped the connection" % closed_port)
    assert result["reasons"] == [result["error"]]
    assert result["checked"] == "redis://127.0.0.1:%d/0" % closed_port
    assert [queue["status"] for queue in result["queues"]] == ["unknown", "unknown"]
    assert result["queues"][0]["reasons"] == ["not read: " + result["error"]]
    assert result["metrics"] == dict(queue_count=2, total_depth=None, max_depth=None, sample_seconds=None)


@pytest.mark.parametrize("backend", ["rabbitmq", "metrics"])
def test_unreachable_http_backend_is_critical(closed_port, backend):
    url = "http://user:pw@127.0.0.1:%d/metrics" % closed_port
    params = default_params(backend=backend, api_url=url, queues=[{"name": "jobs"}])
    result = check(params, DEFAULTS)
    assert result["status"] == "critical"
    assert result["is_available"] is False
    assert result["checked"] == "http://127.0.0.1:%d/metrics" % closed_port
    assert "pw" not in json.dumps(result)


def test_no_second_reading_when_the_first_fails(closed_port):
    params = default_params(backend="redis_list", login_port=closed_port, queues=[{"name": "a"}],
                            sample_interval=30.0)
    started = time.monotonic()
    result = check(params, DEFAULTS)
    assert time.monotonic() - started < 1.0
    assert result["status"] == "critical"


# ---------------------------------------------------------------- main() in process


def test_main_returns_the_stable_shape(run_module, closed_port):
    code, result, out = run_module(queue_health, {
        "backend": "bullmq",
        "login_port": closed_port,
        "login_password": "s3cret-redis",
        "queues": [{"name": "emails", "depth_warning": 10}],
        "depth_critical": 50,
    })
    assert code == 0
    assert "failed" not in result
    assert result["changed"] is False
    assert set(RETURN) | {"changed"} <= set(result)
    assert result["thresholds"] == dict(DEFAULTS, depth_critical=50)
    assert result["queues"][0]["thresholds"] == dict(DEFAULTS, depth_warning=10, depth_critical=50)
    assert set(result["queues"][0]) == set(RETURN["queues"]["contains"])
    assert set(result["queues"][0]["metrics"]) == QUEUE_METRIC_KEYS
    assert set(result["metrics"]) == set(RETURN["metrics"]["contains"])
    assert result["backend"] == "bullmq"
    assert isinstance(result["elapsed_ms"], float)
    assert "s3cret-redis" not in out


def test_main_hides_the_api_password(run_module, closed_port):
    code, result, out = run_module(queue_health, {
        "backend": "rabbitmq",
        "api_url": "http://127.0.0.1:%d" % closed_port,
        "api_user": "monitor",
        "api_password": "s3cret-api",
        "queues": [{"name": "jobs"}],
    })
    assert code == 0
    assert result["status"] == "critical"
    assert "s3cret-api" not in out


def test_main_runs_the_same_checks_in_check_mode(run_module, closed_port):
    args = {"backend": "redis_list", "login_port": closed_port, "queues": [{"name": "jobs"}]}
    code, result, _out = run_module(queue_health, args, check_mode=True)
    assert code == 0
    assert result["changed"] is False
    assert result["status"] == "critical"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"backend": "rabbitmq", "queues": [{"name": "q"}]}, "api_url"),
        ({"backend": "metrics", "queues": [{"name": "q"}]}, "api_url"),
        ({"backend": "redis_list", "queues": [{"name": "q"}], "sample_interval": -1}, "sample_interval"),
        ({"backend": "redis_list", "queues": []}, "queues"),
        ({"backend": "redis_list", "queues": [{"group": "g"}]}, "name"),
        ({"backend": "kafka", "queues": [{"name": "q"}]}, "backend"),
        ({"backend": "redis_list", "queues": [{"name": "q", "depth_warnign": 1}]}, "depth_warnign"),
    ],
)
def test_main_rejects_bad_arguments(run_module, args, message):
    code, result, _out = run_module(queue_health, args)
    assert code == 1
    assert result["failed"] is True
    assert message in result["msg"]


def test_main_needs_redis_py_only_for_redis_backends(run_module, monkeypatch, closed_port):
    monkeypatch.setattr(_redis, "redis", None)
    args = {"backend": "redis_list", "login_port": closed_port, "queues": [{"name": "q"}]}
    code, result, _out = run_module(queue_health, args)
    assert code == 1
    assert "redis" in result["msg"]
    args = {"backend": "rabbitmq", "api_url": "http://127.0.0.1:%d" % closed_port, "queues": [{"name": "q"}]}
    code, result, _out = run_module(queue_health, args)
    assert code == 0
    assert result["status"] == "critical"
