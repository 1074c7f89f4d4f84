"""What three nodes can carry of the experiment's user mix: the figure the saturation suite loads against.

Each strategy's read path and write path are saturated with wrk through nginx (one bench round each, in the
routing mode the suite runs in). The mix's capacity follows from the requests' cost: a request of kind k
takes 1 / rps_k of the stack's time when it alone saturates it, so a mix that sends share s_k of its
requests as kind k saturates at 1 / sum(s_k / rps_k). The Locust users (loadtest/users/locustfile.py) read
three times for every two adds and spread evenly over the strategies; logins, logouts and replays are a few
percent of their requests and are left out, so the real mix costs slightly more than this figure.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from loadtest.bench.rounds import READ, WRITE, Bench

# The users' task weights: @task(3) read, @task(2) add (locustfile.py).
READ_SHARE = 3 / 5
SECONDS = 3  # per strategy and path: long enough to saturate, short enough to run before every suite


def mix_capacity(per_strategy: dict[str, dict[str, float]]) -> float:
    """Requests/s at which the mix saturates, from each strategy's read and write saturation rates."""
    if not per_strategy:
        raise ValueError("no strategy measured")
    cost = sum(READ_SHARE / rates[READ] + (1 - READ_SHARE) / rates[WRITE] for rates in per_strategy.values())
    return len(per_strategy) / cost


def measure(strategies: list[dict], mode: str, out: Path, seconds: float = SECONDS) -> dict:
    """Saturate each strategy's two paths once; the rates, the mix's capacity, and the raw rounds in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    bench = Bench(out, seconds, rounds=1, bursts=0)
    try:
        for strategy in strategies:
            for path in (READ, WRITE):
                bench.round(strategy, path, mode, 1)
    finally:
        shutil.rmtree(bench.work, ignore_errors=True)  # live credentials: not left behind in /tmp
    per_strategy = {s["name"]: {r["path"]: r["rps"] for r in bench.rows if r["strategy"] == s["name"]}
                    for s in strategies}
    errors = sum(sum(r["errors"].values()) for r in bench.rows)
    result = {"mode": mode, "seconds": seconds, "read_share": READ_SHARE, "per_strategy": per_strategy,
              "rps": round(mix_capacity(per_strategy), 1), "errors": errors}
    (out / "capacity.json").write_text(json.dumps(result, indent=2))
    return result
