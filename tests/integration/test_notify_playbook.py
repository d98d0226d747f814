"""The notify playbook run as the remediate adapter runs it: the reason reaches the
receivers in the status line, the timeline says why people were told, a resolved alert
closes the incident, and bad requests are refused before anything is sent."""

import json

import pytest

from tests.harness import ansible
from tests.harness.ansible import unsafe
from tests.harness.http_receiver import HttpReceiver

pytestmark = pytest.mark.integration

PLAYBOOK = "incident.remediation.notify"
FINGERPRINT = "5eed0001"
INCIDENT_ID = f"{FINGERPRINT}-20261122030000"
COOLDOWN_STATUS = "ESCALATED: cooldown - the alert fired again within the cooldown after a remediation run"
STEP = {"after_minutes": 15, "who": "secondary on-call", "how": "page"}
REASONS = (
    "cooldown, capped, expired, notify_only, breaker_open, escalation_step, resolved, interrupted, failed,"
    " no_verdict, timeout, unhealed, cannot_judge, handover_refused"
)


@pytest.fixture
def receiver():
    with HttpReceiver() as server:
        server.answer(202, {"status": "success"}, path="/v2/enqueue")
        yield server


def make_alert(status="firing", annotations=None, **labels):
    return {
        "status": status,
        "labels": {"alertname": "RedisDown", "service": "redis", **labels},
        "annotations": annotations or {"summary": "Redis is unreachable", "impact": "Sessions are lost"},
        "startsAt": "2026-11-22T03:00:00Z",
        "endsAt": "2026-11-22T03:20:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "fingerprint": FINGERPRINT,
    }


def run_notify(tmp_path, receiver, alert=None, **extra_vars):
    """Run the playbook for the alert (as untrusted data) with the webhook configured."""
    document = {
        "alert": unsafe(alert or make_alert()),
        "target": {"platform": "compose", "service": "redis", "project_src": str(tmp_path / "project")},
        "incident_id": INCIDENT_ID,
        "incident_records_dir": str(tmp_path / "incidents"),
        "notify_webhook_url": receiver.url("/hooks/incident"),
        **extra_vars,
    }
    return ansible.run_playbook(PLAYBOOK, document, timeout=180)


def timeline(tmp_path):
    path = tmp_path / "incidents" / INCIDENT_ID / "timeline.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def flat(text):
    """Output with the callback's line wrapping undone."""
    return " ".join(text.split())


def slack_field(body, label):
    (fields,) = [block["fields"] for block in body["blocks"] if "fields" in block]
    (text,) = [field["text"] for field in fields if field["text"].startswith(f"*{label}:*")]
    return text.split("\n", 1)[1]


def test_a_cooldown_refire_reaches_the_webhook_with_the_reason(tmp_path, receiver):
    run = run_notify(tmp_path, receiver, notify_reason="cooldown")
    assert run.returncode == 0, run.stdout[-4000:]
    (hook,) = receiver.requests_to("/hooks/incident")
    assert (hook.json["event"], hook.json["status"]) == ("update", COOLDOWN_STATUS)
    assert f"Status: {COOLDOWN_STATUS}\n" in hook.json["message"]
    assert hook.json["impact"] == "Sessions are lost"
    assert receiver.requests == [hook], "warning: only the configured webhook of the policy's channels"
    escalated, notified = timeline(tmp_path)
    assert (escalated["event"], escalated["outcome"], escalated["notification"]) == ("escalated", "cooldown", "update")
    assert escalated["status"] == COOLDOWN_STATUS
    assert escalated["playbook"] == "notify"
    assert (notified["event"], notified["channel"], notified["ok"]) == ("notified", "webhook", True)


def test_an_escalation_step_names_who_and_how(tmp_path, receiver):
    status = "ESCALATED to secondary on-call (page) - still open 15 min after it started"
    run = run_notify(
        tmp_path,
        receiver,
        severity="critical",
        notify_reason="escalation_step",
        escalation_step=STEP,
        notify_slack_webhook_url=receiver.url("/services/T0/B0/token"),
    )
    assert run.returncode == 0, run.stdout[-4000:]
    (slack,) = receiver.requests_to("/services/")
    assert slack.json["channel"] == "#incidents", "an update goes to the critical updates channel"
    assert slack_field(slack.json, "Status") == status
    (hook,) = receiver.requests_to("/hooks/incident")
    assert (hook.json["status"], hook.json["severity"]) == (status, "critical")
    (escalated,) = [event for event in timeline(tmp_path) if event["event"] == "escalated"]
    assert (escalated["outcome"], escalated["escalation_step"]) == ("escalation_step", STEP)


