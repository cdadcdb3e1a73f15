#!/usr/bin/env bash
# Builds the Docker backend's test image, farlab-test:latest, unless it exists already.
# There is no image registry on these machines (shared/ENVIRONMENT.md), so the image is a Debian
# bookworm minbase made with debootstrap (python3 with numpy, matplotlib, pil, pandas; no node:
# the agent bind-mounts its own) and imported with `docker import`. About a minute and 400 MB.
set -euo pipefail

IMAGE="${FARLAB_TEST_IMAGE:-farlab-test:latest}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "test image $IMAGE exists; not rebuilding"
  exit 0
fi

ROOT="$(mktemp -d /tmp/farlab-test-image.XXXXXX)"
trap 'rm -rf "$ROOT"' EXIT
echo "== debootstrap bookworm into $ROOT"
debootstrap --variant=minbase \
  --include=python3-minimal,python3-numpy,python3-matplotlib,python3-pil,python3-pandas \
  bookworm "$ROOT" "$MIRROR"
echo "== docker import $IMAGE"
tar -C "$ROOT" -c . | docker import - "$IMAGE"
docker image inspect "$IMAGE" --format "built $IMAGE ({{.Size}} bytes)"
