"""The incident.remediation.redis doc fragment documents redis_common_argument_spec() exactly."""

import pytest
import yaml
from ansible.module_utils.basic import env_fallback
from ansible_collections.incident.remediation.plugins.doc_fragments.redis import ModuleDocFragment
from ansible_collections.incident.remediation.plugins.module_utils._redis import redis_common_argument_spec

DOC_OPTIONS = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]
SPEC = redis_common_argument_spec()


def test_fragment_documents_exactly_the_spec_options():
    assert sorted(DOC_OPTIONS) == sorted(SPEC)


@pytest.mark.parametrize("name", sorted(SPEC))
def test_type_matches(name):
    assert DOC_OPTIONS[name].get("type", "str") == SPEC[name].get("type", "str")


@pytest.mark.parametrize("name", sorted(SPEC))
def test_default_matches(name):
    documented, coded = DOC_OPTIONS[name].get("default"), SPEC[name].get("default")
    assert documented == coded
    assert type(documented) is type(coded)


@pytest.mark.parametrize("name", sorted(SPEC))
def test_aliases_match(name):
    assert sorted(DOC_OPTIONS[name].get("aliases", [])) == sorted(SPEC[name].get("aliases", []))


@pytest.mark.parametrize("name", sorted(SPEC))
def test_required_matches(name):
    assert bool(DOC_OPTIONS[name].get("required", False)) == bool(SPEC[name].get("required", False))


def test_ca_cert_keeps_its_redis_py_alias():
    assert SPEC["ca_cert"]["aliases"] == ["ssl_ca_certs"]


def test_login_password_is_no_log():
    assert SPEC["login_password"].get("no_log") is True


def test_only_the_password_is_no_log():
    assert [name for name, spec in SPEC.items() if spec.get("no_log")] == ["login_password"]


def test_login_password_env_fallback_is_documented():
    assert SPEC["login_password"]["fallback"] == (env_fallback, ["REDIS_PASSWORD"])
    assert any("E(REDIS_PASSWORD)" in line for line in DOC_OPTIONS["login_password"]["description"])


def test_spec_is_a_fresh_copy_each_call():
    first = redis_common_argument_spec()
    first["login_port"]["default"] = 1
    first.pop("db")
    second = redis_common_argument_spec()
    assert second["login_port"]["default"] == 6379
    assert "db" in second
