"""The Prometheus rules in extensions/prometheus (docs/alerting.md), in the real
Prometheus image: `promtool check rules` accepts every file without a lint warning;
`promtool test rules` shows each alert firing on series shaped like what its exporter
or service exports, not before its `for:`, and silent just below its threshold. Every
alert name of the catalog has a rule, each rule sits in the group of the playbook that
answers it, and an alert's labels select its route through the adapter's own routing.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from remediate.routes import check_routes, load_routes

from tests.harness.ansible import REPO_ROOT

pytestmark = pytest.mark.integration

RULES_DIR = REPO_ROOT / "extensions" / "prometheus"
RULE_FILES = sorted(RULES_DIR.glob("*.rules.yml"))
ROUTES = REPO_ROOT / "routes" / "routes.yml"
CATALOG = REPO_ROOT / "routes" / "catalog.yml"
# The runbooks' catalog, beside the checkout where the project's notes live; the test
# that reads it says so when it is not there (a clone of the repository alone).
CATALOG_MD = REPO_ROOT.parent / "shared" / "alert-catalog.md"
IMAGE = "incident-remediation/prometheus"
DOCS = REPO_ROOT / "docs" / "alerting.md"
# Catalog names that are runbook section titles, not alerts: Prometheus alert names
# are metric-shaped (no spaces). The rule that raises each situation:
RUNBOOK_TITLES = {
    "Cache Failures": "RedisDown",
    "Database Outage": "DatabaseDown",
    "Database Performance Issues": "HighDatabaseLatency",
}
MINUTES = 40  # length of every input series


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


DOCUMENTS = {path.name: load(path) for path in RULE_FILES}
ALERT_RULES = [
    (group["name"], rule)
    for document in DOCUMENTS.values()
    for group in document["groups"]
    for rule in group["rules"]
    if "alert" in rule
]


def rules_named(alert: str) -> list[dict]:
    return [rule for _, rule in ALERT_RULES if rule["alert"] == alert]


def minutes(duration: str | None) -> int:
    if not duration:
        return 0
    number, unit = re.fullmatch(r"(\d+)([mh])", duration).groups()
    return int(number) * (60 if unit == "h" else 1)


def gauge(series: str, value: float) -> dict:
    return {"series": series, "values": f"{value}x{MINUTES}"}


def counter(series: str, per_minute: float) -> dict:
    """A counter from 0 that grows by `per_minute` each minute."""
    return {"series": series, "values": f"0+{per_minute}x{MINUTES}"}


def series_labels(series: str) -> dict:
    return dict(re.findall(r'(\w+)="([^"]*)"', series))


@dataclass(frozen=True)
class Case:
    """One alert on one kind of series: `firing` crosses its threshold, `below` stays just short of it."""

    alert: str
    firing: list[dict]
    below: list[dict]
    # The alert's labels but severity; None: the first firing series' labels, plus `extra`.
    labels: dict | None = None
    extra: dict = field(default_factory=dict)
    severity: str | None = None  # None: the one rule of that name's
    # Minutes before the condition can hold: 1 for a ratio of rates (two samples); for a
    # rate compared with a number, until the window is full (a counter that starts at 0
    # is not extrapolated back past its start, so its rate reads low until then).
    warmup: int = 0
    fires_at: int | None = None  # None: warmup + for + 2
    quiet_at: int | None = None  # None: warmup + for - 1 (still pending); rules without `for` set it
    below_alerts: tuple = ()  # alerts of the same name that do fire on `below` (another severity)
    name: str = ""

    @property
    def id(self) -> str:
        return f"{self.alert}{'-' + self.name if self.name else ''}"

    def expected_labels(self) -> dict:
        labels = self.labels if self.labels is not None else series_labels(self.firing[0]["series"])
        severity = self.severity or rules_named(self.alert)[0]["labels"]["severity"]
        return {**{k: v for k, v in labels.items() if k != "__name__"}, **self.extra, "severity": severity}

    def times(self) -> tuple[int | None, int]:
        wait = max(minutes(rule.get("for")) for rule in rules_named(self.alert))
        fires = self.fires_at if self.fires_at is not None else self.warmup + wait + 2
        quiet = self.quiet_at if self.quiet_at is not None else (self.warmup + wait - 1 if wait else None)
        return quiet, fires

    def promtool_tests(self) -> list[dict]:
        quiet, fires = self.times()
        expected = {"exp_labels": self.expected_labels()}
        checks = [{"eval_time": f"{fires}m", "alertname": self.alert, "exp_alerts": [expected]}]
        if quiet is not None:
            checks.insert(0, {"eval_time": f"{quiet}m", "alertname": self.alert, "exp_alerts": []})
        below = [{"exp_labels": labels} for labels in self.below_alerts]
        return [
            {"interval": "1m", "input_series": self.firing, "alert_rule_test": checks},
            {
                "interval": "1m",
                "input_series": self.below,
                "alert_rule_test": [{"eval_time": f"{fires + 5}m", "alertname": self.alert, "exp_alerts": below}],
            },
        ]


# Label sets of the series as the scrape configuration labels them (docs/alerting.md).
API = 'job="api",instance="api:3001",service="api",host="app1"'
CREDLINK = 'job="credlink-api",instance="10.1.2.3:8080",namespace="credlink",service="credlink-api"'
PG = 'job="postgres",instance="postgres-exporter:9187",service="postgres",host="db1"'
REDIS = 'job="redis",instance="redis-exporter:9121",service="redis",host="app1"'
CADVISOR_COMPOSE = (
    'job="cadvisor",instance="cadvisor:8080",host="app1",id="/docker/3f2a",name="shop-api-1",image="shop/api:1.4",'
    'container_label_com_docker_compose_project="shop",container_label_com_docker_compose_service="api"'
)
CADVISOR_KUBE = (
    'job="kubelet",instance="node-1",namespace="shop",pod="api-5d9c7b-x2x9k",container="api",'
    'id="/kubepods/burstable/pod1/3f2a",image="shop/api:1.4"'
)
REMEDIATE = 'job="remediate",instance="ops:9787"'
DAY = 86400


def requests(labels: str, name: str, ok: float, failed: float, *, statuses: tuple[str, str] = ("200", "500")):
    """A counter by status: `ok` and `failed` per minute."""
    ok_status, failed_status = statuses
    return [
        counter(f'{name}{{{labels},status="{ok_status}"}}', ok),
        counter(f'{name}{{{labels},status="{failed_status}"}}', failed),
    ]


def histogram(labels: str, buckets: dict[str, float]) -> list[dict]:
    """http_request_duration_seconds: requests per minute under each bucket's bound."""
    return [counter(f'http_request_duration_seconds_bucket{{{labels},le="{le}"}}', n) for le, n in buckets.items()]


