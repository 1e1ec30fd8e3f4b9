#!/usr/bin/env bash
# Build the code-location image from the repository's Dockerfile with the engine at hand:
# docker when its daemon answers, else podman (rootless or root, no daemon needed).
#
#   deploy/build-image.sh [TAG]                       # default tag: article-rec-assets:latest
#
# Optional environment:
#   BASE_IMAGE=localhost/bookworm-python:3.11  build on another base (podman's --from replaces the
#                                              Dockerfile's FROM; the Dockerfile stays as it is)
#   WHEELHOUSE=DIR    install from the wheels in DIR instead of the package index (offline or
#                     air-gapped builds; make it with `pip wheel . setuptools wheel -w DIR`)
#   EXTRAS=k8s        install the package with these extras (the K8s run launcher needs `k8s`)
#   PODMAN_ROOT=DIR   podman's image storage (with its run root in DIR/run)
set -euo pipefail
cd "$(dirname "$0")/.."
tag="${1:-article-rec-assets:latest}"
args=(-t "$tag" -f Dockerfile)
[[ -n "${EXTRAS:-}" ]] && args+=(--build-arg "EXTRAS=[${EXTRAS}]")

if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  [[ -n "${BASE_IMAGE:-}" || -n "${WHEELHOUSE:-}" ]] && {
    echo "BASE_IMAGE and WHEELHOUSE need podman (docker build has no --from nor build volumes)" >&2
    exit 2
  }
  exec docker build "${args[@]}" .
fi

command -v podman >/dev/null || { echo "neither a docker daemon nor podman is available" >&2; exit 2; }
podman=(podman)
[[ -n "${PODMAN_ROOT:-}" ]] && podman+=(--root "$PODMAN_ROOT/storage" --runroot "$PODMAN_ROOT/run")
[[ -n "${BASE_IMAGE:-}" ]] && args+=(--from "$BASE_IMAGE")
if [[ -n "${WHEELHOUSE:-}" ]]; then
  args+=(--volume "$(cd "$WHEELHOUSE" && pwd):/wheels:ro" --build-arg PIP_NO_INDEX=1 --build-arg PIP_FIND_LINKS=/wheels)
fi
exec "${podman[@]}" build "${args[@]}" .
