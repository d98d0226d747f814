"""The `remediate` command (docs/adapter.md)."""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError
from pythonjsonlogger.json import JsonFormatter

from remediate.alerts import Alert, WebhookPayload
from remediate.config import Settings, is_loopback, load_settings
from remediate.executor import make_executor
from remediate.metrics import Metrics
from remediate.outcomes import GOOD_RESULTS
from remediate.preflight import preflight
from remediate.routes import RouteError, check_routes, load_routes
from remediate.rulebook import VARIANTS, generate
from remediate.safety import Engine, EscalationPolicy
from remediate.store import open_store
from remediate.worker import Workers

log = logging.getLogger("remediate")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="remediate", description=__doc__)
    parser.add_argument("--config", type=Path, default=os.environ.get("REMEDIATE_CONFIG"), help="settings file (YAML)")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the webhook service and the workers")
    serve.add_argument("--host", help="listen address (default: the settings' listen_host)")
    serve.add_argument("--port", type=int, help="listen port (default: the settings' listen_port)")
    serve.add_argument(
        "--insecure-no-auth", action="store_true", help="accept unauthenticated requests (loopback only)"
    )

    fire = commands.add_parser("fire", help="route and run one payload now, with progress")
    fire.add_argument("file", type=Path, help="an Alertmanager webhook payload or one alert (JSON)")

    commands.add_parser("check", help="check that runs can start: ansible-playbook, collection, playbooks, inventory")

    commands.add_parser("ack-notifications", help="acknowledge that the last notification failed (/healthz ok)")

    routes = commands.add_parser("routes", help="show or check the routes file")
    routes.add_argument("--check", action="store_true", help="fail on invalid routes; list catalog alerts without one")

    rulebook = commands.add_parser("rulebook", help="write the Event-Driven Ansible rulebook for the routes file")
    rulebook.add_argument("--routes", type=Path, help="the routes file (default: the settings' routes_file)")
    rulebook.add_argument("--variant", choices=VARIANTS, required=True, help="run the playbook, or its job template")
    rulebook.add_argument("--output", type=Path, help="write here instead of to standard output")

    incidents = commands.add_parser("incidents", help="recent incidents, or one incident's timeline")
    incidents.add_argument("id", nargs="?")

    runs = commands.add_parser("runs", help="runs, optionally by state")
    runs.add_argument("--state", help="comma-separated states")

    for name, helptext in (("approve", "approve a run that waits for a person"), ("cancel", "cancel a run")):
        command = commands.add_parser(name, help=helptext)
        command.add_argument("id", type=int)
        command.add_argument("--by", default=_person(), help="who decides (default: the login name)")

    breaker = commands.add_parser("reset-breaker", help="close a route's circuit breaker")
    breaker.add_argument("route")
    breaker.add_argument("--by", default=_person())

    silence = commands.add_parser("silence", help="silence alerts matching labels")
    silence.add_argument("--match", action="append", required=True, metavar="LABEL=VALUE")
    silence.add_argument("--minutes", type=float, required=True)
    silence.add_argument("--comment", default="")
    silence.add_argument("--by", default=_person())

    watch = commands.add_parser("watch", help="a running adapter's incidents, live, in the terminal")
    watch.add_argument("--url", default=os.environ.get("REMEDIATE_URL"), help="default: the settings' listen address")
    watch.add_argument(
        "--token-file", type=Path, help="default: $REMEDIATE_TOKEN, else the settings' auth.bearer_token_file"
    )
    watch.add_argument("--ca-file", type=Path, help="CA bundle of an adapter served over HTTPS")
    watch.add_argument("--refresh", type=float, default=4, help="redraws per second at most (default 4)")

    args = parser.parse_args(argv)
    setup_logging()
    try:
        settings = load_settings(args.config)
    except (OSError, ValueError) as error:
        print(f"remediate: settings: {error}", file=sys.stderr)
        return 2
    handler = globals()[f"cmd_{args.command.replace('-', '_')}"]
    try:
        return handler(settings, args)
    except RouteError as error:
        print(f"remediate: routes: {error}", file=sys.stderr)
        return 2


def setup_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s", timestamp=False))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(os.environ.get("REMEDIATE_LOG_LEVEL", "INFO"))


def build(settings: Settings) -> tuple:
    for name in ("routes_file", "escalation_policy_file"):
        if getattr(settings, name) is None:
            raise RouteError(f"{name} is not set and the collection is not on {settings.executor.collections}")
    store = open_store(settings.store)
    store.init()
    engine = Engine(settings, load_routes(settings.routes_file), EscalationPolicy(settings.escalation_policy_file))
    workers = Workers(store, engine, make_executor(settings, engine.routes), Metrics())
    return store, engine, workers


