"""The report's section on node replication: what copying sessions to a buddy node costs next to keeping
them in one node's memory (write latency, memory on the nodes), and the pattern's place in the world.

Latency comes from the adds acknowledged before the fault of each scenario in sticky mode (the routing the
pattern needs); memory from every node's /readyz just before the fault (loadtest/runs/experiment.py).
"""

from __future__ import annotations

import html
import statistics

from loadtest.lab import APP_NODES
from loadtest.lab import REPLICA_ROUTING as REPLICATION_FAULT_MODE
from loadtest.scoring import tables

COLUMNS = [
    ("strategy", "strategy"), ("add_p50_ms", "add p50 ms"), ("add_p50_x", "p50 x memory"),
    ("add_p99_ms", "add p99 ms"), ("add_p99_x", "p99 x memory"), ("owned", "sessions owned"),
    ("copies", "copies kept"), ("kib", "KiB on the nodes"), ("per_session", "bytes per session owned"),
    ("per_session_x", "per session x memory"),
]
BASELINE = "memory"

ABOUT = """Each node keeps its users' sessions in memory and copies every change to its buddy, the next node of
a ring (app1 to app2 to app3 to app1); sticky routing sends a dead node's users to that buddy, which serves them
from its copy, adopts them and copies them on to its own buddy. It is Tomcat's BackupManager (one backup per
session; DeltaManager copies to every node instead), WildFly's distributable sessions with two owners on
Infinispan, and what memcached-session-manager does with a memcached node beside each Tomcat. The lab's
figures show both halves: one node's death, a graceful stop or a rolling redeploy costs no session, as with a
central store; but every write waits for a second node (or, asynchronously, risks the last second of writes),
every node holds a second copy of someone else's sessions, two adjacent nodes dying together lose the first
one's users outright, and the routing, the ring, the state transfer after a restart and the adoption rules
are all the application's to get right. A central store (Redis with Sentinel or Cluster) moved that
complexity into a component built for it, lets any node serve any user, and scales the nodes and the store
apart: that is why it replaced in-process replication in most deployments."""


def cost_rows(rows: list[dict], scenarios: list[dict], classes: dict[str, type]) -> list[dict]:
    """One row per node-local strategy (memory and the replicated ones), over the sticky-mode scenarios."""
    names = [name for name, cls in classes.items() if cls.needs_sticky]
    sticky = [r for r in rows if r["mode"] == REPLICATION_FAULT_MODE and r["strategy"] in names]
    memory = [s["node_memory"] for s in scenarios if s.get("node_memory")]
    out = []
    for name in names:
        mine = [r for r in sticky if r["add_p50_ms"] is not None and r["strategy"] == name]
        if not mine:
            continue
        held = [_held(snapshot, name) for snapshot in memory]
        out.append({
            "strategy": name,
            "add_p50_ms": round(statistics.median(r["add_p50_ms"] for r in mine), 1),
            "add_p99_ms": round(statistics.median(r["add_p99_ms"] for r in mine), 1),
            "owned": round(statistics.median(h[0] for h in held)) if held else None,
            "copies": round(statistics.median(h[1] for h in held)) if held else None,
            "kib": round(statistics.median(h[2] for h in held) / 1024, 1) if held else None,
            # Per session as well as in all: how many sessions the nodes hold depends on what the run's earlier
            # scenarios left (a user who lost a session logs in again; the old one idles until it expires).
            "per_session": round(statistics.median(h[2] / h[0] for h in held if h[0])) if any(h[0] for h in held)
            else None,
        })
    base = next((r for r in out if r["strategy"] == BASELINE), None)
    for row in out:
        for value, ratio in (("add_p50_ms", "add_p50_x"), ("add_p99_ms", "add_p99_x"), ("per_session", "per_session_x")):
            mine, theirs = row.get(value), base and base.get(value)
            row[ratio] = round(mine / theirs, 2) if mine is not None and theirs else None
    return out


def _held(snapshot: dict, strategy: str) -> tuple[int, int, int]:
    """(sessions owned, copies kept, bytes of both) summed over the nodes, from one /readyz round."""
    reports = [snapshot.get(node, {}).get(strategy, {}) for node in APP_NODES]
    return (sum(r.get("owned", 0) for r in reports), sum(r.get("copies", 0) for r in reports),
            sum(r.get("owned_bytes", 0) + r.get("copy_bytes", 0) for r in reports))


def markdown(cost: list[dict]) -> str:
    return tables.markdown(cost, COLUMNS)


def section(cost: list[dict]) -> str:
    if not cost:
        return ""
    e = html.escape
    return f"""<h2>Node replication: what it saves and what it costs</h2>
<p>{e(ABOUT)}</p>
<p>Adds acknowledged before each fault in {REPLICATION_FAULT_MODE} mode (median over those scenarios), and
what the three nodes hold together just before the fault, as compact JSON, in all and per session a node
owns (its copies elsewhere included). Ratios are to {BASELINE}, within
this one run (the machine is shared: compare ratios, not milliseconds, across runs).</p>
{tables.html_table(cost, COLUMNS)}"""
