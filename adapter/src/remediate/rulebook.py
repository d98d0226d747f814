"""Event-Driven Ansible rulebooks generated from the routes file (docs/eda.md).

One rule per route, in the file's order, that does what the adapter decides for a
firing alert without its store: the route's alertname and matchers (and none of
an earlier route with the same alertname: the adapter takes the first match), every
label the target or a variable takes checked against the route's pattern or allow
list (absent: the route's default), throttled per alert fingerprint for the route's
cooldown, then the playbook (``run_playbook``) or the job template named after it
(``run_job_template``) with the input contract's variables. The alert itself reaches
the playbook as ``ansible_eda.event.alert``.

Values reach the rule engine (Java regular expressions, pyparsing strings) and
ansible-rulebook's Jinja (native types); a route whose patterns or values would mean
something else there is refused with RouteError rather than translated loosely.
"""

from __future__ import annotations

import ast
import json
import math
import re
from typing import Any

import yaml

from remediate.executor import job_template_for
from remediate.routes import FieldSpec, Route, RouteError, RouteTable

VARIANTS = ("run_playbook", "run_job_template")
ALERT_FILTER = "incident.remediation.alertmanager_alerts"
NOTIFY_PLAYBOOK = "incident.remediation.notify"
# EDA has no approval step: a route that waits for a person only reports what it would do.
DRY_RUN_MODES = ("dry_run", "approve")
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Python regular expression syntax that Java's (the rule engine's) refuses or reads otherwise.
NOT_JAVA = ("(?P", "\\Z", "(?#", "[:", "{,")
# Label values that ansible-rulebook's native Jinja would hand over as numbers or booleans.
LITERAL_SAMPLES = ("0", "1", "10", "123", "1.5", "1e5", "-1", "0x1", "1_0", "1j", "True", "False", "None")
LINE_WIDTH = 160


def generate(
    table: RouteTable, variant: str, *, routes_path: str, cooldown_minutes: float, dry_run: bool = False
) -> str:
    """The rulebook for a routes file as YAML text; ``cooldown_minutes`` is the adapter's
    default cooldown (a route's safety.cooldown_minutes wins), ``dry_run`` its global dry run."""
    if variant not in VARIANTS:
        raise RouteError(f"variant must be one of {', '.join(VARIANTS)}")
    rules, unreachable = [], []
    for index, route in enumerate(table.routes):
        shadows = [earlier for earlier in table.routes[:index] if earlier.alertname == route.alertname]
        if any(not earlier.matchers for earlier in shadows):
            unreachable.append(route.name)
            continue
        try:
            rules.append(_rule(route, shadows, variant, cooldown_minutes, dry_run))
        except RouteError as error:
            raise RouteError(f"route {route.name!r}: {error}") from None
    source: dict[str, Any] = {
        "name": "alertmanager",
        "eda.builtin.webhook": {
            "host": "{{ webhook_host }}",
            "port": "{{ webhook_port }}",
            # `string` fails the start when the variable is missing (else the webhook would
            # start and refuse every request without saying why).
            "token": "{{ webhook_token | string }}",
        },
        "filters": [{ALERT_FILTER: {}}],
    }
    document = [{"name": "incident.remediation alert routes", "hosts": "all", "sources": [source], "rules": rules}]
    body = yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=LINE_WIDTH)
    if yaml.safe_load(body) != document:
        raise RouteError("the rulebook does not read back as generated (a value YAML cannot write as is)")
    return _header(routes_path, variant, unreachable) + body


def _header(routes_path: str, variant: str, unreachable: list[str]) -> str:
    lines = [
        "---",
        f"# GENERATED from {routes_path} by",
        f"#   remediate rulebook --routes {routes_path} --variant {variant}",
        "# Do not edit: change the routes file and generate it again (docs/eda.md).",
        "# Rulebook variables (docs/eda.md): webhook_host, webhook_port, webhook_token (the",
        "# bearer token Alertmanager sends)" + (", controller_organization." if variant == "run_job_template" else "."),
    ]
    if unreachable:
        lines.append("# Left out, an earlier route takes all their alerts: " + ", ".join(unreachable) + ".")
    return "\n".join(lines) + "\n"


