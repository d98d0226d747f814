"""queue_health against real services: Redis (lists, streams, a BullMQ-shaped
keyspace), RabbitMQ with the management plugin, and a prometheus_client /metrics
endpoint; one run through ansible-playbook."""

import base64
import json
import threading
import time

import pytest
import redis
from ansible_collections.incident.remediation.plugins.modules.queue_health import (
    QUEUE_SPEC,
    THRESHOLD_SPEC,
    argument_spec,
    check,
)
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from tests.harness import ansible
from tests.harness.ansible import wait_for
from tests.harness.docker import redis_server
from tests.harness.rabbitmq import rabbitmq_server

pytestmark = pytest.mark.integration

def params(backend, queues, **overrides):
    """Module params as AnsibleModule fills them."""
    values = {name: spec.get("default") for name, spec in argument_spec().items()}
    values.update(backend=backend, connect_timeout=2.0, **overrides)
    values["queues"] = [dict(dict.fromkeys(QUEUE_SPEC), **queue) for queue in queues]
    return values


def run(values):
    """check() with the thresholds main() would take from the options."""
    return check(values, {name: values[name] for name in THRESHOLD_SPEC})


def by_name(result):
    return {queue["name"]: queue for queue in result["queues"]}


# ---------------------------------------------------------------- Redis


@pytest.fixture(scope="module")
def redis_port():
    with redis_server() as (port, _container):
        yield port


@pytest.fixture
def client(redis_port):
    connection = redis.Redis(port=redis_port)
    connection.flushall()
    yield connection
    connection.close()


def rparams(port, backend, queues, **overrides):
    return params(backend, queues, login_port=port, **overrides)


def test_lists_with_per_queue_thresholds_and_the_worst_overall(redis_port, client):
    client.rpush("jobs:small", *range(50))
    client.rpush("jobs:medium", *range(150))
    client.rpush("jobs:big", *range(600))
    client.rpush("jobs:bulk", *range(600))
    result = run(rparams(redis_port, "redis_list", [
        {"name": "jobs:small"},
        {"name": "jobs:medium"},
        {"name": "jobs:big"},
        {"name": "jobs:bulk", "depth_warning": 1000, "depth_critical": 5000},
        {"name": "jobs:none"},
    ]))
    queues = by_name(result)
    assert {name: queue["status"] for name, queue in queues.items()} == {
        "jobs:small": "ok",
        "jobs:medium": "warning",
        "jobs:big": "critical",
        "jobs:bulk": "ok",
        "jobs:none": "ok",  # a missing list is an empty one in Redis
    }
    assert result["status"] == "critical"
    assert result["is_available"] is True
    assert result["reasons"] == [
        "queue jobs:medium: queue depth is 150, above the warning threshold of 100",
        "queue jobs:big: queue depth is 600, above the critical threshold of 500",
    ]
    assert result["metrics"] == dict(queue_count=5, total_depth=1400, max_depth=600, sample_seconds=None)
    assert queues["jobs:bulk"]["thresholds"]["depth_warning"] == 1000
    assert queues["jobs:small"]["metrics"]["consumers"] is None  # a list does not know its consumers


def test_a_key_of_the_wrong_type_is_unknown(redis_port, client):
    client.set("jobs:oops", "not a list")
    result = run(rparams(redis_port, "redis_list", [{"name": "jobs:oops"}]))
    assert result["status"] == "unknown"
    assert "holds the wrong type" in result["queues"][0]["error"]


# ---------------------------------------------------------------- Redis streams


