"""A stand-in for the AWX / Ansible Automation Platform REST API v2, for tests.

AWX cannot run on these machines. ``AwxStandIn`` serves the part of AWX 24's API that
the collection's clients use (the awx.awx modules of playbooks/awx_configure.yml,
ansible-rulebook's ``run_job_template``, the adapter's ``awx`` executor), with AWX's
paths, methods, status codes, pagination, field names and error bodies, taken from
the ansible/awx source (awx/api/serializers.py, views, generics.py, pagination.py,
permissions.py; awx/main/models/jobs.py, mixins.py, unified_jobs.py;
awx/main/tasks/jobs.py and callback.py; awx/main/utils/safe_yaml.py).

Jobs really run: a launch creates a job that goes new -> pending -> waiting ->
running -> successful | failed | error | canceled while ansible-runner runs the job
template's playbook from ``project_dir`` (AWX's checkout of the project), with the
inventory written as AWX writes it (an inventory script of the job's inventory
hosts and their variables), the limit and the other prompts applied, and the extra
variables written as AWX writes them: job template variables as given, survey
answers and launch-time variables marked ``!unsafe``. Events, artifacts (the
playbook's ``set_stats``), status and stdout come from the real run; a cancel
stops the real ansible-playbook.

Not served: users, teams and roles other than the fixed users of ``token_for``,
labels, schedules, workflows, notifications, credential injection into jobs,
launch-time credential passwords. A project update does not fetch ``scm_url``: it
"syncs" the project from ``project_dir`` (its playbooks and its git HEAD), and
``scm_update_on_launch`` starts no update.
"""

from __future__ import annotations

import codecs
import copy
import datetime
import itertools
import json
import math
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, parse_qsl, urlencode

import ansible_runner
import uvicorn
import yaml
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from tests.harness.ansible import wait_for

AWX_VERSION = "24.6.1"
API = "/api/v2/"
PAGE_SIZE = 25
MAX_PAGE_SIZE = 200
ACTIVE = ("new", "pending", "waiting", "running")
FINISHED = ("successful", "failed", "error", "canceled")
ROLES = ("read", "execute", "none")

NOT_AUTHENTICATED = "Authentication credentials were not provided. To establish a login session, visit /api/login/."
PERMISSION_DENIED = "You do not have permission to perform this action."
REQUIRED = "This field is required."

# JobTemplate.get_ask_mapping(): launch field -> the job template's prompt-on-launch flag.
ASK_MAPPING = {
    "extra_vars": "ask_variables_on_launch",
    "inventory": "ask_inventory_on_launch",
    "limit": "ask_limit_on_launch",
    "scm_branch": "ask_scm_branch_on_launch",
    "labels": "ask_labels_on_launch",
    "job_tags": "ask_tags_on_launch",
    "skip_tags": "ask_skip_tags_on_launch",
    "diff_mode": "ask_diff_mode_on_launch",
    "job_type": "ask_job_type_on_launch",
    "verbosity": "ask_verbosity_on_launch",
    "credentials": "ask_credential_on_launch",
    "execution_environment": "ask_execution_environment_on_launch",
    "forks": "ask_forks_on_launch",
    "job_slice_count": "ask_job_slice_count_on_launch",
    "timeout": "ask_timeout_on_launch",
    "instance_groups": "ask_instance_groups_on_launch",
}
# Job template fields a job copies (Job options), besides extra_vars and credentials.
JOB_OPTIONS = (
    "job_type",
    "inventory",
    "project",
    "playbook",
    "scm_branch",
    "forks",
    "limit",
    "verbosity",
    "job_tags",
    "force_handlers",
    "skip_tags",
    "start_at_task",
    "timeout",
    "use_fact_cache",
    "organization",
    "allow_simultaneous",
    "diff_mode",
    "job_slice_count",
    "become_enabled",
    "webhook_service",
    "webhook_credential",
)
# awx/main/models/events.py EVENT_TYPES: event -> (level, display, failed).
EVENT_TYPES = {
    "runner_on_failed": (3, "Host Failed", True),
    "runner_on_start": (3, "Host Started", False),
    "runner_on_ok": (3, "Host OK", False),
    "runner_on_error": (3, "Host Failure", True),
    "runner_on_skipped": (3, "Host Skipped", False),
    "runner_on_unreachable": (3, "Host Unreachable", True),
    "runner_on_no_hosts": (3, "No Hosts Remaining", False),
    "runner_on_async_poll": (3, "Host Polling", False),
    "runner_on_async_ok": (3, "Host Async OK", False),
    "runner_on_async_failed": (3, "Host Async Failure", True),
    "runner_item_on_ok": (3, "Item OK", False),
    "runner_item_on_failed": (3, "Item Failed", True),
    "runner_item_on_skipped": (3, "Item Skipped", False),
    "runner_retry": (3, "Host Retry", False),
    "runner_on_file_diff": (3, "File Difference", False),
    "playbook_on_start": (0, "Playbook Started", False),
    "playbook_on_notify": (2, "Running Handlers", False),
    "playbook_on_include": (2, "Including File", False),
    "playbook_on_no_hosts_matched": (2, "No Hosts Matched", False),
    "playbook_on_no_hosts_remaining": (2, "No Hosts Remaining", False),
    "playbook_on_task_start": (2, "Task Started", False),
    "playbook_on_vars_prompt": (1, "Variables Prompted", False),
    "playbook_on_setup": (2, "Gathering Facts", False),
    "playbook_on_play_start": (1, "Play Started", False),
    "playbook_on_stats": (1, "Playbook Complete", False),
    "debug": (0, "Debug", False),
    "verbose": (0, "Verbose", False),
    "deprecated": (0, "Deprecated", False),
    "warning": (0, "Warning", False),
    "system_warning": (0, "System Warning", False),
    "error": (0, "Error", True),
}
SURVEY_TYPES = {
    "text": str,
    "textarea": str,
    "password": str,
    "multiplechoice": str,
    "multiselect": str,
    "integer": int,
    "float": (float, int),
}
ANSI = re.compile(r"\x1b\[[0-9;]*m")
PLAYBOOK_LINE = re.compile(
    r"^\s*?-?\s*?(?:hosts|(ansible\.builtin\.)?include|(ansible\.builtin\.)?import_playbook):\s*?.*?$"
)

SSH_KEY = {"type": "string", "format": "ssh_private_key", "secret": True, "multiline": True}
MANAGED_CREDENTIAL_TYPES = (
    {
        "name": "Machine",
        "kind": "ssh",
        "namespace": "ssh",
        "inputs": {
            "fields": [
                {"id": "username", "label": "Username", "type": "string"},
                {"id": "password", "label": "Password", "type": "string", "secret": True, "ask_at_runtime": True},
                {"id": "ssh_key_data", "label": "SSH Private Key", **SSH_KEY},
                {"id": "ssh_public_key_data", "label": "Signed SSH Certificate", "type": "string", "multiline": True},
                {"id": "ssh_key_unlock", "label": "Private Key Passphrase", "type": "string", "secret": True},
                {"id": "become_method", "label": "Privilege Escalation Method", "type": "string"},
                {"id": "become_username", "label": "Privilege Escalation Username", "type": "string"},
                {"id": "become_password", "label": "Privilege Escalation Password", "type": "string", "secret": True},
            ]
        },
    },
    {
        "name": "Source Control",
        "kind": "scm",
        "namespace": "scm",
        "inputs": {
            "fields": [
                {"id": "username", "label": "Username", "type": "string"},
                {"id": "password", "label": "Password or Token", "type": "string", "secret": True},
                {"id": "ssh_key_data", "label": "SCM Private Key", **SSH_KEY},
                {"id": "ssh_key_unlock", "label": "Private Key Passphrase", "type": "string", "secret": True},
            ]
        },
    },
)


class ApiError(Exception):
    """An API answer other than success: status, JSON body, extra headers."""

    def __init__(self, status: int, body, headers: dict | None = None):
        super().__init__(status, body)
        self.status = status
        self.body = body
        self.headers = headers or {}


def _detail(status: int, detail: str) -> ApiError:
    return ApiError(status, {"detail": detail})


def _not_allowed(method: str) -> ApiError:
    return _detail(405, f'Method "{method}" not allowed.')


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _stamp(moment: datetime.datetime | None) -> str | None:
    """A time as DRF renders it: ISO 8601 in UTC with a Z."""
    return moment.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z") if moment else None


class _UnsafeDumper(yaml.SafeDumper):
    """awx/main/utils/safe_yaml.py SafeStringDumper: every string becomes !unsafe."""

    def represent_data(self, data):
        if isinstance(data, str):
            return self.represent_scalar("!unsafe", data)
        return super().represent_data(data)


def safe_dump(variables: dict, safe_dict: dict) -> str:
    """AWX's safe_dump: the extra variables file of a job. A top-level key whose value
    equals the job template's own (safe_dict) stays templatable; everything else,
    survey answers and launch-time variables among it, is marked !unsafe."""
    documents = []
    for key, value in variables.items():
        dumper = yaml.SafeDumper if key in safe_dict and safe_dict[key] == value else _UnsafeDumper
        documents.append(yaml.dump_all([{key: value}], None, Dumper=dumper, default_flow_style=False))
    return "".join(documents)


def parse_yaml_or_json(text, *, silent: bool = True) -> dict:
    """awx.main.utils.parse_yaml_or_json: variables as a dict, from a dict or JSON/YAML text."""
    if isinstance(text, dict):
        return text
    if isinstance(text, str) and text == '""':
        return {}
    try:
        parsed = json.loads(text)
        if not isinstance(parsed, dict):
            raise AssertionError(f"Input type `{type(parsed).__name__}` is not a dictionary")
    except (ValueError, TypeError, AssertionError) as json_error:
        try:
            parsed = yaml.safe_load(text) or {}
            if not isinstance(parsed, dict):
                raise AssertionError(f"Input type `{type(parsed).__name__}` is not a dictionary")
        except (yaml.YAMLError, TypeError, AttributeError, AssertionError) as yaml_error:
            if silent:
                return {}
            raise ValueError(
                f"Cannot parse as JSON (error: {json_error}) or YAML (error: {yaml_error})."
            ) from yaml_error
    return parsed


def find_playbooks(project_dir: Path) -> list[str]:
    """Project.playbooks: the files AWX offers as playbooks (awx/main/utils/ansible.py)."""
    found = []
    for folder, subfolders, files in os.walk(project_dir):
        relative = os.path.relpath(folder, project_dir)
        parts = [] if relative == "." else relative.split(os.sep)
        if any(part.startswith(".") for part in parts) or {"roles", "tasks", "group_vars", "host_vars"} & set(parts):
            subfolders.clear()
            continue
        for name in files:
            if os.path.splitext(name)[1] not in (".yml", ".yaml"):
                continue
            path = os.path.join(folder, name)
            with codecs.open(path, "r", encoding="utf-8", errors="ignore") as lines:
                if any(
                    PLAYBOOK_LINE.match(line) or (n == 0 and line.startswith("$ANSIBLE_VAULT;"))
                    for n, line in enumerate(lines)
                ):
                    found.append(os.path.relpath(path, project_dir))
    return sorted(found, key=str.lower)


