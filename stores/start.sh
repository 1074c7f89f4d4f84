#!/bin/sh
# Entrypoint of the store containers (docker-compose.yml): the single redis, the Sentinel group's, the Cluster's:
#     start.sh CONFIG [redis-server options...]
# On the first start, CONFIG (from this folder, mounted read-only) is copied to /data with its @NAME@
# placeholders filled from the environment, plus `replicaof $REPLICA_OF 6379` when set. Later starts (after
# a chaos kill) keep that copy: Sentinel rewrites it with what it learnt (who is primary now), and a node
# must come back as what it last was. The admin password comes from REDIS_PASSWORD into that copy (not the
# command line, which `ps` shows), for replication (masterauth) and the sentinels (auth-pass, sentinel-pass).
# The users (CONFIG's name with .acl: the admin `default` and each strategy family's own) are rendered at
# every start by render-acl.sh into /data/users.acl, so their passwords follow .env.
set -eu
template=$1
shift
conf=/data/$(basename "$template")
acl=/data/users.acl
"$(dirname "$0")/render-acl.sh" "${template%.conf}.acl" "$acl"
if [ ! -f "$conf" ]; then
    sed -e "s|@ANNOUNCE_IP@|${ANNOUNCE_IP:-}|g" -e "s|@ANNOUNCE_PORT@|26379|g" \
        -e "s|@PRIMARY_HOST@|${PRIMARY_HOST:-}|g" -e "s|@PRIMARY_PORT@|6379|g" \
        -e "s|@PASSWORD@|${REDIS_PASSWORD}|g" "$template" > "$conf"
    case "$conf" in
        */redis.conf) printf 'masterauth %s\n' "$REDIS_PASSWORD" >> "$conf" ;;
    esac
    if [ -n "${REPLICA_OF:-}" ]; then
        echo "replicaof ${REPLICA_OF} 6379" >> "$conf"
    fi
fi
case "$conf" in
    */sentinel.conf) exec redis-server "$conf" --sentinel --aclfile "$acl" ;;
    *) exec redis-server "$conf" --dir /data --aclfile "$acl" "$@" ;;
esac
