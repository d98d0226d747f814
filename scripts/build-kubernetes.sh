#!/usr/bin/env bash
# Build kube-apiserver and kube-controller-manager from Debian's kubernetes
# source package, once, into a version-keyed cache outside the checkout.
# Prints the folder holding the binaries.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

need_commands etcd-server etcd
need_commands golang-go go
need_commands rsync rsync
need_commands openssl openssl
need_commands make make

add_deb_src() {
  local src=/etc/apt/sources.list.d/debian-src-ir.sources
  [ -f "$src" ] && return
  awk 'BEGIN{RS=""; ORS="\n\n"} NR==1' /etc/apt/sources.list.d/debian.sources |
    sed -E 's/^Types:.*/Types: deb-src/; s/^Suites:.*/Suites: bookworm/' >"$src"
  _apt_updated=""
  apt_install dpkg-dev
}

add_deb_src
version="$(apt-cache showsrc kubernetes | awk '/^Version:/{print $2; exit}')"
[ -n "$version" ] || die "apt-cache showsrc kubernetes found no source package"
bin_dir="$CACHE_DIR/kubernetes/$version/bin"
if [ -x "$bin_dir/kube-apiserver" ] && [ -x "$bin_dir/kube-controller-manager" ]; then
  log "kubernetes $version cached in $bin_dir"
  echo "$bin_dir"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
log "building kubernetes $version (a few minutes, once)"
(cd "$work" && apt-get source -qq --download-only kubernetes >/dev/null &&
  dpkg-source -x --no-check ./*.dsc src >/dev/null)
(cd "$work/src" && GOPROXY=off GOFLAGS= GO111MODULE=on \
  make WHAT="cmd/kube-apiserver cmd/kube-controller-manager" >"$work/build.log" 2>&1) ||
  { tail -n 40 "$work/build.log" >&2; die "kubernetes build failed"; }
mkdir -p "$bin_dir"
cp "$work"/src/_output/bin/kube-apiserver "$work"/src/_output/bin/kube-controller-manager "$bin_dir/"
log "kubernetes $version built into $bin_dir"
echo "$bin_dir"