@dataclass(frozen=True)
class Kind:
    """A resource served with list/create/detail/update/delete."""

    type: str
    fields: dict  # writable fields and their defaults
    foreign: dict = field(default_factory=dict)  # foreign key field -> collection
    required: tuple = ("name",)
    choices: dict = field(default_factory=dict)
    positive: tuple = ()


JOB_TEMPLATE_FIELDS = {
    "name": "",
    "description": "",
    "job_type": "run",
    "inventory": None,
    "project": None,
    "playbook": "",
    "scm_branch": "",
    "forks": 0,
    "limit": "",
    "verbosity": 0,
    "extra_vars": "",
    "job_tags": "",
    "force_handlers": False,
    "skip_tags": "",
    "start_at_task": "",
    "timeout": 0,
    "use_fact_cache": False,
    "execution_environment": None,
    "host_config_key": "",
    **dict.fromkeys(sorted(set(ASK_MAPPING.values())), False),
    "survey_enabled": False,
    "become_enabled": False,
    "diff_mode": False,
    "allow_simultaneous": False,
    "job_slice_count": 1,
    "webhook_service": "",
    "webhook_credential": None,
    "prevent_instance_group_fallback": False,
}
KINDS = {
    "organizations": Kind("organization", {"name": "", "description": "", "max_hosts": 0}, positive=("max_hosts",)),
    "execution_environments": Kind(
        "execution_environment",
        {"name": "", "description": "", "organization": None, "image": "", "credential": None, "pull": ""},
        {"organization": "organizations", "credential": "credentials"},
        required=("name", "image"),
        choices={"pull": ("", "always", "missing", "never")},
    ),
    "projects": Kind(
        "project",
        {
            "name": "",
            "description": "",
            "local_path": "",
            "scm_type": "",
            "scm_url": "",
            "scm_branch": "",
            "scm_refspec": "",
            "scm_clean": False,
            "scm_track_submodules": False,
            "scm_delete_on_update": False,
            "credential": None,
            "timeout": 0,
            "organization": None,
            "scm_update_on_launch": False,
            "scm_update_cache_timeout": 0,
            "allow_override": False,
            "default_environment": None,
            "signature_validation_credential": None,
        },
        {
            "organization": "organizations",
            "credential": "credentials",
            "signature_validation_credential": "credentials",
            "default_environment": "execution_environments",
        },
        choices={"scm_type": ("", "git", "svn", "insights", "archive")},
        positive=("scm_update_cache_timeout",),
    ),
    "inventories": Kind(
        "inventory",
        {
            "name": "",
            "description": "",
            "organization": None,
            "kind": "",
            "host_filter": None,
            "variables": "",
            "prevent_instance_group_fallback": False,
        },
        {"organization": "organizations"},
        required=("name", "organization"),
        choices={"kind": ("", "smart", "constructed")},
    ),
    "hosts": Kind(
        "host",
        {"name": "", "description": "", "inventory": None, "enabled": True, "instance_id": "", "variables": ""},
        {"inventory": "inventories"},
        required=("name", "inventory"),
    ),
    "credential_types": Kind(
        "credential_type",
        {"name": "", "description": "", "kind": "", "inputs": {}, "injectors": {}},
        required=("name", "kind"),
    ),
    "credentials": Kind(
        "credential",
        {"name": "", "description": "", "organization": None, "credential_type": None, "inputs": {}},
        {"organization": "organizations", "credential_type": "credential_types"},
        required=("name", "credential_type"),
    ),
    "job_templates": Kind(
        "job_template",
        JOB_TEMPLATE_FIELDS,
        {
            "inventory": "inventories",
            "project": "projects",
            "webhook_credential": "credentials",
            "execution_environment": "execution_environments",
        },
        required=("name",),
        choices={
            "job_type": ("run", "check"),
            "verbosity": (0, 1, 2, 3, 4, 5),
            "webhook_service": ("", "github", "gitlab", "bitbucket_dc"),
        },
        positive=("forks", "job_slice_count"),
    ),
}
# Django's unique_together / AWX's SOFT_UNIQUE_TOGETHER messages, per collection.
UNIQUE = {
    "organizations": (("name",), "name", "Organization with this Name already exists."),
    "projects": (
        ("name", "organization"),
        "__all__",
        "Project with this (name, organization) combination already exists.",
    ),
    "inventories": (("name", "organization"), "__all__", "Inventory with this Name and Organization already exists."),
    "hosts": (("name", "inventory"), "__all__", "Host with this Name and Inventory already exists."),
    "credential_types": (("name", "kind"), "__all__", "Credential type with this Name and Kind already exists."),
    "credentials": (
        ("organization", "name", "credential_type"),
        "__all__",
        "Credential with this Organization, Name and Credential type already exists.",
    ),
    "job_templates": (
        ("name", "organization"),
        "__all__",
        "JobTemplate with this (name, organization) combination already exists.",
    ),
}
# Collections whose ids come from one table: UnifiedJobTemplate and UnifiedJob.
ID_TABLE = {
    "projects": "unified_job_templates",
    "job_templates": "unified_job_templates",
    "jobs": "unified_jobs",
    "project_updates": "unified_jobs",
}


