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
  mkdir -p "$tree/ansible_collections/community" "$tree/ansible_collections/kubernetes"
  cp -r "$bundled/docker" "$tree/ansible_collections/community/docker"
  cp -r "$bundled/../kubernetes/core" "$tree/ansible_collections/kubernetes/core"
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

# Molecule (docs/testing.md): each platform's targets are made once
# (molecule/resources/platform.yml) and its scenarios run one after another on
# them, each breaking, healing, checking and restoring what it broke; the
# platforms run side by side, one lane each (measured: more lanes than platforms
# is no faster on 2 cores). IR_MOLECULE_SCENARIOS="name ..." runs only those.

# The platform a scenario runs on: SCENARIO_PLATFORM in its molecule.yml.
scenario_platform() { sed -n 's/^ *SCENARIO_PLATFORM: *\([a-z]*\).*/\1/p' "molecule/$1/molecule.yml"; }

# Record one timed step of the stage (a platform up or down, a scenario): a log
# line now, a row of the table at the end, its name in the failed list on failure.
molecule_record() {
  local logs="$1" name="$2" seconds="$3" result="$4"
  log "--- molecule $name $result in $seconds s"
  echo "$name|$seconds|$result" >>"$logs/times"
  [ "$result" = passed ] || echo "$name" >>"$logs/failed"
}

# Bring a platform's targets up or down, its output into the platform's log.
molecule_platform() {
  local platform="$1" action="$2" logs="$3" started=$SECONDS result=passed
  ansible-playbook molecule/resources/platform.yml -e "platform=$platform" -e "platform_action=$action" \
    >>"$logs/platform-$platform.log" 2>&1 || result=FAILED
  molecule_record "$logs" "platform $platform $action" $((SECONDS - started)) "$result"
  [ "$result" = passed ]
}

# One scenario, its whole output into its log.
molecule_scenario() {
  local scenario="$1" logs="$2" started=$SECONDS result=passed
  NO_COLOR=1 molecule --base-config .config/molecule/config.yml test -s "$scenario" >"$logs/$scenario.log" 2>&1 ||
    result=FAILED
  molecule_record "$logs" "scenario $scenario" $((SECONDS - started)) "$result"
}

# A platform's lane: its targets up, its scenarios in order, its targets down,
# also after a failed scenario (which restored what it broke: Molecule runs its
# cleanup after a failed step, and the next scenario's prepare makes sure of it).
molecule_lane() {
  local logs="$1" platform="$2" scenario
  shift 2
  if molecule_platform "$platform" up "$logs"; then
    for scenario in "$@"; do molecule_scenario "$scenario" "$logs"; done
  else
    for scenario in "$@"; do molecule_record "$logs" "scenario $scenario" 0 "NOT RUN"; done
  fi
  molecule_platform "$platform" down "$logs"
}

stage_molecule() {
  # A run names what it makes after IR_MOLECULE_RUN, so it never meets another
  # run's or the integration tests' containers, projects and namespaces; the
  # Kubernetes harness's lock makes a cluster wait while another one runs.
  local logs scenario platform rc=0 scenarios=()
  declare -A lanes=()
  logs="$(mktemp -d)"
  IR_MOLECULE_RUN="ir-mol-$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"
  IR_MOLECULE_PLATFORMS="$logs/platforms"
  export IR_MOLECULE_RUN IR_MOLECULE_PLATFORMS
  if [ -n "${IR_MOLECULE_SCENARIOS:-}" ]; then
    read -ra scenarios <<<"$IR_MOLECULE_SCENARIOS"
  else
    for scenario in molecule/*/molecule.yml; do scenarios+=("$(basename "$(dirname "$scenario")")"); done
  fi
  for scenario in "${scenarios[@]}"; do
    platform="$(scenario_platform "$scenario" 2>/dev/null)"
    [ -n "$platform" ] || { log "molecule/$scenario/molecule.yml is missing or names no SCENARIO_PLATFORM"; return 1; }
    lanes[$platform]+="$scenario "
  done
  for platform in "${!lanes[@]}"; do
    # shellcheck disable=SC2086 # the lane's scenario names, split on purpose
    molecule_lane "$logs" "$platform" ${lanes[$platform]} &
  done
  wait
  for platform in "${!lanes[@]}"; do
    log "--- molecule platform $platform, output:"
    cat "$logs/platform-$platform.log"
  done
  for scenario in "${scenarios[@]}"; do
    log "--- molecule scenario $scenario, output:"
    cat "$logs/$scenario.log" 2>/dev/null
  done
  log "molecule times (s), lanes side by side:"
  sort -t'|' -k1,1 "$logs/times" | while IFS='|' read -r name seconds result; do
    printf '  %-40s %5s  %s\n' "$name" "$seconds" "$result"
  done >&2
  if [ -s "$logs/failed" ]; then
    log "molecule failed: $(paste -sd, "$logs/failed")"
    rc=1
  fi
  if grep -q ' down$' "$logs/failed" 2>/dev/null; then
    log "a platform did not come down: its files stay in $IR_MOLECULE_PLATFORMS"
  else
    rm -rf "$logs"
  fi
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

  local passed=0 failed=0 failures=() times=() started result
  for stage in "${stages[@]}"; do
    log "=== stage $stage"
    started=$SECONDS
    if "stage_$stage"; then
      passed=$((passed + 1))
      result=passed
    else
      failed=$((failed + 1))
      failures+=("$stage")
      result=FAILED
    fi
    log "=== stage $stage $result in $((SECONDS - started)) s"
    times+=("$(printf '  %-12s %5s  %s' "$stage" "$((SECONDS - started))" "$result")")
  done
  log "stage times (s):"
  printf '%s\n' "${times[@]}" >&2
  [ "$failed" = 0 ] || log "failed stages: ${failures[*]}"
  echo "summary: $passed passed, $failed failed"
  [ "$failed" = 0 ]
}

main "$@"
