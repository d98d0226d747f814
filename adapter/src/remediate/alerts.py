"""Alert intake models: Alertmanager's webhook (version 4) and one generic alert.

Structure is checked here (a payload that fails is answered 400). Content that
the collection's input contract refuses (docs/input-contract.md: control
characters, over-long values, odd label names) is checked by ``contract_problem``
so that such an alert is stored and recorded as rejected instead of bounced:
Alertmanager would resend a bounced payload forever.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints


def _utc(moment: datetime | None) -> datetime | None:
    """A moment in UTC (naive means UTC); one that cannot be is a validation error."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError as error:
        raise ValueError("time out of range") from error


Moment = Annotated[datetime | None, AfterValidator(_utc)]
# Generous structural bounds; the request size limit comes first anyway.
ShortText = Annotated[str, StringConstraints(max_length=65536)]
LabelSet = Annotated[dict[ShortText, ShortText], Field(max_length=256)]

ALERTNAME = re.compile(r"[A-Za-z_:][A-Za-z0-9 _:-]{0,127}")
LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
FINGERPRINT = re.compile(r"[0-9a-f]{1,64}")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_LABEL_VALUE = 1024
# Reserved by Prometheus; and Ansible's JSON decoder reads __ansible_* keys as its
# markers, which would undo the unsafe marking of the whole alert (executor.unsafe).
RESERVED_PREFIX = "__"


class Alert(BaseModel):
    """One alert as Alertmanager sends it inside a webhook notification."""

    model_config = ConfigDict(extra="ignore")

    status: Literal["firing", "resolved"] = "firing"
    labels: LabelSet
    annotations: LabelSet = {}
    startsAt: Moment = None
    endsAt: Moment = None
    generatorURL: ShortText = ""
    fingerprint: ShortText = ""

    def key(self) -> str:
        """The alert's fingerprint, or one derived from its labels (a SHA-256 prefix: the same
        labels give the same fingerprint, though not Alertmanager's own)."""
        if self.fingerprint:
            return self.fingerprint
        canonical = "\x00".join(f"{name}\x00{value}" for name, value in sorted(self.labels.items()))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @property
    def alertname(self) -> str:
        return self.labels.get("alertname", "")

    def incident_id(self) -> str:
        """The input contract's default incident id: <fingerprint>-<startsAt digits>."""
        s = self.startsAt or datetime.now(UTC)
        return f"{self.key()}-{s.year:04d}{s.month:02d}{s.day:02d}{s.hour:02d}{s.minute:02d}{s.second:02d}"

    def as_contract(self) -> dict:
        """The alert as the playbooks' input contract takes it."""
        return {
            "status": self.status,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "startsAt": _rfc3339(self.startsAt),
            "endsAt": _rfc3339(self.endsAt),
            "generatorURL": self.generatorURL,
            "fingerprint": self.key(),
        }


class WebhookPayload(BaseModel):
    """Alertmanager's webhook notification, version 4."""

    model_config = ConfigDict(extra="ignore")

    version: Literal["4"]
    receiver: ShortText = ""
    status: Literal["firing", "resolved"]
    alerts: Annotated[list[Alert], Field(max_length=10000)]
    groupLabels: LabelSet = {}
    commonLabels: LabelSet = {}
    commonAnnotations: LabelSet = {}
    externalURL: ShortText = ""
    groupKey: ShortText = ""
    truncatedAlerts: Annotated[int, Field(ge=0)] = 0


def contract_problem(alert: Alert) -> str | None:
    """Why the input contract refuses this alert, or None when it is acceptable."""
    if not ALERTNAME.fullmatch(alert.alertname):
        return "alertname must be letters, digits, spaces and _:- (at most 128 characters)"
    for name, value in alert.labels.items():
        if not LABEL_NAME.fullmatch(name):
            return "label names must be Prometheus label names"
        if len(value) > MAX_LABEL_VALUE:
            return f"label {name} is longer than {MAX_LABEL_VALUE} characters"
        if CONTROL.search(value):
            return f"label {name} holds control characters"
    if any(name.startswith(RESERVED_PREFIX) for name in (*alert.labels, *alert.annotations)):
        return "label and annotation names must not start with __ (reserved)"
    bad_fingerprint = alert.fingerprint and not FINGERPRINT.fullmatch(alert.fingerprint)
    return "fingerprint must be hexadecimal" if bad_fingerprint else None


def _rfc3339(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")
