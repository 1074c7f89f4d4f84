#!/bin/sh
# Forms the Redis Cluster once its six nodes answer: cluster/init.sh HOST:PORT x6 (addresses, not names:
# CLUSTER MEET refuses names, redis/redis#11148). Password from REDISCLI_AUTH. Run by compose's one-shot
# `cluster-init` service and by the integration fixtures. Exits 0 at once when the cluster already formed.
set -eu
state() { redis-cli -h "${1%:*}" -p "${1##*:}" cluster info 2>/dev/null | tr -d '\r' | sed -n 's/^cluster_state://p'; }

if [ "$(state "$1")" = ok ]; then
    echo "cluster-init: already formed"
    exit 0
fi
# --cluster-replicas 1: three masters and one replica each; redis-cli picks the pairs.
redis-cli --cluster create "$@" --cluster-replicas 1 --cluster-yes
for node in "$@"; do
    tries=0
    until [ "$(state "$node")" = ok ]; do
        tries=$((tries + 1))
        if [ "$tries" -gt 300 ]; then echo "cluster-init: $node never saw cluster_state:ok" >&2; exit 1; fi
        sleep 0.1
    done
done
echo "cluster-init: formed, every node sees cluster_state:ok"