def pool(labels: str, active: int, idle: int) -> list[dict]:
    """postgres_exporter: pg_stat_activity_count per state, max_connections 100, 3 reserved."""
    return [
        gauge(f'pg_stat_activity_count{{{labels},datname="shop",state="active"}}', active),
        gauge(f'pg_stat_activity_count{{{labels},datname="shop",state="idle"}}', idle),
        gauge(f'pg_stat_activity_count{{{labels},datname="postgres",state="idle in transaction"}}', 0),
        gauge(f'pg_settings_max_connections{{{labels},server="db:5432"}}', 100),
        gauge(f'pg_settings_superuser_reserved_connections{{{labels},server="db:5432"}}', 3),
    ]


def container(labels: str, memory: float, cpu_per_minute: float) -> list[dict]:
    """cAdvisor: working set against a 1000-byte limit, CPU seconds against a one-core quota."""
    return [
        gauge(f"container_memory_working_set_bytes{{{labels}}}", memory),
        gauge(f"container_spec_memory_limit_bytes{{{labels}}}", 1000),
        counter(f"container_cpu_usage_seconds_total{{{labels}}}", cpu_per_minute),
        gauge(f"container_spec_cpu_quota{{{labels}}}", 100000),
        gauge(f"container_spec_cpu_period{{{labels}}}", 100000),
    ]


