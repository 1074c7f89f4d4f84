#!/bin/sh
# Render the login rate limit into /etc/session-lab/ from LOGIN_RATE_LIMIT (nginx rate, e.g. 50r/s) and
# LOGIN_BURST (logins allowed at once above the rate). A bad value stops the balancer with a message.
set -eu
out=${1:-/etc/session-lab}
rate=${LOGIN_RATE_LIMIT:-50r/s}
burst=${LOGIN_BURST:-100}
case "$rate" in
    *[!0-9rsm/]* | "" | r/* ) ok=no ;;
    *r/s | *r/m) ok=yes ;;
    *) ok=no ;;
esac
[ "$ok" = yes ] || { echo "LOGIN_RATE_LIMIT must look like 50r/s or 600r/m, got '$rate'" >&2; exit 2; }
case "$burst" in
    "" | *[!0-9]*) echo "LOGIN_BURST must be a whole number, got '$burst'" >&2; exit 2 ;;
esac
# Keyed by $lab_client (render-client.sh): the connection's address, or the one the trusted proxy forwarded,
# never an address a client wrote itself. A state is 128 bytes on a 64-bit host (nginx docs, limit_req_zone),
# and an IPv4 address as text still fits it: 10 MB hold about 80,000 client addresses.
echo "limit_req_zone \$lab_client zone=login:10m rate=$rate;" > "$out/login-zone.conf"
echo "limit_req zone=login burst=$burst nodelay;" > "$out/login-limit.conf"
