#!/usr/bin/env bash
# Run the test suite.
#
#   scripts/test.sh          everything: unit, lint, sanity, build, integration, Molecule
#   scripts/test.sh quick    the day-to-day subset: unit, lint, build
#   scripts/test.sh STAGE... only the named stages
#
# Sets up what is missing first (scripts/setup.sh). Ends with one line
# "summary: N passed, N failed" counting stages; exits non-zero on any failure.
set -uo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

ALL_STAGES=(unit lint sanity build integration molecule)
QUICK_STAGES=(unit lint build)

stage_unit() { python -m pytest tests/unit; }

stage_lint() {
  ruff check . &&
    ansible-lint --offline --profile production
}

stage_sanity() {
  # ansible-test wants the collection at ansible_collections/<namespace>/<name>:
  # unpack exactly what the collection ships (plus its unit tests) into a tree of that shape.
  local tree
  tree="$(mktemp -d)"
  local dest="$tree/ansible_collections/incident/remediation"
  mkdir -p "$dest"
  ansible-galaxy collection build --force --output-path "$tree" . >/dev/null &&
    tar -xzf "$tree"/incident-remediation-*.tar.gz -C "$dest" &&
    rm "$tree"/incident-remediation-*.tar.gz &&
    (cd "$dest" && git init -q && git add -A && ansible-test sanity --venv --python 3.11 --color no)
  local rc=$?
  rm -rf "$tree"
  return $rc
}

stage_build() { python -m pytest tests/build; }

stage_integration() { python -m pytest -m integration tests/integration; }

stage_molecule() { NO_COLOR=1 molecule test --all; }

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
      integration | molecule) needs_setup=(all) ;;
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
