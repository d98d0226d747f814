"""The routes file: which playbook answers an alert, in which mode, and how the
alert's labels become the playbook's target and variables.

Every value taken from a label is checked against the route's ``pattern`` (a full
match) or ``allow`` list; one that fails rejects the alert. Paths never come
from labels.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SEVERITIES = ("critical", "warning", "info")
MODES = ("auto", "dry_run", "approve", "notify_only")
PLATFORMS = ("compose", "kubernetes", "systemd")
ROUTE_KEYS = {"name", "alertname", "matchers", "playbook", "severity", "mode", "target", "vars", "thresholds", "safety"}
ROUTE_KEYS |= {"runbook", "executor", "job_template"}
EXECUTORS = ("local", "awx")
SAFETY_KEYS = {"cooldown_minutes", "breaker_failures", "approval_timeout_minutes", "per_target_per_hour"}
SAFETY_KEYS |= {"per_route_per_hour"}
FIELD_KEYS = {"value", "label", "pattern", "allow", "default", "type"}
# Paths on the host and the names of secret variables: never taken from alert labels.
NEVER_FROM_LABELS = ("project_src", "mount", "certificate.file", "database.password_var")
TARGET_IDENTITY = ("platform", "host", "namespace", "project_name", "service", "project_src")
# Variables the adapter sets itself; a route cannot map labels onto them.
RESERVED_VARS = {"alert", "target", "incident_id", "dry_run", "severity", "thresholds", "incident_records_dir"}
VAR_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
PLAYBOOK_NAME = re.compile(r"([a-z0-9_]+)\.([a-z0-9_]+)\.([a-z0-9_]+)")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# A label pattern that accepts any of these is too loose to act on.
HOSTILE_SAMPLES = ("a; rm -rf /", "$(id)", "`id`", "{{ 7*7 }}", "{% x %}", "../x", "a\nb", "a b", "a|b", "")
HOSTILE_SAMPLES += ("{{x}}", "{%x%}")


class RouteError(ValueError):
    """The routes file is invalid; the message lists every problem."""


class Rejected(ValueError):
    """An alert whose labels do not pass the route's checks."""


@dataclass(frozen=True)
class FieldSpec:
    """One value of the target or a variable: fixed, or taken from a checked label."""

    value: Any = None
    label: str | None = None
    pattern: re.Pattern | None = None
    allow: tuple[str, ...] | None = None
    default: Any = None
    as_int: bool = False

    def resolve(self, name: str, labels: dict[str, str]) -> Any:
        if self.label is None:
            return self.value
        raw = labels.get(self.label)
        if raw is None:
            if self.default is None:
                raise Rejected(f"{name}: label {self.label!r} is missing and the route sets no default")
            raw = str(self.default)  # checked and converted like a label value
        if self.pattern is not None and not self.pattern.fullmatch(raw):
            raise Rejected(f"{name}: label {self.label!r} does not match the route's pattern ({_show(raw)})")
        if self.allow is not None and raw not in self.allow:
            raise Rejected(f"{name}: label {self.label!r} is not in the route's allow list ({_show(raw)})")
        return int(raw) if self.as_int else raw


@dataclass(frozen=True)
class Route:
    name: str
    alertname: str
    playbook: str
    severity: str
    mode: str
    target: dict
    matchers: dict = field(default_factory=dict)
    variables: dict = field(default_factory=dict)
    thresholds: dict = field(default_factory=dict)
    safety: dict = field(default_factory=dict)
    runbook: str = ""
    # None: the settings' executor.kind; job_template None: the playbook's name.
    executor: str | None = None
    job_template: str | int | None = None

    def matches(self, labels: dict[str, str]) -> bool:
        if labels.get("alertname") != self.alertname:
            return False
        for name, matcher in self.matchers.items():
            value = labels.get(name, "")
            if isinstance(matcher, re.Pattern) and not matcher.fullmatch(value):
                return False
            if isinstance(matcher, str) and value != matcher:
                return False
        return True

    def resolve(self, labels: dict[str, str]) -> tuple[dict, dict]:
        """The target and variables for an alert's labels; raises Rejected."""
        return _resolve_tree(self.target, labels, "target"), self.variables_for(labels)

    def variables_for(self, labels: dict[str, str]) -> dict:
        """The route's variables for an alert's labels; raises Rejected."""
        return {name: spec.resolve(name, labels) for name, spec in self.variables.items()}

    def check_target(self, target: dict) -> dict:
        """A target named by a playbook (a hand-over) through this route's target checks:
        a fixed field must be absent or the same, a field taken from a label must pass the
        label's pattern or allow list (absent: its default), nothing else may be set.
        Returns the target as the route would give it; raises Rejected."""
        return _check_tree(self.target, target, "target")


@dataclass(frozen=True)
class RouteTable:
    routes: tuple[Route, ...]

    def match(self, labels: dict[str, str]) -> Route | None:
        """The first route that matches, in file order."""
        return next((route for route in self.routes if route.matches(labels)), None)

    def by_name(self, name: str) -> Route | None:
        return next((route for route in self.routes if route.name == name), None)

    def by_playbook(self, playbook: str) -> Route | None:
        """The first route, in file order, that runs this playbook."""
        return next((route for route in self.routes if route.playbook == playbook), None)