@pytest.fixture
def stream(client):
    """events: 30 entries 120 s old; group indexer read 10 and acknowledged 4 (6
    pending, one of them idle for 90 s), group backfill has no consumer yet, group
    audit starts at the end."""
    base_ms = int(time.time() * 1000) - 120_000
    client.xgroup_create("events", "indexer", id="0", mkstream=True)
    client.xgroup_create("events", "backfill", id="0")
    ids = [client.xadd("events", {"n": index}, id=f"{base_ms + index}-0") for index in range(30)]
    client.xgroup_create("events", "audit", id="$")
    client.xreadgroup("indexer", "worker-1", {"events": ">"}, count=10)
    client.xack("events", "indexer", *ids[:4])
    client.xclaim("events", "indexer", "worker-1", 0, [ids[4]], idle=90_000)
    return ids


def test_stream_judges_the_group_with_the_largest_backlog(redis_port, client, stream):
    result = run(rparams(redis_port, "redis_stream", [{"name": "events"}]))
    (queue,) = result["queues"]
    metrics = queue["metrics"]
    assert metrics["length"] == 30
    assert metrics["group"] == "backfill"  # 30 undelivered beats indexer's 20 + 6 pending
    assert metrics["depth"] == metrics["waiting"] == 30
    assert metrics["consumers"] == 0
    assert queue["status"] == "critical"
    assert queue["reasons"] == ["no consumers: 30 jobs are waiting and no consumer is connected to take them"]
    assert "3 consumer groups" in queue["notes"][0]
    groups = {group["name"]: group for group in metrics["groups"]}
    assert set(groups) == {"indexer", "backfill", "audit"}
    indexer = groups["indexer"]
    assert (indexer["consumers"], indexer["pending"], indexer["lag"], indexer["entries_read"]) == (1, 6, 20, 10)
    assert indexer["last_delivered_id"] == stream[9].decode()
    assert indexer["oldest_pending_idle_seconds"] == pytest.approx(90, abs=5)
    assert indexer["oldest_undelivered_age_seconds"] == pytest.approx(120 - 0.01 * 10, abs=5)
    assert groups["audit"]["lag"] == 0
    assert groups["audit"]["oldest_undelivered_age_seconds"] is None


def test_stream_group_selected(redis_port, client, stream):
    result = run(rparams(redis_port, "redis_stream", [
        {"name": "events", "group": "indexer"},
        {"name": "events", "group": "audit"},
        {"name": "events", "group": "nobody"},
        {"name": "nostream"},
    ], age_warning_seconds=60.0))
    indexer, audit, nobody, nostream = result["queues"]
    assert indexer["metrics"]["depth"] == 20
    assert indexer["metrics"]["in_flight"] == 6
    assert indexer["metrics"]["consumers"] == 1
    assert indexer["metrics"]["oldest_pending_idle_seconds"] == pytest.approx(90, abs=5)
    assert indexer["status"] == "warning"
    assert indexer["reasons"][0].startswith("oldest waiting job age is 1")
    assert indexer["reasons"][0].endswith(" s, above the warning threshold of 60 s")
    assert audit["status"] == "ok"
    assert audit["metrics"]["depth"] == 0
    assert nobody["status"] == "unknown"
    assert nobody["error"] == "consumer group nobody does not exist on stream events"
    assert nostream["error"] == "stream nostream does not exist"
    assert result["status"] == "unknown"


def test_stream_in_flight_counts_with_count_in_flight(redis_port, client, stream):
    result = run(rparams(redis_port, "redis_stream", [{"name": "events", "group": "indexer", "depth_warning": 25}],
                           count_in_flight=True))
    assert result["queues"][0]["metrics"]["depth"] == 26
    assert result["status"] == "warning"


# ---------------------------------------------------------------- BullMQ-shaped keyspace


def bullmq_job(client, queue, job_id, state, timestamp_ms, *, prefix="bull", delay=0):
    """A job as BullMQ stores it: a hash <prefix>:<queue>:<id> and its id in the state's list or set."""
    base = f"{prefix}:{queue}"
    client.hset(f"{base}:{job_id}", mapping={
        "name": "send", "data": json.dumps({"n": job_id}), "opts": "{}", "timestamp": timestamp_ms,
        "delay": delay, "priority": 0, "attemptsMade": 0,
    })
    if state in ("wait", "active", "paused"):
        client.lpush(f"{base}:{state}", job_id)  # BullMQ LPUSHes and workers take from the tail
    else:
        client.zadd(f"{base}:{state}", {job_id: timestamp_ms})
    client.incr(f"{base}:id")
    client.hset(f"{base}:meta", mapping={"opts.maxLenEvents": 10000, "version": "bullmq:5.0.0"})


