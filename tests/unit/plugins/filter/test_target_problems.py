"""Unit tests for plugins/filter/target_problems.py: the input contract's target rules,
and their agreement with the incident_context role's argument spec."""

import copy
from pathlib import Path

import pytest
import yaml
from ansible_collections.incident.remediation.plugins.filter import target_problems as plugin
from ansible_collections.incident.remediation.plugins.filter.target_problems import (
    CERTIFICATE_CHECKS,
    DATABASE_CHECKS,
    DEPENDENCY_ROLES,
    ENDPOINT_CHECKS,
    TARGET_KEYS,
    target_problems,
    url_problem,
)

COLLECTION = Path(__file__).resolve().parents[4]
PLAYBOOKS = ["database_down", "redis_down", "rpc_failover"]

FULL = {
    "platform": "kubernetes",
    "service": "api",
    "host": "ops-1",
    "namespace": "shop",
    "kind": "StatefulSet",
    "endpoint": {
        "host": "127.0.0.1",
        "port": 8080,
        "url": "http://127.0.0.1:8080/health/detailed?verbose=1",
        "metrics_url": "https://[::1]:9100/metrics",
    },
    "database": {"name": "shop", "user": "shop_app", "password_var": "vault_shop_db_password"},
    "backups": ["https://rpc-2.example.org/v1/mainnet", "http://10.0.0.7:8545"],
    "mount": "/var/lib/postgresql/data",
    "volume": "pgdata",
    "certificate": {"secret": "api-tls"},
    "prometheus_url": "http://prometheus.monitoring.svc:9090",
    "alertmanager_url": "http://127.0.0.1:9093",
    "depends_on": [
        {
            "role": "database",
            "playbook": "database_down",
            "target": {
                "platform": "systemd",
                "service": "postgresql",
                "host": "db-1",
                "endpoint": {"host": "10.0.0.5", "port": "5432"},
                "database": {"name": "shop"},
            },
        },
        {"role": "cache", "target": {"platform": "compose", "service": "redis", "project_src": "/srv/app"}},
    ],
}


def changed(path, value):
    """FULL with one value replaced (dotted path; [n] indexes a list)."""
    target = copy.deepcopy(FULL)
    *parents, leaf = path.replace("[", ".").replace("]", "").split(".")
    node = target
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    if isinstance(node, list):
        node[int(leaf)] = value
    else:
        node[leaf] = value
    return target


def problems(target, **options):
    return target_problems(target, playbooks=PLAYBOOKS, **options)


def test_a_target_with_every_key_passes():
    assert problems(FULL) == []


