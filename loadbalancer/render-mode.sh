#!/bin/sh
# Render the upstream config for one routing mode to stdout: render-mode.sh MODE
# Nodes come from APP_NODES: "name=host:port ..." (compose passes fixed addresses, so nginx never has
# to resolve a name that vanished with a killed container, and a restarted node comes back where it was).
set -eu
here=$(dirname "$(readlink -f "$0")")
mode=${1:-}
template="$here/modes/$mode.conf"
if [ -z "$mode" ] || [ ! -f "$template" ]; then
    modes=$(cd "$here/modes" && ls *.conf | sed 's/\.conf$//' | tr '\n' ' ')
    echo "unknown routing mode '$mode': choose one of: $modes" >&2
    exit 2
fi
: "${APP_NODES:?APP_NODES must list the nodes as name=host:port}"
# nginx's default is max_fails=1 fail_timeout=10s; 5s lets a recovered node rejoin sooner. One failed attempt
# is enough to take a node out because only a dead or frozen node fails one: a slow store costs its own
# strategy a 503 within REQUEST_DEADLINE, never a timeout here (proxy.conf, docs/hardening.md).
passive="max_fails=1 fail_timeout=5s"

servers() {  # every node, for app_pool
    for node in $APP_NODES; do echo "    server ${node#*=} $passive;"; done
}
buddy() {  # buddy NAME: the node after NAME in APP_NODES; the last one's is the first (a ring)
    previous=""
    for node in $APP_NODES $APP_NODES; do  # the list twice, so the last node has a next one too
        if [ "$previous" = "$1" ]; then echo "$node"; return; fi
        previous=${node%%=*}
    done
}

echo "# rendered by render-mode.sh from modes/$mode.conf"
echo "map \"\" \$lb_mode { default \"$mode\"; }"
while IFS= read -r line; do
    case "$line" in
        *@servers@*) servers ;;
        *@node_upstreams@*)
            for node in $APP_NODES; do
                name=${node%%=*}
                printf 'upstream node_%s {\n    zone node_%s 64k;\n' "$name" "$name"
                # max_fails=0: nginx keeps no failure count in these groups and always tries the node first.
                # With one, the full experiment saw a restarted node skipped for its first requests of the next
                # run, long after fail_timeout, and its users sent to the buddy, where their sessions are
                # unknown. A user whose node is down pays one failed attempt, then is re-stuck to the node
                # that answered; app_pool keeps the passive health check for everyone without a cookie.
                echo "    server ${node#*=} max_fails=0;"
                partner=$(buddy "$name")
                # Only the buddy as backup: all of a down node's users move to one known node, the one the app
                # copies their sessions to (compose passes the same list as REPLICATION_PEERS), not round-robin
                # over the rest. A lone node has no buddy.
                [ "$partner" = "$node" ] || echo "    server ${partner#*=} max_fails=0 backup;"
                # No kept-alive connections here: a killed node's vanish with its network namespace, no FIN or
                # RST ever reaches nginx, and when the node is back at its address the first request sent on
                # one meets a reset. nginx then counts the node failed (max_fails=1) and sends its users to the
                # buddy for 5 s: the restarted node's own users lost their sessions (seen in the full
                # experiment). A new connection per request costs well under a millisecond on the bridge.
                echo "}"
            done ;;
        *@route_map@*)
            for node in $APP_NODES; do echo "    ${node%%=*} node_${node%%=*};"; done ;;
        *) printf '%s\n' "$line" ;;
    esac
done < "$template"

# Lab instruments (the bench's per-node sessions): `X-Lab-Node: app2` pins a request to that node in every mode,
# no failover (a pinned request to a dead node is a 502). No new power over routing: a client chooses its node in
# sticky mode with the sl_route cookie already. The nodes themselves are out of the host's reach
# (docker-compose.yml's networks), so this is the only way to one node, and it goes through nginx.
for node in $APP_NODES; do
    printf 'upstream pin_%s {\n    zone pin_%s 64k;\n    server %s max_fails=0;\n}\n' "${node%%=*}" "${node%%=*}" "${node#*=}"
done
echo 'map $http_x_lab_node $backend {'
echo '    default $mode_backend;'
for node in $APP_NODES; do echo "    ${node%%=*} pin_${node%%=*};"; done
echo '}'
