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

COLLECTION = "incident.remediation"
PACKAGE = "ansible_collections.incident.remediation.plugins"
PLUGINS_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "plugins")


def plugin_names(kind):
    folder = os.path.join(PLUGINS_DIR, kind)
    if not os.path.isdir(folder):
        return []
    return sorted(name[:-3] for name in os.listdir(folder) if name.endswith(".py") and not name.startswith(("_", ".")))


MODULES = plugin_names("modules")
ACTIONS = set(plugin_names("action"))


class _SpecCaptured(Exception):
    """Raised instead of building the AnsibleModule, once its arguments are recorded."""


def import_module(name):
    return importlib.import_module("%s.modules.%s" % (PACKAGE, name))


def documented_options(module):
    """Options of DOCUMENTATION plus those of the collection's fragments it extends."""
    doc = yaml.safe_load(module.DOCUMENTATION)
    options = {}
    for fragment in doc.get("extends_documentation_fragment", []):
        if not fragment.startswith(COLLECTION + "."):
            continue  # ansible.builtin or another collection's fragment: not ours to check
        parts = fragment[len(COLLECTION) + 1 :].split(".")
        variable = parts[1].upper() if len(parts) > 1 else "DOCUMENTATION"
        fragment_module = importlib.import_module("%s.doc_fragments.%s" % (PACKAGE, parts[0]))
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


def test_return_keys_are_documented_as_always_returned_or_say_when(module_docs_and_spec):
    module = import_module(module_docs_and_spec.name)
    returned = yaml.safe_load(module.RETURN) or {}
    assert all(isinstance(value, dict) and value.get("returned") for value in returned.values())