def test_the_minimal_targets_of_today_pass():
    assert problems({"platform": "compose", "service": "redis", "project_src": "/srv/app"}) == []
    assert problems({"platform": "systemd", "service": "redis-server.service", "host": "cache-1"}) == []
    assert problems({"platform": "kubernetes", "service": "redis", "endpoint": {"port": 6379}}) == []


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        ("endpoint.url", "http://127.0.0.1/$(touch /tmp/x)", "target.endpoint.url: must be an http"),
        ("endpoint.url", "http://127.0.0.1/{{ lookup('pipe', 'id') }}", "target.endpoint.url: must be an http"),
        ("endpoint.url", "http://127.0.0.1/health; id", "target.endpoint.url: must be an http"),
        ("endpoint.url", "http://127.0.0.1/health\nid", "target.endpoint.url: must be an http"),
        ("endpoint.url", "http://admin:hunter2@127.0.0.1/health", "target.endpoint.url: must not carry credentials"),
        ("endpoint.url", "http://token@127.0.0.1/health", "target.endpoint.url: must not carry credentials"),
        ("endpoint.url", "http://127.0.0.1/health?api_key=abc", "target.endpoint.url: must not carry credentials"),
        ("endpoint.url", "http://127.0.0.1/health?x=1&Token=abc", "target.endpoint.url: must not carry credentials"),
        ("endpoint.url", "file:///etc/passwd", "target.endpoint.url: must be an http:// or https:// URL (other"),
        ("endpoint.url", "javascript://alert", "target.endpoint.url: must be an http:// or https:// URL (other"),
        ("endpoint.url", "javascript:alert(1)", "target.endpoint.url: must be an http"),
        ("endpoint.url", "//127.0.0.1/health", "target.endpoint.url: must be an http"),
        ("endpoint.url", "http://127.0.0.1/a/../../etc/passwd", "'..' segments"),
        ("endpoint.url", "http://127.0.0.1/a/..", "'..' segments"),
        ("endpoint.url", "http://127.0.0.1:0/", "target.endpoint.url: must name a host"),
        ("endpoint.url", "http://127.0.0.1:65536/", "target.endpoint.url: must name a host"),
        ("endpoint.url", "http:///health", "target.endpoint.url: must name a host"),
        ("endpoint.url", "http://[1:2:3]/", "target.endpoint.url: must name a valid bracketed IPv6"),
        ("endpoint.url", "http://127.0.0.1/health#top", "target.endpoint.url: must be an http"),
        ("endpoint.url", "http://127.0.0.1/" + "a" * 2048, "target.endpoint.url: must be an http"),
        ("endpoint.url", 8080, "target.endpoint.url: must be an http"),
        ("endpoint.metrics_url", "ftp://127.0.0.1/metrics", "target.endpoint.metrics_url: must be an http"),
        ("endpoint.port", 70000, "target.endpoint.port: must be a TCP port"),
        ("endpoint.port", True, "target.endpoint.port: must be a TCP port"),
        ("endpoint.port", "6379; id", "target.endpoint.port: must be a TCP port"),
        ("endpoint.host", "`id`", "target.endpoint.host: must be a host name"),
        ("database.name", "shop; DROP DATABASE shop", "target.database.name: must be a database name"),
        ("database.name", "s" * 64, "target.database.name: must be a database name"),
        ("database.user", "{{ 7*7 }}", "target.database.user: must be a user name"),
        ("database.password_var", "hunter2!", "target.database.password_var: must be the name of an inventory"),
        ("database.password_var", "ansible_become_password", "target.database.password_var: must be the name"),
        ("database.password_var", "{{ lookup('pipe', 'id') }}", "target.database.password_var: must be the name"),
        ("database.password", "hunter2", "target.database.password: unknown key"),
        ("backups", "http://10.0.0.7:8545", "target.backups: must be a list"),
        ("backups", ["http://10.0.0.7:8545"] * 17, "target.backups: at most 16 entries"),
        ("backups[1]", "http://user:pass@10.0.0.7:8545", "target.backups[1]: must not carry credentials"),
        ("backups[0]", "ws://10.0.0.7:8546", "target.backups[0]: must be an http:// or https://"),
        ("backups[0]", "https://rpc/`id`", "target.backups[0]: must be an http"),
        ("mount", "/var/lib/../../etc", "target.mount: must be an absolute path"),
        ("mount", "var/lib/postgresql", "target.mount: must be an absolute path"),
        ("mount", "/mnt/$(id)", "target.mount: must be an absolute path"),
        ("mount", "/" + "a" * 1024, "target.mount: must be an absolute path"),
        ("volume", "data; id", "target.volume: must be a plain volume name"),
        ("volume", "../data", "target.volume: must be a plain volume name"),
        ("volume", "v" * 254, "target.volume: must be a plain volume name"),
        ("certificate", {"endpoint": "127.0.0.1:443", "file": "/etc/ssl/api.pem"}, "exactly one of endpoint"),
        ("certificate", {}, "target.certificate: exactly one of endpoint, file or secret"),
        ("certificate", "api-tls", "target.certificate: must be a mapping"),
        ("certificate", {"file": "/etc/ssl/../shadow"}, "target.certificate.file: must be an absolute path"),
        ("certificate", {"endpoint": "127.0.0.1"}, "target.certificate.endpoint: must be host:port"),
        ("certificate", {"endpoint": "127.0.0.1:0"}, "target.certificate.endpoint: must be host:port"),
        ("certificate", {"endpoint": "h;id:443"}, "target.certificate.endpoint: must be host:port"),
        ("certificate", {"secret": "API_TLS"}, "target.certificate.secret: must be a Kubernetes Secret name"),
        ("certificate", {"secret": "api-tls", "namespace": "x"}, "target.certificate.namespace: unknown key"),
        ("prometheus_url", "http://admin:admin@127.0.0.1:9090", "target.prometheus_url: must not carry credentials"),
        ("alertmanager_url", "javascript:alert(document.cookie)", "target.alertmanager_url: must be an http"),
        ("kind", "DaemonSet", "target.kind: must be one of Deployment, StatefulSet"),
        ("platform", "compose", "target.project_src: is required on compose"),
        ("service", "api; id", "target.service: must be a plain name"),
        ("namespace", "Shop", "target.namespace: must be a Kubernetes namespace name"),
        ("depends_on", {"role": "database"}, "target.depends_on: must be a list"),
        ("depends_on", [FULL["depends_on"][1]] * 9, "target.depends_on: at most 8 entries"),
        ("depends_on[0].role", "root", "target.depends_on[0].role: must be one of database, cache"),
        ("depends_on[0].playbook", "../../site", "target.depends_on[0].playbook: must be the short name"),
        ("depends_on[0].playbook", "drop_everything", "target.depends_on[0].playbook: must be the short name"),
        ("depends_on[0].target", None, "target.depends_on[0].target: must be a mapping"),
        ("depends_on[0].target.service", "pg; id", "target.depends_on[0].target.service: must be a plain name"),
        ("depends_on[0].target.endpoint", {"url": "file:///x"}, "target.depends_on[0].target.endpoint.url: must"),
        ("depends_on[0].target.depends_on", [], "target.depends_on[0].target.depends_on: a dependency's target cannot"),
        ("depends_on[0].target.servcie", "pg", "target.depends_on[0].target.servcie: unknown key"),
        ("depends_on[1].target.platform", "bare-metal", "target.depends_on[1].target.platform: must be one of"),
        ("depends_on[1].extra", 1, "target.depends_on[1].extra: unknown key"),
        ("servcie", "api", "target.servcie: unknown key"),
        ("endpoint.hots", "127.0.0.1", "target.endpoint.hots: unknown key"),
        ("{{ 7*7 }}", "x", "target.<a key that is not a plain name>: unknown key"),
    ],
)
def test_hostile_values_are_named(path, value, named):
    found = problems(changed(path, value))
    assert any(named in problem for problem in found), found


