#!/usr/bin/env bash
# A Debian bookworm base with Python 3.11 for `BASE_IMAGE`, made from Debian's own packages with
# mmdebstrap, for machines that cannot pull python:3.11-slim from Docker Hub.
#
#   deploy/make-bookworm-base.sh [TAG]        # default: localhost/bookworm-python:3.11
# PODMAN_ROOT as for build-image.sh.
set -euo pipefail
tag="${1:-localhost/bookworm-python:3.11}"
podman=(podman)
[[ -n "${PODMAN_ROOT:-}" ]] && podman+=(--root "$PODMAN_ROOT/storage" --runroot "$PODMAN_ROOT/run")
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# pip may install into the system Python: this is an image, not a Debian host.
mmdebstrap --mode=root --variant=minbase \
  --include=python3,python3-venv,python3-pip,python-is-python3,ca-certificates \
  --customize-hook='rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED' \
  bookworm "$work/rootfs.tar"
"${podman[@]}" import --change 'CMD ["python3"]' "$work/rootfs.tar" "$tag"
