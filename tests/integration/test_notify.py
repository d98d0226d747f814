"""The notify role against a real HTTP receiver on loopback: what Slack, PagerDuty, the
status page and a generic webhook receive, what the incident timeline records, and
that secrets and alert text stay where they belong."""

import json
import urllib.error
import urllib.request
import uuid

import pytest
import yaml

from tests.harness import ansible
from tests.harness.ansible import unsafe
from tests.harness.http_receiver import HttpReceiver

pytestmark = pytest.mark.integration

ROLE = ansible.REPO_ROOT / "roles" / "notify"
EXAMPLE_POLICY = ansible.REPO_ROOT / "inventories" / "compose_host" / "group_vars" / "all" / "escalation.yml"
INCIDENT_ID = "f00dfeed-20261122030000"
STARTS_AT = "2026-11-22T03:00:00Z"
ACTIONS = [
    {"tier": "start", "result": "not_verified", "why": "the container is not running", "error": "PING timed out"},
    {"tier": "restart", "result": "verified", "why": "Redis does not answer PING", "ping_ms": 1.2},
]


def make_incident(tmp_path, severity="critical", *, playbook="redis_down", alertname="RedisDown", annotations=None):
    """The `incident` fact as incident_context sets it."""
    return {
        "id": INCIDENT_ID,
        "dir": str(tmp_path / "incidents" / INCIDENT_ID),
        "playbook": playbook,
        "alertname": alertname,
        "alert": {
            "status": "firing",
            "labels": {"alertname": alertname, "severity": severity, "service": "redis"},
            "annotations": annotations or {"summary": "Redis is unreachable"},
            "startsAt": STARTS_AT,
            "fingerprint": "f00dfeed",
        },
        "resolved": False,
        "target": {"platform": "compose", "service": "redis", "host": "localhost", "namespace": "default"},
        "dry_run": False,
        "thresholds": {},
        "started_at": "2026-11-22T03:01:00.000000Z",
    }


class Secrets:
    """Values that must never leave the requests: a Slack webhook path token, a PagerDuty
    routing key, a status page token, a webhook header."""

    def __init__(self):
        tag = uuid.uuid4().hex[:12]
        self.slack_token = f"slackT0KEN{tag}"
        self.routing_key = f"R0UTINGKEY{tag}"
        self.status_token = f"STATUST0KEN{tag}"
        self.webhook_auth = f"HOOKAUTH{tag}"

    def all(self):
        return [self.slack_token, self.routing_key, self.status_token, self.webhook_auth]


@pytest.fixture
def secrets():
    return Secrets()


@pytest.fixture
def receiver():
    with HttpReceiver() as server:
        server.answer(202, {"status": "success", "message": "Event processed"}, path="/v2/enqueue")
        server.answer(200, b"ok", path="/services/")
        yield server


def channel_settings(receiver, secrets, *, webhook_url=None):
    return {
        "notify_slack_webhook_url": receiver.url(f"/services/T0000/B0000/{secrets.slack_token}"),
        "notify_pagerduty_routing_key": secrets.routing_key,
        "notify_pagerduty_url": receiver.url("/v2/enqueue"),
        "notify_status_page_url": receiver.url("/api/incidents"),
        "notify_status_page_token": secrets.status_token,
        "notify_webhook_url": webhook_url or receiver.url("/hooks/incident"),
        "notify_webhook_headers": {"Authorization": f"Bearer {secrets.webhook_auth}"},
    }


def run_notify(tmp_path, includes, extra_vars=None, *, vars_files=()):
    """Run a play that includes the notify role once per entry of `includes` (each a dict of
    role variables) and saves notify_escalation_schedule and notify_result after each as
    outcome-<n>.json. Returns the run and the list of outcomes."""
    tasks = []
    for index, role_vars in enumerate(includes):
        tasks.append({"name": f"Notify {index}", "vars": role_vars,
                      "ansible.builtin.include_role": {"name": "incident.remediation.notify"}})
        tasks.append({"name": f"Save outcome {index}", "ansible.builtin.copy": {
            "content": "{{ {'schedule': notify_escalation_schedule, 'result': notify_result} | to_json }}",
            "dest": str(tmp_path / f"outcome-{index}.json"), "mode": "0600"}})
    play = [{"name": "Notify", "hosts": "localhost", "gather_facts": False,
             "vars_files": [str(path) for path in vars_files], "tasks": tasks}]
    playbook = tmp_path / "notify.yml"
    playbook.write_text(json.dumps(play))
    run = ansible.run_playbook(playbook, extra_vars or {}, timeout=180)
    outcomes = [json.loads(path.read_text()) for index in range(len(includes))
                if (path := tmp_path / f"outcome-{index}.json").exists()]
    return run, outcomes


