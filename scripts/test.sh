#!/usr/bin/env bash
# Run the test suite.
#
#   scripts/test.sh          everything: unit, lint, sanity, build, integration, adapter, Molecule
#   scripts/test.sh quick    the day-to-day subset: unit, lint, build
#   scripts/test.sh STAGE... only the named stages
#
# Sets up what is missing first (scripts/setup.sh). Ends with one line
# "summary: N passed, N failed" counting stages; exits non-zero on any failure.
set -uo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

ALL_STAGES=(unit lint sanity build integration adapter molecule)
QUICK_STAGES=(unit lint build)

stage_unit() { python -m pytest tests/unit; }

stage_lint() {
  ruff check . &&
    ruff format --check adapter tests/adapter tests/harness/adapter.py &&
    ansible-lint --offline --profile production &&
    remediate routes --check
}

stage_sanity() {
  # ansible-test bootstraps pip in its sanity venvs with a get-pip script it
  # downloads from a host this machine cannot reach, unless a copy is cached;
  # scripts/support/get_pip.py does the same job from the interpreter's bundled pip.
  local pip_version
  pip_version="$(python - <<'PY'
import inspect, re
from ansible_test._internal import python_requirements
print(re.search(r"pip='([0-9.]+)'", inspect.getsource(python_requirements)).group(1).replace(".", "_"))
PY
)" || return 1
  install -D -m 0644 "$REPO_ROOT/scripts/support/get_pip.py" ~/.ansible/test/cache/"get_pip_$pip_version.py"
  # ansible-test wants the collection at ansible_collections/<namespace>/<name>:
  # unpack exactly what the collection ships into a tree of that shape.
  local tree rc
  tree="$(mktemp -d)"
  local dest="$tree/ansible_collections/incident/remediation"
  mkdir -p "$dest"
  # Beside it, the collections its plugins import from (the `ansible` package's copies).
  local bundled
  bundled="$(python -c 'import ansible_collections.community.docker as c, os; print(os.path.dirname(c.__path__[0]))')" || return 1
  mkdir -p "$tree/ansible_collections/community"
  cp -r "$bundled/docker" "$tree/ansible_collections/community/docker"
  ansible-galaxy collection build --force --output-path "$tree" . >/dev/null &&
    tar -xzf "$tree"/incident-remediation-*.tar.gz -C "$dest" &&
    (cd "$dest" && git init -q && git add -A && ansible-test sanity --python 3.11 --color no)
  rc=$?
  rm -rf "$tree"
  return $rc
}

stage_build() { python -m pytest tests/build; }

stage_integration() { python -m pytest -m integration tests/integration; }

# The remediate adapter: a real server process, real ansible-runner runs, real
# Alertmanager and PostgreSQL.
stage_adapter() { python -m pytest tests/adapter; }

# One scenario: its whole output into a log file, its name into the failed list on failure.
molecule_scenario() {
  local scenario="$1" logs="$2"
  if NO_COLOR=1 molecule --base-config .config/molecule/config.yml test -s "$scenario" >"$logs/$scenario.log" 2>&1; then
    log "--- molecule scenario $scenario passed"
  else
    log "--- molecule scenario $scenario FAILED"
    echo "$scenario" >>"$logs/failed"
  fi
}

# Scenarios in order, one after another.
molecule_lane() {
  local logs="$1" scenario
  shift
  for scenario in "$@"; do molecule_scenario "$scenario" "$logs"; done
}

stage_molecule() {
  # Two lanes at once (one per core): the Kubernetes scenarios one after another
  # (each starts a cluster whose kubelet drives this machine's Docker engine, and
  # two kubelets must not share it), the others beside them. Every scenario runs,
  # so a failure does not hide the others' results; each one's output follows.
  # Each molecule.yml states what differs from the shared base config (which
  # Molecule finds by itself only inside a git checkout).
  local logs scenario kubernetes=() others=() rc=0
  logs="$(mktemp -d)"
  for scenario in $(find molecule -mindepth 2 -maxdepth 2 -name molecule.yml | sort | xargs -n1 dirname | xargs -n1 basename); do
    case "$scenario" in
      *kubernetes*) kubernetes+=("$scenario") ;;
      *) others+=("$scenario") ;;
    esac
  done
  molecule_lane "$logs" "${kubernetes[@]}" &
  molecule_lane "$logs" "${others[@]}"
  wait
  for scenario in "${kubernetes[@]}" "${others[@]}"; do
    log "--- molecule scenario $scenario, output:"
    cat "$logs/$scenario.log"
  done
  if [ -s "$logs/failed" ]; then
    log "failed scenarios: $(tr '\n' ' ' <"$logs/failed")"
    rc=1
  fi
  rm -rf "$logs"
  return $rc
}

main() {
  local stages=("$@")
  case "${1:-}" in
    "") stages=("${ALL_STAGES[@]}") ;;
    quick) stages=("${QUICK_STAGES[@]}") ;;
  esac
  local needs_setup=(venv)
  local stage
  for stage in "${stages[@]}"; do
    case "$stage" in
      unit | lint | build | sanity) ;;
      integration | adapter | molecule) needs_setup=(all) ;;
      *) die "unknown stage: $stage (stages: ${ALL_STAGES[*]})" ;;
    esac
  done
  if [ "$(id -u)" = 0 ]; then
    "$REPO_ROOT/scripts/setup.sh" "${needs_setup[@]}" || die "setup failed"
  fi
  link_collection
  activate_venv
  cd "$REPO_ROOT" || exit 1

  local passed=0 failed=0 failures=() started
  for stage in "${stages[@]}"; do
    log "=== stage $stage"
    started=$SECONDS
    if "stage_$stage"; then
      passed=$((passed + 1))
      log "=== stage $stage passed in $((SECONDS - started)) s"
    else
      failed=$((failed + 1))
      failures+=("$stage")
      log "=== stage $stage FAILED in $((SECONDS - started)) s"
    fi
  done
  [ "$failed" = 0 ] || log "failed stages: ${failures[*]}"
  echo "summary: $passed passed, $failed failed"
  [ "$failed" = 0 ]
}

main "$@"
