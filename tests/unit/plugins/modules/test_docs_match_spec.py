"""Each module's DOCUMENTATION (with its doc fragments) matches the argument spec it builds.

Every module in plugins/modules is covered, whoever adds it: the spec is captured
from the AnsibleModule that main() builds (without running the module), or, for a
module implemented by an action plugin of the same name, taken from that plugin's
ARGUMENT_SPEC.
"""

import importlib
import os
from types import SimpleNamespace

import pytest
import yaml
from ansible.module_utils.basic import AnsibleModule

PACKAGE = "ansible_collections.incident.remediation.plugins"
PLUGINS_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "plugins")


def plugin_names(kind):
    folder = os.path.join(PLUGINS_DIR, kind)
    if not os.path.isdir(folder):
        return []
    return sorted(name[:-3] for name in os.listdir(folder) if name.endswith(".py") and not name.startswith(("_", ".")))


MODULES = plugin_names("modules")
ACTIONS = set(plugin_names("action"))
# Health checks: they read only, and name what they checked in `checked`, as do the modules that act.
READ_ONLY_MODULES = ["cache_health", "http_health", "metrics_health", "pool_health", "queue_health", "rpc_health"]
CHECKING_MODULES = [*READ_ONLY_MODULES, "cache_evict", "pool_terminate"]


class _SpecCaptured(Exception):
    """Raised instead of building the AnsibleModule, once its arguments are recorded."""


def import_module(name):
    return importlib.import_module("%s.modules.%s" % (PACKAGE, name))


def fragment_text(fragment):
    """The YAML of a doc fragment named namespace.collection.name[.variable], as ansible-doc finds it."""
    namespace, collection, name, *variable = fragment.split(".")
    if (namespace, collection) == ("ansible", "builtin"):
        package = "ansible.plugins.doc_fragments"
    else:
        package = "ansible_collections.%s.%s.plugins.doc_fragments" % (namespace, collection)
    fragment_module = importlib.import_module("%s.%s" % (package, name))
    return getattr(fragment_module.ModuleDocFragment, variable[0].upper() if variable else "DOCUMENTATION")


def documented_options(module):
    """DOCUMENTATION with the attributes of the fragments it extends merged in (the module's
    own keys win, as in ansible-doc), and its options plus theirs."""
    doc = yaml.safe_load(module.DOCUMENTATION)
    options, attributes = {}, {}
    for fragment in doc.get("extends_documentation_fragment", []):
        fragment_doc = yaml.safe_load(fragment_text(fragment))
        options.update(fragment_doc.get("options") or {})
        for name, attribute in (fragment_doc.get("attributes") or {}).items():
            attributes.setdefault(name, {}).update(attribute)
    for name, attribute in (doc.get("attributes") or {}).items():
        attributes.setdefault(name, {}).update(attribute)
    doc["attributes"] = attributes
    for name, option in (doc.get("options") or {}).items():
        assert name not in options, "%s is documented both in the module and a fragment" % name
        options[name] = option
    return doc, options


def module_init_kwargs(module, monkeypatch):
    """The keyword arguments main() passes to AnsibleModule, without running the module."""
    captured = {}

    def fake_init(self, *args, **kwargs):
        if args:  # AnsibleModule(argument_spec, ...) positionally
            kwargs = dict(kwargs, argument_spec=args[0])
        captured.update(kwargs)
        raise _SpecCaptured

    monkeypatch.setattr(AnsibleModule, "__init__", fake_init)
    with pytest.raises(_SpecCaptured):
        module.main()
    return captured


def plugin_spec(name, module, monkeypatch):
    """(argument spec, AnsibleModule kwargs or None for an action plugin)."""
    if not hasattr(module, "main") and name in ACTIONS:
        action = importlib.import_module("%s.action.%s" % (PACKAGE, name))
        return action.ARGUMENT_SPEC, None
    kwargs = module_init_kwargs(module, monkeypatch)
    return kwargs["argument_spec"], kwargs


@pytest.fixture(params=MODULES)
def module_docs_and_spec(request, monkeypatch):
    module = import_module(request.param)
    doc, options = documented_options(module)
    spec, kwargs = plugin_spec(request.param, module, monkeypatch)
    return SimpleNamespace(name=request.param, doc=doc, options=options, spec=spec, kwargs=kwargs)


def test_the_modules_are_found():
    assert "cache_health" in MODULES
    assert "cache_evict" in MODULES


