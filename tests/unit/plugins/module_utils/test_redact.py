"""Unit tests for plugins/module_utils/_redact.py: the one implementation of redaction that the
modules, module_utils and the incident_record action share."""

import pytest
from ansible_collections.incident.remediation.plugins.module_utils import _http, _metrics, _queues
from ansible_collections.incident.remediation.plugins.module_utils._redact import (
    REDACTED,
    redact,
    redact_sql,
    redact_url,
    scrub,
    secret_key_matcher,
    secret_path_segment,
    server_url,
    show_public_url,
)
from ansible_collections.incident.remediation.plugins.modules import (
    http_health,
    metrics_health,
    pool_health,
    rpc_health,
)

SHARED = {
    "REDACTED": REDACTED,
    "redact_url": redact_url,
    "scrub": scrub,
    "secret_path_segment": secret_path_segment,
    "show_public_url": show_public_url,
}


def test_the_marker():
    assert REDACTED == "[REDACTED]"


@pytest.mark.parametrize("where", [_http, _metrics, _queues, http_health, metrics_health, pool_health, rpc_health])
def test_no_module_has_a_redaction_of_its_own(where):
    for name, shared in SHARED.items():
        assert getattr(where, name, shared) is shared, name
    assert not hasattr(where, "public_url")


# ---------------------------------------------------------------- mappings and text


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("password", True),
        ("DB_PASSWORD", True),
        ("api-key", True),
        ("apiKey", True),
        ("Authorization", True),
        ("private_key", True),
        ("client_token", True),
        ("user", False),
        ("host", False),
        ("keys", False),
    ],
)
def test_secret_key_matcher(key, secret):
    assert secret_key_matcher()(key) is secret


def test_redact_replaces_secret_values_in_nested_mappings_and_lists():
    value = {
        "user": "app",
        "password": "hunter2",
        "empty_token": "",
        "nested": [{"api_key": "k-123", "port": 6379}, ("x", {"secret": None})],
    }
    assert redact(value) == {
        "user": "app",
        "password": REDACTED,
        "empty_token": "",  # nothing to hide
        "nested": [{"api_key": REDACTED, "port": 6379}, ["x", {"secret": None}]],
    }
    assert value["password"] == "hunter2"  # a copy: the input is left alone


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("connect password=hunter2 host=db", "connect password=%s host=db" % REDACTED),
        ('{"token": "abc.def"}', '{"token": "%s"}' % REDACTED),
        ("Authorization: Bearer eyJhbGciOi", "Authorization: Bearer %s" % REDACTED),
        ("redis: api_key: k1, next", "redis: api_key: %s, next" % REDACTED),
        ("?token=t1&user=u", "?token=%s&user=u" % REDACTED),
        ("nothing to hide", "nothing to hide"),
    ],
)
def test_redact_replaces_secret_assignments_in_text(text, expected):
    assert redact(text) == expected


def test_redact_takes_other_secret_names():
    assert redact({"pin": "1234", "password": "p"}, secret_names=("pin",)) == {"pin": REDACTED, "password": "p"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("SELECT 1", "SELECT 1"),
        ("ALTER ROLE app PASSWORD 's3cret'", "ALTER ROLE app PASSWORD '%s'" % REDACTED),
        ("create user x with password 'it''s'", "create user x with password '%s'" % REDACTED),
        ("ALTER ROLE app PASSWORD E'a\\'b' VALID UNTIL 'x'", "ALTER ROLE app PASSWORD '%s' VALID UNTIL 'x'" % REDACTED),
        (
            "SELECT dblink_connect('host=db password=hunter2')",
            "SELECT dblink_connect('host=db password=%s')" % REDACTED,
        ),
    ],
)
def test_redact_sql(text, expected):
    assert redact_sql(text) == expected


def test_scrub():
    secrets = redact_url("http://u:pw-long@h/?key=abcdef")[1]
    assert scrub("failed for http://u:pw-long@h/?key=abcdef and pw-long", secrets) == "failed for %s and %s" % (
        REDACTED,
        REDACTED,
    )
    assert scrub(None, secrets) is None
    assert scrub("a 1 b", ["1"]) == "a 1 b"  # too short to replace without mangling the text


