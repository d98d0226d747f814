"""The HTTP service: Alertmanager's webhook, one generic alert, people's actions,
incidents, /healthz and /metrics (docs/adapter.md)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import time
from collections import Counter
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from remediate import web
from remediate.alerts import Alert, WebhookPayload
from remediate.config import Auth
from remediate.safety import Engine
from remediate.store import Store
from remediate.worker import Workers

log = logging.getLogger("remediate.server")


class HTTPProblem(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class Authenticator:
    """Bearer tokens, basic users and an HMAC body signature, compared in constant time."""

    def __init__(self, auth: Auth):
        self.tokens = [line.encode() for line in _lines(auth.bearer_token_file)]
        self.users = {}
        for number, line in enumerate(_lines(auth.basic_users_file), 1):
            user, _, password = line.partition(":")
            if not (user and password):  # would be a user without a password
                log.warning("basic_users_file: line %d is not user:password; ignored", number)
                continue
            self.users[user] = password.encode()
        secret = _lines(auth.hmac_secret_file)
        if auth.hmac_secret_file and not secret:
            raise ValueError(f"{auth.hmac_secret_file} holds no HMAC secret")
        self.hmac_secret = secret[0].encode() if secret else None
        self.hmac_header = auth.hmac_header
        self.disabled = auth.disabled

    @property
    def configured(self) -> bool:
        return bool(self.tokens or self.users or self.hmac_secret)

    def principal(self, request: Request, body: bytes | None) -> str | None:
        """Who sent the request, or None. ``body`` is needed only for the signature."""
        if self.disabled:
            return "anonymous"
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and credentials and self.bearer(credentials):
            return "bearer"
        if scheme.lower() == "basic" and credentials:
            try:
                user, _, password = base64.b64decode(credentials, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return None
            if self.basic(user, password):
                return user
        signature = request.headers.get(self.hmac_header, "")
        if self.hmac_secret and signature and body is not None:
            digest = hmac.new(self.hmac_secret, body, hashlib.sha256).hexdigest()
            if hmac.compare_digest(signature.removeprefix("sha256=").encode(), digest.encode()):
                return "hmac"
        return None

    def bearer(self, token: str) -> str | None:
        given = token.strip().encode()
        return "bearer" if given and any(hmac.compare_digest(given, known) for known in self.tokens) else None

    def basic(self, user: str, password: str) -> str | None:
        expected = self.users.get(user)
        return user if expected is not None and hmac.compare_digest(password.encode(), expected) else None

    def needs_body(self, request: Request) -> bool:
        return bool(self.hmac_secret and request.headers.get(self.hmac_header))


class SilenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    matchers: dict[str, str] = Field(min_length=1, max_length=32)
    minutes: float = Field(gt=0, le=60 * 24 * 30)
    comment: str = Field("", max_length=1024)


class Api:
    """What every endpoint needs: the store, the engine, the workers and the checks."""

    def __init__(self, store: Store, engine: Engine, workers: Workers, authenticator: Authenticator, max_body: int):
        self.store = store
        self.engine = engine
        self.workers = workers
        self.authenticator = authenticator
        self.max_body = max_body
        self.metrics = workers.metrics

    async def read_body(self, request: Request) -> bytes:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body:
            raise HTTPProblem(413, f"body over the limit of {self.max_body} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body:
                raise HTTPProblem(413, f"body over the limit of {self.max_body} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def authenticated(self, request: Request) -> tuple[str, bytes]:
        """(principal, body): 401 before anything is read or stored when nobody is recognised."""
        principal = self.authenticator.principal(request, None)
        body = None
        if principal is None and self.authenticator.needs_body(request):
            body = await self.read_body(request)
            principal = self.authenticator.principal(request, body)
        if principal is None:
            log.warning(
                "unauthenticated request refused",
                extra={"path": request.url.path, "client": request.client.host if request.client else ""},
            )
            raise HTTPProblem(401, "authentication required")
        if body is None:
            body = await self.read_body(request)
        return principal, body

    async def ingest(self, request: Request, model, source: str) -> JSONResponse:
        started = time.perf_counter()
        _, body = await self.authenticated(request)
        parsed = _parse(model, body)
        alerts = parsed.alerts if isinstance(parsed, WebhookPayload) else [parsed]
        decisions = await run_in_threadpool(self.engine.ingest, self.store, alerts, source)
        for kind, count in Counter(decision.decision for decision in decisions).items():
            self.metrics.decisions.labels(kind=kind).inc(count)
        received = Counter(
            (alert.status, decision.route or "") for alert, decision in zip(alerts, decisions, strict=True)
        )
        for (status, route), count in received.items():
            self.metrics.alerts.labels(status=status, route=route).inc(count)
        self.workers.wake()
        self.metrics.answer_latency.observe(time.perf_counter() - started)
        self.metrics.requests.labels(endpoint=request.url.path, code="200").inc()
        return JSONResponse({"received": len(decisions), "decisions": [decision.as_dict() for decision in decisions]})


def create_app(store: Store, engine: Engine, workers: Workers, authenticator: Authenticator, max_body: int) -> FastAPI:
    app = FastAPI(title="remediate", version="0.1.0", docs_url=None, redoc_url=None)
    api = Api(store, engine, workers, authenticator, max_body)

    @app.exception_handler(HTTPProblem)
    async def problem(request: Request, error: HTTPProblem) -> JSONResponse:
        route = request.scope.get("route")
        api.metrics.requests.labels(endpoint=getattr(route, "path", "unmatched"), code=str(error.status)).inc()
        return JSONResponse({"error": error.message}, status_code=error.status)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, error: RequestValidationError) -> JSONResponse:
        return await problem(request, HTTPProblem(400, "invalid request: " + _problems(error.errors())))

    _intake_endpoints(app, api)
    _people_endpoints(app, api)
    _read_endpoints(app, api)
    web.register(app, api)
    return app


def _intake_endpoints(app: FastAPI, api: Api) -> None:
    @app.post("/api/v1/alertmanager", summary="Alertmanager webhook (version 4)")
    async def alertmanager(request: Request) -> JSONResponse:
        return await api.ingest(request, WebhookPayload, "alertmanager")

    @app.post("/api/v1/alerts", summary="One generic alert")
    async def generic_alert(request: Request) -> JSONResponse:
        return await api.ingest(request, Alert, "generic")


def _people_endpoints(app: FastAPI, api: Api) -> None:
    @app.post("/api/v1/runs/{run_id}/approve", summary="Approve a run that waits for a person")
    async def approve(run_id: int, request: Request) -> JSONResponse:
        principal, _ = await api.authenticated(request)
        outcome = await run_in_threadpool(api.workers.approve, run_id, principal)
        if outcome != "approved":
            raise HTTPProblem(404 if outcome == "no such run" else 409, outcome)
        return JSONResponse({"run_id": run_id, "outcome": outcome})

    @app.post("/api/v1/runs/{run_id}/cancel", summary="Cancel a queued, waiting or running run")
    async def cancel(run_id: int, request: Request) -> JSONResponse:
        principal, _ = await api.authenticated(request)
        outcome = await run_in_threadpool(api.workers.cancel, run_id, principal)
        if outcome not in ("canceled", "cancel requested"):
            raise HTTPProblem(404 if outcome == "no such run" else 409, outcome)
        return JSONResponse({"run_id": run_id, "outcome": outcome})

    @app.post("/api/v1/breakers/{route}/reset", summary="Close a route's circuit breaker")
    async def reset_breaker(route: str, request: Request) -> JSONResponse:
        principal, _ = await api.authenticated(request)
        if api.engine.routes.by_name(route) is None:
            raise HTTPProblem(404, "no such route")
        await run_in_threadpool(api.workers.reset_breaker, route, principal)
        return JSONResponse({"route": route, "outcome": "reset"})

    @app.post("/api/v1/notifications/acknowledge", summary="A person knows the last notification failed")
    async def acknowledge_notifications(request: Request) -> JSONResponse:
        principal, _ = await api.authenticated(request)
        await run_in_threadpool(api.workers.acknowledge_notifications, principal)
        return JSONResponse({"outcome": "acknowledged"})

    @app.post("/api/v1/silences", summary="Silence alerts matching labels for some minutes")
    async def add_silence(request: Request) -> JSONResponse:
        principal, body = await api.authenticated(request)
        silence = _parse(SilenceIn, body)
        silence_id = await run_in_threadpool(
            api.workers.add_silence, silence.matchers, silence.minutes * 60, principal, silence.comment
        )
        return JSONResponse({"id": silence_id})


def _read_endpoints(app: FastAPI, api: Api) -> None:
    @app.get("/api/v1/incidents", summary="Recent incidents")
    async def incidents(request: Request) -> JSONResponse:
        await api.authenticated(request)
        return JSONResponse(await run_in_threadpool(api.store.incidents))

    @app.get("/api/v1/incidents/{incident_id}", summary="One incident's timeline")
    async def timeline(incident_id: str, request: Request) -> JSONResponse:
        await api.authenticated(request)
        events = await run_in_threadpool(api.store.timeline, incident_id)
        if not events:
            raise HTTPProblem(404, "no such incident")
        return JSONResponse({"id": incident_id, "timeline": events})

    @app.get("/api/v1/runs", summary="Runs, optionally by state")
    async def runs(request: Request, state: str | None = None) -> JSONResponse:
        await api.authenticated(request)
        states = tuple(state.split(",")) if state else None
        return JSONResponse(await run_in_threadpool(api.store.runs, states=states))

    @app.get("/healthz", summary="Liveness, store reachability and failed notifications")
    async def healthz() -> JSONResponse:
        try:
            depth, failing = await run_in_threadpool(api.store.health)
        except Exception as error:  # the store is down: say so, do not crash
            return JSONResponse({"status": "unavailable", "error": type(error).__name__}, status_code=503)
        if failing is not None:
            # Still 200: intake works and a restart would not help; the status says who must act.
            problem = (
                f"notify run {failing['run_id']} ended {failing['result']}: people were not told;"
                " acknowledge with remediate ack-notifications once handled"
            )
            return JSONResponse({"status": "degraded", "queue_depth": depth, "problems": [problem]})
        return JSONResponse({"status": "ok", "queue_depth": depth})

    @app.get("/metrics", summary="Prometheus metrics")
    async def prometheus_metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(api.metrics.registry), media_type=CONTENT_TYPE_LATEST)


def _parse(model, body: bytes):
    try:
        return model.model_validate_json(body)
    except ValidationError as error:
        problems = _problems(error.errors(include_url=False, include_input=False))
        raise HTTPProblem(400, "invalid payload: " + problems) from None


def _problems(errors: list[dict]) -> str:
    """The first few validation errors as 'where: what', never the offending input."""
    return "; ".join(
        "%s: %s" % (".".join(str(part) for part in item["loc"]) or "body", item["msg"]) for item in errors[:5]
    )


def _lines(path: Path | None) -> list[str]:
    if path is None:
        return []
    return [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
