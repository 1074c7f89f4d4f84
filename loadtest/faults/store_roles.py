"""Store roles: which container plays a part in the Sentinel group or the Cluster *now*. Roles move (a
failover promotes a replica), so chaos resolves a role when the fault fires, by asking the store itself
(the roles' names are in loadtest/lab.py).

    sentinel-primary   the Redis the sentinels name as primary
    sentinel-replica   one replica of that primary
    sentinel-quorum    two of the three sentinels: no failover is possible, the primary still serves
    cluster-master     one Cluster master (its replica should take over)
    cluster-shard      a Cluster master and its replica: the shard's slots have no copy left
"""

from __future__ import annotations

import random

from loadtest.faults.docker import compose, docker, project
from loadtest.lab import CLUSTER, ROLES, SENTINEL_DATA, SENTINEL_SERVICE, SENTINELS, LabError


def cli(service: str, *args: str, port: int = 6379, timeout: float = 10) -> str:
    """redis-cli inside one of the store's containers (REDISCLI_AUTH is set there)."""
    done = compose("exec", "-T", service, "redis-cli", "-p", str(port), *args, timeout=timeout, check=False)
    if done.returncode != 0:
        raise LabError(f"redis-cli {' '.join(args)} in {service} failed: {(done.stderr or done.stdout).strip()[-300:]}")
    return done.stdout


def addresses() -> dict[str, str]:
    """IP address on the lab network -> service, for every running container of the project."""
    ids = compose("ps", "-q").stdout.split()
    if not ids:
        return {}
    fmt = ('{{index .Config.Labels "com.docker.compose.service"}}'
           '{{range .NetworkSettings.Networks}} {{.IPAddress}}{{end}}')
    found = {}
    for line in docker("inspect", "-f", fmt, *ids).stdout.splitlines():
        service, *ips = line.split()
        for ip in ips:
            found[ip] = service
    return found


def first_answering(services, *args: str, port: int) -> tuple[str, str]:
    problems = []
    for service in services:
        try:
            return service, cli(service, *args, port=port)
        except LabError as exc:
            problems.append(str(exc))
    raise LabError("no store container answered: " + "; ".join(problems))


def sentinel_primary() -> str:
    """The service the sentinels name as primary now."""
    _, out = first_answering(SENTINELS, "sentinel", "get-master-addr-by-name", SENTINEL_SERVICE, port=26379)
    ip = out.split()[0]
    service = addresses().get(ip)
    if service is None:
        raise LabError(f"the sentinels name {ip} as primary, which no container of {project()} has")
    return service


def cluster_nodes(exclude: tuple[str, ...] = ()) -> tuple[str, list[dict]]:
    """(the node asked, rows of CLUSTER NODES with the service each address belongs to)."""
    by_ip = addresses()
    asked, out = first_answering([s for s in CLUSTER if s not in exclude], "cluster", "nodes", port=6379)
    rows = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 8:
            continue
        ip = parts[1].split(":")[0]
        rows.append({"id": parts[0], "service": by_ip.get(ip, ip), "flags": set(parts[2].split(",")),
                     "master_id": parts[3], "slots": slot_ranges(parts[8:])})
    return asked, rows


def cluster_masters() -> list[dict]:
    """Masters that serve slots and are not failed (their (first, last) slot ranges in "slots"), each with
    its replicas' services. Ask before a fault: a killed container has no address left to recognise it by."""
    _, rows = cluster_nodes()
    masters = [r for r in rows if "master" in r["flags"] and r["slots"] and not r["flags"] & {"fail", "fail?"}]
    for m in masters:
        m["replicas"] = [r["service"] for r in rows if r["master_id"] == m["id"] and "fail" not in r["flags"]]
    return masters


def resolve(target: str, rng: random.Random) -> tuple[list[str], list[list[int]]]:
    """(the services that play `target` now, the Cluster slot ranges they serve); a plain service is itself."""
    if target not in ROLES:
        return [target], []
    if target == "sentinel-primary":
        return [sentinel_primary()], []
    if target == "sentinel-replica":
        primary = sentinel_primary()
        return [rng.choice([s for s in SENTINEL_DATA if s != primary])], []
    if target == "sentinel-quorum":
        return sorted(rng.sample(SENTINELS, 2)), []
    masters = [m for m in cluster_masters() if m["replicas"]]
    if not masters:
        raise LabError("no Cluster master with a replica to fault: is the cluster whole? (make ps)")
    master = rng.choice(masters)
    services = [master["service"]] + (master["replicas"][:1] if target == "cluster-shard" else [])
    return services, [list(r) for r in master["slots"]]


def slot_ranges(fields: list[str]) -> list[tuple[int, int]]:
    """CLUSTER NODES' slot fields ("0-5460", "7", "[93->-id]") as (first, last) ranges."""
    ranges = []
    for part in fields:
        if part.startswith("["):
            continue  # a slot being migrated
        first, _, last = part.partition("-")
        ranges.append((int(first), int(last or first)))
    return ranges


def whole() -> str | None:
    """None when both stores are whole again (primary with two live replicas and a quorum; every Cluster
    master with a replica), else what is still missing."""
    try:
        primary = sentinel_primary()
        info = cli(primary, "info", "replication")
        online = info.count("state=online")
        if "role:master" not in info or online < 2:
            return f"sentinel primary {primary} has {online} of 2 replicas online"
        for sentinel in SENTINELS:
            if not cli(sentinel, "sentinel", "ckquorum", SENTINEL_SERVICE, port=26379).startswith("OK"):
                return f"{sentinel} sees no quorum"
        masters = cluster_masters()
        if len(masters) != 3 or not all(m["replicas"] for m in masters):
            return "a Cluster master lacks a replica"
        for service in CLUSTER:
            if "cluster_state:ok" not in cli(service, "cluster", "info"):
                return f"{service} does not see cluster_state:ok"
    except LabError as exc:
        return str(exc)
    return None
