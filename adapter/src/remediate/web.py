"""The incident page and the read API behind it and `remediate watch` (docs/watching.md).

A browser signs in once with a bearer token (or a basic user) and gets a session
cookie: HttpOnly, SameSite=Strict, Secure over HTTPS, signed (itsdangerous) with a
key derived from the configured credentials, valid 12 hours. The cookie is
accepted only by the read-only GET endpoints here; the endpoints that change
something keep asking for the credentials themselves, so a cross-site request can
do nothing with it. Without a session or credentials a page answers with the
sign-in page and the API with 401: no incident data, not even a count."""

from __future__ import annotations

import hashlib
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from itsdangerous import BadSignature, URLSafeTimedSerializer
from jinja2 import Environment, PackageLoader, select_autoescape
from markdown_it import MarkdownIt
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from remediate.display import clock, duration
from remediate.feed import Feed
from remediate.views import EVIDENCE_INLINE_BYTES, Views

log = logging.getLogger("remediate.web")

SESSION_COOKIE = "remediate_session"
SESSION_SECONDS = 12 * 3600
STATIC = Path(__file__).with_name("static")
# Everything the page needs is served from here: no inline script or style, no other origin.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self';"
        " form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
# Markdown of the post-incident report: raw HTML is shown as text, links are checked.
MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")


class Sessions:
    """Signed session cookies; rotating the credentials ends every session."""

    def __init__(self, authenticator):
        material = [b"remediate-session", *authenticator.tokens, authenticator.hmac_secret or b""]
        material += [f"{user}:".encode() + password for user, password in sorted(authenticator.users.items())]
        self.serializer = URLSafeTimedSerializer(hashlib.sha256(b"\0".join(material)).digest(), salt="session")

    def issue(self, principal: str) -> str:
        return self.serializer.dumps({"principal": principal})

    def principal(self, cookie: str | None) -> str | None:
        if not cookie:
            return None
        try:
            return self.serializer.loads(cookie, max_age=SESSION_SECONDS)["principal"]
        except (BadSignature, KeyError, TypeError):
            return None


class Site:
    """What the page and read endpoints share: the views, the feed, sessions and templates."""

    def __init__(self, api):
        self.api = api
        self.views = Views(api.store, api.engine.settings)
        self.feed = Feed(api.store)
        self.sessions = Sessions(api.authenticator)
        self.templates = Environment(
            loader=PackageLoader("remediate", "templates"), autoescape=select_autoescape(default=True), trim_blocks=True
        )
        self.templates.filters.update(clock=clock, day=_day, duration=duration, size=_size)

    def viewer(self, request: Request) -> str | None:
        """Who reads: credentials as on the rest of the API, or a session cookie."""
        principal = self.api.authenticator.principal(request, None)
        return principal or self.sessions.principal(request.cookies.get(SESSION_COOKIE))

    def page(self, name: str, status: int = 200, **context) -> HTMLResponse:
        html = self.templates.get_template(name).render(**context)
        return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)

    def to_sign_in(self, request: Request) -> Response:
        if request.headers.get("sec-fetch-site") == "cross-site":
            # A link from chat or mail: the browser withheld the SameSite=Strict cookie.
            # Loading the same address again from here is same-site, so it is sent.
            return self.page("bounce.html")
        return RedirectResponse("/login?next=" + quote(request.url.path), status_code=303, headers=SECURITY_HEADERS)

    @staticmethod
    def refuse(request: Request) -> JSONResponse:
        log.warning("unauthenticated request refused", extra={"path": request.url.path})
        return JSONResponse({"error": "authentication required"}, status_code=401, headers=SECURITY_HEADERS)


def register(app: FastAPI, api) -> None:
    """The page, the read API and the feed, on the app of server.create_app."""
    site = Site(api)
    app.state.feed = site.feed
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _sign_in_endpoints(app, site)
    _page_endpoints(app, site)
    _api_endpoints(app, site)


def _sign_in_endpoints(app: FastAPI, site: Site) -> None:
    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/incidents", status_code=303)

    @app.get("/login", include_in_schema=False)
    async def login_page(next: str = "/incidents") -> HTMLResponse:
        return site.page("login.html", next=_local(next), failed=False)

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        form = parse_qs((await site.api.read_body(request)).decode(errors="replace"))
        user, secret = form.get("user", [""])[0].strip(), form.get("token", [""])[0].strip()
        authenticator = site.api.authenticator
        principal = authenticator.basic(user, secret) if user else authenticator.bearer(secret)
        target = _local(form.get("next", ["/incidents"])[0])
        if principal is None:
            log.warning("sign-in refused", extra={"client": request.client.host if request.client else ""})
            return site.page("login.html", status=401, next=target, failed=True)
        response = RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)
        response.set_cookie(
            SESSION_COOKIE,
            site.sessions.issue(principal),
            max_age=SESSION_SECONDS,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        log.info("signed in", extra={"principal": principal})
        return response

    @app.post("/logout", include_in_schema=False)
    async def logout() -> RedirectResponse:
        response = RedirectResponse("/login", status_code=303, headers=SECURITY_HEADERS)
        response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="strict")
        return response