def flat(text):
    """Output with the callback's line wrapping undone."""
    return " ".join(text.split())


def timeline(tmp_path, event=None):
    path = tmp_path / "incidents" / INCIDENT_ID / "timeline.jsonl"
    if not path.exists():
        return []
    events = [json.loads(line) for line in path.read_text().splitlines()]
    return [entry for entry in events if event is None or entry["event"] == event]


def incident_files_text(tmp_path):
    folder = tmp_path / "incidents"
    return "".join(path.read_text() for path in folder.rglob("*") if path.is_file()) if folder.exists() else ""


def slack_field(body, label):
    (fields,) = [block["fields"] for block in body["blocks"] if "fields" in block]
    (text,) = [field["text"] for field in fields if field["text"].startswith(f"*{label}:*")]
    return text.split("\n", 1)[1]


@pytest.fixture(scope="module")
def declared_then_resolved(tmp_path_factory):
    """One critical incident declared (one action so far) then resolved (two actions) with
    every channel configured, run with -v: what was received, recorded and printed."""
    tmp_path = tmp_path_factory.mktemp("declared-then-resolved")
    secrets = Secrets()
    with HttpReceiver() as receiver, pytest.MonkeyPatch.context() as patch:
        receiver.answer(202, {"status": "success", "message": "Event processed"}, path="/v2/enqueue")
        receiver.answer(200, b"ok", path="/services/")
        patch.setenv("ANSIBLE_VERBOSITY", "1")
        run, outcomes = run_notify(
            tmp_path,
            [{"notify_event": "declared", "notify_actions": ACTIONS[:1], "notify_impact": "Sessions are lost"},
             {"notify_event": "resolved", "notify_actions": ACTIONS, "notify_impact": "Sessions are lost"}],
            {"incident": make_incident(tmp_path, "critical"), **channel_settings(receiver, secrets)},
        )
    assert run.returncode == 0, run.stdout[-4000:]
    return {"run": run, "outcomes": outcomes, "receiver": receiver, "secrets": secrets, "tmp_path": tmp_path}


def test_every_channel_gets_a_json_post_per_event(declared_then_resolved):
    receiver = declared_then_resolved["receiver"]
    assert [request.path.split("/")[1] for request in receiver.requests] == [
        "v2", "services", "api", "hooks", "v2", "services", "api", "hooks"]
    assert {request.method for request in receiver.requests} == {"POST"}
    assert all(request.headers["Content-Type"] == "application/json" for request in receiver.requests)
    assert declared_then_resolved["outcomes"][0]["result"]["sent"] == ["pagerduty", "slack", "status_page", "webhook"]


def test_slack_gets_block_kit_in_the_channel_of_the_severity(declared_then_resolved):
    declared, resolved = (request.json for request in declared_then_resolved["receiver"].requests_to("/services/"))
    assert declared["channel"] == "#alerts-critical"
    assert resolved["channel"] == "#incidents"
    header = declared["blocks"][0]
    assert header["type"] == "header" and header["text"]["type"] == "plain_text"
    assert header["text"]["text"] == "🚨 INCIDENT DECLARED: RedisDown on redis"
    assert resolved["blocks"][0]["text"]["text"] == "✅ INCIDENT RESOLVED: RedisDown on redis"
    assert slack_field(declared, "Service") == "redis"
    assert slack_field(declared, "Severity") == "CRITICAL (P0/P1)"
    assert slack_field(declared, "Start time") == STARTS_AT
    assert slack_field(declared, "Impact") == "Sessions are lost"
    assert slack_field(declared, "Duration").endswith("s")
    actions_text = next(block["text"]["text"] for block in resolved["blocks"]
                        if block.get("text", {}).get("text", "").startswith("*Actions taken:*"))
    assert actions_text.splitlines()[1:] == [
        "• start: not_verified - the container is not running (PING timed out)",
        "• restart: verified - Redis does not answer PING",
    ]


