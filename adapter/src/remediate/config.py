"""The adapter's settings: one YAML file (docs/adapter.md), every key optional."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

REPO_ROOT = Path(__file__).resolve().parents[3]


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


class Executor(Strict):
    kind: Literal["local"] = "local"
    timeout_seconds: int = Field(900, ge=1)
    keep_artifacts: int = Field(50, ge=0)
    inventory: Path | None = None
    collections_path: str | None = None
    # Ansible settings for the runs (no secrets here: they belong in the inventory or vault).
    envvars: dict[str, str] = {}

    @property
    def collections(self) -> str:
        """ANSIBLE_COLLECTIONS_PATH for the runs: the setting, else the checkout's .collections."""
        return self.collections_path or str(REPO_ROOT / ".collections")


class Settings(Strict):
    listen_host: str = "127.0.0.1"
    listen_port: int = Field(9787, ge=0, le=65535)
    tls_certfile: Path | None = None
    tls_keyfile: Path | None = None
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    store: str = "sqlite:////var/lib/incident-remediation/adapter/remediate.db"
    state_dir: Path = Path("/var/lib/incident-remediation/adapter")
    incident_records_dir: Path | None = None
    routes_file: Path = REPO_ROOT / "routes" / "routes.yml"
    catalog_file: Path = REPO_ROOT / "routes" / "catalog.yml"
    escalation_policy_file: Path = REPO_ROOT / "roles" / "notify" / "defaults" / "main.yml"
    notify_playbook: str = "incident.remediation.notify"
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