# ---------------------------------------------------------------- URLs


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("http://127.0.0.1:8545", "http://127.0.0.1:8545"),
        ("http://127.0.0.1:8545/", "http://127.0.0.1:8545/"),
        ("https://sepolia.base.org", "https://sepolia.base.org"),
        ("https://node.example/ext/bc/C/rpc", "https://node.example/ext/bc/C/rpc"),
        ("https://mainnet.infura.io/v3/0123456789abcdef0123456789abcdef", "https://mainnet.infura.io/v3/" + REDACTED),
        (
            "https://eth-mainnet.g.alchemy.com/v2/aBcD3fGhIjKlMnOpQrStUv",
            "https://eth-mainnet.g.alchemy.com/v2/" + REDACTED,
        ),
        ("https://x.quiknode.pro/4f0e6c2a9b/", "https://x.quiknode.pro/4f0e6c2a9b/"),
        ("https://x.quiknode.pro/4f0e6c2a9b1d3e5f7a9c/", "https://x.quiknode.pro/%s/" % REDACTED),
        ("http://user:s3cret@10.0.0.1:8332/", "http://10.0.0.1:8332/"),
        ("http://user@10.0.0.1:8332/", "http://10.0.0.1:8332/"),
        ("http://u:secret@h:15672/x", "http://h:15672/x"),
        ("https://u@h/metrics?x=1", "https://h/metrics"),
        ("https://user:pw@app:8000/metrics?token=abc#x", "https://app:8000/metrics"),
        ("https://rpc.example/?apikey=abc123&x=1", "https://rpc.example/"),
        ("https://rpc.example/path#token", "https://rpc.example/path"),
        ("https://[::1]:8545/", "https://[::1]:8545/"),
        ("https://u:p@[::1]:8545/", "https://[::1]:8545/"),
        ("http://[::1/", REDACTED),  # unparsable: nothing of it is shown
    ],
)
def test_redact_url(url, redacted):
    assert redact_url(url)[0] == redacted


def test_a_url_with_nothing_to_hide_has_no_secrets():
    assert redact_url("http://127.0.0.1:8545/rpc") == ("http://127.0.0.1:8545/rpc", [])


def test_secrets_of_a_url_cover_every_removed_piece():
    url = "https://user:p%40ss@rpc.example/v3/0123456789abcdef0123456789abcdef?apikey=k3y-value"
    redacted, secrets = redact_url(url)
    assert redacted == "https://rpc.example/v3/" + REDACTED
    for piece in (url, "p%40ss", "p@ss", "0123456789abcdef0123456789abcdef", "apikey=k3y-value", "k3y-value"):
        assert piece in secrets
    assert secrets == sorted(secrets, key=len, reverse=True)
    assert scrub("login p@ss refused for %s" % url, secrets) == "login %s refused for %s" % (REDACTED, REDACTED)


@pytest.mark.parametrize(
    ("segment", "secret"),
    [
        ("v3", False),
        ("rpc", False),
        ("ext", False),
        ("mainnet-archive", False),
        ("0123456789abcdef", True),
        ("abcdefghijklmnop", False),
        ("a" * 32, True),
        ("eth-mainnet-2024-archive", True),
        ("%41" * 11, False),
    ],
)
def test_secret_path_segment(segment, secret):
    assert secret_path_segment(segment) is secret


class _Module:
    """What show_public_url uses of an AnsibleModule."""

    def __init__(self, *values):
        self.no_log_values = set(values)


def test_show_public_url_unmasks_a_url_without_secrets():
    url = "http://127.0.0.1:9090"
    module = _Module(url)
    assert show_public_url(module, url) == url
    assert url not in module.no_log_values


def test_show_public_url_keeps_masking_a_url_with_secrets():
    url = "http://u:pw@127.0.0.1:9090/?token=t"
    module = _Module(url)
    assert show_public_url(module, url) == "http://127.0.0.1:9090/"
    assert url in module.no_log_values


@pytest.mark.parametrize(
    ("args", "url"),
    [
        (("redis", "127.0.0.1", 6379, None, 0), "redis://127.0.0.1:6379/0"),
        (("rediss", "cache.internal", 6380, "alice", 2), "rediss://alice@cache.internal:6380/2"),
        (("postgresql", "db", 5432, "app", "orders"), "postgresql://app@db:5432/orders"),
        (("postgresql", "::1", 5432, "a@b:c", "my db/x"), "postgresql://a%40b%3Ac@[::1]:5432/my%20db%2Fx"),
        (("postgresql", "[::1]", 5432, "", "postgres"), "postgresql://[::1]:5432/postgres"),
        (
            ("postgresql", "/var/run/postgresql", 5432, "app", "app"),
            "postgresql://app@%2Fvar%2Frun%2Fpostgresql:5432/app",
        ),
        (("http", "127.0.0.1", 8080), "http://127.0.0.1:8080"),
    ],
)
def test_server_url_names_a_server_without_a_password(args, url):
    assert server_url(*args) == url