class AwxStandIn:
    """AWX's REST API v2 on 127.0.0.1:<free port>, jobs run by ansible-runner from
    ``project_dir``. Use as a context manager.

    ``inventory`` seeds "Demo Inventory" with these hosts and their variables (AWX's
    preloaded data: organization "Default", "Demo Project" (a manual project in
    ``project_dir``), "Demo Inventory", the managed credential types)."""

    def __init__(self, project_dir: Path, inventory: dict[str, dict] | None = None):
        self.project_dir = Path(project_dir).resolve()
        self.launches: list = []
        self._lock = threading.RLock()
        self._ids = {table: itertools.count(1) for table in (*KINDS, "unified_job_templates", "unified_jobs", "users")}
        self._event_ids = itertools.count(1)
        self._store: dict[str, dict[int, dict]] = {name: {} for name in (*KINDS, "jobs", "project_updates")}
        self._events: dict[int, list[dict]] = {}
        self._jt_credentials: dict[int, list[int]] = {}
        self._surveys: dict[int, dict] = {}
        self._jt_locks: dict[int, threading.Lock] = {}
        self._threads: list[threading.Thread] = []
        self._users: dict[int, dict] = {}
        self._tokens: dict[str, int] = {}
        self._workdir = Path()
        self._server: uvicorn.Server | None = None
        self._server_thread: threading.Thread | None = None
        self._port = 0
        self.token = self._add_user("admin", superuser=True)
        self._seed(inventory or {})

    # ------------------------------------------------------------------ public

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def token_for(self, role: str) -> str:
        """A bearer token for a user with only `read` or `execute` on every job template,
        or `none` (a user who sees no job template)."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}")
        with self._lock:
            for token, user_id in self._tokens.items():
                if self._users[user_id]["role"] == role:
                    return token
            return self._add_user(f"{role}-user", role=role)

    def job_template(self, name: str, playbook: str, **fields) -> int:
        """Seed a job template (in "Demo Project" and "Demo Inventory" unless given) as
        an admin would create it; ``survey_spec`` (a dict) adds a survey. Returns its id."""
        survey = fields.pop("survey_spec", None)
        if survey is not None:
            _validate_survey(survey)
        data = {"project": self._demo_project, "inventory": self._demo_inventory, **fields}
        data.update(name=name, playbook=playbook)
        with self._lock:
            created = self._create("job_templates", data)
            if survey is not None:
                self._surveys[created["id"]] = survey
                created["survey_enabled"] = fields.get("survey_enabled", True)
            return created["id"]

    @property
    def jobs(self) -> dict[int, dict]:
        """Every job as GET /api/v2/jobs/N/ returns it."""
        with self._lock:
            return {job_id: self._job_repr(job, detail=True) for job_id, job in self._store["jobs"].items()}

    def __enter__(self) -> AwxStandIn:
        self._workdir = Path(tempfile.mkdtemp(prefix="awx-standin-"))
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        self._port = listener.getsockname()[1]
        config = uvicorn.Config(self._app(), log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._server_thread = threading.Thread(target=self._server.run, kwargs={"sockets": [listener]}, daemon=True)
        self._server_thread.start()
        wait_for(lambda: self._server.started, bool, timeout=15, interval=0.05)
        return self

    def __exit__(self, *_exc) -> None:
        with self._lock:
            for job in self._store["jobs"].values():
                job["cancel_flag"] = True
        for thread in list(self._threads):
            thread.join(timeout=60)
        if self._server:
            self._server.should_exit = True
            self._server_thread.join(timeout=15)
        shutil.rmtree(self._workdir, ignore_errors=True)

    # ------------------------------------------------------------------ seed data

    def _add_user(self, username: str, *, superuser: bool = False, role: str = "admin") -> str:
        user_id = next(self._ids["users"])
        self._users[user_id] = {
            "id": user_id,
            "username": username,
            "first_name": "",
            "last_name": "",
            "email": f"{username}@example.com",
            "is_superuser": superuser,
            "role": role,
            "created": _now(),
        }
        token = os.urandom(15).hex()
        self._tokens[token] = user_id
        return token

    def _seed(self, hosts: dict[str, dict]) -> None:
        for spec in MANAGED_CREDENTIAL_TYPES:
            created = self._insert("credential_types", {**KINDS["credential_types"].fields, **copy.deepcopy(spec)})
            created["managed"] = True
        organization = self._insert("organizations", {**KINDS["organizations"].fields, "name": "Default"})["id"]
        self._demo_project = self._create(
            "projects", {"name": "Demo Project", "organization": organization, "local_path": self.project_dir.name}
        )["id"]
        self._demo_inventory = self._create("inventories", {"name": "Demo Inventory", "organization": organization})[
            "id"
        ]
        for host, variables in hosts.items():
            self._create("hosts", {"name": host, "inventory": self._demo_inventory, "variables": json.dumps(variables)})

    # ------------------------------------------------------------------ HTTP

    def _app(self) -> FastAPI:  # noqa: PLR0915 - one route table
        app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

        @app.exception_handler(ApiError)
        async def api_error(_request: Request, error: ApiError):
            return JSONResponse(error.body, status_code=error.status, headers=error.headers)

        @app.exception_handler(RequestValidationError)
        async def bad_path(_request: Request, _error: RequestValidationError):
            return JSONResponse({"detail": "The requested resource could not be found."}, status_code=404)

        @app.exception_handler(StarletteHTTPException)
        async def no_route(request: Request, error: StarletteHTTPException):
            if error.status_code == 405:
                return JSONResponse({"detail": f'Method "{request.method}" not allowed.'}, status_code=405)
            return JSONResponse({"detail": "The requested resource could not be found."}, status_code=error.status_code)

        @app.middleware("http")
        async def product_headers(request: Request, call_next):
            response = await call_next(request)
            response.headers["X-API-Product-Name"] = "AWX"
            if self._tokens.get(_bearer(request)):
                response.headers["X-API-Product-Version"] = AWX_VERSION
            return response

        @app.get(API + "ping/")
        async def ping():
            return {"ha": False, "version": AWX_VERSION, "active_node": "awx-standin", "install_uuid": "awx-standin"}

        @app.get(API + "config/")
        async def config(request: Request):
            self._user(request)
            return {
                "time_zone": "UTC",
                "version": AWX_VERSION,
                "license_info": {"license_type": "open", "valid_key": True, "subscription_name": "OPEN"},
                "project_base_dir": str(self.project_dir.parent),
                "project_local_paths": [self.project_dir.name],
                "custom_virtualenvs": [],
            }

        @app.get(API + "me/")
        async def me(request: Request):
            user = self._user(request)
            return self._page(request, [self._user_repr(user)])

        @app.get(API + "unified_job_templates/")
        async def unified_job_templates(request: Request):
            user = self._user(request)
            with self._lock:
                items = [
                    self._repr(collection, obj)
                    for collection in ("projects", "job_templates")
                    for obj in self._store[collection].values()
                    if self._can_read(user, collection, obj)
                ]
            return self._page(request, items)

        @app.get(API + "job_templates/{pk}/launch/")
        async def launch_prompts(request: Request, pk: int):
            user = self._user(request)
            with self._lock:
                return self._launch_repr(self._get(user, "job_templates", pk))

        @app.post(API + "job_templates/{pk}/launch/")
        async def launch(request: Request, pk: int):
            user = self._user(request)
            body = await _json(request)
            with self._lock:
                self.launches.append(copy.deepcopy(body))
                jt = self._get(user, "job_templates", pk)
                if not (user["is_superuser"] or user["role"] == "execute"):
                    raise _detail(403, PERMISSION_DENIED)
                job, ignored = self._launch(user, jt, body)
                answer = {"job": job["id"], "ignored_fields": ignored, **self._job_repr(job)}
            return JSONResponse(answer, status_code=201, headers={"Location": f"{API}jobs/{job['id']}/"})

        @app.get(API + "job_templates/{pk}/survey_spec/")
        async def survey(request: Request, pk: int):
            user = self._user(request)
            with self._lock:
                jt = self._get(user, "job_templates", pk)
                return _display_survey(self._surveys.get(jt["id"], {}))

        @app.post(API + "job_templates/{pk}/survey_spec/")
        async def set_survey(request: Request, pk: int):
            user = self._user(request)
            body = await _json(request)
            with self._lock:
                jt = self._get(user, "job_templates", pk)
                self._admin_only(user)
                _validate_survey(body)
                self._surveys[jt["id"]] = body
                jt["modified"] = _now()
            return Response(status_code=200)

        @app.delete(API + "job_templates/{pk}/survey_spec/")
        async def delete_survey(request: Request, pk: int):
            user = self._user(request)
            with self._lock:
                jt = self._get(user, "job_templates", pk)
                self._admin_only(user)
                self._surveys.pop(jt["id"], None)
            return Response(status_code=200)

        @app.get(API + "job_templates/{pk}/credentials/")
        async def jt_credentials(request: Request, pk: int):
            user = self._user(request)
            with self._lock:
                jt = self._get(user, "job_templates", pk)
                items = [
                    self._repr("credentials", self._store["credentials"][c]) for c in self._jt_credentials[jt["id"]]
                ]
            return self._page(request, items)

        @app.post(API + "job_templates/{pk}/credentials/")
        async def attach_credential(request: Request, pk: int):
            user = self._user(request)
            body = await _json(request)
            with self._lock:
                jt = self._get(user, "job_templates", pk)
                self._admin_only(user)
                self._attach_credential(jt, body)
            return Response(status_code=204)

        @app.get(API + "job_templates/{pk}/jobs/")
        async def jt_jobs(request: Request, pk: int):
            user = self._user(request)
            with self._lock:
                jt = self._get(user, "job_templates", pk)
                items = [
                    self._job_repr(job, listing=True)
                    for job in self._store["jobs"].values()
                    if job["job_template"] == jt["id"] and self._can_read(user, "jobs", job)
                ]
            return self._page(request, items)

        @app.get(API + "jobs/")
        async def jobs(request: Request):
            user = self._user(request)
            with self._lock:
                items = [
                    self._job_repr(job, listing=True)
                    for job in self._store["jobs"].values()
                    if self._can_read(user, "jobs", job)
                ]
            return self._page(request, items)

        @app.get(API + "jobs/{pk}/")
        async def job(request: Request, pk: int):
            user = self._user(request)
            with self._lock:
                return self._job_repr(self._get(user, "jobs", pk), detail=True)

        @app.get(API + "jobs/{pk}/job_events/")
        async def job_events(request: Request, pk: int):
            user = self._user(request)
            with self._lock:
                job = self._get(user, "jobs", pk)
                items = [self._event_repr(job, event) for event in self._events.get(job["id"], [])]
            return self._page(request, items, order="start_line", limit_pagination=True)

        @app.get(API + "jobs/{pk}/cancel/")
        async def can_cancel(request: Request, pk: int):
            user = self._user(request)
            with self._lock:
                return {"can_cancel": self._get(user, "jobs", pk)["status"] in ACTIVE}

        @app.post(API + "jobs/{pk}/cancel/")
        async def cancel(request: Request, pk: int):
            user = self._user(request)
            with self._lock:
                job = self._get(user, "jobs", pk)
                if not (user["is_superuser"] or job["launched_by"] == user["id"]):
                    raise _detail(403, PERMISSION_DENIED)
                if job["status"] not in ACTIVE:
                    raise _not_allowed("POST")
                self._cancel(job)
            return Response(status_code=202)

        @app.get(API + "jobs/{pk}/stdout/")
        async def stdout(request: Request, pk: int):
            user = self._user(request)
            with self._lock:
                job = self._get(user, "jobs", pk)
                text = "\n".join(e["stdout"] for e in self._events.get(job["id"], []) if e["stdout"])
            output = request.query_params.get("format", "json")
            if output == "txt":
                return PlainTextResponse(ANSI.sub("", text))
            if output == "ansi":
                return PlainTextResponse(text)
            if output == "json":
                lines = text.count("\n") + 1 if text else 0
                return {"range": {"start": 0, "end": lines, "absolute_end": lines}, "content": ANSI.sub("", text)}
            raise _detail(404, "Not found.")

        @app.get(API + "project_updates/{pk}/")
        async def project_update(request: Request, pk: int):
            user = self._user(request)
            with self._lock:
                return self._update_repr(self._get(user, "project_updates", pk))

        @app.get(API + "{collection}/")
        async def listing(request: Request, collection: str):
            self._known(collection)
            user = self._user(request)
            with self._lock:
                items = [
                    self._repr(collection, obj)
                    for obj in self._store[collection].values()
                    if self._can_read(user, collection, obj)
                ]
            return self._page(request, items)

        @app.post(API + "{collection}/")
        async def create(request: Request, collection: str):
            self._known(collection, "POST")
            user = self._user(request)
            body = await _json(request)
            with self._lock:
                self._admin_only(user)
                created = self._create(collection, body)
                return JSONResponse(self._repr(collection, created), status_code=201)

        @app.get(API + "{collection}/{pk}/")
        async def detail(request: Request, collection: str, pk: int):
            self._known(collection)
            user = self._user(request)
            with self._lock:
                return self._repr(collection, self._get(user, collection, pk))

        @app.api_route(API + "{collection}/{pk}/", methods=["PATCH", "PUT"])
        async def update(request: Request, collection: str, pk: int):
            self._known(collection, request.method)
            user = self._user(request)
            body = await _json(request)
            with self._lock:
                obj = self._get(user, collection, pk)
                self._admin_only(user)
                self._update(collection, obj, body, partial=request.method == "PATCH")
                return self._repr(collection, obj)

        @app.delete(API + "{collection}/{pk}/")
        async def delete(request: Request, collection: str, pk: int):
            self._known(collection, "DELETE")
            user = self._user(request)
            with self._lock:
                obj = self._get(user, collection, pk)
                self._admin_only(user)
                if obj.get("managed"):
                    raise _detail(403, "Deletion not allowed for managed credential types")
                del self._store[collection][pk]
            return Response(status_code=204)

        return app

    @staticmethod
    def _known(collection: str, method: str | None = None) -> None:
        if collection in ("jobs", "project_updates") and method:
            raise _not_allowed(method)
        if collection not in KINDS:
            raise _detail(404, "The requested resource could not be found.")

    # ------------------------------------------------------------------ auth, RBAC

    def _user(self, request: Request) -> dict:
        """The token's user; 401 as AWX answers (an unknown token is no credentials)."""
        user_id = self._tokens.get(_bearer(request))
        if user_id is None:
            raise ApiError(
                401,
                {"detail": NOT_AUTHENTICATED},
                {"WWW-Authenticate": "Bearer realm=api authorization_url=/api/o/authorize/"},
            )
        return self._users[user_id]

    @staticmethod
    def _admin_only(user: dict) -> None:
        if not user["is_superuser"]:
            raise _detail(403, PERMISSION_DENIED)

    def _can_read(self, user: dict, collection: str, obj: dict) -> bool:
        if user["is_superuser"]:
            return True
        if collection == "job_templates":
            return user["role"] in ("read", "execute")
        if collection == "jobs":
            return obj["launched_by"] == user["id"] or (
                obj["job_template"] in self._store["job_templates"] and user["role"] in ("read", "execute")
            )
        return False

    def _get(self, user: dict, collection: str, pk: int) -> dict:
        """The object, 404 when there is none, 403 when the user may not read it (AWX's order)."""
        obj = self._store[collection].get(pk)
        if obj is None:
            raise _detail(404, "Not found.")
        if not self._can_read(user, collection, obj):
            raise _detail(403, PERMISSION_DENIED)
        return obj

    # ------------------------------------------------------------------ lists

    def _page(self, request: Request, items: list[dict], *, order: str = "id", limit_pagination: bool = False) -> dict:
        """DRF/AWX filtering, ordering and page-number pagination (awx/api/pagination.py)."""
        params = parse_qsl(request.url.query, keep_blank_values=True)
        query = dict(params)
        items = _filter(items, params)
        items = _order(items, query.get("order_by") or query.get("order") or order)
        if limit_pagination and "limit" in query:
            limit = _positive_int(query["limit"], PAGE_SIZE)
            return {"results": items[:limit]}
        size = min(_positive_int(query.get("page_size"), PAGE_SIZE), MAX_PAGE_SIZE)
        try:
            page = int(query.get("page", 1))
        except ValueError:
            raise _detail(404, "Invalid page.") from None
        pages = max(1, math.ceil(len(items) / size))
        if not 1 <= page <= pages:
            raise _detail(404, "Invalid page.")

        def link(number: int) -> str:
            """DRF's replace_query_param on the request's path: the query sorted, page_size capped."""
            query = parse_qs(request.url.query, keep_blank_values=True)
            if _positive_int(query.get("page_size", [0])[0], 0) > MAX_PAGE_SIZE:
                query["page_size"] = [str(MAX_PAGE_SIZE)]
            query["page"] = [str(number)]
            return f"{request.url.path}?{urlencode(sorted(query.items()), doseq=True)}"

        return {
            "count": len(items),
            "next": link(page + 1) if page < pages else None,
            "previous": link(page - 1) if page > 1 else None,
            "results": items[(page - 1) * size : page * size],
        }

    # ------------------------------------------------------------------ create, update

    def _insert(self, collection: str, values: dict) -> dict:
        obj = {
            "id": next(self._ids[ID_TABLE.get(collection, collection)]),
            "created": _now(),
            "modified": _now(),
            **values,
        }
        self._store[collection][obj["id"]] = obj
        return obj

    def _create(self, collection: str, data) -> dict:
        attrs = self._validated(collection, data, None, partial=False)
        owner = attrs.pop("_owner", None)
        obj = self._insert(collection, attrs)
        if collection == "credentials":
            obj["owner_user"] = owner
        if collection == "job_templates":
            self._jt_credentials[obj["id"]] = []
        if collection == "projects":
            self._after_project_save(obj, new=True, changed=set())
        return obj

    def _update(self, collection: str, obj: dict, data, *, partial: bool) -> None:
        attrs = self._validated(collection, data, obj, partial=partial)
        attrs.pop("_owner", None)
        changed = {key for key, value in attrs.items() if obj.get(key) != value}
        obj.update(attrs, modified=_now())
        if collection == "projects":
            self._after_project_save(obj, new=False, changed=changed)

    def _validated(self, collection: str, data, instance: dict | None, *, partial: bool) -> dict:
        """The serializer's field validation, then the object's (AWX's error bodies)."""
        if not isinstance(data, dict):
            raise ApiError(400, {"__all__": [f"Invalid data. Expected a dictionary, but got {type(data).__name__}."]})
        kind = KINDS[collection]
        if instance and instance.get("managed"):
            raise _detail(403, "Modifications not allowed for managed credential types")
        attrs, errors = {}, {}
        for name, default in kind.fields.items():
            if name not in data:
                if name in kind.required and not (partial and instance):
                    errors[name] = [REQUIRED]
                elif not (partial and instance):
                    attrs[name] = copy.deepcopy(default)
                continue
            try:
                attrs[name] = self._field(kind, name, default, data[name])
            except ValueError as problem:
                errors[name] = [str(problem)]
        if errors:
            raise ApiError(400, errors)
        merged = {**(instance or {}), **attrs}
        validate = getattr(self, f"_validate_{kind.type}", None)
        if validate:
            validate(merged, attrs, data, instance)
        self._check_unique(collection, merged, instance)
        return attrs

    def _field(self, kind: Kind, name: str, default, value):
        """DRF's field conversion for a resource field: PK, choices, or the default's type."""
        if name in kind.foreign:
            return self._pk(kind.foreign[name], value, nullable=name not in kind.required)
        value = None if name == "host_filter" and value is None else _convert(default, value, name in kind.positive)
        if name in kind.choices and value not in kind.choices[name]:
            raise ValueError(f'"{value}" is not a valid choice.')
        return value

    def _pk(self, collection: str, value, *, nullable: bool = True) -> int | None:
        """PrimaryKeyRelatedField."""
        if value is None:
            if not nullable:
                raise ValueError("This field may not be null.")
            return None
        if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).isdigit():
            raise ValueError(f"Incorrect type. Expected pk value, received {type(value).__name__}.")
        if int(value) not in self._store[collection]:
            raise ValueError(f'Invalid pk "{value}" - object does not exist.')
        return int(value)

    def _check_unique(self, collection: str, merged: dict, instance: dict | None) -> None:
        fields, key, message = UNIQUE[collection] if collection in UNIQUE else ((), "", "")
        if not fields:
            return
        for other in self._store[collection].values():
            if other is not instance and all(other.get(name) == merged.get(name) for name in fields):
                raise ApiError(400, {key: [message]})

    def _validate_project(self, merged: dict, attrs: dict, _data: dict, instance: dict | None) -> None:
        scm_type = merged.get("scm_type") or ""
        errors = {}
        if instance and scm_type and "local_path" in attrs and attrs["local_path"] != instance["local_path"]:
            errors["local_path"] = [f"Cannot change local_path for {scm_type}-based projects"]
        if scm_type:
            attrs.pop("local_path", None)
        elif "local_path" in attrs and attrs["local_path"] != self.project_dir.name:
            errors["local_path"] = ["This path is already being used by another manual project."]
        if merged.get("scm_refspec") and scm_type != "git":
            errors["scm_refspec"] = ["SCM refspec can only be used with git projects."]
        if scm_type and not merged.get("scm_url"):
            errors["scm_url"] = ["SCM URL is required."]
        if errors:
            raise ApiError(400, errors)

    def _validate_credential_type(self, merged: dict, _attrs: dict, _data: dict, _instance: dict | None) -> None:
        if merged["kind"] not in ("cloud", "net"):
            raise ApiError(400, {"kind": [f"Must be 'cloud' or 'net', not {merged['kind']}"]})

    def _validate_credential(self, merged: dict, attrs: dict, data: dict, instance: dict | None) -> None:
        if instance is None:
            owners = [name for name in ("user", "team", "organization") if data.get(name)]
            if not owners:
                raise ApiError(400, {"detail": ["Missing 'user', 'team', or 'organization'."]})
            if len(owners) > 1:
                received = ", ".join(sorted(owners))
                only_one = "Only one of 'user', 'team', or 'organization' should be provided"
                raise ApiError(400, {"detail": [f"{only_one}, received {received} fields."]})
            if data.get("user") and data["user"] not in self._users:
                raise ApiError(400, {"user": [f'Invalid pk "{data["user"]}" - object does not exist.']})
            attrs["_owner"] = data.get("user")
        defined = {
            spec["id"]
            for spec in self._store["credential_types"][merged["credential_type"]]["inputs"].get("fields", [])
        }
        unknown = sorted(set(merged.get("inputs") or {}) - defined)
        if unknown:
            raise ApiError(
                400, {"inputs": {name: [f"'{name}' is not a field of this credential type."] for name in unknown}}
            )

    def _validate_job_template(self, merged: dict, attrs: dict, _data: dict, _instance: dict | None) -> None:
        project = self._store["projects"].get(merged.get("project"))
        if project is None:
            raise ApiError(400, {"project": ["Job Templates must have a project assigned."]})
        if merged.get("inventory") is None and not merged.get("ask_inventory_on_launch"):
            raise ApiError(400, {"inventory": ["You must either set a default value or ask to prompt on launch."]})
        playbook = merged.get("playbook")
        known = project["playbook_files"] if project["scm_type"] else find_playbooks(self.project_dir)
        if playbook and not (project["scm_type"] and project["allow_override"]) and playbook not in known:
            raise ApiError(400, {"playbook": ["Playbook not found for project."]})
        if not playbook:
            raise ApiError(400, {"playbook": ["Must select playbook for project."]})
        if merged.get("scm_branch") and not project["allow_override"]:
            raise ApiError(400, {"scm_branch": ["Project does not allow overriding branch."]})
        try:
            parse_yaml_or_json(merged.get("extra_vars") or "{}", silent=False)
        except ValueError as problem:
            raise ApiError(400, {"extra_vars": [str(problem)]}) from None
        # JobTemplate.save: the organization is the project's.
        attrs["organization"] = merged["organization"] = project["organization"]

    # ------------------------------------------------------------------ projects

    def _after_project_save(self, project: dict, *, new: bool, changed: set) -> None:
        project.setdefault("scm_revision", "")
        project.setdefault("playbook_files", [])
        project.setdefault("current_update", None)
        project.setdefault("last_update", None)
        if project["scm_type"]:
            project["local_path"] = f"_{project['id']}__{re.sub(r'[^a-z0-9]+', '_', project['name'].lower())}"
            if new or changed & {"scm_url", "scm_branch", "scm_type", "scm_refspec"}:
                self._start_project_update(project)

    def _start_project_update(self, project: dict) -> None:
        """Project.update(): a project update job that syncs the project (here: from project_dir)."""
        update = self._insert(
            "project_updates",
            {
                "name": project["name"],
                "description": project["description"],
                "project": project["id"],
                "status": "pending",
                "failed": False,
                "started": None,
                "finished": None,
                "elapsed": 0.0,
                "job_explanation": "",
                "scm_revision": "",
                "launch_type": "manual",
            },
        )
        project["current_update"] = update["id"]
        thread = threading.Thread(target=self._sync_project, args=(project, update), daemon=True)
        self._threads.append(thread)
        thread.start()

    def _sync_project(self, project: dict, update: dict) -> None:
        with self._lock:
            update.update(status="running", started=_now())
        playbooks = find_playbooks(self.project_dir) if self.project_dir.is_dir() else None
        revision = subprocess.run(
            ["git", "-C", str(self.project_dir), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
        with self._lock:
            finished = _now()
            status = "successful" if playbooks is not None else "failed"
            update.update(status=status, failed=status != "successful", finished=finished, scm_revision=revision)
            update["elapsed"] = round((finished - update["started"]).total_seconds(), 3)
            if playbooks is None:
                update["job_explanation"] = f"The project folder {self.project_dir} does not exist."
            else:
                project.update(scm_revision=revision, playbook_files=playbooks)
            project.update(current_update=None, last_update=update["id"])

    def _project_status(self, project: dict) -> str:
        if not project["scm_type"]:
            return "ok" if self.project_dir.is_dir() else "missing"
        current = project["current_update"] or project["last_update"]
        return self._store["project_updates"][current]["status"] if current else "never updated"

    # ------------------------------------------------------------------ job templates

    def _attach_credential(self, jt: dict, body) -> None:
        """SubListAttachDetachAPIView: {"id": N} attaches, {"id": N, "disassociate": true} detaches."""
        if not isinstance(body, dict) or "id" not in body:
            raise ApiError(400, {"msg": "'id' is required to attach or detach."})
        credential = self._store["credentials"].get(body["id"]) if isinstance(body["id"], int) else None
        if credential is None:
            raise _detail(400, "Not found.")
        attached = self._jt_credentials[jt["id"]]
        if body.get("disassociate"):
            if credential["id"] in attached:
                attached.remove(credential["id"])
            return
        kind = self._store["credential_types"][credential["credential_type"]]["kind"]
        if any(
            self._store["credentials"][other]["credential_type"] == credential["credential_type"] for other in attached
        ):
            type_name = self._store["credential_types"][credential["credential_type"]]["name"]
            raise ApiError(400, {"error": f"Cannot assign multiple {type_name} credentials."})
        if kind not in ("ssh", "vault", "cloud", "net", "kubernetes"):
            raise ApiError(400, {"error": f"Cannot assign a Credential of kind `{kind}`."})
        attached.append(credential["id"])

    def _variables_needed(self, jt: dict) -> list[str]:
        survey = self._surveys.get(jt["id"], {})
        if not (jt["survey_enabled"] and "spec" in survey):
            return []
        return [question["variable"] for question in survey["spec"] if question["required"]]

    def _launch_repr(self, jt: dict) -> dict:
        """GET job_templates/N/launch/ (JobLaunchSerializer)."""
        inventory = self._store["inventories"].get(jt["inventory"])
        defaults = {name: jt.get(name) for name in ASK_MAPPING if name in jt and name not in ("inventory",)}
        defaults.update(
            inventory={"name": inventory["name"] if inventory else None, "id": jt["inventory"]},
            credentials=[
                {
                    "id": c,
                    "name": self._store["credentials"][c]["name"],
                    "credential_type": self._store["credentials"][c]["credential_type"],
                    "passwords_needed": [],
                }
                for c in self._jt_credentials[jt["id"]]
            ],
            execution_environment={},
            instance_groups=[],
        )
        prompting = any(jt[ask] for ask in ASK_MAPPING.values())
        variables_needed = self._variables_needed(jt)
        return {
            "can_start_without_user_input": not prompting and not variables_needed,
            "passwords_needed_to_start": [],
            **{ask: jt[ask] for ask in sorted(set(ASK_MAPPING.values()))},
            "survey_enabled": bool(jt["survey_enabled"] and "spec" in self._surveys.get(jt["id"], {})),
            "variables_needed_to_start": variables_needed,
            "credential_needed_to_start": False,
            "inventory_needed_to_start": not inventory,
            "job_template_data": {"name": jt["name"], "id": jt["id"], "description": jt["description"]},
            "defaults": defaults,
        }

    def _launch(self, user: dict, jt: dict, body) -> tuple[dict, dict]:
        """POST job_templates/N/launch/: JobTemplateLaunch.post and JobLaunchSerializer.validate."""
        if not isinstance(body, dict):
            raise ApiError(400, {"__all__": [f"Invalid data. Expected a dictionary, but got {type(body).__name__}."]})
        data = dict(body)
        if "inventory" not in data and "inventory_id" in data:
            data["inventory"] = data["inventory_id"]
        attrs = self._launch_fields(data)
        accepted, ignored, errors = self._accept_or_ignore(jt, attrs)
        project = self._store["projects"].get(jt["project"])
        if project is None:
            errors["project"] = ["A project is required to run a job."]
        elif self._project_status(project) in ("failed", "error") and not project["scm_update_on_launch"]:
            errors["playbook"] = ["Missing a revision to run due to failed project update."]
        kinds = [self._credential_kind(c) for c in accepted.get("credentials", [])]
        for kind in kinds:
            if kind not in ("ssh", "vault", "cloud", "net", "kubernetes"):
                errors.setdefault("credentials", []).append(f"Cannot assign a Credential of kind `{kind}`")
        if errors:
            raise ApiError(400, errors)
        return self._create_job(user, jt, accepted), ignored

    def _credential_kind(self, credential_id: int) -> str:
        return self._store["credential_types"][self._store["credentials"][credential_id]["credential_type"]]["kind"]

    def _launch_fields(self, data: dict) -> dict:
        """The launch serializer's (write-only) fields, with DRF's messages."""

        def text(value) -> str:
            if value is None:
                raise ValueError("This field may not be null.")
            return _convert("", value)

        def choice(choices: tuple):
            def check(value):
                if str(value) not in choices:
                    raise ValueError(f'"{value}" is not a valid choice.')
                return int(value) if choices[0] == "0" else value

            return check

        def pks(collection: str | None):
            def check(value) -> list:
                if not isinstance(value, list):
                    raise ValueError(f'Expected a list of items but got type "{type(value).__name__}".')
                return [self._pk(collection, pk) for pk in value] if collection else list(value)

            return check

        convert = {
            "extra_vars": lambda value: {} if value is None else parse_yaml_or_json(value, silent=False),
            **dict.fromkeys(("limit", "job_tags", "skip_tags", "scm_branch"), text),
            "job_type": choice(("run", "check")),
            "verbosity": choice(("0", "1", "2", "3", "4", "5")),
            "diff_mode": lambda value: _convert(False, value),
            **dict.fromkeys(("forks", "job_slice_count"), lambda value: _convert(0, value, positive=True)),
            "timeout": lambda value: _convert(0, value),
            "inventory": lambda value: self._pk("inventories", value),
            "credentials": pks("credentials"),
            **dict.fromkeys(("labels", "instance_groups"), pks(None)),
        }
        attrs, errors = {}, {}
        for name, value in data.items():
            if name in convert:
                try:
                    attrs[name] = convert[name](value)
                except ValueError as problem:
                    errors[name] = [str(problem)]
        if errors:
            raise ApiError(400, errors)
        return attrs

    def _accept_or_ignore(self, jt: dict, attrs: dict) -> tuple[dict, dict, dict]:
        """JobTemplate._accept_or_ignore_job_kwargs(_exclude_errors=['prompts']): prompts the
        template does not ask for are ignored (reported, not errors), survey rules apply."""
        prompted, rejected, errors = {}, {}, {}
        accepted_vars, rejected_vars = self._accept_or_ignore_variables(jt, attrs.get("extra_vars", {}), errors)
        if accepted_vars:
            prompted["extra_vars"] = accepted_vars
        if rejected_vars:
            rejected["extra_vars"] = rejected_vars
        for name, ask in ASK_MAPPING.items():
            if name == "extra_vars" or attrs.get(name) is None:
                continue
            new = attrs[name]
            old = jt.get(name)
            if name == "credentials":
                new = sorted(set(new) - set(self._jt_credentials[jt["id"]]))
                if not new:
                    continue
            if new == old:
                continue
            project = self._store["projects"].get(jt["project"])
            if name == "scm_branch" and old == "" and project and new == project["scm_branch"]:
                continue
            if not jt[ask]:
                rejected[name] = new
            elif name == "scm_branch" and project and new != project["scm_branch"] and not project["allow_override"]:
                rejected[name] = new
                errors[name] = "Project does not allow override of branch."
            else:
                prompted[name] = new
        needed = [resource for resource in ("project", "inventory") if not jt.get(resource)]
        missing = [
            f"Job Template {resource} is missing or undefined." for resource in needed if resource not in prompted
        ]
        if missing:
            errors["resources_needed_to_start"] = missing
        return prompted, rejected, {key: value if isinstance(value, list) else [value] for key, value in errors.items()}

    def _accept_or_ignore_variables(self, jt: dict, data: dict, errors: dict) -> tuple[dict, dict]:
        """SurveyJobTemplateMixin._accept_or_ignore_variables."""
        survey = self._surveys.get(jt["id"], {})
        extra_vars = dict(data)
        accepted, rejected = {}, {}
        if jt["survey_enabled"] and survey:
            problems = []
            for question in survey.get("spec", []):
                key = question.get("variable")
                question_problems = _survey_problems(question, data)
                if question_problems:
                    problems += question_problems
                    if key in extra_vars:
                        rejected[key] = extra_vars.pop(key)
                elif key in extra_vars:
                    accepted[key] = extra_vars.pop(key)
            if problems:
                errors["variables_needed_to_start"] = problems
        if jt["ask_variables_on_launch"]:
            accepted.update(extra_vars)
            extra_vars = {}
        own = parse_yaml_or_json(jt["extra_vars"])
        extra_vars = {key: value for key, value in extra_vars.items() if not (key in own and own[key] == value)}
        rejected.update(extra_vars)
        return accepted, rejected

    # ------------------------------------------------------------------ jobs

    def _create_job(self, user: dict, jt: dict, accepted: dict) -> dict:
        """JobTemplate.create_unified_job, then signal_start (the job is pending)."""
        extra_vars = parse_yaml_or_json(jt["extra_vars"])
        survey = self._surveys.get(jt["id"], {})
        passwords = {}
        if jt["survey_enabled"] and "spec" in survey:
            for question in survey["spec"]:
                if question.get("default") is not None and not _survey_problems(
                    question, {question["variable"]: question["default"]}
                ):
                    extra_vars[question["variable"]] = question["default"]
                if question["type"] == "password":
                    passwords[question["variable"]] = "$encrypted$"
        extra_vars.update(accepted.get("extra_vars", {}))
        options = {name: accepted.get(name, jt[name]) for name in JOB_OPTIONS}
        job = self._insert(
            "jobs",
            {
                "name": jt["name"],
                "description": jt["description"],
                **options,
                "job_template": jt["id"],
                "extra_vars": json.dumps(extra_vars),
                "survey_passwords": {key: value for key, value in passwords.items() if key in extra_vars},
                "credentials": self._jt_credentials[jt["id"]] + accepted.get("credentials", []),
                "launch_type": "manual",
                "launched_by": user["id"],
                "status": "new",
                "failed": False,
                "started": None,
                "finished": None,
                "canceled_on": None,
                "elapsed": 0.0,
                "job_args": "",
                "job_cwd": "",
                "job_env": {},
                "job_explanation": "",
                "result_traceback": "",
                "artifacts": {},
                "scm_revision": "",
                "cancel_flag": False,
            },
        )
        self._events[job["id"]] = []
        self._set_status(job, "pending")
        thread = threading.Thread(target=self._run_job, args=(job,), daemon=True)
        self._threads.append(thread)
        thread.start()
        return job

    def _set_status(self, job: dict, status: str) -> None:
        """UnifiedJob.save's bookkeeping: failed, started, finished, elapsed."""
        job["status"] = status
        job["failed"] = status in ("failed", "error", "canceled")
        job["modified"] = _now()
        if status == "running" and not job["started"]:
            job["started"] = job["modified"]
        if status in FINISHED and not job["finished"]:
            job["finished"] = job["modified"]
            if job["started"]:
                job["elapsed"] = round((job["finished"] - job["started"]).total_seconds(), 3)

    def _cancel(self, job: dict) -> None:
        """UnifiedJob.cancel: a job not yet running is canceled at once, a running one
        when ansible-runner has stopped it."""
        job["cancel_flag"] = True
        job["canceled_on"] = _now()
        if job["status"] in ("new", "pending", "waiting"):
            self._set_status(job, "canceled")

    def _run_job(self, job: dict) -> None:
        """The task system: jobs of one template wait (pending) unless it allows simultaneous runs."""
        template_lock = None
        if not job["allow_simultaneous"]:
            with self._lock:
                template_lock = self._jt_locks.setdefault(job["job_template"], threading.Lock())
            while not template_lock.acquire(timeout=0.1):
                if job["cancel_flag"]:
                    return
        try:
            with self._lock:
                if job["cancel_flag"]:
                    return
                self._set_status(job, "waiting")
            self._execute(job)
        finally:
            if template_lock:
                template_lock.release()

    def _execute(self, job: dict) -> None:
        """RunJob.run: write the private data dir as AWX does and run ansible-runner."""
        private = Path(tempfile.mkdtemp(prefix=f"job_{job['id']}_", dir=self._workdir))
        explanation, traceback_text, status = "", "", "error"
        try:
            with self._lock:
                if job["cancel_flag"]:
                    return
                job["scm_revision"] = self._store["projects"][job["project"]]["scm_revision"]
                host_map = self._write_private_data(job, private)
                args = self._playbook_args(job)
                self._set_status(job, "running")
            env = {
                "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
                "ANSIBLE_HOST_KEY_CHECKING": "False",
                "ANSIBLE_INVENTORY_UNPARSED_FAILED": "True",
                "ANSIBLE_PARAMIKO_RECORD_HOST_KEYS": "False",
                "ANSIBLE_RETRY_FILES_ENABLED": "False",
                "AWX_PRIVATE_DATA_DIR": str(private),
                "JOB_ID": str(job["id"]),
                "INVENTORY_ID": str(job["inventory"]),
                "PROJECT_REVISION": job["scm_revision"],
            }
            result = ansible_runner.interface.run(
                private_data_dir=str(private),
                project_dir=str(self.project_dir),
                playbook=job["playbook"],
                cmdline=shlex.join(args),
                envvars=env,
                quiet=True,
                timeout=job["timeout"] or None,
                event_handler=lambda event: self._on_event(job, event, host_map),
                status_handler=lambda data, runner_config: self._on_status(job, data, runner_config),
                cancel_callback=lambda: job["cancel_flag"],
            )
            status = result.status
            if status in ("timeout", "error"):
                explanation = f"Job terminated due to {status}"
                status = "failed" if status == "timeout" else status
        except Exception:
            traceback_text = traceback.format_exc()
        finally:
            shutil.rmtree(private, ignore_errors=True)
        with self._lock:
            job["job_explanation"] = job["job_explanation"] or explanation
            job["result_traceback"] = job["result_traceback"] or traceback_text
            self._set_status(job, status)

    def _write_private_data(self, job: dict, private: Path) -> dict[str, int]:
        """env/extravars (safe_dump with the template's variables trusted) and the
        inventory script (Inventory.get_script_data(hostvars=True, towervars=True))."""
        jt = self._store["job_templates"].get(job["job_template"])
        variables = json.loads(job["extra_vars"]) | self._meta_vars(job)
        (private / "env").mkdir()
        (private / "env" / "extravars").write_text(
            safe_dump(variables, parse_yaml_or_json(jt["extra_vars"]) if jt else {})
        )
        inventory = self._store["inventories"][job["inventory"]]
        hosts = sorted(
            (
                host
                for host in self._store["hosts"].values()
                if host["inventory"] == inventory["id"] and host["enabled"]
            ),
            key=lambda host: host["name"],
        )
        script = {"all": {"hosts": [host["name"] for host in hosts]}, "_meta": {"hostvars": {}}}
        if inventory["variables"]:
            script["all"]["vars"] = parse_yaml_or_json(inventory["variables"])
        for host in hosts:
            hostvars = parse_yaml_or_json(host["variables"])
            for prefix in ("host", "tower"):
                hostvars.update({f"remote_{prefix}_enabled": "true", f"remote_{prefix}_id": host["id"]})
            script["_meta"]["hostvars"][host["name"]] = hostvars
        (private / "inventory").mkdir()
        script_path = private / "inventory" / "hosts"
        script_path.write_text(f"#! /usr/bin/env python3\n# -*- coding: utf-8 -*-\nprint({json.dumps(script)!r})\n")
        script_path.chmod(0o700)
        return {host["name"]: host["id"] for host in hosts}

    def _meta_vars(self, job: dict) -> dict:
        """UnifiedJob/Job.awx_meta_vars, under both prefixes."""
        user = self._users[job["launched_by"]]
        inventory = self._store["inventories"][job["inventory"]]
        project = self._store["projects"][job["project"]]
        jt = self._store["job_templates"].get(job["job_template"])
        values = {
            "job_id": job["id"],
            "job_launch_type": job["launch_type"],
            "user_id": user["id"],
            "user_name": user["username"],
            "user_email": user["email"],
            "user_first_name": user["first_name"],
            "user_last_name": user["last_name"],
            "inventory_id": inventory["id"],
            "inventory_name": inventory["name"],
            "project_revision": project["scm_revision"],
            "project_scm_branch": project["scm_branch"],
        }
        if jt:
            values.update(job_template_id=jt["id"], job_template_name=jt["name"])
        return {f"{prefix}_{name}": value for prefix in ("awx", "tower") for name, value in values.items()}

    def _playbook_args(self, job: dict) -> list[str]:
        """RunJob.build_args."""
        machine = next(
            (self._store["credentials"][c] for c in job["credentials"] if self._credential_kind(c) == "ssh"), None
        )
        inputs = machine["inputs"] if machine else {}
        args = ["--check"] if job["job_type"] == "check" else []
        args += ["-u", inputs.get("username") or "root"]
        if job["become_enabled"]:
            args.append("--become")
        if job["diff_mode"]:
            args.append("--diff")
        if inputs.get("become_method"):
            args += ["--become-method", inputs["become_method"]]
        if inputs.get("become_username"):
            args += ["--become-user", inputs["become_username"]]
        if job["forks"]:
            args.append(f"--forks={job['forks']}")
        if job["force_handlers"]:
            args.append("--force-handlers")
        if job["limit"]:
            args += ["-l", job["limit"]]
        if job["verbosity"]:
            args.append("-" + "v" * min(5, job["verbosity"]))
        if job["job_tags"]:
            args += ["-t", job["job_tags"]]
        if job["skip_tags"]:
            args.append(f"--skip-tags={job['skip_tags']}")
        if job["start_at_task"]:
            args.append(f"--start-at-task={job['start_at_task']}")
        return args

    def _on_status(self, job: dict, data: dict, runner_config) -> None:
        """RunnerCallback.status_handler."""
        with self._lock:
            if data["status"] == "starting":
                job["job_args"] = json.dumps(runner_config.command)
                job["job_cwd"] = runner_config.cwd
            elif data["status"] == "error":
                job["result_traceback"] = data.get("result_traceback", "") or job["result_traceback"]
                job["job_explanation"] = data.get("job_explanation", "") or job["job_explanation"]

    def _on_event(self, job: dict, event: dict, host_map: dict[str, int]) -> bool:
        """RunnerCallback.event_handler and JobEvent.create_from_data: one stored job event."""
        if event.get("event") in ("keepalive", "EOF"):
            return False
        data = copy.deepcopy(event.get("event_data") or {})
        name = event.get("event", "")
        host_name = str(data.get("host", "")).strip()
        result = data.get("res")
        stored = {
            "id": next(self._event_ids),
            "event": name,
            "counter": event.get("counter", 0),
            "event_data": data,
            "failed": EVENT_TYPES.get(name, (0, "", False))[2] and not data.get("ignore_errors", False),
            "changed": isinstance(result, dict) and bool(result.get("changed", False)),
            "uuid": event.get("uuid", ""),
            "parent_uuid": event.get("parent_uuid", ""),
            "host": host_map.get(host_name),
            "host_name": host_name,
            "stdout": event.get("stdout", ""),
            "start_line": event.get("start_line", 0),
            "end_line": event.get("end_line", 0),
            "verbosity": event.get("verbosity", 0),
            "created": _parse_time(event.get("created")),
            **{key: str(data.get(key, "")).strip() for key in ("playbook", "play", "task", "role")},
        }
        with self._lock:
            events = self._events[job["id"]]
            if name == "playbook_on_stats":
                stored["failed"] = bool(
                    sum((data.get("failures") or {}).values()) + sum((data.get("dark") or {}).values())
                )
                stored["changed"] = bool(sum((data.get("changed") or {}).values()))
                changed = {e["parent_uuid"] for e in events if e["changed"]}
                failed = {e["parent_uuid"] for e in events if e["failed"]}
                for other in events:
                    other["changed"] = other["changed"] or other["uuid"] in changed
                    other["failed"] = other["failed"] or other["uuid"] in failed
            events.append(stored)
            if data.get("artifact_data"):
                job["artifacts"] = copy.deepcopy(data["artifact_data"])
        return False

    # ------------------------------------------------------------------ representations

    def _base(self, collection: str, obj: dict) -> dict:
        kind = KINDS[collection]
        return {
            "id": obj["id"],
            "type": kind.type,
            "url": f"{API}{collection}/{obj['id']}/",
            "related": {},
            "summary_fields": {},
            "created": _stamp(obj["created"]),
            "modified": _stamp(obj["modified"]),
            "name": obj["name"],
            "description": obj["description"],
        }

    def _summary(self, collection: str, pk: int | None, *fields: str) -> dict | None:
        obj = self._store[collection].get(pk) if pk else None
        if obj is None:
            return None
        return {name: obj[name] for name in ("id", "name", "description", *fields)}

    def _repr(self, collection: str, obj: dict) -> dict:
        represented = self._base(collection, obj)
        kind = KINDS[collection]
        for name in kind.fields:
            if name not in represented:
                represented[name] = copy.deepcopy(obj.get(name))
        related, summary = represented["related"], represented["summary_fields"]
        for name, target in kind.foreign.items():
            if obj.get(name):
                related[name] = f"{API}{target}/{obj[name]}/"
        organization = self._summary("organizations", obj.get("organization"))
        if organization:
            summary["organization"] = organization
        getattr(self, f"_repr_{kind.type}", lambda _obj, _represented: None)(obj, represented)
        return represented

    def _repr_organization(self, obj: dict, represented: dict) -> None:
        represented.update(custom_virtualenv=None, default_environment=None)
        for name in ("projects", "inventories", "job_templates", "credentials", "execution_environments"):
            represented["related"][name] = f"{API}organizations/{obj['id']}/{name}/"

    def _repr_execution_environment(self, obj: dict, represented: dict) -> None:
        represented["managed"] = False

    def _repr_project(self, obj: dict, represented: dict) -> None:
        last = self._store["project_updates"].get(obj["last_update"])
        current = self._store["project_updates"].get(obj["current_update"])
        represented.update(
            scm_revision=obj["scm_revision"] if obj["scm_type"] else "",
            last_job_run=_stamp(last["finished"]) if last else None,
            last_job_failed=bool(last and last["failed"]),
            next_job_run=None,
            status=self._project_status(obj),
            custom_virtualenv=None,
            last_update_failed=bool(last and last["failed"]),
            last_updated=_stamp(last["finished"]) if last else None,
        )
        related = represented["related"]
        for name in ("playbooks", "update", "project_updates", "inventory_files", "copy"):
            related[name] = f"{API}projects/{obj['id']}/{name}/"
        summary = represented["summary_fields"]
        credential = self._summary("credentials", obj["credential"])
        if credential:
            summary["credential"] = credential | self._credential_flags(obj["credential"])
        for key, update in (
            ("current_update", current),
            ("last_update", last),
            ("current_job", current),
            ("last_job", last),
        ):
            if update:
                related[key] = f"{API}project_updates/{update['id']}/"
                summary[key] = {
                    "id": update["id"],
                    "name": update["name"],
                    "description": update["description"],
                    "status": update["status"],
                    "failed": update["failed"],
                }

    def _repr_inventory(self, obj: dict, represented: dict) -> None:
        hosts = [host for host in self._store["hosts"].values() if host["inventory"] == obj["id"]]
        represented.update(
            has_active_failures=False,
            total_hosts=len(hosts),
            hosts_with_active_failures=0,
            total_groups=0,
            has_inventory_sources=False,
            total_inventory_sources=0,
            inventory_sources_with_failures=0,
            pending_deletion=False,
        )
        for name in ("hosts", "groups", "job_templates", "variable_data", "script"):
            represented["related"][name] = f"{API}inventories/{obj['id']}/{name}/"

    def _repr_host(self, obj: dict, represented: dict) -> None:
        represented.update(
            has_active_failures=False,
            has_inventory_sources=False,
            last_job=None,
            last_job_host_summary=None,
            ansible_facts_modified=None,
        )
        represented["summary_fields"]["inventory"] = self._summary("inventories", obj["inventory"], "organization")

    def _repr_credential_type(self, obj: dict, represented: dict) -> None:
        represented.update(namespace=obj.get("namespace"), managed=bool(obj.get("managed")))
        represented["related"]["credentials"] = f"{API}credential_types/{obj['id']}/credentials/"

    def _credential_flags(self, pk: int) -> dict:
        credential_type = self._store["credential_types"][self._store["credentials"][pk]["credential_type"]]
        return {
            "kind": credential_type.get("namespace"),
            "cloud": credential_type["kind"] == "cloud",
            "kubernetes": credential_type["kind"] == "kubernetes",
            "credential_type_id": credential_type["id"],
        }

    def _repr_credential(self, obj: dict, represented: dict) -> None:
        flags = self._credential_flags(obj["id"])
        credential_type = self._store["credential_types"][obj["credential_type"]]
        secret = {spec["id"] for spec in credential_type["inputs"].get("fields", []) if spec.get("secret")}
        represented.update(
            managed=False,
            inputs={key: "$encrypted$" if key in secret and value else value for key, value in obj["inputs"].items()},
            kind=flags["kind"],
            cloud=flags["cloud"],
            kubernetes=flags["kubernetes"],
        )
        summary = represented["summary_fields"]
        summary["credential_type"] = self._summary("credential_types", obj["credential_type"])
        owner = self._users.get(obj.get("owner_user"))
        summary["owners"] = (
            [{"id": owner["id"], "type": "user", "name": owner["username"], "url": f"{API}users/{owner['id']}/"}]
            if owner
            else [dict(summary["organization"], type="organization", url=f"{API}organizations/{obj['organization']}/")]
            if "organization" in summary
            else []
        )

    def _repr_job_template(self, obj: dict, represented: dict) -> None:
        jobs = sorted(
            (job for job in self._store["jobs"].values() if job["job_template"] == obj["id"]),
            key=lambda job: -job["id"],
        )
        last = next((job for job in jobs if job["status"] in FINISHED), None)
        current = next((job for job in jobs if job["status"] in ACTIVE), None)
        represented.update(
            last_job_run=_stamp(last["finished"]) if last else None,
            last_job_failed=bool(last and last["failed"]),
            next_job_run=None,
            status=current["status"] if current else last["status"] if last else "never updated",
            custom_virtualenv=None,
            organization=obj["organization"],
        )
        related = represented["related"]
        for name in ("launch", "survey_spec", "credentials", "jobs", "labels", "schedules", "instance_groups", "copy"):
            related[name] = f"{API}job_templates/{obj['id']}/{name}/"
        if obj["organization"]:
            related["organization"] = f"{API}organizations/{obj['organization']}/"
        summary = represented["summary_fields"]
        for name, collection, extra in (
            ("inventory", "inventories", ("organization",)),
            ("project", "projects", ("scm_type", "allow_override")),
        ):
            found = self._summary(collection, obj[name], *extra)
            if found:
                if name == "project":
                    found["status"] = self._project_status(self._store["projects"][obj["project"]])
                summary[name] = found
        if last:
            related["last_job"] = f"{API}jobs/{last['id']}/"
            summary["last_job"] = {key: last[key] for key in ("id", "name", "description", "status", "failed")}
            summary["last_job"]["finished"] = _stamp(last["finished"])
        if current:
            related["current_job"] = f"{API}jobs/{current['id']}/"
        survey = self._surveys.get(obj["id"], {})
        if "name" in survey and "description" in survey:
            summary["survey"] = {"title": survey["name"], "description": survey["description"]}
        summary["recent_jobs"] = [
            {
                "id": job["id"],
                "status": job["status"],
                "finished": _stamp(job["finished"]),
                "canceled_on": _stamp(job["canceled_on"]),
                "type": "job",
            }
            for job in jobs[:10]
        ]
        summary["credentials"] = [
            {
                **self._summary("credentials", c),
                "kind": self._credential_flags(c)["kind"],
                "cloud": self._credential_flags(c)["cloud"],
            }
            for c in self._jt_credentials[obj["id"]]
        ]
        summary["labels"] = {"count": 0, "results": []}

    def _user_repr(self, user: dict) -> dict:
        return {
            "id": user["id"],
            "type": "user",
            "url": f"{API}users/{user['id']}/",
            "related": {},
            "summary_fields": {},
            "created": _stamp(user["created"]),
            "modified": None,
            "username": user["username"],
            "first_name": user["first_name"],
            "last_name": user["last_name"],
            "email": user["email"],
            "is_superuser": user["is_superuser"],
            "is_system_auditor": False,
            "last_login": None,
            "external_account": None,
            "auth": [],
        }

    def _job_repr(self, job: dict, *, detail: bool = False, listing: bool = False) -> dict:
        """JobSerializer; detail adds JobDetailSerializer's fields, a listing drops JobListSerializer's."""
        pk = job["id"]
        user = self._users[job["launched_by"]]
        jt = self._store["job_templates"].get(job["job_template"])
        extra_vars = json.loads(job["extra_vars"])
        extra_vars.update({key: value for key, value in job["survey_passwords"].items() if key in extra_vars})
        elapsed = job["elapsed"]
        if job["started"] and not job["finished"]:
            elapsed = round((_now() - job["started"]).total_seconds(), 3)
        represented = {
            "id": pk,
            "type": "job",
            "url": f"{API}jobs/{pk}/",
            "related": {
                name: f"{API}jobs/{pk}/{name}/"
                for name in (
                    "job_events",
                    "job_host_summaries",
                    "labels",
                    "credentials",
                    "cancel",
                    "stdout",
                    "relaunch",
                    "notifications",
                )
            },
            "summary_fields": {},
            "created": _stamp(job["created"]),
            "modified": _stamp(job["modified"]),
            "name": job["name"],
            "description": job["description"],
            "unified_job_template": job["job_template"],
            "launch_type": job["launch_type"],
            "status": job["status"],
            "execution_environment": None,
            "failed": job["failed"],
            "started": _stamp(job["started"]),
            "finished": _stamp(job["finished"]),
            "canceled_on": _stamp(job["canceled_on"]),
            "elapsed": float(elapsed),
            "job_args": job["job_args"],
            "job_cwd": job["job_cwd"],
            "job_env": job["job_env"],
            "job_explanation": job["job_explanation"],
            "execution_node": "awx-standin",
            "controller_node": "awx-standin",
            "result_traceback": job["result_traceback"],
            "event_processing_finished": job["status"] in FINISHED,
            "launched_by": {
                "id": user["id"],
                "name": user["username"],
                "type": "user",
                "url": f"{API}users/{user['id']}/",
            },
            "work_unit_id": None,
            **{name: job[name] for name in JOB_OPTIONS if name != "become_enabled"},
            "extra_vars": json.dumps(extra_vars),
            "job_template": job["job_template"],
            "passwords_needed_to_start": [],
            "artifacts": copy.deepcopy(job["artifacts"]),
            "scm_revision": job["scm_revision"],
            "instance_group": None,
            "job_slice_number": 0,
            "webhook_guid": "",
        }
        related, summary = represented["related"], represented["summary_fields"]
        for name, collection in (
            ("inventory", "inventories"),
            ("project", "projects"),
            ("organization", "organizations"),
        ):
            related[name] = f"{API}{collection}/{job[name]}/"
            found = self._summary(collection, job[name])
            if found:
                summary[name] = found
        if jt:
            related["job_template"] = related["unified_job_template"] = f"{API}job_templates/{jt['id']}/"
            summary["job_template"] = self._summary("job_templates", jt["id"])
            summary["unified_job_template"] = {**summary["job_template"], "unified_job_type": "job"}
        related["created_by"] = f"{API}users/{user['id']}/"
        summary["created_by"] = {key: user[key] for key in ("id", "username", "first_name", "last_name")}
        summary["credentials"] = [
            {
                **self._summary("credentials", c),
                "kind": self._credential_flags(c)["kind"],
                "cloud": self._credential_flags(c)["cloud"],
            }
            for c in job["credentials"]
            if c in self._store["credentials"]
        ]
        summary["labels"] = {"count": 0, "results": []}
        if detail:
            events = self._events.get(pk, [])
            represented.update(
                host_status_counts=_host_status_counts(events),
                playbook_counts={
                    "play_count": sum(e["event"] == "playbook_on_play_start" for e in events),
                    "task_count": sum(e["event"] == "playbook_on_task_start" for e in events),
                },
                custom_virtualenv=None,
            )
        if listing:
            for name in ("job_args", "job_cwd", "job_env", "result_traceback", "event_processing_finished"):
                represented.pop(name)
        return represented

    def _event_repr(self, job: dict, event: dict) -> dict:
        """JobEventSerializer."""
        level, display, _failed = EVENT_TYPES.get(event["event"], (0, event["event"], False))
        if event["event"] == "playbook_on_play_start" and event["play"]:
            display = f"{display} ({event['play']})"
        elif event["event"] == "playbook_on_task_start" and event["task"]:
            display = (
                f"{display} ({event['role']} | {event['task']})" if event["role"] else f"{display} ({event['task']})"
            )
        jt = self._store["job_templates"].get(job["job_template"])
        summary = {
            "job": {
                **{key: job[key] for key in ("id", "name", "description", "status", "failed", "elapsed")},
                "type": "job",
                "canceled_on": _stamp(job["canceled_on"]),
                **({"job_template_id": jt["id"], "job_template_name": jt["name"]} if jt else {}),
            },
            "role": {},
        }
        related = {"job": f"{API}jobs/{job['id']}/", "children": f"{API}job_events/{event['id']}/children/"}
        if event["host"]:
            related["host"] = f"{API}hosts/{event['host']}/"
            summary["host"] = self._summary("hosts", event["host"])
        return {
            "id": event["id"],
            "type": "job_event",
            "url": f"{API}job_events/{event['id']}/",
            "related": related,
            "summary_fields": summary,
            "created": _stamp(event["created"]),
            "modified": _stamp(event["created"]),
            "job": job["id"],
            "event": event["event"],
            "counter": event["counter"],
            "event_display": display,
            "event_data": copy.deepcopy(event["event_data"]),
            "event_level": level,
            **{key: event[key] for key in ("failed", "changed", "uuid", "parent_uuid", "host", "host_name")},
            **{
                key: event[key]
                for key in ("playbook", "play", "task", "role", "stdout", "start_line", "end_line", "verbosity")
            },
        }

    def _update_repr(self, update: dict) -> dict:
        """ProjectUpdateDetailSerializer, the fields clients read."""
        project = self._store["projects"][update["project"]]
        return {
            "id": update["id"],
            "type": "project_update",
            "url": f"{API}project_updates/{update['id']}/",
            "related": {
                "project": f"{API}projects/{project['id']}/",
                "stdout": f"{API}project_updates/{update['id']}/stdout/",
            },
            "summary_fields": {"project": self._summary("projects", project["id"], "scm_type", "allow_override")},
            "created": _stamp(update["created"]),
            "modified": _stamp(update["modified"]),
            "name": update["name"],
            "description": update["description"],
            "unified_job_template": project["id"],
            "launch_type": update["launch_type"],
            "status": update["status"],
            "failed": update["failed"],
            "started": _stamp(update["started"]),
            "finished": _stamp(update["finished"]),
            "elapsed": float(update["elapsed"]),
            "job_explanation": update["job_explanation"],
            "event_processing_finished": update["status"] in FINISHED,
            "project": project["id"],
            "job_type": "check",
            "scm_type": project["scm_type"],
            "scm_url": project["scm_url"],
            "scm_branch": project["scm_branch"],
            "scm_revision": update["scm_revision"],
            "local_path": project["local_path"],
        }


# ---------------------------------------------------------------------- helpers


def _bearer(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


async def _json(request: Request):
    raw = await request.body()
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except ValueError as problem:
        raise _detail(400, f"JSON parse error - {problem}") from None


def _convert(default, value, positive: bool = False):
    """DRF's BooleanNullField, IntegerField, JSON object and CharNullField, by the field's default."""
    if isinstance(default, bool):
        if value in (None, "", False, "false", "False", "0", 0, "f", "no"):
            return False
        if value in (True, "true", "True", "1", 1, "t", "yes"):
            return True
        raise ValueError("Must be a valid boolean.")
    if isinstance(default, int):
        if isinstance(value, bool) or not re.fullmatch(r"-?\d+", str(value)):
            raise ValueError("A valid integer is required.")
        if positive and int(value) < 0:
            raise ValueError("Ensure this value is greater than or equal to 0.")
        return int(value)
    if isinstance(default, dict):
        if not isinstance(value, dict):
            raise ValueError("Must be a valid JSON object.")
        return copy.deepcopy(value)
    if isinstance(value, (bool, dict, list)):
        raise ValueError("Not a valid string.")
    return "" if value is None else str(value)


def _parse_time(value) -> datetime.datetime:
    try:
        moment = datetime.datetime.fromisoformat(str(value))
    except ValueError:
        return _now()
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def _positive_int(value, default: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return default
    return number if number > 0 else default


def _host_status_counts(events: list[dict]) -> dict:
    stats = next((e["event_data"] for e in events if e["event"] == "playbook_on_stats"), None)
    if stats is None:
        return {}
    counts: dict[str, int] = {}
    hosts = set().union(
        *(set((stats.get(key) or {}).keys()) for key in ("ok", "changed", "failures", "dark", "skipped"))
    )
    for host in hosts:
        for status, key in (
            ("dark", "dark"),
            ("failures", "failures"),
            ("changed", "changed"),
            ("ok", "ok"),
            ("skipped", "skipped"),
        ):
            if (stats.get(key) or {}).get(host):
                counts[status] = counts.get(status, 0) + 1
                break
    return counts


LOOKUPS = {
    "exact": lambda have, want: have == want,
    "iexact": lambda have, want: str(have).lower() == str(want).lower(),
    "contains": lambda have, want: str(want) in str(have),
    "icontains": lambda have, want: str(want).lower() in str(have).lower(),
    "startswith": lambda have, want: str(have).startswith(str(want)),
    "istartswith": lambda have, want: str(have).lower().startswith(str(want).lower()),
    "gt": lambda have, want: have is not None and have > want,
    "gte": lambda have, want: have is not None and have >= want,
    "lt": lambda have, want: have is not None and have < want,
    "lte": lambda have, want: have is not None and have <= want,
    "in": lambda have, want: have in want,
    "isnull": lambda have, want: (have is None) == want,
}
RESERVED = {"page", "page_size", "format", "order", "order_by", "limit", "count_disabled", "no_truncate"}


def _coerce(raw: str, sample, lookup: str):
    if lookup == "in":
        return [_coerce(part, sample, "exact") for part in raw.split(",")]
    if lookup == "isnull" or isinstance(sample, bool):
        return raw.lower() in ("true", "1", "t", "yes", "y")
    if raw.lower() in ("none", "null"):
        return None
    if isinstance(sample, int) or sample is None:
        try:
            return int(raw)
        except ValueError:
            if isinstance(sample, int):
                raise _detail(400, f"Field expected a number but got '{raw}'.") from None
    return raw


def _filter(items: list[dict], params: list[tuple[str, str]]) -> list[dict]:
    """FieldLookupBackend: field[__lookup]=value, or__ and not__ prefixes, type=."""
    conditions = []
    for key, raw in params:
        if key in RESERVED:
            continue
        mode, name = "and", key
        for prefix in ("or__", "not__", "chain__"):
            if name.startswith(prefix):
                mode, name = prefix[:-2], name[len(prefix) :]
        field_name, _, lookup = name.partition("__")
        lookup = lookup or "exact"
        if lookup not in LOOKUPS:
            raise _detail(400, f"Unsupported lookup: {lookup}")
        if items and field_name not in items[0]:
            raise _detail(400, f"Cannot resolve keyword '{field_name}' into field.")
        conditions.append((mode, field_name, lookup, raw))

    def matches(item: dict) -> bool:
        ors = []
        for mode, name, lookup, raw in conditions:
            have = item[name]
            values = raw.split(",") if name == "type" else None
            hit = have in values if values else LOOKUPS[lookup](have, _coerce(raw, have, lookup))
            if mode == "or":
                ors.append(hit)
            elif hit == (mode == "not"):
                return False
        return not ors or any(ors)

    return [item for item in items if matches(item)]


def _order(items: list[dict], order_by: str) -> list[dict]:
    for key in reversed([part.strip() for part in order_by.split(",") if part.strip()]):
        name = key.lstrip("-")
        if items and name not in items[0]:
            raise _detail(400, f"Cannot resolve keyword '{name}' into field.")
        items = sorted(items, key=lambda item: (item[name] is None, item[name]), reverse=key.startswith("-"))
    return items


def _display_survey(survey: dict) -> dict:
    """display_survey_spec: password defaults shown as $encrypted$."""
    shown = copy.deepcopy(survey)
    for question in shown.get("spec", []):
        if question.get("type") == "password" and question.get("default"):
            question["default"] = "$encrypted$"
    return shown


def _validate_survey(spec) -> None:  # noqa: PLR0912 - one check per rule, as AWX's view
    """JobTemplateSurveySpec._validate_spec_data (400 {"error": ...})."""

    def fail(message: str) -> ApiError:
        return ApiError(400, {"error": message})

    if not isinstance(spec, dict):
        raise fail("Field 'name' is missing from survey spec.")
    for name, expected, label in (
        ("name", str, "string"),
        ("description", str, "string"),
        ("spec", list, "list of items"),
    ):
        if name not in spec:
            raise fail(f"Field '{name}' is missing from survey spec.")
        if not isinstance(spec[name], expected):
            raise fail(f"Expected {label} for field '{name}', received {type(spec[name]).__name__} type.")
    if not spec["spec"]:
        raise fail("'spec' doesn't contain any items.")
    variables = set()
    for index, question in enumerate(spec["spec"]):
        if not isinstance(question, dict):
            raise fail(f"Survey question {index} is not a json object.")
        for name in ("type", "question_name", "variable", "required"):
            if name not in question:
                raise fail(f"'{name}' missing from survey question {index}")
            expected, label = (bool, "boolean") if name == "required" else (str, "string")
            if not isinstance(question[name], expected):
                raise fail(f"'{name}' in survey question {index} expected to be {label}.")
        if question["variable"] in variables:
            raise fail(f"'variable' '{question['variable']}' duplicated in survey question {index}.")
        variables.add(question["variable"])
        kind = question["type"]
        if kind not in SURVEY_TYPES:
            raise fail(
                f"'{kind}' in survey question {index} is not one of '{', '.join(SURVEY_TYPES)}' allowed question types."
            )
        if (
            "default" in question
            and question["default"] != ""
            and not isinstance(question["default"], SURVEY_TYPES[kind])
        ):
            label = kind if kind in ("integer", "float") else "string"
            raise fail(f"Default value {question['default']} in survey question {index} expected to be {label}.")
        for bound in ("min", "max"):
            if question.get(bound) is not None and not isinstance(question[bound], int):
                raise fail(f"The {bound} limit in survey question {index} expected to be integer.")
        if kind in ("multiselect", "multiplechoice"):
            if "choices" not in question:
                raise fail(f"Survey question {index} of type {kind} must specify choices.")
            if isinstance(question["choices"], str):
                question["choices"] = "\n".join(c for c in question["choices"].splitlines() if c.strip())
            if "default" in question:
                defaults = (
                    question["default"].splitlines() if isinstance(question["default"], str) else question["default"]
                )
                if kind == "multiplechoice" and len(defaults) > 1:
                    raise fail("Multiple Choice (Single Select) can only have one default value.")
                if any(item not in question["choices"] for item in defaults):
                    raise fail("Default choice must be answered from the choices listed.")


def _survey_problems(question: dict, data: dict) -> list[str]:  # noqa: PLR0911, PLR0912
    """SurveyJobTemplateMixin._survey_element_validation, with AWX's messages."""
    variable, kind = question["variable"], question["type"]
    if variable not in data:
        return [f"'{variable}' value missing"] if question["required"] else []
    value = data[variable]
    low, high = question.get("min"), question.get("max")
    low = None if low in ("", None) else low
    high = None if high in ("", None) else high
    if kind in ("text", "textarea", "password"):
        if not isinstance(value, str):
            return [f"Value {value} for '{variable}' expected to be a string."]
        problems = []
        if low is not None and len(value) < int(low):
            problems.append(f"'{variable}' value {value} is too small (length is {len(value)} must be at least {low}).")
        if high is not None and len(value) > int(high):
            problems.append(f"'{variable}' value {value} is too large (must be no more than {high}).")
        return problems
    if kind in ("integer", "float"):
        if (kind == "integer" and type(value) is not int) or (kind == "float" and type(value) not in (float, int)):
            expected = "an integer" if kind == "integer" else "a numeric type"
            return [f"Value {value} for '{variable}' expected to be {expected}."]
        problems = []
        if low is not None and value < low:
            problems.append(f"'{variable}' value {value} is too small (must be at least {low}).")
        if high is not None and value > high:
            problems.append(f"'{variable}' value {value} is too large (must be no more than {high}).")
        return problems
    choices = question.get("choices", [])
    if isinstance(choices, str):
        choices = [choice for choice in choices.splitlines() if choice.strip()]
    if kind == "multiselect":
        if not isinstance(value, list):
            return [f"'{variable}' value is expected to be a list."]
        return [
            f"Value {item} for '{variable}' expected to be one of {choices}." for item in value if item not in choices
        ]
    if kind == "multiplechoice" and value not in choices:
        return [f"Value {value} for '{variable}' expected to be one of {choices}."]
    return []