def health_failures(check: str, per_minute: float) -> list[dict]:
    name = f'credlink_health_check_failures_total{{{CREDLINK},check="{check}"}}'
    return [counter(name, per_minute) if per_minute else gauge(name, 0)]


def statements(calls: float, seconds: float) -> list[dict]:
    """postgres_exporter --collector.stat_statements: one query class."""
    labels = f'{PG},datname="shop",user="app",queryid="4242"'
    return [
        counter(f"pg_stat_statements_calls_total{{{labels}}}", calls),
        counter(f"pg_stat_statements_seconds_total{{{labels}}}", seconds),
    ]


def cert(days_left: float) -> list[dict]:
    labels = 'job="blackbox-tls",instance="shop.example.com:443",service="ingress",namespace="shop"'
    return [gauge(f"probe_ssl_earliest_cert_expiry{{{labels}}}", days_left * DAY)]


ROUTING = {"service": "api", "host": "app1"}
CASES = [
    # service_down
    Case(
        "ServiceDown",
        [gauge('probe_success{job="blackbox-health",instance="http://api:3001/health",service="api",host="app1"}', 0)],
        [gauge('probe_success{job="blackbox-health",instance="http://api:3001/health",service="api",host="app1"}', 1)],
    ),
    Case(
        "WebServiceDown",
        [gauge('probe_success{job="blackbox-web",instance="http://web:3000/",service="web",host="app1"}', 0)],
        [gauge('probe_success{job="blackbox-web",instance="http://web:3000/",service="web",host="app1"}', 1)],
    ),
    Case(
        "BackendDown",
        [gauge('up{job="backend",instance="backend:8000",service="backend",namespace="shop"}', 0)],
        [gauge('up{job="backend",instance="backend:8000",service="backend",namespace="shop"}', 1)],
    ),
    Case(
        "KeycloakDown",
        [gauge('up{job="keycloak",instance="keycloak:9000",service="keycloak",namespace="auth"}', 0)],
        [gauge('up{job="keycloak",instance="keycloak:9000",service="keycloak",namespace="auth"}', 1)],
    ),
    Case(
        "CredlinkServiceDown",
        [
            gauge(
                'kube_deployment_status_replicas_available{job="ksm",namespace="credlink",deployment="credlink-api"}', 0
            ),
            gauge('kube_deployment_spec_replicas{job="ksm",namespace="credlink",deployment="credlink-api"}', 2),
        ],
        [
            gauge(
                'kube_deployment_status_replicas_available{job="ksm",namespace="credlink",deployment="credlink-api"}', 1
            ),
            gauge('kube_deployment_spec_replicas{job="ksm",namespace="credlink",deployment="credlink-api"}', 2),
        ],
        extra={"service": "credlink-api"},
    ),
    # high_error_rate: 5xx share of http_requests_total
    Case(
        "HighErrorRate",
        requests(API, "http_requests_total", 94, 6),
        requests(API, "http_requests_total", 95.1, 4.9),
        labels=ROUTING,
        warmup=1,
    ),
    Case(
        "CriticalErrorRate",
        requests(API, "http_requests_total", 89, 11),
        requests(API, "http_requests_total", 90.1, 9.9),
        labels=ROUTING,
        warmup=1,
    ),
    Case(
        "HealthCheckHighFailureRate",
        health_failures("redis", 1.2),
        health_failures("redis", 0.9),
        labels={"service": "credlink-api", "namespace": "credlink"},
        warmup=5,
    ),
    # high_latency: p95 from the buckets' rates
    Case(
        "HighResponseTime",
        histogram(API, {"1": 80, "2.5": 90, "5": 90, "10": 100, "+Inf": 100}),  # p95 7.5 s
        histogram(API, {"1": 80, "2.5": 90, "5": 95.2, "10": 100, "+Inf": 100}),  # p95 4.9 s
        labels=ROUTING,
        warmup=1,
    ),
    Case(
        "HighLatency",
        histogram(API, {"1": 84, "2.5": 100, "5": 100, "+Inf": 100}),  # p95 2.03 s
        histogram(API, {"1": 85.5, "2.5": 100, "5": 100, "+Inf": 100}),  # p95 1.98 s
        labels=ROUTING,
        warmup=1,
    ),
    Case(
        "HealthCheckSlowResponse",
        [gauge(f'credlink_health_check_response_time_ms{{{CREDLINK},check="database"}}', 5200)],
        [gauge(f'credlink_health_check_response_time_ms{{{CREDLINK},check="database"}}', 4990)],
        labels={"service": "credlink-api", "namespace": "credlink", "check": "database"},
    ),
    # service_degraded
    Case(
        "CredlinkServiceDegraded",
        [
            gauge(f'credlink_health_status{{{CREDLINK},status="degraded"}}', 1),
            gauge(f'credlink_health_status{{{CREDLINK},status="healthy"}}', 0),
        ],
        [
            gauge(f'credlink_health_status{{{CREDLINK},status="degraded"}}', 0),
            gauge(f'credlink_health_status{{{CREDLINK},status="healthy"}}', 1),
        ],
        labels={"service": "credlink-api", "namespace": "credlink"},
    ),
    # high_memory, high_cpu: cAdvisor on Compose and on Kubernetes
    Case(
        "HighMemoryUsage",
        container(CADVISOR_COMPOSE, 870, 0),
        container(CADVISOR_COMPOSE, 849, 0),
        labels={"host": "app1", "compose_project": "shop", "service": "api", "basis": "limit"},
        name="compose",
    ),
    Case(
        "HighMemoryUsage",
        [gauge(f"process_resident_memory_bytes{{{API}}}", 2.1 * 2**30)],
        [gauge(f"process_resident_memory_bytes{{{API}}}", 2 * 2**30)],
        extra={"basis": "resident"},
        name="resident",
    ),
    Case(
        "CriticalMemoryUsage",
        container(CADVISOR_KUBE, 960, 0),
        container(CADVISOR_KUBE, 949, 0),
        labels={"namespace": "shop", "service": "api"},
    ),
    Case(
        "HighCPUUsage",
        container(CADVISOR_COMPOSE, 100, 51),  # 0.85 of one core
        container(CADVISOR_COMPOSE, 100, 47.9),  # 0.798
        labels={"host": "app1", "compose_project": "shop", "service": "api"},
        warmup=5,
    ),
    # database_down
    Case(
        "DatabaseDown",
        [gauge(f"pg_up{{{PG}}}", 0), gauge(f"up{{{PG}}}", 1)],
        [gauge(f"pg_up{{{PG}}}", 1), gauge(f"up{{{PG}}}", 1)],
        name="unreachable",
    ),
    Case("DatabaseDown", [gauge(f"up{{{PG}}}", 0)], [gauge(f"up{{{PG}}}", 1)], name="exporter_gone"),
    Case(
        "DatabaseHealthCheckFailed",
        health_failures("database", 1),
        health_failures("database", 0),
        labels={"check": "database", "namespace": "credlink", "service": "database"},
        warmup=1,
    ),
    # db_pool_exhaustion: connections against max_connections minus reserved (97)
    Case(
        "DatabaseConnectionPoolExhaustion",
        pool(PG, 50, 32),
        pool(PG, 50, 27),
        labels={"service": "postgres", "host": "db1"},
    ),
    Case(
        "DatabaseConnectionPoolCritical",
        pool(PG, 60, 33),
        pool(PG, 60, 32),
        labels={"service": "postgres", "host": "db1"},
    ),
    Case(
        "DatabaseConnectionPoolExhausted",
        pool(PG, 60, 37),
        pool(PG, 60, 36),
        labels={"service": "postgres", "host": "db1"},
    ),
    Case(
        "SQLAlchemyPoolExhausted",
        [
            gauge(
                'sqlalchemy_pool_checked_out{job="backend",instance="backend:8000",service="backend",namespace="shop"}',
                20,
            ),
            gauge('sqlalchemy_pool_size{job="backend",instance="backend:8000",service="backend",namespace="shop"}', 20),
        ],
        [
            gauge(
                'sqlalchemy_pool_checked_out{job="backend",instance="backend:8000",service="backend",namespace="shop"}',
                19,
            ),
            gauge('sqlalchemy_pool_size{job="backend",instance="backend:8000",service="backend",namespace="shop"}', 20),
        ],
        labels={"service": "backend", "namespace": "shop"},
    ),
    # db_latency: 12 calls a minute (0.2/s) averaging 1.1 s, then 0.99 s
    Case(
        "HighDatabaseLatency",
        statements(12, 13.2),
        statements(12, 11.9),
        labels={"service": "postgres", "host": "db1"},
        warmup=3,
    ),
    # redis_down, redis_memory, cache_hit_rate: redis_exporter
    Case("RedisDown", [gauge(f"redis_up{{{REDIS}}}", 0)], [gauge(f"redis_up{{{REDIS}}}", 1)]),
    Case(
        "RedisConnectionFailure",
        [counter(f"redis_rejected_connections_total{{{REDIS}}}", 1)],
        [gauge(f"redis_rejected_connections_total{{{REDIS}}}", 7)],
        warmup=1,
    ),
    Case(
        "RedisHealthCheckFailed",
        health_failures("redis", 1),
        health_failures("redis", 0),
        labels={"check": "redis", "namespace": "credlink", "service": "redis"},
        warmup=1,
    ),
    Case(
        "RedisHighMemory",
        [gauge(f"redis_memory_used_bytes{{{REDIS}}}", 910), gauge(f"redis_memory_max_bytes{{{REDIS}}}", 1000)],
        [gauge(f"redis_memory_used_bytes{{{REDIS}}}", 899), gauge(f"redis_memory_max_bytes{{{REDIS}}}", 1000)],
    ),
    Case(
        "LowCacheHitRate",
        [
            counter(f"redis_keyspace_hits_total{{{REDIS}}}", 2820),
            counter(f"redis_keyspace_misses_total{{{REDIS}}}", 3000),
        ],
        [
            counter(f"redis_keyspace_hits_total{{{REDIS}}}", 3000),
            counter(f"redis_keyspace_misses_total{{{REDIS}}}", 2900),
        ],
        warmup=1,
    ),
    # queue_depth: the application's queue_depth gauge, `service` naming the workers
    Case(
        "HighQueueDepth",
        [gauge('queue_depth{job="api",instance="api:3001",service="worker",host="app1",queue="uploads"}', 101)],
        [gauge('queue_depth{job="api",instance="api:3001",service="worker",host="app1",queue="uploads"}', 100)],
        labels={"service": "worker", "host": "app1", "queue": "uploads"},
    ),
    Case(
        "CriticalQueueDepth",
        [gauge('queue_depth{job="api",instance="api:3001",service="worker",host="app1",queue="uploads"}', 501)],
        [gauge('queue_depth{job="api",instance="api:3001",service="worker",host="app1",queue="uploads"}', 500)],
        labels={"service": "worker", "host": "app1", "queue": "uploads"},
    ),
    # rpc_failover, ipfs_failover: the application's counters by status
    Case(
        "BlockchainRPCDown",
        requests(API, "blockchain_rpc_requests_total", 49, 51, statuses=("success", "error")),
        requests(API, "blockchain_rpc_requests_total", 50, 50, statuses=("success", "error")),
        labels=ROUTING,
        warmup=1,
    ),
    Case(
        "BlockchainTransactionFailures",
        requests(API, "blockchain_transactions_total", 89, 11, statuses=("success", "failed")),
        requests(API, "blockchain_transactions_total", 90.1, 9.9, statuses=("success", "failed")),
        labels=ROUTING,
        warmup=1,
    ),
    Case(
        "HighIpfsFailureRate",
        requests(API, "ipfs_uploads_total", 79, 21, statuses=("success", "failure")),
        requests(API, "ipfs_uploads_total", 80.1, 19.9, statuses=("success", "failure")),
        labels=ROUTING,
        warmup=1,
    ),
    Case(
        "CriticalIpfsFailureRate",
        requests(API, "ipfs_uploads_total", 49, 51, statuses=("success", "failure")),
        requests(API, "ipfs_uploads_total", 50.1, 49.9, statuses=("success", "failure")),
        labels=ROUTING,
        warmup=1,
    ),
    # cert_expiry: a warning under 30 days, critical under 7
    Case("CertificateExpiringSoon", cert(20), cert(30.1), severity="warning", name="30_days"),
    Case(
        "CertificateExpiringSoon",
        cert(6),
        cert(7.1),
        severity="critical",
        below_alerts=({**series_labels(cert(7.1)[0]["series"]), "severity": "warning"},),
        name="7_days",
    ),
    # monitoring_down: Prometheus's own metrics
    Case(
        "PrometheusAlertingFailure",
        [
            gauge(
                'prometheus_notifications_alertmanagers_discovered{job="prometheus",instance="localhost:9090",service="prometheus",namespace="monitoring"}',
                0,
            )
        ],
        [
            gauge(
                'prometheus_notifications_alertmanagers_discovered{job="prometheus",instance="localhost:9090",service="prometheus",namespace="monitoring"}',
                1,
            )
        ],
        name="no_alertmanager",
    ),
    Case(
        "PrometheusAlertingFailure",
        [
            counter(
                'prometheus_notifications_errors_total{job="prometheus",instance="localhost:9090",service="prometheus",alertmanager="http://am:9093/api/v2/alerts"}',
                2,
            ),
            counter(
                'prometheus_notifications_sent_total{job="prometheus",instance="localhost:9090",service="prometheus",alertmanager="http://am:9093/api/v2/alerts"}',
                100,
            ),
        ],
        [
            counter(
                'prometheus_notifications_errors_total{job="prometheus",instance="localhost:9090",service="prometheus",alertmanager="http://am:9093/api/v2/alerts"}',
                0.9,
            ),
            counter(
                'prometheus_notifications_sent_total{job="prometheus",instance="localhost:9090",service="prometheus",alertmanager="http://am:9093/api/v2/alerts"}',
                100,
            ),
        ],
        warmup=1,
        name="send_errors",
    ),
]

