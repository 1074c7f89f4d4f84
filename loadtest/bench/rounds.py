"""One bench round: wrk saturating one strategy's path through nginx for a few seconds, with the CPU every
container used and the steal time of the machine around it. Used by the cost suite (run.py), the growth
suite (growth.py) and the capacity the saturation suite loads against (capacity.py).
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from pathlib import Path

from loadtest.bench import cpu, sessions, spread, wrk
from loadtest.lab import DEFAULT_MODE, LAB_URL, REPLICA_ROUTING

READ, WRITE, BALANCER = "read", "write", "balancer"  # the paths a round measures; balancer: nginx alone
# The routing of the strategies that need no sticky routing, and of those that do:
SPREAD, STICKY = DEFAULT_MODE, REPLICA_ROUTING
THREADS = 2  # one per core of the machine the lab was measured on; wrk's threads are event loops
CONNECTIONS = 32  # enough to keep three 16-thread nodes busy (the issue's own hand measurement used 32)
CART_ITEMS = 5  # the read path's cart: "a few items"
ADDS_PER_SESSION = 40  # the write path's carts grow from 0 to this, below MAX_CART_ITEMS (50)
READ_SESSIONS = 64  # per strategy and round trip: more than connections, so requests spread over sessions
WRITE_RATE_GUESS = 4000  # requests/s a strategy's write path cannot exceed here, to size its session pool
ITEM_LENGTH = 64  # MAX_ITEM_LENGTH's default (.env.example): the largest item a cart takes


def pool_size(path: str, seconds: float) -> int:
    """Sessions a round of `path` needs: on the write path, enough that no cart fills during the round."""
    if path == READ:
        return READ_SESSIONS
    return math.ceil(WRITE_RATE_GUESS * seconds / ADDS_PER_SESSION) + CONNECTIONS


def round_line(row: dict, labels: dict, elapsed: float) -> str:
    """The progress line of one round: what it measured, and whether steal time makes it noisy."""
    errors = sum(row["errors"].values())
    return (f"[{elapsed:6.1f}s] {row['mode']:<11} {row['strategy']:<17} {row['path']:<8} "
            + "".join(f"{k} {v}  " for k, v in labels.items())
            + f"round {row['round']}: {row['rps']:8.1f} req/s  p50 {row['p50_ms']:6.1f} ms  p99 {row['p99_ms']:7.1f} ms"
            + f"  steal {row['steal']:.1%}" + ("  NOISY (steal time)" if spread.noisy_round(row) else "")
            + (f"  ERRORS {row['errors']}" if errors else ""))


class Bench:
    """The rounds of one bench run, and the raw files they go to as soon as measured."""

    def __init__(self, out: Path, seconds: float, rounds: int, bursts: int):
        self.out, self.seconds, self.rounds, self.bursts = out, seconds, rounds, bursts
        self.pids = cpu.containers()
        self.rows: list[dict] = []
        self.races: list[dict] = []
        self.work = Path(tempfile.mkdtemp(prefix="session-lab-bench-"))
        self.started = time.monotonic()

    def round(self, strategy: dict | None, path: str, mode: str, number: int, sessions_file: Path | None = None,
              **labels) -> dict:
        """One wrk round of `strategy` on `path`; None: the balancer's own endpoint (the tool's ceiling). The
        sessions are made for the round unless `sessions_file` has them; `labels` go into its row."""
        name = strategy["name"] if strategy else BALANCER
        if strategy is None:
            args = ["-", BALANCER]
        else:
            file = sessions_file or self.work / f"{name}-{path}.sessions"
            if sessions_file is None:
                sessions.make(strategy, pool_size(path, self.seconds), CART_ITEMS if path == READ else 0, file)
            args = [name, path, str(file), str(ADDS_PER_SESSION)]
        before, ticks = cpu.reading(self.pids), cpu.machine_ticks()
        result = wrk.run(LAB_URL, args, self.seconds, THREADS, CONNECTIONS)
        used, steal = cpu.used(before, cpu.reading(self.pids)), cpu.steal_share(ticks, cpu.machine_ticks())
        row = {"strategy": name, "path": path, "mode": mode, "round": number, **labels,
               "rps": round(result["requests"] / result["seconds"], 1), **result, "cpu_s": used, "steal": steal}
        self.rows.append(row)
        self.record("rounds.jsonl", row)
        print(round_line(row, labels, time.monotonic() - self.started), flush=True)
        return row

    def record(self, name: str, entry: dict) -> None:
        """Append to a raw file as soon as measured: an interrupted bench keeps what it had."""
        with (self.out / name).open("a") as f:
            f.write(json.dumps(entry) + "\n")