def cmd_serve(settings: Settings, args) -> int:
    import uvicorn  # noqa: PLC0415 - only the service needs it

    from remediate.server import Authenticator, create_app  # noqa: PLC0415

    host = args.host or settings.listen_host
    port = settings.listen_port if args.port is None else args.port
    settings.auth.disabled = args.insecure_no_auth
    try:
        authenticator = Authenticator(settings.auth)
    except (OSError, ValueError) as error:
        print(f"remediate: auth: {error}", file=sys.stderr)
        return 2
    if args.insecure_no_auth:
        if not is_loopback(host):
            print("remediate: --insecure-no-auth is allowed only on a loopback address", file=sys.stderr)
            return 2
        log.warning("serving WITHOUT authentication (loopback only)", extra={"host": host, "port": port})
    elif not authenticator.configured:
        print(
            "remediate: no authentication configured (auth.bearer_token_file, auth.basic_users_file or"
            " auth.hmac_secret_file); refusing to start. --insecure-no-auth serves on loopback without it.",
            file=sys.stderr,
        )
        return 2
    if not _preflight_ok(settings, "serve"):
        return 2
    store, engine, workers = build(settings)
    app = create_app(store, engine, workers, authenticator, settings.max_body_bytes)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        ssl_certfile=str(settings.tls_certfile) if settings.tls_certfile else None,
        ssl_keyfile=str(settings.tls_keyfile) if settings.tls_keyfile else None,
        log_config=None,
        access_log=False,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    app.state.feed.stopping = lambda: server.should_exit  # open feeds end, so shutdown does not wait on them
    workers.start()
    log.info("serving", extra={"host": host, "port": port, "workers": settings.workers, "store": _store_kind(settings)})
    try:
        server.run()
    finally:
        workers.stop()
        store.close()
    return 0