# The adapter's own rules (remediate.rules.yml), on the series its /metrics exports.
JOB = {"job": "remediate"}
SELF_CASES = [
    Case("RemediateDown", [gauge(f"up{{{REMEDIATE}}}", 0)], [gauge(f"up{{{REMEDIATE}}}", 1)]),
    Case(
        "RemediateAbsent",
        [gauge('up{job="node",instance="ops:9100"}', 1)],
        [gauge(f"up{{{REMEDIATE}}}", 1)],
        labels=JOB,
    ),
    Case(
        "RemediateNotificationsFailing",
        [gauge(f"remediate_notifications_failing{{{REMEDIATE}}}", 1)],
        [gauge(f"remediate_notifications_failing{{{REMEDIATE}}}", 0)],
        labels=JOB,
    ),
    # No `for`: three failures within the hour fire, two do not.
    Case(
        "RemediateNotificationsFailed",
        [counter(f"remediate_notifications_failed_total{{{REMEDIATE}}}", 1)],
        [{"series": f"remediate_notifications_failed_total{{{REMEDIATE}}}", "values": f"0 1 2x{MINUTES}"}],
        labels=JOB,
        quiet_at=1,
        fires_at=4,
    ),
    Case(
        "RemediateRunsFailing",
        [
            counter(f'remediate_runs_total{{{REMEDIATE},kind="remediate",result="no_verdict"}}', 1),
            counter(f'remediate_runs_total{{{REMEDIATE},kind="remediate",result="unhealed"}}', 5),
        ],
        [
            {
                "series": f'remediate_runs_total{{{REMEDIATE},kind="remediate",result="failed"}}',
                "values": f"0 1 2x{MINUTES}",
            },
            # Unhealed runs are the playbooks' to escalate: they never count here.
            counter(f'remediate_runs_total{{{REMEDIATE},kind="remediate",result="unhealed"}}', 5),
        ],
        labels=JOB,
        quiet_at=1,
        fires_at=4,
    ),
    Case(
        "RemediateRunsTimingOut",
        [counter(f'remediate_runs_total{{{REMEDIATE},kind="remediate",result="timeout"}}', 1)],
        [
            {
                "series": f'remediate_runs_total{{{REMEDIATE},kind="remediate",result="timeout"}}',
                "values": f"0 1x{MINUTES}",
            }
        ],
        labels=JOB,
        quiet_at=0,
        fires_at=3,
    ),
    Case(
        "RemediateBreakerOpen",
        [gauge(f"remediate_breakers_open{{{REMEDIATE}}}", 1)],
        [gauge(f"remediate_breakers_open{{{REMEDIATE}}}", 0)],
        labels=JOB,
    ),
    Case(
        "RemediateQueueBacklog",
        [gauge(f"remediate_queue_depth{{{REMEDIATE}}}", 21)],
        [gauge(f"remediate_queue_depth{{{REMEDIATE}}}", 20)],
        labels=JOB,
    ),
    Case(
        "RemediateIncidentUnhealed",
        [
            gauge(f"remediate_incidents_overdue{{{REMEDIATE}}}", 1),
            gauge(f"remediate_incidents_escalated{{{REMEDIATE}}}", 2),
        ],
        [
            gauge(f"remediate_incidents_overdue{{{REMEDIATE}}}", 0),
            gauge(f"remediate_incidents_escalated{{{REMEDIATE}}}", 2),
        ],
        labels=JOB,
    ),
]
ALL_CASES = CASES + SELF_CASES


