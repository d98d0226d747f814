"""The adapter's settings: one YAML file (docs/adapter.md), every key optional."""

from __future__ import annotations

import ipaddress
import os
import shutil
import sys
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# A checkout with the adapter installed in editable mode: the repository's root.
REPO_ROOT = Path(__file__).resolve().parents[3]
COLLECTION = ("incident", "remediation")
DEFAULT_COLLECTIONS_PATH = f"{Path.home() / '.ansible' / 'collections'}:/usr/share/ansible/collections"


def ansible_collections_paths() -> list[str]:
    """Where ansible-playbook looks for collections: its configured paths (ansible.cfg,
    ANSIBLE_COLLECTIONS_PATH), then, as its collection loader does, sys.path."""
    try:
        from ansible import constants  # noqa: PLC0415 - reads Ansible's configuration only when needed

        configured = list(constants.COLLECTIONS_PATHS)
    except ImportError:  # ansible-core lives in another environment: its documented defaults
        configured = os.environ.get("ANSIBLE_COLLECTIONS_PATH", DEFAULT_COLLECTIONS_PATH).split(":")
    return [*configured, *(entry for entry in sys.path if entry)]


def collection_root(collections_path: str) -> Path | None:
    """The incident.remediation collection on a collections path (colon-separated), if there."""
    for root in collections_path.split(":"):
        candidate = Path(root or ".") / "ansible_collections" / COLLECTION[0] / COLLECTION[1]
        # A checkout has galaxy.yml, an installed collection MANIFEST.json.
        if root and ((candidate / "galaxy.yml").is_file() or (candidate / "MANIFEST.json").is_file()):
            return candidate.resolve()
    return None


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Caps(Strict):
    """Blast-radius caps; a route may lower or raise the per-route and per-target ones."""

    concurrent_runs: int = Field(2, ge=1, le=64)
    per_target_per_hour: int = Field(3, ge=0)
    per_route_per_hour: int = Field(20, ge=0)
    total_per_hour: int = Field(60, ge=0)


class Safety(Strict):
    cooldown_minutes: float = Field(10, ge=0)
    breaker_failures: int = Field(3, ge=1)
    approval_timeout_minutes: float = Field(30, gt=0)
    # What happens to a run that was running when the adapter died.
    interrupted: Literal["escalate", "requeue"] = "escalate"
    caps: Caps = Caps()
    dry_run: bool = False  # every route in dry run, whatever its mode


class Silence(Strict):
    """A maintenance window: alerts whose labels match every matcher run nothing."""

    matchers: dict[str, str] = Field(min_length=1)
    starts_at: float = 0
    ends_at: float = float("inf")
    comment: str = ""


class Auth(Strict):
    """Alertmanager's http_config can send a bearer token or basic credentials; other
    senders may also sign the body (HMAC-SHA256 of the raw body, hex)."""

    bearer_token_file: Path | None = None
    basic_users_file: Path | None = None  # lines "user:password"
    hmac_secret_file: Path | None = None
    hmac_header: str = "X-Remediate-Signature"
    # Only with --insecure-no-auth, and only on loopback.
    disabled: bool = False


