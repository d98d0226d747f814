#!/usr/bin/env bash
# Demo of the first slice: bring up a throwaway compose project (Redis and an
# app that depends on it), break Redis, run incident.remediation.redis_down the
# way an ops host would, show what it found and did, and clean up.
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
cleanup() {
  docker compose --project-name "$project" --project-directory "$work" down --volumes --timeout 1 >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

read -r redis_port app_port < <(python - <<'PY'
import socket
socks = [socket.socket() for _ in range(2)]
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

redis_id="$(docker compose --project-name "$project" --project-directory "$work" ps -q redis)"
if [ "$fault" = stopped ]; then
  log "breaking Redis: docker stop"
  docker stop "$redis_id" >/dev/null
else
  log "breaking Redis: SIGSTOP (the container runs, PING hangs)"
  docker kill --signal STOP "$redis_id" >/dev/null
fi
log "app health while Redis is broken: $(app_health)"

cat >"$work/alert.json" <<JSON
{
  "alert": {
    "status": "firing",
    "labels": {"alertname": "RedisDown", "severity": "warning", "service": "redis"},
    "annotations": {"summary": "Redis unreachable for more than 2 minutes"},
    "startsAt": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
    "endsAt": "0001-01-01T00:00:00Z",
    "fingerprint": "$(printf '%s' "$project" | sha256sum | cut -c1-16)",
    "generatorURL": "http://127.0.0.1:9090/graph"
  },
  "target": {
    "platform": "compose", "host": "localhost", "service": "redis",
    "project_src": "$work", "project_name": "$project",
    "endpoint": {"host": "127.0.0.1", "port": $redis_port}
  },
  "incident_records_dir": "$work/incidents"
}
JSON

log "running: ansible-playbook -i inventories/compose_host incident.remediation.redis_down -e @alert.json"
started=$SECONDS
(cd "$REPO_ROOT" && ansible-playbook -i inventories/compose_host incident.remediation.redis_down -e "@$work/alert.json") |
  sed -n '/TASK \[Report what was found and done\]/,/^$/p'
log "playbook finished in $((SECONDS - started)) s"

incident="$(ls "$work/incidents")"
log "incident record $incident:"
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