def _rule(route: Route, shadows: list[Route], variant: str, cooldown_minutes: float, dry_run: bool) -> dict:
    notify = route.mode == "notify_only"
    playbook = NOTIFY_PLAYBOOK if notify else route.playbook
    extra_vars: dict[str, Any] = {"target": _target(route.target), "severity": route.severity}
    if notify:
        extra_vars |= {"dry_run": False, "notify_reason": "notify_only"}
    else:
        extra_vars["dry_run"] = route.mode in DRY_RUN_MODES or (dry_run and route.mode == "auto")
        extra_vars |= {name: _variable(name, spec) for name, spec in route.variables.items()}
        if route.thresholds:
            extra_vars["thresholds"] = dict(route.thresholds)
    if variant == "run_playbook":
        action = {"run_playbook": {"name": playbook, "extra_vars": extra_vars}}
    else:
        action = {
            "run_job_template": {
                "name": _job_template(route, playbook),
                "organization": "{{ controller_organization }}",
                "job_args": {"extra_vars": extra_vars},
            }
        }
    window = max(60, round(60 * route.safety.get("cooldown_minutes", cooldown_minutes)))
    return {
        "name": f"{route.name}: {playbook} ({route.mode})",
        "condition": "\nand ".join(_conditions(route, shadows)),
        "throttle": {
            "once_within": _duration(window),
            "group_by_attributes": ["event.alert.fingerprint"],
        },
        "action": action,
    }


def _job_template(route: Route, playbook: str) -> str:
    """The job template the adapter's awx executor would launch; by name only."""
    template = job_template_for(route, "notify" if route.mode == "notify_only" else "remediate", playbook)
    if not isinstance(template, str):
        raise RouteError("job_template is an id; ansible-rulebook launches a job template by its name")
    return template


def _duration(seconds: int) -> str:
    if seconds % 60:
        return f"{seconds} seconds"
    return "1 minute" if seconds == 60 else f"{seconds // 60} minutes"


def _conditions(route: Route, shadows: list[Route]) -> list[str]:
    """The rule's condition, as clauses that must all hold."""
    clauses = ['event.alert.status == "firing"', f"event.alert.labels.alertname == {_string(route.alertname)}"]
    clauses += [_matcher(name, matcher) for name, matcher in route.matchers.items()]
    clauses += [
        "(" + " or ".join(_matcher(name, matcher, negated=True) for name, matcher in earlier.matchers.items()) + ")"
        for earlier in shadows
    ]
    for spec in _label_fields(route):
        clause = _check(spec)
        if clause not in clauses:
            clauses.append(clause)
    return clauses


def _label_fields(route: Route) -> list[FieldSpec]:
    def walk(tree: dict) -> list[FieldSpec]:
        found = []
        for spec in tree.values():
            if isinstance(spec, dict):
                found += walk(spec)
            elif spec.label is not None:
                found.append(spec)
        return found

    return walk(route.target) + [spec for spec in route.variables.values() if spec.label is not None]


def _matcher(name: str, matcher: str | re.Pattern, *, negated: bool = False) -> str:
    """A route matcher (the adapter reads an absent label as ''), or its negation."""
    label = _label_path(name)
    if isinstance(matcher, re.Pattern):
        test = f"{label} is {'not ' if negated else ''}match({_regex(matcher)})"
        empty_matches = matcher.fullmatch("") is not None
    else:
        test = f"{label} {'!=' if negated else '=='} {_string(matcher, literal=True)}"
        empty_matches = matcher == ""
    if empty_matches != negated:  # the absent label satisfies the clause
        return f"({label} is not defined or {test})"
    return test


def _check(spec: FieldSpec) -> str:
    """A label value passes the route's pattern and allow list; absent, only with a default."""
    label = _label_path(spec.label)
    tests = []
    if spec.pattern is not None:
        tests.append(f"{label} is match({_regex(spec.pattern)})")
    if spec.allow is not None:
        tests.append(f"{label} in [{', '.join(_string(item, literal=True) for item in spec.allow)}]")
    test = " and ".join(tests)
    if spec.default is not None:
        return f"({label} is not defined or {test})"
    return f"({test})" if len(tests) > 1 else test