def bullmq_queue(client, queue, counts, oldest_age_s=300.0, prefix="bull"):
    """counts per state; wait jobs are added oldest first, the oldest oldest_age_s old."""
    now_ms = int(time.time() * 1000)
    job_id = 0
    for state, count in counts.items():
        for index in range(count):
            job_id += 1
            stamp = now_ms - int(oldest_age_s * 1000) + index * 10 if state == "wait" else now_ms
            bullmq_job(client, queue, str(job_id), state, stamp, prefix=prefix)


@pytest.fixture
def workers(redis_port):
    """Open connections named as BullMQ workers name theirs; closed afterwards."""
    opened = []

    def connect(name):
        connection = redis.Redis(port=redis_port, client_name=name)
        connection.ping()
        opened.append(connection)
        return connection

    yield connect
    for connection in opened:
        connection.close()


def b64(text):
    return base64.b64encode(text.encode()).decode()


def test_bullmq_counts_workers_and_oldest_job(redis_port, client, workers):
    bullmq_queue(client, "emails", {"wait": 120, "active": 4, "delayed": 7, "failed": 3, "completed": 50,
                                    "prioritized": 2})
    workers(f"bull:{b64('emails')}")  # an unnamed worker
    workers(f"bull:{b64('emails')}:w:mailer")  # a named worker
    workers(f"bull:{b64('emails')}:qe")  # QueueEvents: not a worker
    workers(f"bull:{b64('exports')}")  # another queue's worker
    result = run(rparams(redis_port, "bullmq", [{"name": "emails"}], failed_warning=2))
    (queue,) = result["queues"]
    metrics = queue["metrics"]
    assert {key: metrics[key] for key in ("waiting", "in_flight", "delayed", "failed", "completed", "prioritized",
                                          "consumers", "paused")} == {
        "waiting": 122, "in_flight": 4, "delayed": 7, "failed": 3, "completed": 50, "prioritized": 2,
        "consumers": 2, "paused": False,
    }
    assert metrics["oldest_age_seconds"] == pytest.approx(300, abs=5)
    assert queue["source"] == "bull:emails"
    assert queue["status"] == "warning"
    assert queue["reasons"] == [
        "queue depth is 122, above the warning threshold of 100",
        "failed jobs is 3, above the warning threshold of 2",
    ]


def test_bullmq_without_workers_is_critical(redis_port, client):
    bullmq_queue(client, "exports", {"wait": 5})
    result = run(rparams(redis_port, "bullmq", [{"name": "exports"}]))
    assert result["queues"][0]["metrics"]["consumers"] == 0
    assert result["status"] == "critical"
    assert result["reasons"] == [
        "queue exports: no consumers: 5 jobs are waiting and no consumer is connected to take them"
    ]
    quiet = run(rparams(redis_port, "bullmq", [{"name": "exports"}], check_consumers=False))
    assert quiet["status"] == "ok"


def test_bullmq_paused_queue_and_custom_prefix(redis_port, client, workers):
    bullmq_queue(client, "reports", {"paused": 3}, prefix="{app}")
    client.hset("{app}:reports:meta", "paused", 1)
    workers(f"{{app}}:{b64('reports')}")
    result = run(rparams(redis_port, "bullmq", [{"name": "reports"}], bullmq_prefix="{app}"))
    metrics = result["queues"][0]["metrics"]
    assert (metrics["waiting"], metrics["paused"], metrics["consumers"]) == (3, True, 1)
    assert result["status"] == "warning"
    assert result["reasons"] == ["queue reports: the queue is paused with 3 jobs waiting"]
    wrong_prefix = run(rparams(redis_port, "bullmq", [{"name": "reports"}]))
    assert wrong_prefix["status"] == "unknown"
    assert "no BullMQ keys and no workers for bull:reports" in wrong_prefix["reasons"][0]