def test_required_keys():
    assert problems({}) == ["target.platform: is required", "target.service: is required"]
    dependency = changed("depends_on[1]", {"playbook": "redis_down"})
    assert problems(dependency) == [
        "target.depends_on[1].role: is required",
        "target.depends_on[1].target: is required",
    ]


def test_the_playbooks_platforms_limit_the_target_but_not_its_dependencies():
    assert problems(FULL, platforms=["compose"]) == ["target.platform: must be one of compose"]


def test_without_known_playbooks_no_handover_is_accepted():
    assert target_problems(FULL) == [
        "target.depends_on[0].playbook: must be the short name of one of the collection's playbooks (none)"
    ]


def test_values_are_never_repeated_in_the_messages():
    secret = "hunter2-" + "x" * 8
    found = problems(changed("prometheus_url", f"http://admin:{secret}@127.0.0.1:9090/?token={secret}"))
    found += problems(changed("depends_on[0].target.endpoint", {"url": f"http://127.0.0.1/?password={secret}"}))
    assert found and not any(secret in problem for problem in found)


def test_a_target_that_is_not_a_mapping():
    assert problems("compose") == ["target: must be a mapping"]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/health",
        "https://api.example.org/health/detailed",
        "http://[fe80::1]:9090",
        "https://rpc.example.org/v1/mainnet?chain=1&format=json",
        "http://localhost/-/healthy",
        "http://a.b-c:1/x~y+z:w",
    ],
)
def test_good_urls(url):
    assert url_problem(url) is None


def route_target(tree, prefix="target."):
    """A route's target as the adapter would build it from labels at their defaults;
    and the names of the fields taken from a label without a default."""
    target, unknown = {}, []
    for name, spec in tree.items():
        if "value" in spec:
            target[name] = spec["value"]
        elif "label" in spec and "default" in spec:
            target[name] = spec["default"]
        elif "label" in spec:
            unknown.append(prefix + name)
        else:
            target[name], more = route_target(spec, prefix + name + ".")
            unknown += more
    return target, unknown


ROUTES = yaml.safe_load((COLLECTION / "routes" / "routes.yml").read_text())["routes"]


@pytest.mark.parametrize("route", ROUTES, ids=lambda route: route.get("name", route["alertname"]))
def test_every_routes_target_passes(route):
    target, from_labels = route_target(route["target"])
    collection_playbooks = sorted(path.stem for path in (COLLECTION / "playbooks").glob("*.yml"))
    found = target_problems(target, playbooks=collection_playbooks)
    assert [problem for problem in found if not any(problem.startswith(name) for name in from_labels)] == []


def spec_options():
    spec = yaml.safe_load((COLLECTION / "roles" / "incident_context" / "meta" / "argument_specs.yml").read_text())
    return spec["argument_specs"]["main"]["options"]["incident_context_target"]["options"]


def test_the_role_argument_spec_declares_the_same_keys():
    options = spec_options()
    assert list(options) == list(TARGET_KEYS)
    assert set(options["endpoint"]["options"]) == set(ENDPOINT_CHECKS)
    assert set(options["database"]["options"]) == set(DATABASE_CHECKS)
    assert set(options["certificate"]["options"]) == set(CERTIFICATE_CHECKS)
    assert set(options["depends_on"]["options"]) == {"role", "playbook", "target"}
    assert tuple(options["depends_on"]["options"]["role"]["choices"]) == DEPENDENCY_ROLES
    assert tuple(options["kind"]["choices"]) == plugin.KINDS
    assert tuple(options["platform"]["choices"]) == plugin.PLATFORMS


def test_the_filter_is_registered():
    assert plugin.FilterModule().filters()["target_problems"] is target_problems
