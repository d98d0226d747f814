# Shared helpers for the project's shell scripts. Source it; do not run it.
# shellcheck shell=bash

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${IR_VENV:-$REPO_ROOT/.venv}"
CACHE_DIR="${IR_CACHE_DIR:-/var/cache/incident-remediation}"
IMAGE_PREFIX="incident-remediation"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

_apt_updated=""
apt_install() {
  # apt_install [apt-get install options] PACKAGE...
  if [ -z "$_apt_updated" ]; then
    log "apt-get update"
    apt-get update -qq >/dev/null
    _apt_updated=1
  fi
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

need_commands() {
  # need_commands PACKAGE COMMAND...: install PACKAGE when any COMMAND is missing.
  local pkg="$1"; shift
  local cmd
  for cmd in "$@"; do
    command -v "$cmd" >/dev/null 2>&1 || { apt_install "$pkg"; return; }
  done
}

activate_venv() {
  # shellcheck disable=SC1091
  . "$VENV/bin/activate"
  export ANSIBLE_PYTHON_INTERPRETER="$VENV/bin/python"
}

link_collection() {
  # Ansible finds incident.remediation through .collections (see ansible.cfg).
  local parent="$REPO_ROOT/.collections/ansible_collections/incident"
  mkdir -p "$parent"
  [ -L "$parent/remediation" ] || ln -sfn ../../.. "$parent/remediation"
}