def test_a_resolved_alert_sends_the_resolved_message(tmp_path, receiver):
    run = run_notify(
        tmp_path,
        receiver,
        make_alert("resolved"),
        severity="critical",
        notify_event="resolved",
        notify_reason="resolved",
        notify_pagerduty_routing_key="R0UTINGKEY",
        notify_pagerduty_url=receiver.url("/v2/enqueue"),
    )
    assert run.returncode == 0, run.stdout[-4000:]
    (hook,) = receiver.requests_to("/hooks/incident")
    assert hook.json["event"] == "resolved"
    assert hook.json["status"] == "RESOLVED: the alert resolved after the incident was escalated"
    assert hook.json["headline"].startswith("✅ INCIDENT RESOLVED: RedisDown on redis")
    assert hook.json["escalation_schedule"] == []
    (page,) = receiver.requests_to("/v2/enqueue")
    assert (page.json["event_action"], page.json["dedup_key"]) == ("resolve", INCIDENT_ID)
    events = timeline(tmp_path)
    assert [(event["event"], event.get("reason"), event.get("channel")) for event in events] == [
        ("notified", "resolved", None),
        ("notified", None, "pagerduty"),
        ("notified", None, "webhook"),
    ]


def test_a_stale_message_for_a_resolved_alert_sends_nothing(tmp_path, receiver):
    run = run_notify(tmp_path, receiver, make_alert("resolved"), notify_reason="breaker_open")
    assert run.returncode == 0, run.stdout[-4000:]
    assert receiver.requests == []
    assert "message for breaker_open would be stale" in flat(run.stdout)
    (event,) = timeline(tmp_path)
    assert (event["event"], event["reason"]) == ("alert_resolved", "breaker_open")


REFUSED = {
    # case: (extra variables, alert status, expected message)
    "unknown-reason": (
        {"notify_reason": "because"},
        "firing",
        f"notify_reason must be one of {REASONS} (got because).",
    ),
    "no-reason": ({}, "firing", f"notify_reason must be one of {REASONS} (got none)."),
    "unknown-event": (
        {"notify_reason": "failed", "notify_event": "shouted"},
        "firing",
        "notify_event must be declared, update or resolved (got shouted).",
    ),
    "resolved-event-other-reason": (
        {"notify_reason": "cooldown", "notify_event": "resolved"},
        "resolved",
        "notify_event resolved goes with notify_reason resolved, and only with it.",
    ),
    "step-missing": (
        {"notify_reason": "escalation_step"},
        "firing",
        "escalation_step is required with notify_reason escalation_step, and only with it.",
    ),
    "step-with-other-reason": (
        {"notify_reason": "capped", "escalation_step": STEP},
        "firing",
        "escalation_step is required with notify_reason escalation_step, and only with it.",
    ),
    "step-unknown-how": (
        {"notify_reason": "escalation_step", "escalation_step": {**STEP, "how": "carrier pigeon"}},
        "firing",
        "escalation_step must be {after_minutes: whole minutes, who: a name, how: page | chat | ticket |",
    ),
    "resolved-while-firing": (
        {"notify_reason": "resolved", "notify_event": "resolved"},
        "firing",
        "notify_event resolved needs the resolved alert (status resolved)",
    ),
}


@pytest.mark.parametrize("case", REFUSED)
def test_a_bad_request_is_refused_before_anything_is_sent(tmp_path, receiver, case):
    extra_vars, status, message = REFUSED[case]
    run = run_notify(tmp_path, receiver, make_alert(status), **extra_vars)
    assert run.returncode != 0
    assert message in flat(run.stdout), run.stdout[-3000:]
    assert "Nothing was sent or recorded." in flat(run.stdout)
    assert receiver.requests == []
    assert not (tmp_path / "incidents").exists()


def test_hostile_alert_text_is_carried_as_text(tmp_path, receiver):
    canary = tmp_path / "CANARY"
    payload = f"{{{{ lookup('pipe','touch {canary}') }}}}"
    alert = make_alert(annotations={"summary": payload, "description": f"$(touch {canary})"}, note=payload)
    run = run_notify(tmp_path, receiver, alert, notify_event="declared", notify_reason="notify_only")
    assert run.returncode == 0, run.stdout[-4000:]
    (hook,) = receiver.requests_to("/hooks/incident")
    assert hook.json["alert"]["annotations"]["summary"] == payload
    assert hook.json["alert"]["labels"]["note"] == payload
    assert f"- Issue: {payload}\n" in hook.json["message"]
    assert (
        hook.json["status"] == "ESCALATED: notify_only - the route only notifies; nothing is remediated automatically"
    )
    detected, escalated = timeline(tmp_path)[:2]
    assert detected["event"] == "detected" and detected["annotations"]["summary"] == payload
    assert (escalated["event"], escalated["outcome"]) == ("escalated", "notify_only")
    assert not canary.exists(), "alert text was templated"
