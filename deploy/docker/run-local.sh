#!/usr/bin/env bash
# Every run in its own container, on this machine, without compose: the code location in a
# container from IMAGE, the daemon and the webserver on the host, each run
# a container the daemon starts through the Docker Engine API. PostgreSQL and S3 are wherever the
# variables say (the containers use the host's network). Runs in the foreground; Ctrl-C (or
# SIGTERM) stops the daemon and webserver and removes the code location's container.
#
#   IMAGE=article-rec-assets:latest deploy/docker/run-local.sh [all|code-location|daemon|webserver]
#
# `all` (the default) starts the three; each of the others starts one, for a terminal (or a
# service unit) of its own: the code location first, then the daemon and the webserver.
#
# Needs: `pip install ".[docker]"` on the host; DAGSTER_PG_HOST, _PORT, _USERNAME, _PASSWORD, _DB;
# SERVING_DATABASE_URL; ARTICLE_REC_ASSET_STORAGE (s3://bucket/prefix) and ARTICLE_REC_RUN_LOGS_BUCKET;
# ARTICLE_REC_S3_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (see dagster.yaml here).
# Optional: DAGSTER_HOME (default ~/.article-rec-docker; its dagster.yaml is this folder's unless
# it has one), ARTICLE_REC_CODE_SERVER_PORT (4000), WEBSERVER_PORT (3000), CODE_LOCATION_NAME,
# ENGINE (the container CLI: docker, or e.g. "podman --root DIR"), DOCKER_HOST (the Engine API the
# daemon launches runs through; with podman: `podman system service unix:///PATH.sock`).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
what="${1:-all}"
read -r -a engine <<<"${ENGINE:-docker}"
export ARTICLE_REC_CODE_SERVER_PORT="${ARTICLE_REC_CODE_SERVER_PORT:-4000}"
export ARTICLE_REC_EVENTS_SOURCE="${ARTICLE_REC_EVENTS_SOURCE:-s3}"
export DAGSTER_HOME="${DAGSTER_HOME:-$HOME/.article-rec-docker}"
name="${CODE_LOCATION_NAME:-article-rec-code-location}"
mkdir -p "$DAGSTER_HOME"
[[ -f "$DAGSTER_HOME/dagster.yaml" ]] || cp "$here/dagster.yaml" "$DAGSTER_HOME/dagster.yaml"

pids=()
started_container=""
stop() {
  trap - EXIT INT TERM
  if ((${#pids[@]})); then
    kill "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
  [[ -n "$started_container" ]] && "${engine[@]}" rm -f "$name" >/dev/null 2>&1
  return 0
}
trap stop EXIT INT TERM

# The code location: the image's code server, told its own image so that runs start from it.
code_location() {
  : "${IMAGE:?the code-location image, built by deploy/build-image.sh with EXTRAS=docker}"
  local settings=(DAGSTER_PG_HOST DAGSTER_PG_PORT DAGSTER_PG_USERNAME DAGSTER_PG_PASSWORD DAGSTER_PG_DB
    SERVING_DATABASE_URL ARTICLE_REC_EVENTS_SOURCE ARTICLE_REC_ASSET_STORAGE ARTICLE_REC_S3_ENDPOINT_URL
    AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY)
  local flags=() variable
  for variable in "${settings[@]}"; do flags+=(-e "$variable"); done
  "${engine[@]}" run -d --name "$name" --network host "${flags[@]}" -e DAGSTER_CURRENT_IMAGE="$IMAGE" \
    "$IMAGE" dagster code-server start -h 127.0.0.1 -p "$ARTICLE_REC_CODE_SERVER_PORT" \
    -m article_rec_assets.definitions >/dev/null
  started_container=1
  for _ in $(seq 120); do
    dagster api grpc-health-check -p "$ARTICLE_REC_CODE_SERVER_PORT" >/dev/null 2>&1 && break
    sleep 1
  done
  dagster api grpc-health-check -p "$ARTICLE_REC_CODE_SERVER_PORT"
  echo "code location $name answers on port $ARTICLE_REC_CODE_SERVER_PORT"
}

case "$what" in
  all|code-location) code_location ;;&
  all|daemon) dagster-daemon run -w "$here/workspace.yaml" & pids+=($!) ;;&
  all|webserver)
    dagster-webserver -w "$here/workspace.yaml" -h 127.0.0.1 -p "${WEBSERVER_PORT:-3000}" &
    pids+=($!) ;;
  code-location|daemon) ;;
  *) echo "unknown: $what (all, code-location, daemon or webserver)" >&2; exit 2 ;;
esac

if ((${#pids[@]})); then
  wait -n "${pids[@]}"
else  # the code location alone: until it stops, or this script is stopped
  "${engine[@]}" wait "$name" >/dev/null
fi