@pytest.fixture(scope="module")
def prometheus_image():
    found = subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True, check=False)
    if found.returncode != 0:
        pytest.fail(f"{IMAGE} is not built: run scripts/setup.sh images")
    return IMAGE


def promtool(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            *("docker", "run", "--rm", "--network", "none", "-v", f"{folder}:/rules:ro", "-w", "/rules"),
            *("--entrypoint", "/usr/bin/promtool", IMAGE, *args),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def readable(folder: Path) -> None:
    """The image runs as the prometheus user: the files must be readable by others."""
    for path in (folder.parent, folder, *folder.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)


def test_promtool_checks_every_rule_file(tmp_path, prometheus_image):
    folder = tmp_path / "rules"
    shutil.copytree(RULES_DIR, folder)
    readable(folder)
    checked = promtool(folder, "check", "rules", *(path.name for path in RULE_FILES))
    output = checked.stdout + checked.stderr
    assert checked.returncode == 0, output
    # promtool reports lint findings (duplicate rules) as FAILED yet exits 0.
    assert "FAILED" not in output, output
    assert output.count("SUCCESS") == len(RULE_FILES), output


def test_every_alert_fires_above_its_threshold_and_not_below(tmp_path, prometheus_image):
    """Each case twice: the firing series (silent until its `for:` has passed, then the
    alert with exactly the expected labels) and the series just below the threshold.
    Annotations are left out of the copies promtool reads (it compares them verbatim);
    test_annotations_name_only_labels_the_alert_has checks them."""
    folder = tmp_path / "rules"
    folder.mkdir()
    for path in RULE_FILES:
        document = load(path)
        for group in document["groups"]:
            for rule in group["rules"]:
                rule.pop("annotations", None)
        (folder / path.name).write_text(yaml.safe_dump(document, sort_keys=False))
    tests = {
        "rule_files": [path.name for path in RULE_FILES],
        "evaluation_interval": "1m",
        "tests": [test for case in ALL_CASES for test in case.promtool_tests()],
    }
    (folder / "tests.yml").write_text(yaml.safe_dump(tests, sort_keys=False))
    readable(folder)
    tested = promtool(folder, "test", "rules", "tests.yml")
    assert tested.returncode == 0, tested.stdout[-6000:] + tested.stderr[-6000:]
    assert "SUCCESS" in tested.stdout


def test_every_alert_rule_has_a_firing_and_a_below_case():
    assert {rule["alert"] for _, rule in ALERT_RULES} == {case.alert for case in ALL_CASES}
    # Alerts with several rules: one case per rule, told apart by severity or basis.
    for alert in {rule["alert"] for _, rule in ALERT_RULES}:
        rules = rules_named(alert)
        cases = [case for case in ALL_CASES if case.alert == alert]
        assert len(cases) >= len(rules), alert
        assert len({case.id for case in cases}) == len(cases), alert


def catalog_names() -> dict[str, str]:
    """Alert name -> playbook, from routes/catalog.yml."""
    return {name: playbook for playbook, names in load(CATALOG)["playbooks"].items() for name in names}


def test_every_catalog_alert_has_a_rule_in_its_playbooks_group():
    alerts = {rule["alert"]: group for group, rule in ALERT_RULES}
    for name, playbook in catalog_names().items():
        alert = RUNBOOK_TITLES.get(name, name)
        assert alert in alerts, f"{name}: no rule"
        assert alerts[alert] == catalog_names()[alert] == playbook, name
    # And no rule for an alert the catalog does not know (the adapter's own aside).
    extra = {alert for alert, group in alerts.items() if group != "remediate"} - set(catalog_names())
    assert extra == set()


def test_the_runbooks_catalog_table_names_the_same_alerts():
    """The alert names column of shared/alert-catalog.md against routes/catalog.yml:
    metric-shaped names (CamelCase words ending a list item) must be the same set."""
    if not CATALOG_MD.is_file():
        pytest.skip(f"{CATALOG_MD} is not beside this checkout")
    rows = [line.split("|") for line in CATALOG_MD.read_text().splitlines() if line.startswith("| ")]
    column = " ".join(cells[2] for cells in rows[1:] if len(cells) > 3)
    named = set(re.findall(r"\b([A-Z]+[a-z0-9]+(?:[A-Z]+[a-z0-9]*)+)\b(?=\s*[,;(]|\s*$)", column))
    known = {name for name in catalog_names() if " " not in name}
    assert named == known
    # The section titles kept as names in routes/catalog.yml come from the same table.
    assert all(title in column for title in RUNBOOK_TITLES)


def test_alert_labels_select_their_route_and_resolve_its_target():
    """Through the adapter's own routing (remediate.routes): an alert with a route in
    routes/routes.yml matches that route and its labels make a valid target; an alert
    without one is a catalog name `remediate routes --check` lists as unrouted."""
    table = load_routes(ROUTES)
    _, unrouted = check_routes(ROUTES, [REPO_ROOT / ".collections"], CATALOG)
    routed = {route.alertname for route in table.routes}
    for case in CASES:
        labels = {**case.expected_labels(), "alertname": case.alert}
        if case.alert not in routed:
            assert case.alert in unrouted, case.id
            continue
        route = table.match(labels)
        assert route is not None and route.alertname == case.alert, case.id
        target, _ = route.resolve(labels)
        assert target["service"] == labels["service"], case.id
        assert target["host"] == labels.get("host", "localhost"), case.id


def test_annotations_name_only_labels_the_alert_has():
    """Every rule has a summary and a runbook_url into docs/alerting.md (a heading per
    playbook); templates name only labels the alert carries in its test case."""
    headings = set(re.findall(r"^#+ (\S+)$", DOCS.read_text(), flags=re.MULTILINE))
    for group, rule in ALERT_RULES:
        annotations = rule["annotations"]
        assert annotations.get("summary"), rule["alert"]
        if group != "remediate":
            url = annotations["runbook_url"]
            assert url.endswith(f"docs/alerting.md#{group}") and group in headings, rule["alert"]
        used = set(re.findall(r"\$labels\.(\w+)", " ".join(annotations.values())))
        for case in ALL_CASES:
            labels = case.expected_labels()
            if case.alert == rule["alert"] and all(labels.get(k) == v for k, v in rule["labels"].items()):
                assert used <= set(labels), (case.id, used)