def target_key(target: dict) -> str:
    """A stable key for 'the same target': platform, host, namespace, service, project."""
    identity = "\x00".join(str(target.get(key)) for key in TARGET_IDENTITY)
    return hashlib.sha256(identity.encode()).hexdigest()[:24]


def load_routes(path: Path) -> RouteTable:
    """Parse and check a routes file; RouteError lists every problem found."""
    try:
        document = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as error:
        raise RouteError(f"{path}: {error}") from error
    problems: list[str] = []
    if not isinstance(document, dict) or document.get("version") != 1 or not isinstance(document.get("routes"), list):
        raise RouteError(f"{path}: expected a mapping with version: 1 and a routes list")
    routes = []
    for index, raw in enumerate(document["routes"]):
        where = f"route {index + 1} ({raw.get('alertname', '?') if isinstance(raw, dict) else '?'})"
        try:
            routes.append(_parse_route(raw))
        except RouteError as error:
            problems.append(f"{where}: {error}")
    names = [route.name for route in routes]
    problems += [f"route name {name!r} is used twice" for name in sorted({n for n in names if names.count(n) > 1})]
    if problems:
        raise RouteError("\n".join(problems))
    return RouteTable(tuple(routes))


def playbook_path(playbook: str, collections_paths: list[Path]) -> Path | None:
    """Where a collection playbook (namespace.collection.name) lives, if it exists."""
    match = PLAYBOOK_NAME.fullmatch(playbook)
    if not match:
        return None
    namespace, collection, name = match.groups()
    for root in collections_paths:
        for suffix in (".yml", ".yaml"):
            path = root / "ansible_collections" / namespace / collection / "playbooks" / f"{name}{suffix}"
            if path.is_file():
                return path
    return None


def check_routes(path: Path, collections_paths: list[Path], catalog: Path | None) -> tuple[list[str], list[str]]:
    """(problems, catalog alert names without a route)."""
    try:
        table = load_routes(path)
    except RouteError as error:
        return str(error).splitlines(), []
    problems = [
        f"route {route.name!r}: playbook {route.playbook} not found"
        for route in table.routes
        if playbook_path(route.playbook, collections_paths) is None
    ]
    unrouted: list[str] = []
    if catalog is not None:
        document = yaml.safe_load(Path(catalog).read_text()) or {}
        routed = {route.alertname for route in table.routes}
        unrouted = sorted({name for names in (document.get("playbooks") or {}).values() for name in names} - routed)
    return problems, unrouted


def _parse_route(raw: Any) -> Route:
    if not isinstance(raw, dict):
        raise RouteError("a route must be a mapping")
    unknown = set(raw) - ROUTE_KEYS
    if unknown:
        raise RouteError(f"unknown keys {sorted(unknown)}")
    for key in ("alertname", "playbook", "severity", "mode", "target"):
        if key not in raw:
            raise RouteError(f"{key} is required")
    if not PLAYBOOK_NAME.fullmatch(str(raw["playbook"])):
        raise RouteError("playbook must be a fully qualified name (namespace.collection.playbook)")
    if raw["severity"] not in SEVERITIES:
        raise RouteError(f"severity must be one of {', '.join(SEVERITIES)}")
    if raw["mode"] not in MODES:
        raise RouteError(f"mode must be one of {', '.join(MODES)}")
    target = _parse_tree(raw["target"], "target")
    if not isinstance(target.get("platform"), FieldSpec) or target["platform"].value not in PLATFORMS:
        raise RouteError(f"target.platform must be a fixed value among {', '.join(PLATFORMS)}")
    variables = {}
    for name, spec in (raw.get("vars") or {}).items():
        if not VAR_NAME.fullmatch(name) or name in RESERVED_VARS or name.startswith("ansible"):
            raise RouteError(f"vars.{name}: not a variable name a route may set")
        variables[name] = _parse_field(spec, f"vars.{name}")
    thresholds, safety = _parse_numbers(raw)
    executor = raw.get("executor")
    if executor is not None and executor not in EXECUTORS:
        raise RouteError(f"executor must be one of {', '.join(EXECUTORS)}")
    job_template = raw.get("job_template")
    if job_template is not None and not _job_template(job_template):
        raise RouteError("job_template must be a job template's name (at most 512 characters) or its id")
    return Route(
        name=str(raw.get("name") or raw["alertname"]),
        alertname=str(raw["alertname"]),
        playbook=raw["playbook"],
        severity=raw["severity"],
        mode=raw["mode"],
        target=target,
        matchers=_parse_matchers(raw.get("matchers") or {}),
        variables=variables,
        thresholds=thresholds,
        safety=safety,
        runbook=str(raw.get("runbook", "")),
        executor=executor,
        job_template=job_template,
    )


