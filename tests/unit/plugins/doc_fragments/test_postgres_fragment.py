"""The incident.remediation.postgres doc fragment documents postgres_common_argument_spec() exactly."""

import pytest
import yaml
from ansible.module_utils.basic import env_fallback
from ansible_collections.incident.remediation.plugins.doc_fragments.postgres import ModuleDocFragment
from ansible_collections.incident.remediation.plugins.module_utils._postgres import (
    SSL_MODES,
    postgres_common_argument_spec,
)

DOC = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)
DOC_OPTIONS = DOC["options"]
SPEC = postgres_common_argument_spec()


def test_fragment_documents_exactly_the_spec_options():
    assert sorted(DOC_OPTIONS) == sorted(SPEC)


def test_the_options_asked_for_are_all_there():
    assert set(SPEC) == {
        "login_host",
        "login_port",
        "login_user",
        "login_password",
        "login_db",
        "ssl_mode",
        "ca_cert",
        "connect_timeout",
    }


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
def test_choices_match(name):
    assert DOC_OPTIONS[name].get("choices") == SPEC[name].get("choices")


@pytest.mark.parametrize("name", sorted(SPEC))
def test_required_matches(name):
    assert bool(DOC_OPTIONS[name].get("required", False)) == bool(SPEC[name].get("required", False))


def test_ssl_mode_offers_every_libpq_mode():
    assert SPEC["ssl_mode"]["choices"] == SSL_MODES
    assert SSL_MODES == ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]


def test_ca_cert_keeps_the_community_postgresql_alias():
    assert SPEC["ca_cert"]["aliases"] == ["ssl_rootcert"]


def test_only_the_password_is_no_log():
    assert [name for name, spec in SPEC.items() if spec.get("no_log")] == ["login_password"]


def test_login_password_env_fallback_is_documented():
    assert SPEC["login_password"]["fallback"] == (env_fallback, ["PGPASSWORD"])
    assert any("E(PGPASSWORD)" in line for line in DOC_OPTIONS["login_password"]["description"])


def test_fragment_names_its_requirement():
    assert any("psycopg2" in line for line in DOC["requirements"])


def test_spec_is_a_fresh_copy_each_call():
    first = postgres_common_argument_spec()
    first["login_port"]["default"] = 1
    first.pop("login_db")
    second = postgres_common_argument_spec()
    assert second["login_port"]["default"] == 5432
    assert "login_db" in second