def test_bullmq_workers_null_when_client_list_is_not_allowed(redis_port, client):
    bullmq_queue(client, "emails", {"wait": 2})
    client.acl_setuser("monitor", enabled=True, passwords=["+monitor-pass"], keys=["*"],
                       categories=["+@read"], commands=["+ping", "+time", "-client"])
    result = run(rparams(redis_port, "bullmq", [{"name": "emails"}], login_user="monitor",
                           login_password="monitor-pass"))
    (queue,) = result["queues"]
    assert queue["metrics"]["consumers"] is None
    assert queue["metrics"]["waiting"] == 2
    assert queue["status"] == "ok"
    assert queue["notes"][0].startswith("workers not counted: CLIENT LIST failed (NoPermissionError")
    client.acl_deluser("monitor")


# ---------------------------------------------------------------- growth rate over sample_interval


class Worker(threading.Thread):
    """Pops (or pushes) one item every `pace` seconds until told to stop or the list is empty."""

    def __init__(self, port, key, pace, push=False):
        super().__init__(daemon=True)
        self.client = redis.Redis(port=port)
        self.key, self.pace, self.push = key, pace, push
        self.stop = threading.Event()

    def run(self):
        while not self.stop.wait(self.pace):
            if self.push:
                self.client.lpush(self.key, "job")
            elif self.client.rpop(self.key) is None:
                return

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.join(timeout=5)
        self.client.close()


def test_a_backlog_that_drains_during_the_interval_is_draining(redis_port, client):
    client.rpush("jobs", *range(800))
    with Worker(redis_port, "jobs", pace=0.002):
        wait_for(lambda: client.llen("jobs"), lambda length: length < 800, timeout=10, interval=0.01)
        result = run(rparams(redis_port, "redis_list", [{"name": "jobs"}], sample_interval=1.0))
    metrics = result["queues"][0]["metrics"]
    first, last = metrics["samples"]
    assert last < first
    assert metrics["sample_seconds"] == pytest.approx(1.0, abs=0.3)
    assert metrics["growth_rate"] < 0
    assert metrics["draining"] is True
    assert metrics["drain_eta_seconds"] is not None
    assert result["metrics"]["sample_seconds"] == metrics["sample_seconds"]
    if result["status"] != "ok":
        assert ": draining" in result["reasons"][-1]


def test_a_stuck_backlog_is_not_draining(redis_port, client):
    client.rpush("jobs", *range(150))
    result = run(rparams(redis_port, "redis_list", [{"name": "jobs"}], sample_interval=0.3))
    metrics = result["queues"][0]["metrics"]
    assert metrics["samples"] == [150, 150]
    assert (metrics["growth_rate"], metrics["draining"]) == (0.0, False)
    assert result["reasons"][-1] == (
        "queue jobs: depth went from 150 to 150 in %s s (+0 jobs/s): not draining" % metrics["sample_seconds"]
    )


def test_a_growing_backlog_is_not_draining(redis_port, client):
    client.rpush("jobs", *range(10))
    with Worker(redis_port, "jobs", pace=0.005, push=True):
        result = run(rparams(redis_port, "redis_list", [{"name": "jobs"}], sample_interval=0.5))
    metrics = result["queues"][0]["metrics"]
    assert metrics["growth_rate"] > 0
    assert metrics["draining"] is False


def test_an_empty_queue_is_neither(redis_port, client):
    result = run(rparams(redis_port, "redis_list", [{"name": "jobs"}], sample_interval=0.2))
    assert result["queues"][0]["metrics"]["draining"] is None
    assert result["status"] == "ok"