def _preflight_ok(settings: Settings, command: str) -> bool:
    problems = preflight(settings)
    if problems:
        refusal = "" if command == "check" else ", refusing to start"
        print(f"remediate {command}: cannot run playbooks{refusal}:", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
    return not problems


def cmd_check(settings: Settings, args) -> int:
    if not _preflight_ok(settings, "check"):
        return 1
    print(f"ok: ansible-playbook {settings.executor.playbook_binary}, collections {settings.executor.collections}")
    return 0


def cmd_ack_notifications(settings: Settings, args) -> int:
    _people_action(settings, "acknowledge_notifications", _person())
    print("failed notifications acknowledged")
    return 0


def cmd_fire(settings: Settings, args) -> int:
    try:
        alerts = _read_alerts(args.file)
    except (OSError, ValueError) as error:
        print(f"remediate: {args.file}: {error}", file=sys.stderr)
        return 2
    if not _preflight_ok(settings, "fire"):
        return 2
    store, engine, workers = build(settings)
    decisions = engine.ingest(store, alerts, "fire")
    incidents = {decision.incident_id for decision in decisions}
    for decision in decisions:
        print(f"{decision.alertname or '(no alertname)'}: {decision.decision} - {decision.reason}")
    settings.workers = max(settings.workers, 1)
    workers.start()
    seen: dict[str, int] = {}
    try:
        while True:
            for incident in sorted(incidents):
                events = store.timeline(incident)
                for event in events[seen.get(incident, 0) :]:
                    print(f"  {_event_line(event)}")
                seen[incident] = len(events)
            pending = [run for run in store.runs(states=("queued", "running")) if run["incident_id"] in incidents]
            if not pending:
                break
            time.sleep(0.5)
    finally:
        workers.stop()
    ran = [run for run in store.runs(incidents=tuple(incidents)) if run["result"]]
    for run in ran:
        print(f"outcome of run {run['id']} ({run['playbook']}): {run['result']} - {run['outcome']}")
    waiting = [run for run in store.runs(states=("awaiting_approval",)) if run["incident_id"] in incidents]
    for run in waiting:
        print(f"run {run['id']} waits for approval: remediate approve {run['id']}")
    store.close()
    return 0 if all(run["result"] in GOOD_RESULTS for run in ran) else 1


def cmd_routes(settings: Settings, args) -> int:
    if settings.routes_file is None:
        raise RouteError(f"routes_file is not set and the collection is not on {settings.executor.collections}")
    collections = [Path(path) for path in settings.executor.collections.split(":") if path]
    problems, unrouted = check_routes(settings.routes_file, collections, settings.catalog_file)
    if not args.check:
        for route in load_routes(settings.routes_file).routes:
            print(f"{route.name}: {route.playbook} ({route.mode}, {route.severity})")
        return 0
    for problem in problems:
        print(f"ERROR: {problem}")
    if unrouted:
        print(f"catalog alerts without a route yet ({len(unrouted)}): " + ", ".join(unrouted))
    print("routes: " + ("FAILED" if problems else "ok") + f" ({settings.routes_file})")
    return 1 if problems else 0


def cmd_rulebook(settings: Settings, args) -> int:
    path = args.routes or settings.routes_file
    if path is None:
        raise RouteError("no routes file: pass --routes FILE or set routes_file")
    text = generate(
        load_routes(path),
        args.variant,
        routes_path=str(path),
        cooldown_minutes=settings.safety.cooldown_minutes,
        dry_run=settings.safety.dry_run,
    )
    if args.output:
        args.output.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def cmd_incidents(settings: Settings, args) -> int:
    store = open_store(settings.store)
    store.init()
    if args.id:
        events = store.timeline(args.id)
        if not events:
            print(f"no incident {args.id}", file=sys.stderr)
            return 1
        for event in events:
            print(_event_line(event))
        return 0
    for incident in store.incidents():
        print(
            f"{incident['id']}  last {_clock(incident['last_at'])}  {incident['last_event']}: {incident['last_reason']}"
        )
    return 0


def cmd_watch(settings: Settings, args) -> int:
    from rich.console import Console  # noqa: PLC0415 - only the terminal view needs them

    from remediate.watch import Watch, read_token  # noqa: PLC0415

    scheme = "https" if settings.tls_certfile else "http"
    url = args.url or f"{scheme}://{settings.listen_host}:{settings.listen_port}"
    try:
        token = read_token(args.token_file, settings.auth.bearer_token_file)
    except OSError as error:
        print(f"remediate watch: token: {error}", file=sys.stderr)
        return 2
    if not token:
        print("remediate watch: no token: --token-file, $REMEDIATE_TOKEN or auth.bearer_token_file", file=sys.stderr)
        return 2
    verify = str(args.ca_file) if args.ca_file else True
    return Watch(url, token, verify).run(Console(), max(args.refresh, 0.5))


def cmd_runs(settings: Settings, args) -> int:
    store = open_store(settings.store)
    store.init()
    states = tuple(args.state.split(",")) if args.state else None
    for run in store.runs(states=states):
        print(json.dumps(run))
    return 0


def _people_action(settings: Settings, action: str, *arguments) -> str:
    store, _, workers = build(settings)
    try:
        return getattr(workers, action)(*arguments)
    finally:
        store.close()


def cmd_approve(settings: Settings, args) -> int:
    outcome = _people_action(settings, "approve", args.id, args.by)
    print(outcome)
    return 0 if outcome == "approved" else 1


def cmd_cancel(settings: Settings, args) -> int:
    outcome = _people_action(settings, "cancel", args.id, args.by)
    print(outcome)
    return 0 if outcome in ("canceled", "cancel requested") else 1


def cmd_reset_breaker(settings: Settings, args) -> int:
    _people_action(settings, "reset_breaker", args.route, args.by)
    print(f"breaker of {args.route} reset")
    return 0


def cmd_silence(settings: Settings, args) -> int:
    matchers = {}
    for item in args.match:
        name, sep, value = item.partition("=")
        if not sep or not name:
            print(f"remediate: --match wants LABEL=VALUE, got {item!r}", file=sys.stderr)
            return 2
        matchers[name] = value
    silence_id = _people_action(settings, "add_silence", matchers, args.minutes * 60, args.by, args.comment)
    print(f"silence {silence_id} until {_clock(time.time() + args.minutes * 60)}")
    return 0


def _read_alerts(path: Path) -> list[Alert]:
    """A webhook payload, a single alert, or a list of alerts."""
    document = json.loads(Path(path).read_text())
    try:
        if isinstance(document, dict) and "alerts" in document:
            return WebhookPayload.model_validate(document).alerts
        if isinstance(document, list):
            return [Alert.model_validate(item) for item in document]
        return [Alert.model_validate(document)]
    except ValidationError as error:
        raise ValueError(str(error)) from None


def _person() -> str:
    return os.environ.get("SUDO_USER") or getpass.getuser()


def _event_line(event: dict) -> str:
    """One timeline event: when, what (with a task's or a run's result) and why."""
    result = event.get("data", {}).get("result")
    return f"[{_clock(event['at'])}] {event['kind']}{f' {result}' if result else ''}: {event['reason']}"


def _clock(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _store_kind(settings: Settings) -> str:
    return settings.store.split(":", 1)[0]
