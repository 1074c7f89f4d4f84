#!/usr/bin/env bash
# Print where the running stack answers.
set -euo pipefail
addr=$(docker compose port lb 8080 2>/dev/null || true)
[ -n "$addr" ] || { echo "the lb service is not running" >&2; exit 1; }
mode=$(curl -fsS "http://$addr/nginx-health" 2>/dev/null | sed -n 's/.*"mode":"\([^"]*\)".*/\1/p')
cat <<MSG

Session Lab is up (routing: ${mode:-unknown}).
  API            http://$addr/api/<strategy>/login | cart | logout
  strategies     http://$addr/api/strategies
  node health    http://$addr/healthz   (X-Served-By names the node)
  balancer       http://$addr/nginx-health
MSG