# ---------------------------------------------------------------- /metrics gauge


@pytest.fixture
def metrics_endpoint():
    registry = CollectorRegistry()
    depth = Gauge("queue_depth", "Jobs waiting", ["queue", "job"], registry=registry)
    consumers = Gauge("queue_consumers", "Workers", ["queue", "job"], registry=registry)
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/metrics", depth, consumers
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_metrics_gauge_per_queue(metrics_endpoint):
    url, depth, consumers = metrics_endpoint
    depth.labels(queue="default", job="worker").set(42)
    depth.labels(queue="mail", job="worker").set(130)
    depth.labels(queue="mail", job="other").set(1000)  # filtered out by metrics_labels
    depth.labels(queue="reports", job="worker").set(7)
    consumers.labels(queue="default", job="worker").set(2)
    consumers.labels(queue="reports", job="worker").set(0)
    result = run(params("metrics", [{"name": "default"}, {"name": "mail"}, {"name": "reports"}, {"name": "gone"}],
                          api_url=url, metrics_labels={"job": "worker"}, metrics_consumers_gauge="queue_consumers"))
    queues = by_name(result)
    assert queues["default"]["metrics"]["depth"] == 42
    assert queues["default"]["metrics"]["consumers"] == 2
    assert queues["default"]["status"] == "ok"
    assert queues["mail"]["metrics"]["depth"] == 130
    assert queues["mail"]["status"] == "warning"
    assert queues["mail"]["notes"] == ['no series queue_consumers{job="worker",queue="mail"}: consumers not known']
    assert queues["reports"]["status"] == "critical"  # 7 waiting, 0 consumers
    assert queues["gone"]["status"] == "unknown"
    assert queues["gone"]["error"] == f'no series queue_depth{{job="worker",queue="gone"}} at {url}'
    assert result["is_available"] is True


def test_metrics_custom_gauge_and_label(metrics_endpoint):
    url, depth, _ = metrics_endpoint
    depth.labels(queue="default", job="a").set(300)
    depth.labels(queue="default", job="b").set(300)
    result = run(params("metrics", [{"name": "a"}], api_url=url, metrics_gauge="queue_depth", metrics_label="job"))
    assert result["queues"][0]["metrics"]["depth"] == 300
    summed = run(params("metrics", [{"name": "default"}], api_url=url))
    assert summed["queues"][0]["metrics"]["depth"] == 600
    assert summed["status"] == "critical"


def test_metrics_endpoint_that_is_not_prometheus_is_reported(redis_port):
    # A Redis port speaks no HTTP: the scrape fails and the result says so.
    result = run(params("metrics", [{"name": "default"}], api_url=f"http://127.0.0.1:{redis_port}/metrics"))
    assert result["status"] == "critical"
    assert result["is_available"] is False
    assert result["error"].startswith(f"scraping http://127.0.0.1:{redis_port}/metrics failed")


# ---------------------------------------------------------------- RabbitMQ


@pytest.fixture(scope="module")
def broker():
    with rabbitmq_server() as server:
        yield server


def qparams(broker, queues, **overrides):
    return params("rabbitmq", queues, api_url=broker.api_url, api_user=broker.user, api_password=broker.password,
                  **overrides)


def test_rabbitmq_ready_unacked_and_consumers(broker):
    broker.declare_queue("invoices")
    broker.publish("invoices", 120, timestamp=int(time.time()) - 60)
    consumer = broker.start_consumer("invoices", prefetch=5)
    try:
        result = wait_for(lambda: run(qparams(broker, [{"name": "invoices"}])),
                          lambda result: result["queues"][0]["metrics"]["in_flight"] == 5
                          and result["queues"][0]["metrics"]["publish_rate"] is not None, timeout=30)
    finally:
        broker.stop_consumer(consumer)
    metrics = result["queues"][0]["metrics"]
    assert (metrics["waiting"], metrics["in_flight"], metrics["length"], metrics["consumers"]) == (115, 5, 120, 1)
    assert metrics["state"] == "running"
    assert metrics["oldest_age_seconds"] == pytest.approx(60, abs=30)
    assert result["status"] == "warning"
    assert result["reasons"] == ["queue invoices: queue depth is 115, above the warning threshold of 100"]
    with_in_flight = run(qparams(broker, [{"name": "invoices", "depth_warning": 117}], count_in_flight=True))
    assert with_in_flight["queues"][0]["metrics"]["depth"] in (120, 115)  # 120 until the broker sees the stop


