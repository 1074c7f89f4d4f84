"""Why each fault looks the way it does: the report's notes, with every number read from the config it describes.

The notes used to restate the config by hand and drifted (a 1 s connect timeout long after proxy.conf said
200 ms, a 1.5 s cluster-node-timeout after redis.conf said 1000 ms). Now each number is a `Fact`: a pattern
over one file of this checkout. A fact that cannot be found raises, and tests/unit/test_report_notes.py reads
every one, so a renamed directive fails a test instead of printing a stale figure. The notes describe the
checkout that builds the report, which is the config the run used unless the config changed since.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Fact:
    file: str  # relative to the repository's root
    pattern: str  # its first group is the value
    unit: str = ""  # how the value reads: "ms", "s" or "" (as written)
    within: str = ""  # a pattern the value must follow in the file (the block it belongs to)


def _seconds(raw: str) -> float:
    """nginx and compose durations ("200ms", "5s") in seconds."""
    number, unit = re.fullmatch(r"([\d.]+)(ms|s)", raw).groups()
    return float(number) / (1000 if unit == "ms" else 1)


def _duration(seconds: float) -> str:
    """'200 ms', '5 s', '0.5 s', '1.5 s'."""
    if seconds < 0.5:
        return f"{seconds * 1000:g} ms"
    return f"{seconds:g} s"


FACTS = {
    "connect_timeout": Fact("loadbalancer/proxy.conf", r"^proxy_connect_timeout (\S+);", "duration"),
    "read_timeout": Fact("loadbalancer/proxy.conf", r"^proxy_read_timeout (\S+);", "duration"),
    "retry_budget": Fact("loadbalancer/proxy.conf", r"^proxy_next_upstream_timeout (\S+);", "duration"),
    "passive": Fact("loadbalancer/render-mode.sh", r'^passive="(max_fails=\d+ fail_timeout=\S+)"'),
    "graceful_timeout": Fact("services/app/gunicorn.conf.py", r'"GUNICORN_GRACEFUL_TIMEOUT", "(\d+)"', "s"),
    "stop_grace_period": Fact("docker-compose.yml", r"^  stop_grace_period: (\S+)", "duration", r"^x-app-node:"),
    "redis_connect_timeout": Fact("services/app/session_lab/config.py", r'"REDIS_CONNECT_TIMEOUT", ([\d.]+)', "s"),
    "store_retry_budget": Fact("services/app/session_lab/config.py", r'"STORE_RETRY_BUDGET", ([\d.]+)', "s"),
    "down_after": Fact("stores/sentinel/sentinel.conf", r"^sentinel down-after-milliseconds \S+ (\d+)", "ms"),
    "quorum": Fact("stores/sentinel/sentinel.conf", r"^sentinel monitor \S+ \S+ \S+ (\d+)"),
    "cluster_node_timeout": Fact("stores/cluster/redis.conf", r"^cluster-node-timeout (\d+)", "ms"),
}


def read(fact: Fact, root: Path = ROOT) -> str:
    """The fact as the notes print it."""
    text = (root / fact.file).read_text()
    if fact.within:
        start = re.search(fact.within, text, re.MULTILINE)
        text = text[start.end():] if start else ""
    found = re.search(fact.pattern, text, re.MULTILINE)
    if not found:
        raise LookupError(f"{fact.file}: nothing matches {fact.pattern!r}; the report's notes need it")
    raw = found.group(1)
    if fact.unit == "duration":
        return _duration(_seconds(raw))
    if fact.unit in ("s", "ms"):
        return _duration(float(raw) / (1000 if fact.unit == "ms" else 1))
    return raw.replace(" ", ", ")


@cache
def facts(root: Path = ROOT) -> dict[str, str]:
    return {name: read(fact, root) for name, fact in FACTS.items()}


# Keyed by fault: what an app-node fault does. {names} are FACTS.
WHY = {
    "kill": "SIGKILL ends app2 mid-request. nginx replays what it had sent there on another node, POSTs "
            "included: an add carries an Idempotency-Key and a jwt/client request its old state, so a replay "
            "never applies an add twice. The dead node's address stops answering, so nginx's {connect_timeout} "
            "connect timeout shows as a short latency spike until it marks the node down ({passive}). "
            "Node-local (memory) sessions on app2 are gone: under sticky routing exactly those users log in "
            "again elsewhere, while the replicated ones are served by app3, app2's buddy, from its copies; "
            "under ip-hash the load users' forwarded addresses "
            "spread them too, so the kill costs the memory users hashed to app2 their sessions; nginx rehashes "
            "them elsewhere meanwhile, and sends them back when app2 returns, which costs the sessions they "
            "started during the outage.",
    "stop": "SIGTERM lets gunicorn finish in-flight requests (graceful_timeout {graceful_timeout}, "
            "stop_grace_period {stop_grace_period}). "
            "It also closes idle keepalive connections, and a request nginx sends on one at that instant is "
            "replayed on another node, so no request fails; memory sessions on app2 are still lost, because "
            "they lived in the stopped process.",
    "pause": "A frozen node still accepts TCP connections but never answers: requests sent to it wait "
             "proxy_read_timeout ({read_timeout}) and are then replayed elsewhere, within the {retry_budget} retry "
             "budget, or fail with a 504 when it runs out. When the node thaws it applies its stale copies: a "
             "replayed add "
             "is a no-op thanks to its Idempotency-Key, and nobody waits for the answers. Zombie writes from a "
             "paused node: flask-session's requests frozen mid-way wake up and write their stale session back "
             "over the adds the other nodes acknowledged meanwhile (its read-modify-write), so it may lose "
             "acknowledged writes here; the strategies that change the stored cart in place cannot.",
    "redeploy": "Each app node in turn is replaced by a new container, as a version upgrade would: a graceful "
                "stop, a new process, healthy, and every replicated node's copies on its buddy again before the "
                "next. Memory sessions die with each node; the replicated ones move to the buddy as the node "
                "stops (sticky routing sends its users there, and a user who comes back to the new, empty node "
                "is handed the session back); store-backed and stateless strategies do not notice.",
    "disconnect": "Cut off from the lab network, the node cannot be reached at all: connections time out after "
                  "{connect_timeout} and nginx replays the requests elsewhere; a request already sent when the cut "
                  "happened waits the {read_timeout} read timeout first.",
}
# Keyed by target (a store role, a node group): what a store fault or a node-group fault does.
ROLE_WHY = {
    "node-and-buddy": "A node and its buddy killed together: the first node's replicated sessions had their only "
                      "copy on the second, so exactly those users lose them (sticky routing tries both, then any "
                      "node, which answers 401). The second node's users reach the third node, which holds their "
                      "copies; the third node serves its own users without a copy until its buddy returns.",
    "sentinel-primary": "The sentinels mark the primary down after {down_after} without answers (down-after), agree "
                        "(quorum {quorum}), elect a leader and promote a replica: the store timeline shows each step. "
                        "Meanwhile the app retries with backoff for up to {store_retry_budget}, asking the sentinels "
                        "where the primary is on "
                        "every new connection, so most requests only wait. A killed primary may take its last "
                        "acknowledged writes with it (asynchronous replication): sentinel counts them as writes "
                        "lost, sentinel-wait acknowledged nothing a replica had not confirmed. Paused or cut off, "
                        "the old primary wakes up still believing it is primary; min-replicas-to-write makes it "
                        "refuse writes until the sentinels demote it, instead of acknowledging writes that would "
                        "vanish. A graceful stop waits for the replicas to catch up before it exits.",
    "sentinel-replica": "One replica gone: the primary keeps serving, the other replica still confirms "
                        "sentinel-wait's writes.",
    "sentinel-quorum": "Two of three sentinels gone: no failover is possible any more (no quorum, no majority to "
                       "elect a leader), but nothing has failed yet, so the primary serves on: 0 errors. A primary "
                       "dying now would stay down until a sentinel returns.",
    "cluster-master": "The shard's master stops answering; after cluster-node-timeout ({cluster_node_timeout}) the "
                      "other masters "
                      "agree it failed and its replica wins the election and takes over its slots. Only sessions "
                      "whose slots that shard serves wait or get 503s (errors off shard = 0); the other two shards "
                      "answer throughout. The promoted replica has no replica of its own until the old master "
                      "returns, so cluster-wait refuses writes on that shard (503 write_not_confirmed) for the rest "
                      "of the outage: durability bought with availability.",
    "cluster-shard": "Master and replica both gone: the shard's slots have no copy left. With full coverage off "
                     "the other shards carry on; the lost shard's sessions get 503 until its nodes return from "
                     "their append-only files with the data intact.",
}
STORE_WHY = ("With its store down, a strategy answers 503 after Redis' {redis_connect_timeout} connect timeout, "
             "and the others "
             "carry on. Redis keeps no data by default (no RDB, no AOF), so when it comes back every redis "
             "session is gone and its users log in again (sessions lost after recovery); REDIS_AOF=yes keeps "
             "them, minus up to a second of writes (appendfsync everysec). jwt serves throughout, but its logouts "
             "during the outage reach only the node that served them until Redis returns: replays of those "
             "tokens on other nodes count as not revoked (the documented gap).")


def why(fault: str, target: str, store: str) -> str:
    """The note for one fault on one target (`store`: the store the target belongs to, "" for app nodes)."""
    template = ROLE_WHY.get(target) or (STORE_WHY if store else WHY.get(fault, ""))
    return template.format(**facts())
