"""The incident.remediation.http doc fragment documents http_common_argument_spec() exactly."""

import pytest
import yaml
from ansible_collections.incident.remediation.plugins.doc_fragments.http import ModuleDocFragment
from ansible_collections.incident.remediation.plugins.module_utils._http import http_common_argument_spec

DOC_OPTIONS = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]
SPEC = http_common_argument_spec()


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
def test_required_and_choices_match(name):
    assert bool(DOC_OPTIONS[name].get("required", False)) == bool(SPEC[name].get("required", False))
    assert DOC_OPTIONS[name].get("choices") == SPEC[name].get("choices")


def test_only_the_auth_headers_are_no_log():
    assert [name for name, spec in SPEC.items() if spec.get("no_log")] == ["auth_headers"]


def test_client_key_is_a_path_not_a_secret():
    # The name looks like a secret to ansible-test's no_log check; its value is a file path.
    assert SPEC["client_key"]["no_log"] is False


def test_no_log_is_stated_in_the_description():
    assert any("no_log" in line for line in DOC_OPTIONS["auth_headers"]["description"])


def test_spec_is_a_fresh_copy_each_call():
    first = http_common_argument_spec()
    first["timeout"]["default"] = 1.0
    first["headers"]["default"]["X"] = "y"
    first.pop("ca_cert")
    second = http_common_argument_spec()
    assert second["timeout"]["default"] == 5.0
    assert second["headers"]["default"] == {}
    assert "ca_cert" in second