def _job_template(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value > 0
    return isinstance(value, str) and 0 < len(value) <= 512 and not CONTROL.search(value)


def _parse_numbers(raw: dict) -> tuple[dict, dict]:
    """A route's thresholds and safety overrides, both names to numbers."""
    thresholds = raw.get("thresholds") or {}
    if not isinstance(thresholds, dict) or not all(
        isinstance(value, int | float) and not isinstance(value, bool) for value in thresholds.values()
    ):
        raise RouteError("thresholds must map names to numbers")
    safety = raw.get("safety") or {}
    if not isinstance(safety, dict) or set(safety) - SAFETY_KEYS:
        raise RouteError(f"safety may set only {sorted(SAFETY_KEYS)}")
    if not all(isinstance(value, int | float) and value >= 0 for value in safety.values()):
        raise RouteError("safety values must be non-negative numbers")
    return thresholds, safety


def _parse_matchers(raw: Any) -> dict:
    if not isinstance(raw, dict):
        raise RouteError("matchers must be a mapping of label to value or {regex: ...}")
    matchers = {}
    for name, matcher in raw.items():
        if isinstance(matcher, dict) and set(matcher) == {"regex"}:
            matchers[name] = _compile(matcher["regex"], f"matchers.{name}")
        elif isinstance(matcher, str):
            matchers[name] = matcher
        else:
            raise RouteError(f"matchers.{name}: a string or {{regex: ...}}")
    return matchers


def _parse_tree(raw: Any, where: str) -> dict:
    if not isinstance(raw, dict) or not raw:
        raise RouteError(f"{where} must be a non-empty mapping")
    tree = {}
    for name, spec in raw.items():
        dotted = f"{where}.{name}"
        if isinstance(spec, dict) and ({"value", "label"} & set(spec)):
            if "label" in spec and any(dotted.endswith("." + path) for path in NEVER_FROM_LABELS):
                raise RouteError(f"{dotted} must never come from a label")
            tree[name] = _parse_field(spec, dotted)
        else:
            tree[name] = _parse_tree(spec, dotted)
    return tree


def _parse_field(spec: Any, where: str) -> FieldSpec:
    if not isinstance(spec, dict) or set(spec) - FIELD_KEYS or ("value" in spec) == ("label" in spec):
        raise RouteError(f"{where}: either {{value: ...}} or {{label: NAME, pattern|allow: ...}}")
    if "value" in spec:
        return FieldSpec(value=spec["value"])
    if "pattern" not in spec and "allow" not in spec:
        raise RouteError(f"{where}: a value taken from a label needs a pattern or an allow list")
    pattern = _compile(spec["pattern"], where) if "pattern" in spec else None
    if pattern is not None:
        loose = [sample for sample in HOSTILE_SAMPLES if pattern.fullmatch(sample)]
        if loose:
            raise RouteError(f"{where}: pattern accepts unsafe values such as {loose[0]!r}")
    allow = spec.get("allow")
    if allow is not None and (not isinstance(allow, list) or not all(isinstance(item, str) for item in allow)):
        raise RouteError(f"{where}: allow must be a list of strings")
    if spec.get("type", "str") not in ("str", "int"):
        raise RouteError(f"{where}: type must be str or int")
    as_int = spec.get("type") == "int"
    default = spec.get("default")
    field_spec = FieldSpec(
        label=str(spec["label"]),
        pattern=pattern,
        allow=tuple(allow) if allow is not None else None,
        default=default,
        as_int=as_int,
    )
    if default is not None:
        try:
            field_spec.resolve(where, {field_spec.label: str(default)})
        except Rejected as error:
            raise RouteError(f"{where}: the default fails the route's own check") from error
    return field_spec


def _compile(pattern: Any, where: str) -> re.Pattern:
    try:
        return re.compile(str(pattern))
    except re.error as error:
        raise RouteError(f"{where}: invalid regular expression: {error}") from error


def _resolve_tree(tree: dict, labels: dict[str, str], where: str) -> dict:
    return {
        name: spec.resolve(f"{where}.{name}", labels)
        if isinstance(spec, FieldSpec)
        else _resolve_tree(spec, labels, f"{where}.{name}")
        for name, spec in tree.items()
    }


def _check_tree(spec: dict, given: dict, where: str) -> dict:
    unknown = sorted(set(given) - set(spec))
    if unknown:
        raise Rejected(f"{where}: {_show(str(unknown[0]))} is not a field of the route's target")
    checked = {}
    for name, field_spec in spec.items():
        dotted = f"{where}.{name}"
        value = given.get(name)
        if isinstance(field_spec, FieldSpec) and field_spec.label is None:
            if value is not None and str(value) != str(field_spec.value):
                raise Rejected(f"{dotted}: differs from the route's fixed value ({_show(str(value))})")
            checked[name] = field_spec.value
        elif isinstance(field_spec, FieldSpec):
            labels = {} if value is None else {field_spec.label: str(value)}
            checked[name] = field_spec.resolve(dotted, labels)
        elif value is None or isinstance(value, dict):
            checked[name] = _check_tree(field_spec, value or {}, dotted)
        else:
            raise Rejected(f"{dotted} must be a mapping")
    return checked


def _show(value: str) -> str:
    """A bounded, escaped rendering of an untrusted value for reasons and logs."""
    return json.dumps(value[:64] + ("..." if len(value) > 64 else ""))
