#!/bin/sh
# Render /etc/session-lab/client.conf: $lab_client, the one address every layer takes for the client (the
# login rate limit, ip-hash's node, the X-Forwarded-For the nodes get). It is the connection's own address,
# unless the request comes through the trusted proxy; then it is the LAST address in X-Forwarded-For, the
# one that proxy appended (the ones before it are whatever the client sent, and prove nothing).
# Trusted: the request carries X-Lab-Proxy-Secret equal to LB_PROXY_SECRET (an origin-verify header: in the
# lab every host connection comes from the Docker bridge's one address, so the address cannot tell the load
# users from anyone else), or it comes from LB_TRUSTED_PROXY (a real proxy's address or network; empty: trust
# no address). docs/hardening.md, "Who the client is".
set -eu
out=${1:-/etc/session-lab}
secret=${LB_PROXY_SECRET:-}
trusted=${LB_TRUSTED_PROXY:-}
# Compared as a literal in an nginx map: letters, digits, - and _ only (what `make env` generates), and long.
case "$secret" in
    "" ) echo "LB_PROXY_SECRET is not set; run \`make env\` to generate it" >&2; exit 2 ;;
    *[!A-Za-z0-9_-]* ) echo "LB_PROXY_SECRET may hold only letters, digits, - and _" >&2; exit 2 ;;
esac
[ "${#secret}" -ge 32 ] || { echo "LB_PROXY_SECRET must be at least 32 characters" >&2; exit 2; }
case "$trusted" in
    "" ) ;;
    *[!0-9./]* | */*/* ) echo "LB_TRUSTED_PROXY must be an IPv4 address or network (a.b.c.d or a.b.c.d/n), got '$trusted'" >&2; exit 2 ;;
esac
{
    echo "# rendered by render-client.sh"
    echo "# The last address in X-Forwarded-For, when it looks like one (IPv4 or IPv6 characters only)."
    echo 'map $http_x_forwarded_for $lab_forwarded_last {'
    echo '    "~(?:^|[\s,])(?<last>[0-9A-Fa-f.:]{2,45})\s*$" $last;'
    echo '    default "";'
    echo '}'
    # A case-sensitive regular expression: a map's plain strings match ignoring case.
    echo 'map $http_x_lab_proxy_secret $lab_proxy_by_secret {'
    echo "    \"~^$secret\$\" 1;"
    echo '    default 0;'
    echo '}'
    echo 'geo $lab_proxy_by_address {'
    echo '    default 0;'
    [ -z "$trusted" ] || echo "    $trusted 1;"
    echo '}'
    echo 'map "$lab_proxy_by_secret$lab_proxy_by_address:$lab_forwarded_last" $lab_client {'
    echo '    "~^(?:1.|.1):(?<forwarded>.+)$" $forwarded;'
    echo '    default $remote_addr;'
    echo '}'
    echo "# The client's network for ip-hash: an IPv4 address's first three octets, as ip_hash hashes them."
    echo 'map $lab_client $lab_client_network {'
    echo '    "~^(?<network>\d+\.\d+\.\d+)\.\d+$" $network;'
    echo '    default $lab_client;'
    echo '}'
} > "$out/client.conf"