def test_rabbitmq_no_consumers_missing_queue_and_other_vhost(broker):
    broker.declare_queue("orphans")
    broker.publish("orphans", 3)
    assert broker.api("PUT", "/api/vhosts/eu")[0] in (201, 204)
    assert broker.api("PUT", f"/api/permissions/eu/{broker.user}",
                      {"configure": ".*", "write": ".*", "read": ".*"})[0] in (201, 204)
    broker.declare_queue("eu-jobs", vhost="eu")
    broker.publish("eu-jobs", 2, vhost="eu")
    consumer = broker.start_consumer("orphans", prefetch=1)
    broker.stop_consumer(consumer)
    queues = [{"name": "orphans"}, {"name": "nope"}, {"name": "eu-jobs", "vhost": "eu"}]
    result = wait_for(lambda: run(qparams(broker, queues)),
                      lambda result: [queue["metrics"]["waiting"] for queue in result["queues"]] == [3, None, 2]
                      and result["queues"][0]["metrics"]["consumers"] == 0, timeout=30)
    orphans, nope, eu = result["queues"]
    assert orphans["status"] == "critical"
    assert orphans["reasons"] == ["no consumers: 3 jobs are waiting and no consumer is connected to take them"]
    assert nope["status"] == "unknown"
    assert nope["error"] == "no such queue in vhost / (HTTP 404)"
    assert eu["source"] == "/api/queues/eu/eu-jobs"
    assert "queue eu-jobs (vhost eu): no consumers" in result["reasons"][-1]
    assert result["status"] == "critical"


def test_rabbitmq_wrong_password_is_unknown(broker):
    result = run(params("rabbitmq", [{"name": "invoices"}], api_url=broker.api_url, api_user=broker.user,
                          api_password="wrong"))
    assert result["status"] == "unknown"
    assert result["is_available"] is False
    assert result["reasons"] == [f"RabbitMQ management API at {broker.api_url} refused the credentials (HTTP 401)"]


def test_module_through_ansible_hides_the_password(broker, tmp_path):
    broker.declare_queue("ansible-jobs")
    broker.publish("ansible-jobs", 4)
    wait_for(lambda: broker.queue_info("ansible-jobs").get("messages_ready"), lambda ready: ready == 4, timeout=30)
    playbook = tmp_path / "check.yml"
    out = tmp_path / "result.json"
    playbook.write_text(
        f"""
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Check the queue twice, 0.5 s apart
      incident.remediation.queue_health:
        backend: rabbitmq
        api_url: {broker.api_url}
        api_user: {broker.user}
        api_password: {broker.password}
        queues:
          - name: ansible-jobs
            depth_warning: 3
        sample_interval: 0.5
      register: queues
    - ansible.builtin.copy:
        content: "{{{{ queues | to_json }}}}"
        dest: {out}
        mode: "0600"
"""
    )
    run = ansible.run_playbook(playbook, {}, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(out.read_text())
    assert result["changed"] is False
    assert result["status"] == "critical"  # 4 waiting, above 3, and no consumer
    assert result["checked"] == broker.api_url
    assert result["queues"][0]["metrics"]["samples"] == [4, 4]
    assert result["queues"][0]["metrics"]["draining"] is False
    assert broker.password not in run.stdout + run.stderr
    assert broker.password not in out.read_text()