def test_the_messages_follow_the_runbook_templates(declared_then_resolved):
    slack = declared_then_resolved["receiver"].requests_to("/services/")
    declared, resolved = (request.json["text"] for request in slack)
    for line in ("Service: redis", "Severity: CRITICAL (P0/P1)", f"Start Time: {STARTS_AT}", "Duration: ",
                 "- Issue: Redis is unreachable", "- Impact: Sessions are lost", "- Current Status: INVESTIGATING",
                 "Actions Taken:\n- start: not_verified - the container is not running (PING timed out)\n",
                 "If still open at 2026-11-22T03:15:00Z (+15 min): secondary on-call (page)"):
        assert line in declared
    for line in ("Resolution Time: ", "Duration: ", "Impact: Sessions are lost",
                 "- restart: verified - Redis does not answer PING", "Post-Mortem:\n- Required (critical incident)"):
        assert line in resolved


def test_pagerduty_triggers_then_resolves_one_alert(declared_then_resolved):
    trigger, resolve = (request.json for request in declared_then_resolved["receiver"].requests_to("/v2/enqueue"))
    assert [trigger["event_action"], resolve["event_action"]] == ["trigger", "resolve"]
    assert trigger["dedup_key"] == resolve["dedup_key"] == INCIDENT_ID
    assert trigger["routing_key"] == resolve["routing_key"] == declared_then_resolved["secrets"].routing_key
    payload = trigger["payload"]
    assert payload["severity"] == "critical"
    assert payload["summary"] == "[CRITICAL] RedisDown on redis (incident declared): Redis is unreachable"
    assert (payload["source"], payload["component"], payload["class"]) == ("localhost", "redis", "RedisDown")
    assert payload["custom_details"]["incident"] == INCIDENT_ID
    assert payload["custom_details"]["impact"] == "Sessions are lost"
    assert "payload" not in resolve


def test_the_status_page_gets_component_status_and_message(declared_then_resolved):
    opened, closed = declared_then_resolved["receiver"].requests_to("/api/incidents")
    assert opened.headers["Authorization"] == f"Bearer {declared_then_resolved['secrets'].status_token}"
    assert {key: opened.json[key] for key in ("component", "status", "impact", "incident_id")} == {
        "component": "redis", "status": "investigating", "impact": "major", "incident_id": INCIDENT_ID}
    assert "investigating an issue affecting redis" in opened.json["message"]
    assert "Redis is unreachable" not in opened.json["message"], "no alert text on the public page"
    assert closed.json["status"] == "resolved"


def test_the_webhook_gets_the_incident_event(declared_then_resolved):
    first, last = (request.json for request in declared_then_resolved["receiver"].requests_to("/hooks/incident"))
    assert (first["event"], last["event"]) == ("declared", "resolved")
    assert first["incident"]["id"] == INCIDENT_ID and first["severity"] == "critical"
    assert (first["start_time"], first["impact"]) == (STARTS_AT, "Sessions are lost")
    assert last["actions"] == ACTIONS
    assert [step["after_minutes"] for step in first["escalation_schedule"]] == [0, 15, 30]
    assert last["escalation_schedule"] == []


def test_every_attempt_and_the_escalation_schedule_are_in_the_timeline(declared_then_resolved):
    tmp_path = declared_then_resolved["tmp_path"]
    notified = timeline(tmp_path, "notified")
    assert [(entry["notification"], entry["channel"], entry["ok"], entry["status"]) for entry in notified] == [
        (event, channel, True, status)
        for event in ("declared", "resolved")
        for channel, status in (("pagerduty", 202), ("slack", 200), ("status_page", 200), ("webhook", 200))
    ]
    (scheduled,) = timeline(tmp_path, "escalation_scheduled")
    assert [(step["after_minutes"], step["who"], step["due_at"]) for step in scheduled["steps"]] == [
        (0, "primary on-call", "2026-11-22T03:00:00Z"),
        (15, "secondary on-call", "2026-11-22T03:15:00Z"),
        (30, "engineering lead", "2026-11-22T03:30:00Z"),
    ]


