#!/usr/bin/env bash
# The live lab: a throwaway compose project (Redis and an app that depends on
# it), a real Alertmanager and the remediate adapter. Redis is broken, the alert
# goes to Alertmanager as Prometheus would send it, Alertmanager notifies the
# adapter, the adapter runs incident.remediation.redis_down, and the demo shows
# the decision, the run's timeline, the incident record and the healed app.
#
#   scripts/demo.sh [stopped|hung]    (default: stopped)
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

fault="${1:-stopped}"
case "$fault" in stopped | hung) ;; *) die "usage: $0 [stopped|hung]" ;; esac

[ "$(id -u)" = 0 ] && "$REPO_ROOT/scripts/setup.sh" venv docker images
link_collection
activate_venv

work="$(mktemp -d)"
project="ir-demo-$$"
alertmanager="ir-demo-alertmanager-$$"
adapter_pid=""
cleanup() {
  # Every step runs whatever the one before did (set -e would stop at the first).
  if [ -n "$adapter_pid" ]; then
    kill "$adapter_pid" 2>/dev/null || true
    wait "$adapter_pid" 2>/dev/null || true
  fi
  docker rm -f "$alertmanager" >/dev/null 2>&1 || true
  docker compose --project-name "$project" --project-directory "$work" down --volumes --timeout 1 >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

read -r redis_port app_port adapter_port alertmanager_port < <(python - <<'PY'
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
PY
)
cp "$REPO_ROOT/lab/compose/cache-app/compose.yaml" "$work/"
printf 'REDIS_PORT=%s\nAPP_PORT=%s\n' "$redis_port" "$app_port" >"$work/.env"

app_health() { python -c "
import urllib.request, urllib.error, sys
try:
    r = urllib.request.urlopen('http://127.0.0.1:$app_port/health', timeout=3); print(r.status, r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode())
except OSError as e:
    print('no answer:', e)"; }

log "starting compose project $project (redis on 127.0.0.1:$redis_port, app on 127.0.0.1:$app_port)"
docker compose --project-name "$project" --project-directory "$work" up -d --wait >/dev/null 2>&1
log "app health before: $(app_health)"

# The adapter: a token, a route for this project, a store in the work folder.
python -c 'import secrets; print(secrets.token_hex(32))' >"$work/token"
chmod 0644 "$work/token" # read by Alertmanager's user inside its container
cat >"$work/routes.yml" <<YAML
version: 1
routes:
  - alertname: RedisDown
    playbook: incident.remediation.redis_down
    severity: warning
    mode: auto
    target:
      platform: {value: compose}
      host: {value: localhost}
      service: {label: service, pattern: '[a-z0-9][a-z0-9_.-]{0,62}', default: redis}
      project_src: {value: "$work"}
      project_name: {value: "$project"}
      endpoint: {host: {value: 127.0.0.1}, port: {value: $redis_port}}
YAML
cat >"$work/settings.yml" <<YAML
listen_port: $adapter_port
store: sqlite:///$work/remediate.db
state_dir: $work/state
incident_records_dir: $work/incidents
routes_file: $work/routes.yml
auth: {bearer_token_file: $work/token}
workers: 1
YAML
log "starting the adapter: remediate serve on 127.0.0.1:$adapter_port"
remediate --config "$work/settings.yml" serve 2>"$work/adapter.log" &
adapter_pid=$!

# Alertmanager (Debian's package) on the host network, notifying the adapter.
cat >"$work/alertmanager.yml" <<YAML
route:
  receiver: remediate
  group_by: [alertname, service]
  group_wait: 1s
  group_interval: 5s
  repeat_interval: 1h
receivers:
  - name: remediate
    webhook_configs:
      - url: http://127.0.0.1:$adapter_port/api/v1/alertmanager
        send_resolved: true
        http_config:
          authorization: {type: Bearer, credentials_file: /etc/prometheus/remediate.token}
YAML
log "follow it live: http://127.0.0.1:$adapter_port/incidents (sign in with the token in $work/token), or remediate watch --url http://127.0.0.1:$adapter_port --token-file $work/token"
log "starting Alertmanager on 127.0.0.1:$alertmanager_port"
docker run -d --name "$alertmanager" --network host -e "ALERTMANAGER_PORT=$alertmanager_port" \
  -v "$work/alertmanager.yml:/etc/prometheus/alertmanager.yml:ro" -v "$work/token:/etc/prometheus/remediate.token:ro" \
  incident-remediation/alertmanager --config.file=/etc/prometheus/alertmanager.yml \
  --storage.path=/tmp/alertmanager --cluster.listen-address= "--web.listen-address=127.0.0.1:$alertmanager_port" >/dev/null

python - "$adapter_port" "$alertmanager_port" <<'PY'
import sys, time, urllib.request
for port, path in ((sys.argv[1], "/healthz"), (sys.argv[2], "/-/ready")):
    for _ in range(60):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1)
            break
        except OSError:
            time.sleep(0.5)
    else:
        sys.exit(f"127.0.0.1:{port}{path} did not answer")
PY

redis_id="$(docker compose --project-name "$project" --project-directory "$work" ps -q redis)"
if [ "$fault" = stopped ]; then
  log "breaking Redis: docker stop"
  docker stop "$redis_id" >/dev/null
else
  log "breaking Redis: SIGSTOP (the container runs, PING hangs)"
  docker kill --signal STOP "$redis_id" >/dev/null
fi
log "app health while Redis is broken: $(app_health)"

log "Prometheus' part: POST the RedisDown alert to Alertmanager"
started=$SECONDS
python - "$alertmanager_port" <<'PY'
import json, sys, urllib.request
alert = [{"labels": {"alertname": "RedisDown", "severity": "warning", "service": "redis"},
          "annotations": {"summary": "Redis unreachable for more than 2 minutes"},
          "generatorURL": "http://127.0.0.1:9090/graph"}]
request = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/api/v2/alerts", data=json.dumps(alert).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
urllib.request.urlopen(request, timeout=5).read()
PY

log "waiting for Alertmanager -> adapter -> redis_down"
python - "$work/settings.yml" <<'PY'
import json, subprocess, sys, time
deadline = time.monotonic() + 240
while time.monotonic() < deadline:
    runs = [json.loads(line) for line in subprocess.run(
        ["remediate", "--config", sys.argv[1], "runs"], capture_output=True, text=True, check=True).stdout.splitlines()]
    fixes = [run for run in runs if run["kind"] == "remediate"]
    if fixes and fixes[0]["state"] not in ("queued", "running"):
        break
    time.sleep(1)
else:
    sys.exit("no finished run within 240 s")
PY
log "alert to healed in $((SECONDS - started)) s; the adapter's record of the incident:"
incident="$(remediate --config "$work/settings.yml" runs | python -c 'import json,sys; print(json.loads(sys.stdin.readline())["incident_id"])')"
remediate --config "$work/settings.yml" incidents "$incident" | grep -v "\] task [a-z]*: \|\] play_started: " | sed 's/^/  /'
remediate --config "$work/settings.yml" incidents "$incident" | grep -c "\] task [a-z]*: " | sed 's/^/  tasks run: /'

log "the playbook's incident record:"
python - "$work/incidents/$incident" <<'PY'
import json, pathlib, sys
folder = pathlib.Path(sys.argv[1])
for line in (folder / "timeline.jsonl").read_text().splitlines():
    event = json.loads(line)
    details = {k: v for k, v in event.items() if k not in ("at", "incident", "playbook", "host", "dry_run", "event", "target", "thresholds")}
    print(f"  {event['at']}  {event['event']:<10} {json.dumps(details)[:150]}")
print("  evidence:", ", ".join(sorted(p.name for p in (folder / "evidence").iterdir())))
PY
log "Redis PING: $(docker exec "$redis_id" redis-cli ping 2>&1 || docker compose --project-name "$project" --project-directory "$work" exec -T redis redis-cli ping)"
for _ in $(seq 1 20); do
  case "$(app_health)" in 200*) break ;; esac
  sleep 1
done
log "app health after: $(app_health)"
log "cleaning up"
