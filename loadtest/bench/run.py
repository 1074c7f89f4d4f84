"""make bench: what each strategy costs at saturation, through nginx, next to the strategy that keeps nothing.

For every strategy in the registry, on the read path (GET a cart holding a few items) and the write path
(adds, sessions rotated so carts never fill), closed-loop load from wrk saturates the stack for a few
seconds. Each round of a strategy runs right beside a round of the baseline (the strategy that keeps no
state) on the same path and routing, in alternating order, so the ratio of the two cancels most of what
else the shared machine is doing. Around every round the CPU each container used is read from its cgroup.
Strategies that keep sessions inside one node run in sticky routing, with their baseline rounds; the
others in round-robin. Then every strategy that keeps state runs the concurrency race (race.py). The
routing mode is put back at the end, whatever happens.

Results go to results/bench-<UTC time>/: rounds.jsonl (every round, raw), race.jsonl, bench.json and bench.md (per
strategy and path), bench.png (loadtest/bench/summary.py). Exit 0 when every request of every round was
answered without an error, 1 otherwise (the results are written either way), 2 on bad usage.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

from loadtest.bench import cpu, race, sessions, summary, wrk
from loadtest.faults import compose

READ, WRITE, BALANCER = "read", "write", "balancer"
THREADS = 2  # one per core of the machine the lab was measured on; wrk's threads are event loops
CONNECTIONS = 32  # enough to keep three 16-thread nodes busy (the issue's own hand measurement used 32)
CART_ITEMS = 5  # the read path's cart: "a few items"
ADDS_PER_SESSION = 40  # the write path's carts grow from 0 to this, below MAX_CART_ITEMS (50)
READ_SESSIONS = 64  # per strategy and round trip: more than connections, so requests spread over sessions
WRITE_RATE_GUESS = 4000  # requests/s a strategy's write path cannot exceed here, to size its session pool
STICKY, SPREAD = "sticky", "round-robin"


def plan(strategies: list[dict]) -> tuple[dict, list[tuple[str, list[dict]]]]:
    """The baseline, and the other strategies grouped by the routing they need, round-robin first."""
    baselines = [s for s in strategies if not s["keeps_state"]]
    if len(baselines) != 1:
        raise compose.LabError(f"the bench needs exactly one strategy that keeps no state, found {len(baselines)}")
    others = [s for s in strategies if s["keeps_state"]]
    groups = [(mode, [s for s in others if s["needs_sticky"] == (mode == STICKY)]) for mode in (SPREAD, STICKY)]
    return baselines[0], [(mode, members) for mode, members in groups if members]


def pool_size(path: str, seconds: float) -> int:
    if path == READ:
        return READ_SESSIONS
    return math.ceil(WRITE_RATE_GUESS * seconds / ADDS_PER_SESSION) + CONNECTIONS


class Bench:
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
        before = cpu.reading(self.pids)
        result = wrk.run(compose.LAB_URL, args, self.seconds, THREADS, CONNECTIONS)
        used = cpu.used(before, cpu.reading(self.pids))
        row = {"strategy": name, "path": path, "mode": mode, "round": number, **labels,
               "rps": round(result["requests"] / result["seconds"], 1), **result, "cpu_s": used}
        self.rows.append(row)
        self.record("rounds.jsonl", row)
        errors = sum(result["errors"].values())
        print(f"[{time.monotonic() - self.started:6.1f}s] {mode:<11} {row['strategy']:<17} {path:<8} "
              + "".join(f"{k} {v}  " for k, v in labels.items()) +
              f"round {number}: {row['rps']:8.1f} req/s  p50 {result['p50_ms']:6.1f} ms  p99 {result['p99_ms']:7.1f} ms"
              + (f"  ERRORS {result['errors']}" if errors else ""), flush=True)
        return row

    def record(self, name: str, entry: dict) -> None:
        """Append to a raw file as soon as measured: an interrupted bench keeps what it had."""
        with (self.out / name).open("a") as f:
            f.write(json.dumps(entry) + "\n")

    def strategy(self, baseline: dict, strategy: dict, mode: str) -> None:
        for path in (READ, WRITE):
            for number in range(1, self.rounds + 1):
                pair = (baseline, strategy) if number % 2 else (strategy, baseline)  # alternate: drift cancels
                for member in pair:
                    self.round(member, path, mode, number)
        result = {**race.measure(strategy, self.bursts), "mode": mode}
        self.races.append(result)
        self.record("race.jsonl", result)
        print(f"[{time.monotonic() - self.started:6.1f}s] {mode:<11} {strategy['name']:<17} race     "
              f"{result['bursts']} bursts of {result['burst']}: {result['lost']} of {result['acknowledged']} "
              f"acknowledged adds lost", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one short round per strategy and path (CI)")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per round (default 5; quick 2)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per strategy and path (default 3; quick 1)")
    parser.add_argument("--bursts", type=int, default=None, help="race bursts per strategy (default 20; quick 3)")
    parser.add_argument("--only", default="", help="comma-separated strategies to measure (default: all; the "
                        "baseline always runs)")
    parser.add_argument("--suite", choices=("cost", "growth"), default="cost", help="cost (default): every strategy "
                        "beside the baseline, and the race; growth: cart size, live sessions and app nodes "
                        "(loadtest/bench/growth.py)")
    parser.add_argument("--out", type=Path, default=None, help="results folder (default results/bench-<time>)")
    args = parser.parse_args(argv)
    seconds = args.seconds if args.seconds is not None else (2 if args.quick else 5)
    rounds = args.rounds if args.rounds is not None else (1 if args.quick else 3)
    bursts = args.bursts if args.bursts is not None else (3 if args.quick else 20)
    if seconds < 1 or rounds < 1 or bursts < 1:
        parser.error("--seconds must be at least 1, --rounds and --bursts at least 1")
    try:
        wrk.require()
        compose.require_stack()
        registry = compose.strategies()
        unknown = {n for n in args.only.split(",") if n} - {s["name"] for s in registry}
        if unknown:
            raise compose.LabError(f"--only names no strategy of this lab: {', '.join(sorted(unknown))}", exit_code=2)
        baseline, groups = plan(registry)
        if args.only:
            wanted = set(args.only.split(","))
            groups = [(mode, kept) for mode, members in groups if (kept := [s for s in members if s["name"] in wanted])]
    except compose.LabError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return exc.exit_code
    out = args.out or compose.ROOT / "results" / time.strftime(
        ("growth" if args.suite == "growth" else "bench") + "-%Y%m%dT%H%M%SZ", time.gmtime())
    out.mkdir(parents=True, exist_ok=True)
    if args.suite == "growth":
        return grow(out, [baseline] + [s for _, members in groups for s in members], seconds, args.quick)
    print(f"bench: {sum(len(m) for _, m in groups)} strategies beside {baseline['name']}, {rounds} round(s) of "
          f"{seconds:g} s per path, {CONNECTIONS} connections; results in {out}", flush=True)
    mode_before = compose.current_mode()
    bench = Bench(out, seconds, rounds, bursts)
    interrupted = False
    try:
        compose.switch_mode(SPREAD)
        bench.round(None, BALANCER, SPREAD, 1)  # the load tool's ceiling: nginx answering by itself
        for mode, members in groups:
            compose.switch_mode(mode)
            for strategy in members:
                bench.strategy(baseline, strategy, mode)
    except compose.LabError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        interrupted = True
        print("bench: interrupted; writing what was measured", file=sys.stderr)
    finally:
        shutil.rmtree(bench.work, ignore_errors=True)  # live credentials: not left behind in /tmp
        compose.switch_mode(mode_before)
        if bench.rows:
            summary.write(out, bench.rows, bench.races, baseline["name"], {
                "seconds": seconds, "rounds": rounds, "connections": CONNECTIONS, "threads": THREADS,
                "cart_items": CART_ITEMS, "adds_per_session": ADDS_PER_SESSION, "bursts": bursts, "burst": race.BURST, "quick": args.quick})
            print(f"bench: {out / 'bench.md'}")
    if interrupted:
        return 130
    failed = [r for r in bench.rows if sum(r["errors"].values())] + [r for r in bench.races if r["errors"]]
    if failed:
        print(f"bench: {len(failed)} round(s) or race(s) had errors (see bench.md)", file=sys.stderr)
        return 1
    return 0


def grow(out: Path, strategies: list[dict], seconds: float, quick: bool) -> int:
    """The growth suite (growth.py), with the routing mode put back and the temporary sessions removed."""
    from loadtest.bench import growth  # it builds on this module's Bench

    print(f"bench: growth of {len(strategies)} strategies' costs, rounds of {seconds:g} s; results in {out}",
          flush=True)
    mode_before = compose.current_mode()
    bench = Bench(out, seconds, rounds=1, bursts=0)
    suite = growth.Growth(bench, strategies, quick)
    status = 0
    try:
        for part in (suite.carts, suite.live_sessions, suite.nodes):
            part()
    except compose.LabError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        status = exc.exit_code
    except KeyboardInterrupt:
        print("bench: interrupted; writing what was measured", file=sys.stderr)
        status = 130
    finally:
        shutil.rmtree(bench.work, ignore_errors=True)
        compose.switch_mode(mode_before)
        if suite.rows:
            growth.write(out, suite.rows, {"seconds": seconds, "quick": quick, "item_length": growth.ITEM_LENGTH,
                                           "node_cpus": growth.NODE_CPUS})
            print(f"bench: {out / 'growth.md'}")
    if not status and any(r.get("errors") for r in suite.rows):
        print("bench: some growth rounds had errors (see growth.md)", file=sys.stderr)
        return 1
    return status


if __name__ == "__main__":
    sys.exit(main())
