#!/bin/sh
# Render the start-up routing mode (LB_MODE), then run nginx in the foreground.
set -eu
mkdir -p /etc/session-lab
/opt/session-lab/render-mode.sh "${LB_MODE:-round-robin}" > /etc/session-lab/upstreams.conf
exec nginx -c /etc/session-lab/nginx.conf -g 'daemon off;'