def _page_endpoints(app: FastAPI, site: Site) -> None:
    views = site.views

    @app.get("/incidents", include_in_schema=False)
    async def incidents_page(request: Request, part: str = "") -> Response:
        if site.viewer(request) is None:
            return site.to_sign_in(request)
        board = await run_in_threadpool(views.board)
        return site.page("incidents_main.html" if part == "main" else "incidents.html", board=board, now=time.time())

    @app.get("/incidents/{incident_id}", include_in_schema=False)
    async def incident_page(incident_id: str, request: Request, part: str = "") -> Response:
        if site.viewer(request) is None:
            return site.to_sign_in(request)
        incident = await run_in_threadpool(views.incident, incident_id)
        if incident is None:
            return site.page("missing.html", status=404, incident_id=incident_id)
        evidence = {}
        for item in incident["evidence"]:
            evidence[item["file"]] = await run_in_threadpool(
                views.evidence, incident_id, item["file"], EVIDENCE_INLINE_BYTES
            )
        template = "incident_main.html" if part == "main" else "incident.html"
        return site.page(template, incident=incident, evidence=evidence, now=time.time())

    @app.get("/incidents/{incident_id}/report", include_in_schema=False)
    async def report_part(incident_id: str, request: Request) -> Response:
        if site.viewer(request) is None:
            return site.refuse(request)
        text = await run_in_threadpool(views.report, incident_id)
        if text is None:
            return site.page("report.html", status=404, html=None)
        return site.page("report.html", html=MARKDOWN.render(text))


def _api_endpoints(app: FastAPI, site: Site) -> None:
    views = site.views

    @app.get("/api/v1/board", summary="Incidents summarised: state, alert, target, started, time to heal")
    async def board(request: Request) -> JSONResponse:
        if site.viewer(request) is None:
            return site.refuse(request)
        return JSONResponse(await run_in_threadpool(views.board), headers=SECURITY_HEADERS)

    @app.get("/api/v1/incidents/{incident_id}/view", summary="One incident: timeline, tiers, outcome, evidence")
    async def incident_view(incident_id: str, request: Request) -> JSONResponse:
        if site.viewer(request) is None:
            return site.refuse(request)
        incident = await run_in_threadpool(views.incident, incident_id)
        if incident is None:
            return JSONResponse({"error": "no such incident"}, status_code=404)
        return JSONResponse(incident, headers=SECURITY_HEADERS)

    @app.get("/api/v1/incidents/{incident_id}/evidence/{file}", summary="One evidence file, as recorded")
    async def evidence_file(incident_id: str, file: str, request: Request) -> Response:
        if site.viewer(request) is None:
            return site.refuse(request)
        text = await run_in_threadpool(views.evidence, incident_id, file)
        if text is None:
            return JSONResponse({"error": "no such evidence file"}, status_code=404)
        return PlainTextResponse(text, headers=SECURITY_HEADERS)

    @app.get("/api/v1/incidents/{incident_id}/report", summary="The post-incident report (Markdown)")
    async def report_text(incident_id: str, request: Request) -> Response:
        if site.viewer(request) is None:
            return site.refuse(request)
        text = await run_in_threadpool(views.report, incident_id)
        if text is None:
            return JSONResponse({"error": "no report: no record of this incident here"}, status_code=404)
        return PlainTextResponse(text, media_type="text/markdown", headers=SECURITY_HEADERS)

    @app.get("/api/v1/events", summary="The incident feed (server-sent events)")
    async def events(request: Request, incident: str | None = None, after: int | None = None) -> Response:
        if site.viewer(request) is None:
            return site.refuse(request)
        resume = request.headers.get("last-event-id", "")
        start = int(resume) if resume.isdigit() else after
        return StreamingResponse(
            site.feed.stream(request, start, incident),
            media_type="text/event-stream",
            headers={**SECURITY_HEADERS, "X-Accel-Buffering": "no"},
        )


def _local(target: str) -> str:
    """Only a path on this server: never a redirect elsewhere."""
    return target if target.startswith("/") and not target.startswith(("//", "/\\")) else "/incidents"


def _day(moment: float | None) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else ""


def _size(count: int) -> str:
    return f"{count} B" if count < 1024 else f"{count / 1024:.1f} KiB"