def test_secrets_stay_out_of_verbose_output_and_records(declared_then_resolved):
    run = declared_then_resolved["run"]
    records = incident_files_text(declared_then_resolved["tmp_path"])
    assert "INCIDENT DECLARED" in records, "the message is kept as evidence"
    assert "Send the notifications" in run.stdout and "censored" in flat(run.stdout), "ran with -v"
    for secret in declared_then_resolved["secrets"].all():
        assert secret not in run.stdout + run.stderr
        assert secret not in records


SEVERITY_CASES = {
    # severity label: (Slack channel, severity field, PagerDuty severity or None when not paged)
    "warning": ("#alerts-warnings", "WARNING (P2)", None),
    "info": ("#alerts-info", "INFO (P3)", None),
    "P1": ("#alerts-critical", "CRITICAL (P1)", "error"),
}


@pytest.mark.parametrize("severity", SEVERITY_CASES)
def test_the_severity_picks_the_channels(tmp_path, receiver, secrets, severity):
    slack_channel, severity_label, pagerduty_severity = SEVERITY_CASES[severity]
    settings = channel_settings(receiver, secrets)
    # Slack's control sequences in alert text are escaped in mrkdwn.
    incident = make_incident(tmp_path, severity, annotations={"summary": "<!channel> see <http://evil|docs> & more"})
    run, outcomes = run_notify(
        tmp_path, [{"notify_event": "declared"}],
        {"incident": incident,
         **{key: settings[key] for key in ("notify_slack_webhook_url", "notify_pagerduty_routing_key",
                                            "notify_pagerduty_url")}},
    )
    assert run.returncode == 0, run.stdout[-4000:]
    (slack,) = receiver.requests_to("/services/")
    assert slack.json["channel"] == slack_channel
    assert slack_field(slack.json, "Severity") == severity_label
    assert slack.json["blocks"][1]["text"]["text"] == "&lt;!channel&gt; see &lt;http://evil|docs&gt; &amp; more"
    assert "<!channel>" not in slack.json["text"]
    pages = receiver.requests_to("/v2/enqueue")
    if pagerduty_severity is None:
        assert pages == [], "the policy pages only for critical incidents"
    else:
        (page,) = pages
        assert page.json["payload"]["severity"] == pagerduty_severity
    assert outcomes[0]["result"]["sent"] == (["pagerduty", "slack"] if pagerduty_severity else ["slack"])


def test_an_update_uses_the_channels_own_webhook_and_can_acknowledge(tmp_path, receiver, secrets):
    run, _outcomes = run_notify(
        tmp_path,
        [{"notify_event": "update", "notify_actions": ACTIONS, "notify_pagerduty_event_action": "acknowledge",
          "notify_channels": ["slack", "pagerduty"]}],
        {"incident": make_incident(tmp_path, "critical"),
         "notify_slack_webhook_url": receiver.url(f"/services/default/{secrets.slack_token}"),
         "notify_slack_webhook_urls": {"#incidents": receiver.url(f"/services/incidents/{secrets.slack_token}")},
         "notify_pagerduty_routing_key": secrets.routing_key, "notify_pagerduty_url": receiver.url("/v2/enqueue")},
    )
    assert run.returncode == 0, run.stdout[-4000:]
    (slack,) = receiver.requests_to("/services/")
    assert slack.path.startswith("/services/incidents/")
    assert slack.json["channel"] == "#incidents"
    assert slack.json["blocks"][0]["text"]["text"] == "📊 INCIDENT UPDATE: RedisDown on redis"
    assert slack_field(slack.json, "Status") == "MONITORING", "a verified tier means monitoring"
    assert "Progress (actions taken):\n- start: not_verified" in slack.json["text"]
    (page,) = receiver.requests_to("/v2/enqueue")
    assert (page.json["event_action"], page.json["dedup_key"]) == ("acknowledge", INCIDENT_ID)
    assert receiver.requests_to("/api/") == [] and receiver.requests_to("/hooks/") == []


def test_nothing_configured_sends_nothing_and_says_so(tmp_path, receiver):
    run, outcomes = run_notify(tmp_path, [{"notify_event": "declared"}], {"incident": make_incident(tmp_path)})
    assert run.returncode == 0, run.stdout[-4000:]
    assert receiver.requests == []
    assert f"Nothing sent for incident {INCIDENT_ID}: no notification channel is configured" in flat(run.stdout)
    assert timeline(tmp_path, "notified") == []
    assert outcomes[0]["result"]["sent"] == []
    assert outcomes[0]["result"]["unconfigured"] == ["pagerduty", "slack", "status_page", "webhook"]