def _label_path(name: str) -> str:
    if IDENTIFIER.fullmatch(name):
        return f"event.alert.labels.{name}"
    return f"event.alert.labels[{_string(name)}]"


def _regex(pattern: re.Pattern) -> str:
    """A full match of the route's (Python) pattern as a Java pattern in a condition."""
    source = pattern.pattern
    unsupported = next((syntax for syntax in NOT_JAVA if syntax in source), None)
    if unsupported:
        raise RouteError(f"pattern {source!r}: {unsupported!r} means something else to the rule engine (Java)")
    if pattern.flags & ~re.UNICODE:
        raise RouteError(f"pattern {source!r}: flags cannot be carried over to the rule engine")
    if re.search(r"(?<!\\)(\\\\)+[tnfr]", source):
        raise RouteError(f"pattern {source!r}: an escaped backslash before t, n, f or r does not survive the condition")
    # \z: Java's $ also matches before a final line break.
    return _string(f"^(?:{source})\\z")


def _string(value: str, *, literal: bool = False) -> str:
    """A string in a condition; ``literal`` for a value compared as is (the parser turns
    the two characters \\t into a tab, which is harmless only in a regular expression)."""
    if literal and re.search(r"\\[tnfr]", value):
        raise RouteError(f"value {value!r}: a backslash before t, n, f or r does not survive the condition")
    if "\n" in value or "\r" in value:
        raise RouteError(f"value {value!r}: line breaks cannot be written in a condition")
    for quote in ('"', "'"):
        if quote not in value:
            return f"{quote}{value}{quote}"
    raise RouteError(f"value {value!r}: holds both quote characters, which a condition cannot")


def _target(tree: dict) -> Any:
    """The target as YAML when it is fixed, else one Jinja expression that builds it (a
    mapping, so ansible-rulebook's native rendering keeps every label value a string)."""
    fixed = _fixed(tree)
    if fixed is not None:
        return fixed
    entries = ",\n".join(f"  {_jinja(name)}: {_jinja(spec)}" for name, spec in tree.items())
    return "{{ {\n" + entries + "\n} }}"


def _fixed(tree: dict) -> dict | None:
    result = {}
    for name, spec in tree.items():
        value = _fixed(spec) if isinstance(spec, dict) else (spec.value if spec.label is None else None)
        if value is None:
            return None
        result[name] = value
    return result


def _variable(name: str, spec: FieldSpec) -> Any:
    if spec.label is None:
        return spec.value
    if not spec.as_int:
        samples = [sample for sample in LITERAL_SAMPLES if spec.pattern is None or spec.pattern.fullmatch(sample)]
        samples = [sample for sample in samples if spec.allow is None or sample in spec.allow]
        samples += [item for item in spec.allow or () if _python_literal(item)]
        if samples:
            raise RouteError(
                f"vars.{name}: a label value such as {samples[0]!r} would reach the playbook as a number or"
                " boolean (ansible-rulebook renders values natively); use type: int or a stricter check"
            )
    return "{{ " + _jinja(spec) + " }}"


def _python_literal(text: str) -> bool:
    try:
        return not isinstance(ast.literal_eval(text), str)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return False


def _jinja(value: Any) -> str:
    """A Jinja expression for a target tree, a field spec or a fixed value."""
    if isinstance(value, FieldSpec):
        return _jinja(value.value) if value.label is None else _jinja_label(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_jinja(str(key))}: {_jinja(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_jinja(item) for item in value) + "]"
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "none"}[value]
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise RouteError(f"value {value!r} cannot be written in a rulebook")
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)


def _jinja_label(spec: FieldSpec) -> str:
    """A label's value (its default when absent, an int for type: int); the rule checked it."""
    expression = f"event.alert.labels[{_jinja(spec.label)}]"
    if spec.default is not None:
        expression += f" | default({_jinja(str(spec.default))})"
    return expression + (" | int" if spec.as_int else "")


class _Dumper(yaml.SafeDumper):
    """Block sequences indented under their key; strings of several lines as blocks (|-)."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _represent_str)