def option_mismatches(options, spec, path=""):
    """Differences between documented options and an argument spec, recursing into suboptions."""
    problems = []
    for name in sorted(set(options) - set(spec)):
        problems.append("%s%s: documented but not in the argument spec" % (path, name))
    for name in sorted(set(spec) - set(options)):
        problems.append("%s%s: in the argument spec but not documented" % (path, name))
    for name in sorted(set(options) & set(spec)):
        option, coded, where = options[name] or {}, spec[name], path + name
        pairs = {
            "type": (option.get("type", "str"), coded.get("type", "str")),
            "default": (option.get("default"), coded.get("default")),
            "aliases": (sorted(option.get("aliases", [])), sorted(coded.get("aliases", []))),
            "choices": (option.get("choices"), coded.get("choices")),
            "required": (bool(option.get("required", False)), bool(coded.get("required", False))),
            "elements": (option.get("elements"), coded.get("elements")),
        }
        problems.extend(
            "%s: %s documented %r, coded %r" % (where, field, documented, actual)
            for field, (documented, actual) in pairs.items()
            if documented != actual
        )
        if option.get("suboptions") or coded.get("options"):
            problems.extend(option_mismatches(option.get("suboptions") or {}, coded.get("options") or {}, where + "."))
    return problems


def test_every_documented_option_is_in_the_spec_and_vice_versa(module_docs_and_spec):
    options, spec = module_docs_and_spec.options, module_docs_and_spec.spec
    assert sorted(set(options) - set(spec)) == [], "documented but not in the argument spec"
    assert sorted(set(spec) - set(options)) == [], "in the argument spec but not documented"


def test_types_match(module_docs_and_spec):
    options, spec = module_docs_and_spec.options, module_docs_and_spec.spec
    mismatches = {
        name: (option.get("type", "str"), spec[name].get("type", "str"))
        for name, option in options.items()
        if name in spec and option.get("type", "str") != spec[name].get("type", "str")
    }
    assert mismatches == {}


def test_defaults_match(module_docs_and_spec):
    options, spec = module_docs_and_spec.options, module_docs_and_spec.spec
    mismatches = {
        name: (option.get("default"), spec[name].get("default"))
        for name, option in options.items()
        if name in spec and option.get("default") != spec[name].get("default")
    }
    assert mismatches == {}


def test_aliases_choices_required_elements_and_suboptions_match(module_docs_and_spec):
    assert option_mismatches(module_docs_and_spec.options, module_docs_and_spec.spec) == []


def test_secrets_are_no_log(module_docs_and_spec):
    """Options whose name says password, secret or token are no_log in the spec."""
    spec = module_docs_and_spec.spec
    exposed = [
        name
        for name, coded in spec.items()
        if any(word in name for word in ("password", "secret", "token"))
        and coded.get("type", "str") == "str"
        and not coded.get("no_log")
    ]
    assert exposed == []


def test_check_mode_support_matches_the_attributes(module_docs_and_spec):
    documented = module_docs_and_spec.doc["attributes"]["check_mode"]["support"]
    if module_docs_and_spec.kwargs is None:
        pytest.skip("action plugin: check mode is handled by the action, not AnsibleModule")
    assert module_docs_and_spec.kwargs.get("supports_check_mode", False) is (documented in ("full", "partial"))


def test_documentation_names_the_module(module_docs_and_spec):
    assert module_docs_and_spec.doc["module"] == module_docs_and_spec.name


def test_check_and_diff_mode_are_described_with_their_support(module_docs_and_spec):
    attributes = module_docs_and_spec.doc["attributes"]
    for name in ("check_mode", "diff_mode"):
        assert attributes[name]["description"]
        assert attributes[name]["support"] in ("full", "partial", "none", "N/A")


@pytest.mark.parametrize("name", READ_ONLY_MODULES)
def test_health_checks_take_the_read_only_attributes(name):
    doc = yaml.safe_load(import_module(name).DOCUMENTATION)
    assert "attributes" not in doc, "the incident.remediation.attributes.read_only fragment says it"
    assert doc["extends_documentation_fragment"][-2:] == [
        "incident.remediation.attributes",
        "incident.remediation.attributes.read_only",
    ]


@pytest.mark.parametrize("name", CHECKING_MODULES)
def test_what_was_checked_is_returned_as_checked(name):
    returned = yaml.safe_load(import_module(name).RETURN)
    assert returned["checked"]["type"] == "str"
    assert returned["checked"]["returned"] == "always"
    assert not {"server", "url", "source"} & set(returned), "checked replaces the per-module keys"


def test_return_keys_are_documented_as_always_returned_or_say_when(module_docs_and_spec):
    module = import_module(module_docs_and_spec.name)
    returned = yaml.safe_load(module.RETURN) or {}
    assert all(isinstance(value, dict) and value.get("returned") for value in returned.values())