def test_a_dry_run_records_what_it_would_send_and_sends_nothing(tmp_path, receiver, secrets):
    incident = dict(make_incident(tmp_path), dry_run=True)
    run, _outcomes = run_notify(tmp_path, [{"notify_event": "declared"}],
                                {"incident": incident, **channel_settings(receiver, secrets)})
    assert run.returncode == 0, run.stdout[-4000:]
    assert receiver.requests == []
    notified = timeline(tmp_path, "notified")
    assert [(entry["channel"], entry["result"], entry["dry_run"]) for entry in notified] == [
        (channel, "would_send", True) for channel in ("pagerduty", "slack", "status_page", "webhook")]


@pytest.mark.parametrize("required", [False, True], ids=["optional", "required"])
def test_a_failed_notification_is_recorded_and_fails_the_play_only_when_required(
        tmp_path, receiver, secrets, monkeypatch, required):
    monkeypatch.setenv("ANSIBLE_VERBOSITY", "1")
    receiver.answer(500, {"error": "boom"}, path="/services/")
    with HttpReceiver() as closed:
        refused_url = closed.url(f"/hooks/{secrets.webhook_auth}")
    run, _outcomes = run_notify(
        tmp_path, [{"notify_event": "declared", "notify_required": required}],
        {"incident": make_incident(tmp_path, "critical"),
         **channel_settings(receiver, secrets, webhook_url=refused_url)},
    )
    output = run.stdout + run.stderr
    notified = {entry["channel"]: entry for entry in timeline(tmp_path, "notified")}
    slack = notified["slack"]
    assert (slack["ok"], slack["status"], slack["error"]) == (False, 500, "HTTP 500")
    assert (notified["webhook"]["ok"], notified["webhook"]["status"]) == (False, -1)
    assert notified["pagerduty"]["ok"] and notified["status_page"]["ok"]
    assert "WARNING: notification not delivered for incident" in flat(run.stdout)
    assert "slack HTTP 500" in flat(run.stdout)
    if required:
        assert run.returncode != 0
        assert "Required notification not delivered for incident" in flat(run.stdout)
        assert "failed: slack, webhook" in flat(run.stdout)
    else:
        assert run.returncode == 0, run.stdout[-4000:]
        assert "The remediation goes on" in flat(run.stdout)
    records = incident_files_text(tmp_path)
    for secret in secrets.all():
        assert secret not in output
        assert secret not in records
    assert "/hooks/" not in output and "/services/" not in output, "no URL in the output"


def test_alert_text_is_sent_verbatim_and_never_templated(tmp_path, receiver, secrets):
    canary = tmp_path / "CANARY"
    payload = f"{{{{ lookup('pipe', 'touch {canary}') }}}}"
    annotations = {"summary": payload, "description": f"see $(touch {canary})"}
    incident = make_incident(tmp_path, annotations=annotations)
    incident["alert"]["annotations"] = unsafe(incident["alert"]["annotations"])
    run, outcomes = run_notify(tmp_path, [{"notify_event": "declared"}],
                               {"incident": incident, **channel_settings(receiver, secrets)})
    assert run.returncode == 0, run.stdout[-4000:]
    (slack,) = receiver.requests_to("/services/")
    assert f"- Issue: {payload}\n" in slack.json["text"]
    assert slack.json["blocks"][1]["text"]["text"] == payload
    (page,) = receiver.requests_to("/v2/enqueue")
    assert page.json["payload"]["summary"].endswith(payload)
    (hook,) = receiver.requests_to("/hooks/incident")
    assert hook.json["alert"]["annotations"]["summary"] == payload
    assert payload in outcomes[0]["result"]["text"]
    assert not canary.exists(), "alert text was templated"


BAD_SETTINGS = {
    # case: (setting, value ({secret} is replaced by a secret), expected message)
    "unknown-event": ("notify_event", "exploded",
                      "value of notify_event must be one of: declared, update, resolved, got: exploded"),
    "url-without-scheme": ("notify_slack_webhook_url", "hooks.slack.invalid/services/T0/B0/{secret}",
                           "malformed URL in notify_slack_webhook_url"),
    "url-with-credentials": ("notify_webhook_url", "http://user:{secret}@127.0.0.1/hook",
                             "malformed URL in notify_webhook_url"),
    "unknown-channel": ("notify_channels", ["slack", "carrier-pigeon"], "notify_channels must be one or more of"),
}


