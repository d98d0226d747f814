"""Each doc fragment of the collection documents its common argument spec exactly.

The checks every fragment shares run once per fragment or per option; what only some
fragments promise (an alias kept from a library, an environment fallback) follows them.
"""

import copy
from typing import NamedTuple

import pytest
import yaml
from ansible.module_utils.basic import env_fallback
from ansible_collections.incident.remediation.plugins.doc_fragments import http as http_fragment
from ansible_collections.incident.remediation.plugins.doc_fragments import metrics as metrics_fragment
from ansible_collections.incident.remediation.plugins.doc_fragments import postgres as postgres_fragment
from ansible_collections.incident.remediation.plugins.doc_fragments import redis as redis_fragment
from ansible_collections.incident.remediation.plugins.module_utils._http import http_common_argument_spec
from ansible_collections.incident.remediation.plugins.module_utils._metrics import (
    metrics_common_argument_spec,
    metrics_source_argument_spec,
)
from ansible_collections.incident.remediation.plugins.module_utils._postgres import (
    SSL_MODES,
    postgres_common_argument_spec,
)
from ansible_collections.incident.remediation.plugins.module_utils._redis import redis_common_argument_spec


class Fragment(NamedTuple):
    """A parsed doc fragment, the argument spec it documents, and the options meant to be no_log."""

    doc: dict
    spec: dict
    no_log: list


def fragment(module, spec_function, no_log):
    return Fragment(yaml.safe_load(module.ModuleDocFragment.DOCUMENTATION), spec_function(), no_log)


FRAGMENTS = {
    "http": fragment(http_fragment, http_common_argument_spec, ["auth_headers"]),
    "metrics": fragment(metrics_fragment, metrics_source_argument_spec, ["url", "prometheus_url"]),
    "postgres": fragment(postgres_fragment, postgres_common_argument_spec, ["login_password"]),
    "redis": fragment(redis_fragment, redis_common_argument_spec, ["login_password"]),
}
OPTIONS = [
    pytest.param(name, option, id="%s-%s" % (name, option))
    for name in sorted(FRAGMENTS)
    for option in sorted(FRAGMENTS[name].spec)
]


def documented_and_coded(name, option):
    """The option as the fragment documents it and as the spec codes it."""
    return FRAGMENTS[name].doc["options"][option], FRAGMENTS[name].spec[option]


# ---------------------------------------------------------------- every fragment


@pytest.mark.parametrize("name", sorted(FRAGMENTS))
def test_fragment_documents_exactly_the_spec_options(name):
    assert sorted(FRAGMENTS[name].doc["options"]) == sorted(FRAGMENTS[name].spec)


@pytest.mark.parametrize(("name", "option"), OPTIONS)
def test_type_matches(name, option):
    documented, coded = documented_and_coded(name, option)
    assert documented.get("type", "str") == coded.get("type", "str")


@pytest.mark.parametrize(("name", "option"), OPTIONS)
def test_default_matches(name, option):
    documented, coded = documented_and_coded(name, option)
    assert documented.get("default") == coded.get("default")
    assert type(documented.get("default")) is type(coded.get("default"))


@pytest.mark.parametrize(("name", "option"), OPTIONS)
def test_aliases_match(name, option):
    documented, coded = documented_and_coded(name, option)
    assert sorted(documented.get("aliases", [])) == sorted(coded.get("aliases", []))


@pytest.mark.parametrize(("name", "option"), OPTIONS)
def test_choices_match(name, option):
    documented, coded = documented_and_coded(name, option)
    assert documented.get("choices") == coded.get("choices")


@pytest.mark.parametrize(("name", "option"), OPTIONS)
def test_required_matches(name, option):
    documented, coded = documented_and_coded(name, option)
    assert bool(documented.get("required", False)) == bool(coded.get("required", False))


@pytest.mark.parametrize("name", sorted(FRAGMENTS))
def test_only_the_secret_options_are_no_log(name):
    spec, no_log = FRAGMENTS[name].spec, FRAGMENTS[name].no_log
    assert [option for option, coded in spec.items() if coded.get("no_log")] == no_log
    assert all(spec[option]["no_log"] is True for option in no_log)


@pytest.mark.parametrize(
    "spec_function",
    [
        http_common_argument_spec,
        metrics_source_argument_spec,
        metrics_common_argument_spec,
        postgres_common_argument_spec,
        redis_common_argument_spec,
    ],
)
def test_spec_is_a_fresh_copy_each_call(spec_function):
    """Changing what one call returns, mutable defaults included, changes no later call."""
    pristine = copy.deepcopy(spec_function())
    first = spec_function()
    for option in first.values():
        default = option.get("default")
        if isinstance(default, dict):
            default["X"] = "y"
        elif isinstance(default, list):
            default.append("y")
        option["default"] = "changed"
    first.popitem()
    assert spec_function() == pristine


# ---------------------------------------------------------------- what some fragments promise


@pytest.mark.parametrize(
    ("name", "option"), [("http", "auth_headers"), ("metrics", "url"), ("metrics", "prometheus_url")]
)
def test_no_log_is_stated_in_the_description(name, option):
    assert any("C(no_log)" in line for line in FRAGMENTS[name].doc["options"][option]["description"])


@pytest.mark.parametrize(
    ("name", "aliases"), [("http", ["ca_path"]), ("postgres", ["ssl_rootcert"]), ("redis", ["ssl_ca_certs"])]
)
def test_ca_cert_keeps_the_alias_users_know(name, aliases):
    assert FRAGMENTS[name].spec["ca_cert"]["aliases"] == aliases


@pytest.mark.parametrize(("name", "variable"), [("postgres", "PGPASSWORD"), ("redis", "REDIS_PASSWORD")])
def test_login_password_env_fallback_is_documented(name, variable):
    assert FRAGMENTS[name].spec["login_password"]["fallback"] == (env_fallback, [variable])
    description = FRAGMENTS[name].doc["options"]["login_password"]["description"]
    assert any("E(%s)" % variable in line for line in description)


@pytest.mark.parametrize(
    ("name", "library"), [("metrics", "prometheus-client"), ("postgres", "psycopg2"), ("redis", "redis")]
)
def test_fragment_names_its_requirement(name, library):
    assert any(line.startswith(library + " ") for line in FRAGMENTS[name].doc["requirements"])


def test_http_client_key_is_a_path_not_a_secret():
    # The name looks like a secret to ansible-test's no_log check; its value is a file path.
    assert FRAGMENTS["http"].spec["client_key"]["no_log"] is False


def test_postgres_has_the_options_asked_for():
    assert set(FRAGMENTS["postgres"].spec) == {
        "login_host",
        "login_port",
        "login_user",
        "login_password",
        "login_db",
        "ssl_mode",
        "ca_cert",
        "connect_timeout",
    }


def test_postgres_ssl_mode_offers_every_libpq_mode():
    assert FRAGMENTS["postgres"].spec["ssl_mode"]["choices"] == SSL_MODES
    assert SSL_MODES == ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]
