#!/bin/sh
# Render the start-up routing mode (LB_MODE), the login rate limit and who the client is (render-client.sh), then run nginx in the foreground.
set -eu
mkdir -p /etc/session-lab
/opt/session-lab/render-mode.sh "${LB_MODE:-round-robin}" > /etc/session-lab/upstreams.conf
/opt/session-lab/render-limits.sh /etc/session-lab
/opt/session-lab/render-client.sh /etc/session-lab
exec nginx -c /etc/session-lab/nginx.conf -g 'daemon off;'
