"""Raw per-request records: one CSV row per answer, the source of every figure the runner reports."""

from __future__ import annotations

import csv
from pathlib import Path

# slot: the Redis Cluster slot of the session the user held (its id's CRC16, as the keys' {sid} hash tag),
# or -1 without a session cookie; it tells which shard a cluster fault should touch.
COLUMNS = ["t", "strategy", "user", "action", "status", "outcome", "lost_items", "latency_ms", "node", "slot"]


class Recorder:
    def __init__(self):
        self.rows: list[tuple] = []

    def add(self, t, strategy, user, action, status, outcome, lost_items, latency_ms, node, slot=-1) -> None:
        self.rows.append((round(t, 4), strategy, user, action, status, outcome, lost_items, round(latency_ms, 2), node,
                          slot))

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(COLUMNS)
            writer.writerows(self.rows)


def read(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r["t"] = float(r["t"])
        r["status"] = int(r["status"])
        r["lost_items"] = int(r["lost_items"])
        r["latency_ms"] = float(r["latency_ms"])
        r["slot"] = int(r.get("slot") or -1)  # older runs have no slot column
    return rows
