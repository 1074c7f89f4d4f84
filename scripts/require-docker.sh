#!/usr/bin/env bash
# Fail early, with a message, when Docker or compose v2 is missing.
set -euo pipefail
command -v docker >/dev/null || { echo "error: docker is not installed (see README: Requirements)" >&2; exit 1; }
docker info >/dev/null 2>&1 || { echo "error: the Docker engine is not running or not reachable (docker info failed)" >&2; exit 1; }
docker compose version >/dev/null 2>&1 || { echo "error: docker compose v2 is missing (see README: Requirements)" >&2; exit 1; }
