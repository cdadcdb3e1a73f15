#!/usr/bin/env bash
# Builds the Docker backend's test image, farlab-test:latest, unless it exists already with the
# same package list.
# There is no image registry on these machines (shared/ENVIRONMENT.md), so the image is a Debian
# bookworm minbase made with debootstrap (python3 with what the tests and notebooks/ use; no node:
# the agent bind-mounts its own) and imported with `docker import`. The package list is kept in
# the image's label farlab.packages, so adding a package rebuilds the image once. A few minutes
# and about 2.5 GB (torch is most of it).
set -euo pipefail

IMAGE="${FARLAB_TEST_IMAGE:-farlab-test:latest}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
PACKAGES="python3-minimal,python3-numpy,python3-matplotlib,python3-pil,python3-pandas,python3-scipy,python3-plotly,python3-torch"

if [ "$(docker image inspect "$IMAGE" --format '{{index .Config.Labels "farlab.packages"}}' 2>/dev/null)" = "$PACKAGES" ]; then
  echo "test image $IMAGE exists with $PACKAGES; not rebuilding"
  exit 0
fi

ROOT="$(mktemp -d /tmp/farlab-test-image.XXXXXX)"
trap 'rm -rf "$ROOT"' EXIT
echo "== debootstrap bookworm into $ROOT ($PACKAGES)"
debootstrap --variant=minbase --include="$PACKAGES" bookworm "$ROOT" "$MIRROR"
# Package caches are not needed in the image.
rm -rf "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/lib/apt/lists/*
echo "== docker import $IMAGE"
tar -C "$ROOT" -c . | docker import --change "LABEL farlab.packages=$PACKAGES" - "$IMAGE"
docker image inspect "$IMAGE" --format "built $IMAGE ({{.Size}} bytes)"