class Awx(Strict):
    """An AWX / Ansible Automation Platform controller that runs job templates."""

    # The controller's address, e.g. https://awx.example.com; the API is under api_path.
    url: str
    # AAP 2.5 behind its gateway: /api/controller/v2/.
    api_path: str = "/api/v2/"
    # An OAuth2 or personal access token, one line; never logged.
    token_file: Path
    # False, or a CA bundle's path, for a controller with a private CA.
    verify_tls: bool | Path = True
    request_timeout_seconds: float = Field(30, gt=0)
    poll_seconds: float = Field(2, gt=0)
    # Reads (and cancels) tried again after a connection error or a 5xx, with doubling waits.
    retries: int = Field(4, ge=0, le=10)
    retry_backoff_seconds: float = Field(1, ge=0)

    @field_validator("url")
    @classmethod
    def _https(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path.strip("/"):
            raise ValueError("url must be http(s)://host[:port], without a path (the API path is api_path)")
        if parts.scheme == "http" and not is_loopback(parts.hostname):
            raise ValueError("url must be https: the token would cross the network in clear (http only on loopback)")
        return value.rstrip("/")

    @field_validator("api_path")
    @classmethod
    def _api_path(cls, value: str) -> str:
        return "/" + value.strip("/") + "/"


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this machine's loopback."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Executor(Strict):
    # Where runs go unless their route says otherwise (`executor:` in the routes file).
    kind: Literal["local", "awx"] = "local"
    awx: Awx | None = None
    timeout_seconds: int = Field(900, ge=1)
    keep_artifacts: int = Field(50, ge=0)
    # Default: the ansible-playbook beside this interpreter (the venv's bin), else on PATH.
    ansible_playbook: Path | None = None
    # Default: the collection's inventories/compose_host.
    inventory: Path | None = None
    # Default: the checkout's .collections, else Ansible's configured collections paths.
    collections_path: str | None = None
    # Default: the checkout's ansible.cfg; an installed collection has none (Ansible's own lookup).
    ansible_config: Path | None = None
    # Ansible settings for the runs (no secrets here: they belong in the inventory or vault).
    envvars: dict[str, str] = {}

    @property
    def collections(self) -> str:
        """ANSIBLE_COLLECTIONS_PATH for the runs."""
        if self.collections_path:
            return self.collections_path
        checkout = REPO_ROOT / ".collections"
        if collection_root(str(checkout)) is not None:
            return str(checkout)
        return ":".join(ansible_collections_paths())

    @property
    def playbook_binary(self) -> Path | None:
        """The ansible-playbook the runs use, or None when there is none."""
        if self.ansible_playbook is not None:
            return self.ansible_playbook
        beside = Path(sys.executable).parent / "ansible-playbook"
        if beside.is_file():
            return beside
        found = shutil.which("ansible-playbook")
        return Path(found) if found else None


class Settings(Strict):
    listen_host: str = "127.0.0.1"
    listen_port: int = Field(9787, ge=0, le=65535)
    tls_certfile: Path | None = None
    tls_keyfile: Path | None = None
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    store: str = "sqlite:////var/lib/incident-remediation/adapter/remediate.db"
    state_dir: Path = Path("/var/lib/incident-remediation/adapter")
    incident_records_dir: Path | None = None
    # Defaults: the collection's own files, found on the collections path (None when it is not there).
    routes_file: Path | None = None
    catalog_file: Path | None = None
    escalation_policy_file: Path | None = None
    notify_playbook: str = "incident.remediation.notify"
    # Notify runs fail when no channel delivered the message (the notify role's notify_required).
    notify_required: bool = True
    workers: int = Field(2, ge=0, le=64)
    auth: Auth = Auth()
    safety: Safety = Safety()
    silences: list[Silence] = []
    executor: Executor = Executor()

    @field_validator("store")
    @classmethod
    def _store_url(cls, value: str) -> str:
        if not value.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ValueError("store must be sqlite:///<path> or postgresql://...")
        return value

    @model_validator(mode="after")
    def _collection_defaults(self) -> Settings:
        """Files left unset come from the collection (a checkout or an installed one)."""
        root = collection_root(self.executor.collections)
        if root is None:
            return self
        defaults = {
            "routes_file": root / "routes" / "routes.yml",
            "catalog_file": root / "routes" / "catalog.yml",
            "escalation_policy_file": root / "roles" / "notify" / "defaults" / "main.yml",
        }
        for name, path in defaults.items():
            if getattr(self, name) is None:
                setattr(self, name, path)
        if self.executor.inventory is None:
            self.executor.inventory = root / "inventories" / "compose_host"
        if self.executor.ansible_config is None and (root / "ansible.cfg").is_file():
            self.executor.ansible_config = root / "ansible.cfg"
        return self

    def collection(self) -> Path | None:
        return collection_root(self.executor.collections)


def load_settings(path: Path | None) -> Settings:
    """Settings from a YAML file (or defaults); REMEDIATE_STORE overrides the store URL."""
    data = {}
    if path is not None:
        data = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: settings must be a mapping")
    if os.environ.get("REMEDIATE_STORE"):
        data["store"] = os.environ["REMEDIATE_STORE"]
    return Settings.model_validate(data)
