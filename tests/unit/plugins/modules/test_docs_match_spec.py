"""Each module's DOCUMENTATION (with its doc fragments) matches the argument spec it builds."""

import importlib
from types import SimpleNamespace

import pytest
import yaml
from ansible.module_utils.basic import AnsibleModule

COLLECTION = "incident.remediation"
MODULES = ["cache_health"]


class _SpecCaptured(Exception):
    """Raised instead of building the AnsibleModule, once its arguments are recorded."""


def import_module(name):
    return importlib.import_module("ansible_collections.incident.remediation.plugins.modules.%s" % name)


def documented_options(module):
    """Options of DOCUMENTATION plus those of the collection's fragments it extends."""
    doc = yaml.safe_load(module.DOCUMENTATION)
    options = {}
    for fragment in doc.get("extends_documentation_fragment", []):
        assert fragment.startswith(COLLECTION + "."), "fragment outside the collection: %s" % fragment
        parts = fragment[len(COLLECTION) + 1 :].split(".")
        variable = parts[1].upper() if len(parts) > 1 else "DOCUMENTATION"
        fragment_module = importlib.import_module(
            "ansible_collections.incident.remediation.plugins.doc_fragments.%s" % parts[0]
        )
        fragment_doc = yaml.safe_load(getattr(fragment_module.ModuleDocFragment, variable))
        options.update(fragment_doc.get("options") or {})
    for name, option in (doc.get("options") or {}).items():
        assert name not in options, "%s is documented both in the module and a fragment" % name
        options[name] = option
    return doc, options


def module_init_kwargs(module, monkeypatch):
    """The keyword arguments main() passes to AnsibleModule, without running the module."""
    captured = {}

    def fake_init(self, *args, **kwargs):
        assert not args, "AnsibleModule is expected to be built with keyword arguments"
        captured.update(kwargs)
        raise _SpecCaptured

    monkeypatch.setattr(AnsibleModule, "__init__", fake_init)
    with pytest.raises(_SpecCaptured):
        module.main()
    return captured


@pytest.fixture(params=MODULES)
def module_docs_and_spec(request, monkeypatch):
    module = import_module(request.param)
    doc, options = documented_options(module)
    kwargs = module_init_kwargs(module, monkeypatch)
    return SimpleNamespace(name=request.param, doc=doc, options=options, spec=kwargs["argument_spec"], kwargs=kwargs)


def test_every_documented_option_is_in_the_spec_and_vice_versa(module_docs_and_spec):
    options, spec = module_docs_and_spec.options, module_docs_and_spec.spec
    assert sorted(set(options) - set(spec)) == [], "documented but not in the argument spec"
    assert sorted(set(spec) - set(options)) == [], "in the argument spec but not documented"


def test_types_match(module_docs_and_spec):
    options, spec = module_docs_and_spec.options, module_docs_and_spec.spec
    mismatches = {
        name: (option.get("type", "str"), spec[name].get("type", "str"))
        for name, option in options.items()
        if option.get("type", "str") != spec[name].get("type", "str")
    }
    assert mismatches == {}


def test_defaults_match(module_docs_and_spec):
    options, spec = module_docs_and_spec.options, module_docs_and_spec.spec
    mismatches = {
        name: (option.get("default"), spec[name].get("default"))
        for name, option in options.items()
        if option.get("default") != spec[name].get("default")
    }
    assert mismatches == {}


def test_aliases_choices_and_required_match(module_docs_and_spec):
    options, spec = module_docs_and_spec.options, module_docs_and_spec.spec
    for name, option in options.items():
        coded = spec[name]
        assert sorted(option.get("aliases", [])) == sorted(coded.get("aliases", [])), name
        assert option.get("choices") == coded.get("choices"), name
        assert bool(option.get("required", False)) == bool(coded.get("required", False)), name


def test_check_mode_support_matches_the_attributes(module_docs_and_spec):
    documented = module_docs_and_spec.doc["attributes"]["check_mode"]["support"]
    assert module_docs_and_spec.kwargs.get("supports_check_mode", False) is (documented in ("full", "partial"))


def test_documentation_names_the_module(module_docs_and_spec):
    assert module_docs_and_spec.doc["module"] == module_docs_and_spec.name
