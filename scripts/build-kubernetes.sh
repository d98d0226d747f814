#!/usr/bin/env bash
# Build a single-node Kubernetes (kube-apiserver, kube-controller-manager,
# kube-scheduler, kubelet, kubectl and a static pause binary) from Debian
# bookworm's kubernetes source package, once, into a cache outside the checkout
# keyed by the package version and this build's recipe; then make sure the
# pause image exists in the local Docker engine.
# Prints the folder holding the binaries. Concurrent runs wait for one build.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl)
# This kernel refuses a negative oom_score_adj, so every pod sandbox would fail
# in runc: the kubelet's two negative defaults become 0.
OOM_PATCHES=(
  "pkg/kubelet/dockershim/docker_sandbox.go|defaultSandboxOOMAdj"
  "pkg/kubelet/qos/policy.go|guaranteedOOMScoreAdj"
)
PAUSE_IMAGE="$IMAGE_PREFIX/pause:latest"

need_commands etcd-server etcd
need_commands golang-go go
need_commands rsync rsync
need_commands openssl openssl
need_commands make make
need_commands gcc gcc
# The static C library, for the pause binary.
dpkg -s libc6-dev >/dev/null 2>&1 || apt_install libc6-dev

add_deb_src() {
  local src=/etc/apt/sources.list.d/debian-src-ir.sources
  [ -f "$src" ] && return
  awk 'BEGIN{RS=""; ORS="\n\n"} NR==1' /etc/apt/sources.list.d/debian.sources |
    sed -E 's/^Types:.*/Types: deb-src/; s/^Suites:.*/Suites: bookworm/' >"$src"
  _apt_updated=""
  apt_install dpkg-dev
}

apply_oom_patches() {
  local patch file constant
  for patch in "${OOM_PATCHES[@]}"; do
    IFS='|' read -r file constant <<<"$patch"
    sed -i -E "s/^(\s*$constant\s+int\s*=\s*)-[0-9]+\s*$/\10/" "$file"
    grep -qE "^\s*$constant\s+int\s*=\s*0$" "$file" || die "patching $constant in $file to 0 failed"
  done
}

build() {
  local work
  work="$(mktemp -d)"
  # shellcheck disable=SC2064 # expand $work now
  trap "rm -rf '$work'" EXIT
  log "building kubernetes $version (about 10 minutes on 2 cores, once; log: $work/build.log)"
  # /bookworm: a trixie deb-src entry would otherwise fetch a release that cannot build offline.
  (cd "$work" && apt-get source -qq --download-only kubernetes/bookworm >/dev/null &&
    dpkg-source -x --no-check ./*.dsc src >/dev/null)
  (cd "$work/src" && apply_oom_patches)
  (cd "$work/src" && GOPROXY=off GOFLAGS='' GO111MODULE=on \
    make WHAT="${BINARIES[*]/#/cmd/}" >"$work/build.log" 2>&1) ||
    { tail -n 40 "$work/build.log" >&2; die "kubernetes build failed"; }
  gcc -static -O2 -o "$work/src/_output/bin/pause" "$work/src/build/pause/linux/pause.c"
  mkdir -p "$bin_dir.new"
  local name
  for name in "${BINARIES[@]}" pause; do
    cp "$work/src/_output/bin/$name" "$bin_dir.new/"
  done
  rm -rf "$bin_dir"
  mv "$bin_dir.new" "$bin_dir"
  rm -rf "$work"
  trap - EXIT
  log "kubernetes $version built into $bin_dir"
}

ensure_pause_image() {
  docker image inspect "$PAUSE_IMAGE" >/dev/null 2>&1 && return
  local context
  context="$(mktemp -d)"
  cp "$bin_dir/pause" "$context/"
  printf 'FROM scratch\nADD pause /pause\nENTRYPOINT ["/pause"]\n' >"$context/Dockerfile"
  local out
  out="$(docker build -q -t "$PAUSE_IMAGE" "$context" 2>&1)" || { rm -rf "$context"; printf '%s\n' "$out" >&2; die "building $PAUSE_IMAGE failed"; }
  rm -rf "$context"
  log "built image $PAUSE_IMAGE"
}

built() {
  local name
  for name in "${BINARIES[@]}" pause; do
    [ -x "$bin_dir/$name" ] || return 1
  done
}

add_deb_src
dsc="$(apt-get source --print-uris kubernetes/bookworm 2>/dev/null | awk '$2 ~ /\.dsc$/{print $2; exit}')"
version="${dsc#kubernetes_}"
version="${version%.dsc}"
[ -n "$version" ] || die "apt-get source found no bookworm kubernetes source package"
recipe="$(printf '%s\n' "${BINARIES[@]}" "${OOM_PATCHES[@]}" | sha256sum | cut -c1-12)"
bin_dir="$CACHE_DIR/kubernetes/$version/$recipe/bin"

mkdir -p "$CACHE_DIR/kubernetes"
exec 9>"$CACHE_DIR/kubernetes/.build.lock"
flock 9
if built; then
  log "kubernetes $version cached in $bin_dir"
else
  build
fi
ensure_pause_image
echo "$bin_dir"