@pytest.mark.parametrize("case", BAD_SETTINGS)
def test_bad_settings_are_rejected_at_role_start(tmp_path, receiver, secrets, case):
    setting, value, message = BAD_SETTINGS[case]
    value = json.loads(json.dumps(value).replace("{secret}", secrets.slack_token))
    run, _outcomes = run_notify(tmp_path, [{}], {"incident": make_incident(tmp_path),
                                                 "notify_pagerduty_routing_key": secrets.routing_key,
                                                 "notify_pagerduty_url": receiver.url("/v2/enqueue"),
                                                 setting: value})
    assert run.returncode != 0
    assert message in flat(run.stdout), run.stdout[-3000:]
    assert receiver.requests == [], "nothing is sent on bad settings"
    assert secrets.slack_token not in run.stdout + run.stderr
    assert secrets.routing_key not in run.stdout + run.stderr
    assert timeline(tmp_path) == []


def test_the_example_policy_schedules_escalation_by_severity_and_database(tmp_path):
    def incident(severity, playbook, alertname, name):
        document = make_incident(tmp_path / name, severity, playbook=playbook, alertname=alertname)
        return {"incident": document, "notify_event": "declared"}

    run, outcomes = run_notify(
        tmp_path,
        [incident("critical", "redis_down", "RedisDown", "redis"),
         incident("critical", "database_down", "DatabaseDown", "db"),
         incident("warning", "db_pool_exhaustion", "DatabaseConnectionPoolExhaustion", "pool"),
         incident("info", "cache_hit_rate", "LowCacheHitRate", "cache"),
         {**incident("critical", "database_down", "DatabaseDown", "db-resolved"), "notify_event": "resolved"}],
        vars_files=[EXAMPLE_POLICY],
    )
    assert run.returncode == 0, run.stdout[-4000:]
    schedules = [[(step["after_minutes"], step["who"], step["how"]) for step in outcome["schedule"]]
                 for outcome in outcomes]
    assert schedules[0] == [(0, "primary on-call", "page"), (15, "secondary on-call", "page"),
                            (30, "engineering lead", "page")]
    assert schedules[1] == [(0, "primary on-call", "page"), (5, "DBA on-call", "page"),
                            (15, "engineering lead", "page")]
    assert schedules[2] == [(0, "on-call engineer", "chat"), (15, "DBA on-call", "chat"), (30, "DBA on-call", "page")]
    assert schedules[3] == [(0, "on-call engineer", "ticket"), (240, "team lead", "ticket")]
    assert schedules[4] == [], "nothing to escalate once resolved"
    assert outcomes[1]["schedule"][1]["due_at"] == "2026-11-22T03:05:00Z"
    assert "Nothing sent for incident" in flat(run.stdout), "the example configures no channel without a vault"


def test_the_argument_spec_agrees_with_the_defaults():
    spec = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    assert set(spec) == set(defaults)
    for name, option in spec.items():
        if "default" in option:
            assert option["default"] == defaults[name], name
    example = yaml.safe_load(EXAMPLE_POLICY.read_text())
    assert set(example) <= set(spec), "the example sets only the role's variables"


def test_the_receiver_records_method_path_headers_and_json():
    with HttpReceiver() as server:
        server.answer(418, {"teapot": True}, path="/brew")
        request = urllib.request.Request(server.url("/brew/now"), data=b'{"a": 1}', method="PUT",
                                         headers={"Content-Type": "application/json", "X-Test": "yes"})
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(request, timeout=5)
        assert answer.value.code == 418
        assert json.loads(answer.value.read()) == {"teapot": True}
        (received,) = server.wait_for(1)
        assert (received.method, received.path, received.json) == ("PUT", "/brew/now", {"a": 1})
        assert received.headers["X-Test"] == "yes"
        with urllib.request.urlopen(server.url("/other"), timeout=5) as other:
            assert other.status == 200
        assert [item.path for item in server.requests_to("/other")] == ["/other"]

