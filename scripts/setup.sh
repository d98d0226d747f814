#!/usr/bin/env bash
# Idempotent environment setup for the incident.remediation test bed.
#
#   scripts/setup.sh [all|venv|java|browser|docker|images|kubernetes]...   (default: all)
#
# On a fresh Debian bookworm machine (as root) it installs what is missing:
# a Python virtual environment with the pinned tool chain, a Docker engine with
# Compose v2, the base image and the project's test images, and a single-node
# Kubernetes (API server, controller manager, scheduler, kubelet, kubectl and the
# pause image) built from Debian's source package, and Java 17 for ansible-rulebook.
# Whatever is already there (an engine, an image, a cached build) is left alone.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

DOCKERD_LOG="${IR_DOCKERD_LOG:-/var/log/incident-remediation-dockerd.log}"

setup_venv() {
  link_collection
  local stamp="$VENV/.requirements.sha256"
  local want
  want="$(cat "$REPO_ROOT/requirements/dev.txt" "$REPO_ROOT/adapter/pyproject.toml" | sha256sum | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    log "venv up to date: $VENV"
    return
  fi
  command -v python3 >/dev/null || apt_install python3 python3-venv
  log "creating venv $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -r "$REPO_ROOT/requirements/dev.txt"
  # The remediate adapter, editable: its dependencies are pinned in dev.txt.
  "$VENV/bin/pip" install -q --no-deps -e "$REPO_ROOT/adapter"
  echo "$want" >"$stamp"
}

docker_answers() { timeout 20 docker info >/dev/null 2>&1; }

start_dockerd() {
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl start docker
  else
    log "starting dockerd (log: $DOCKERD_LOG)"
    nohup dockerd >"$DOCKERD_LOG" 2>&1 &
  fi
  local i
  for i in $(seq 1 60); do
    docker_answers && return 0
    sleep 1
  done
  tail -n 30 "$DOCKERD_LOG" >&2 || true
  die "dockerd did not answer within 60 s"
}

install_compose_v2() {
  # Bookworm only carries Compose v1; trixie's docker-compose (v2, one static
  # binary) installs from the same archive. Add trixie at low priority so that
  # nothing else is upgraded from it.
  local src=/etc/apt/sources.list.d/debian-trixie-ir.sources
  if [ ! -f "$src" ]; then
    local base=/etc/apt/sources.list.d/debian.sources
    [ -f "$base" ] || die "no $base to derive a trixie source from; install Compose v2 by hand"
    # First stanza (the main archive) with its suite changed to trixie.
    awk 'BEGIN{RS=""; ORS="\n\n"} NR==1' "$base" |
      sed -E 's/^Suites:.*/Suites: trixie/; s#^Signed-By:.*#Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg#' >"$src"
    printf 'Package: *\nPin: release n=trixie\nPin-Priority: 100\n' \
      >/etc/apt/preferences.d/debian-trixie-ir.pref
    _apt_updated=""
  fi
  apt_install -t trixie docker-compose
}

setup_docker() {
  if ! docker_answers; then
    command -v dockerd >/dev/null 2>&1 || apt_install docker.io
    start_dockerd
  fi
  log "docker engine: $(docker version --format '{{.Server.Version}}')"
  docker compose version >/dev/null 2>&1 || install_compose_v2
  log "compose: $(docker compose version --short)"
}

ensure_base_image() {
  local image=debian:bookworm-slim
  docker image inspect "$image" >/dev/null 2>&1 && return
  timeout 120 docker pull -q "$image" >/dev/null 2>&1 && return
  log "no registry: building $image from Debian's archive with debootstrap"
  need_commands debootstrap debootstrap
  local root mirror
  root="$(mktemp -d)"
  mirror="$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)"
  debootstrap --variant=minbase bookworm "$root" "$mirror" >/dev/null
  # Keep apt's sources as the host has them (no registry host names written here).
  rm -f "$root/etc/apt/sources.list"
  cp /etc/apt/sources.list.d/debian.sources "$root/etc/apt/sources.list.d/"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | docker import -c 'CMD ["bash"]' - "$image" >/dev/null
  rm -rf "$root"
}

setup_images() {
  ensure_base_image
  local dir name
  for dir in "$REPO_ROOT"/images/*/; do
    name="$(basename "$dir")"
    log "building image $IMAGE_PREFIX/$name"
    local out
    if [ -x "$dir/build.sh" ]; then
      # It makes its own build context from the checkout (images/remediate: the venv's wheels and collections).
      out="$("$dir/build.sh" "$IMAGE_PREFIX/$name:latest" 2>&1)" || { printf '%s\n' "$out" >&2; die "building $name failed"; }
      continue
    fi
    out="$(docker build -q -t "$IMAGE_PREFIX/$name:latest" "$dir" 2>&1)" || { printf '%s\n' "$out" >&2; die "building $name failed"; }
  done
}

# Java 17 for ansible-rulebook (Event-Driven Ansible tests); tests set JAVA_HOME.
setup_java() {
  if ls -d /usr/lib/jvm/java-17-openjdk-*/lib/server/libjvm.so >/dev/null 2>&1; then
    log "Java 17 present"
    return
  fi
  apt_install openjdk-17-jdk-headless
}

# A real browser and a terminal multiplexer for the incident page's and remediate watch's tests.
setup_browser() {
  need_commands chromium chromium
  need_commands chromium-driver chromedriver
  need_commands tmux tmux
}

setup_kubernetes() {
  "$REPO_ROOT/scripts/build-kubernetes.sh"
}

main() {
  [ "$(id -u)" = 0 ] || die "run as root (it installs packages and starts dockerd)"
  local steps=("$@")
  [ ${#steps[@]} -gt 0 ] || steps=(all)
  local step
  for step in "${steps[@]}"; do
    case "$step" in
      all) setup_venv; setup_java; setup_browser; setup_docker; setup_images; setup_kubernetes ;;
      venv) setup_venv ;;
      java) setup_java ;;
      browser) setup_browser ;;
      docker) setup_docker ;;
      images) setup_docker; setup_images ;;
      kubernetes) setup_docker; setup_kubernetes ;;
      *) die "unknown step: $step" ;;
    esac
  done
  log "setup done"
}

main "$@"
