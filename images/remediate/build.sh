#!/usr/bin/env bash
# Build the remediate image (images/remediate/Dockerfile) from this checkout:
#
#   images/remediate/build.sh [TAG]      (default incident-remediation/remediate:latest)
#   images/remediate/build.sh --context DIR
#                                        only make the build context in DIR: what a
#                                        host without the image installs from (docs/deploying.md)
#
# There is no registry or Galaxy to install from, so the build context is made
# here, from the checkout and its venv (scripts/setup.sh venv), and only it enters
# the image:
# - wheels/deps: pip wheel of everything the adapter and the collection's modules
#   need (adapter/pyproject.toml, meta/requirements.txt, ansible-core), pinned by
#   requirements/dev.txt; cached in $CACHE_DIR/remediate-wheels/<hash of those files>.
# - wheels/adapter: the adapter's wheel, built now.
# - collections: incident.remediation built with ansible-galaxy, and the collections
#   it depends on (galaxy.yml, and theirs), copied from the venv's `ansible` package;
#   the image installs it --offline, so a missing or too old one fails the build.
# Docker's layer cache keeps everything but the adapter's and the collection's
# layers when only they changed.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(cd "$(dirname "$0")/../.." && pwd)/scripts/lib.sh"

python="$VENV/bin/python"
[ -x "$python" ] || die "no venv at $VENV: run scripts/setup.sh venv first"

if [ "${1:-}" = --context ]; then
  context="${2:?--context DIR}"
  tag=""
else
  tag="${1:-$IMAGE_PREFIX/remediate:latest}"
  context="$(mktemp -d)"
fi
mkdir -p "$context/wheels/adapter" "$context/collections/ansible_collections"
# The adapter's source, copied: setuptools leaves build/ in the tree it builds.
source="$(mktemp -d)"
trap 'rm -rf "$source" ${tag:+"$context"}' EXIT
cp -r "$REPO_ROOT/adapter/pyproject.toml" "$REPO_ROOT/adapter/src" "$source/"
rm -rf "$source"/src/*.egg-info

# Wheels for the dependencies, once per set of pins. pip evaluates environment
# markers for this host's Python; the image has Debian's 3.11.2, whose extra needs
# are named here (pip check in the image fails on one that is missing).
image_python_extras=(async-timeout) # redis: python_full_version < "3.11.3"
pins="$(cat "$0" "$REPO_ROOT/requirements/dev.txt" "$REPO_ROOT/adapter/pyproject.toml" "$REPO_ROOT/meta/requirements.txt" |
  sha256sum | cut -c1-16)"
wheels="$CACHE_DIR/remediate-wheels/$pins"
if [ ! -d "$wheels" ]; then
  log "building dependency wheels into $wheels"
  rm -rf "$wheels.tmp"
  "$python" -m pip wheel -q --wheel-dir "$wheels.tmp" -c "$REPO_ROOT/requirements/dev.txt" \
    "$source" ansible-core -r "$REPO_ROOT/meta/requirements.txt" "${image_python_extras[@]}"
  rm -f "$wheels.tmp"/incident_remediation_adapter-*.whl
  mv "$wheels.tmp" "$wheels"
fi
cp -a "$wheels" "$context/wheels/deps"
# A reproducible adapter wheel (SOURCE_DATE_EPOCH) keeps its layer cached while its code is unchanged.
SOURCE_DATE_EPOCH=315532800 "$python" -m pip wheel -q --no-deps --wheel-dir "$context/wheels/adapter" "$source"

# The collection and its dependencies.
"$VENV/bin/ansible-galaxy" collection build -f --output-path "$context/collections" "$REPO_ROOT" >/dev/null
mv "$context"/collections/incident-remediation-*.tar.gz "$context/collections/incident-remediation.tar.gz"
# galaxy.yml's dependencies and theirs (MANIFEST.json), from the venv's `ansible` package.
collections="$("$python" - "$REPO_ROOT/galaxy.yml" <<'PY'
import json, sys, sysconfig, yaml
from pathlib import Path
root = Path(sysconfig.get_paths()["purelib"]) / "ansible_collections"
wanted, seen = list(yaml.safe_load(open(sys.argv[1]))["dependencies"]), set()
while wanted:
    name = wanted.pop()
    if name not in seen:
        seen.add(name)
        manifest = json.loads((root / name.replace(".", "/") / "MANIFEST.json").read_text())
        wanted.extend(manifest["collection_info"]["dependencies"] or {})
print(root, *sorted(seen))
PY
)"
read -r bundled names <<<"$collections"
for name in $names; do
  mkdir -p "$context/collections/ansible_collections/${name%%.*}"
  cp -a "$bundled/${name%%.*}/${name#*.}" "$context/collections/ansible_collections/${name%%.*}/"
done

cp "$REPO_ROOT/images/remediate/settings.yml" "$context/"
[ -n "$tag" ] || exit 0
log "building image $tag"
docker build -q -t "$tag" -f "$REPO_ROOT/images/remediate/Dockerfile" "$context" >/dev/null
