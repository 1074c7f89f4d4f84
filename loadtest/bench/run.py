"""make bench: what each strategy costs at saturation, through nginx, next to the strategy that keeps nothing.

For every strategy in the registry, on the read path (GET a cart holding a few items) and the write path
(adds, sessions rotated so carts never fill), closed-loop load from wrk saturates the stack for a few
seconds. Each round of a strategy runs right beside a round of the baseline (the strategy that keeps no
state) on the same path and routing, in alternating order, so the ratio of the two cancels most of what
else the shared machine is doing. Around every round the CPU each container used is read from its cgroup.
Strategies that keep sessions inside one node run in sticky routing, with their baseline rounds; the
others in round-robin. Then every strategy that keeps state runs the concurrency race (race.py). The
routing mode is put back at the end, whatever happens.

Every figure comes with its spread over the rounds, or is shown as noisy (spread.py); the quick bench, one
round each, is a smoke test and gives no ratio. Results go to results/bench-<UTC time>/: rounds.jsonl
(every round, raw), race.jsonl, bench.json and bench.md (per strategy and path), bench.png
(loadtest/bench/summary.py). Exit 0 when every request of every round was
answered without an error, 1 otherwise (the results are written either way), 2 on bad usage.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from loadtest.bench import growth, race, summary, wrk
from loadtest.bench.rounds import (
    ADDS_PER_SESSION,
    BALANCER,
    CART_ITEMS,
    CONNECTIONS,
    ITEM_LENGTH,
    READ,
    SPREAD,
    STICKY,
    THREADS,
    WRITE,
    Bench,
)
from loadtest.faults.docker import current_mode, require_stack, strategies, switch_mode
from loadtest.faults.readiness import NODE_CPUS
from loadtest.lab import ROOT, LabError

QUICK = {"seconds": 2, "rounds": 1, "bursts": 3}  # a smoke test: every path once, short
FULL = {"seconds": 5, "rounds": 3, "bursts": 20}


def routing_groups(registry: list[dict]) -> tuple[dict, list[tuple[str, list[dict]]]]:
    """The baseline, and the other strategies grouped by the routing they need, round-robin first."""
    baselines = [s for s in registry if not s["keeps_state"]]
    if len(baselines) != 1:
        raise LabError(f"the bench needs exactly one strategy that keeps no state, found {len(baselines)}")
    others = [s for s in registry if s["keeps_state"]]
    groups = [(mode, [s for s in others if s["needs_sticky"] == (mode == STICKY)]) for mode in (SPREAD, STICKY)]
    return baselines[0], [(mode, members) for mode, members in groups if members]


@dataclass(frozen=True)
class BenchPlan:
    """What one `make bench` measures, and where the results go."""

    suite: str  # cost: every strategy beside the baseline, and the race; growth: growth.py
    quick: bool
    seconds: float
    rounds: int
    bursts: int
    baseline: dict
    groups: list[tuple[str, list[dict]]]  # (routing mode, the strategies measured in it)
    out: Path

    @property
    def measured(self) -> list[dict]:
        return [s for _, members in self.groups for s in members]

    def settings(self) -> dict:
        """As bench.md and bench.json record them."""
        return {"seconds": self.seconds, "rounds": self.rounds, "connections": CONNECTIONS, "threads": THREADS,
                "cart_items": CART_ITEMS, "adds_per_session": ADDS_PER_SESSION, "bursts": self.bursts,
                "burst": race.BURST, "quick": self.quick}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke test: one short round per strategy and path, "
                        "no ratios (CI)")
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
    for name, default in (QUICK if args.quick else FULL).items():
        if getattr(args, name) is None:
            setattr(args, name, default)
    if args.seconds < 1 or args.rounds < 1 or args.bursts < 1:
        parser.error("--seconds must be at least 1, --rounds and --bursts at least 1")
    return args


def plan_bench(args: argparse.Namespace, registry: list[dict], now: time.struct_time) -> BenchPlan:
    """The plan from the arguments and the lab's strategies (as /api/strategies describes them)."""
    wanted = {n for n in args.only.split(",") if n}
    unknown = wanted - {s["name"] for s in registry}
    if unknown:
        raise LabError(f"--only names no strategy of this lab: {', '.join(sorted(unknown))}", exit_code=2)
    baseline, groups = routing_groups(registry)
    if wanted:
        groups = [(mode, kept) for mode, members in groups if (kept := [s for s in members if s["name"] in wanted])]
    prefix = "growth" if args.suite == "growth" else "bench"
    out = args.out or ROOT / "results" / time.strftime(prefix + "-%Y%m%dT%H%M%SZ", now)
    return BenchPlan(args.suite, args.quick, args.seconds, args.rounds, args.bursts, baseline, groups, out)


def measure_strategy(bench: Bench, baseline: dict, strategy: dict, mode: str) -> None:
    """Every round of `strategy` on both paths, each beside a baseline round, then its race."""
    for path in (READ, WRITE):
        for number in range(1, bench.rounds + 1):
            pair = (baseline, strategy) if number % 2 else (strategy, baseline)  # alternate: drift cancels
            for member in pair:
                bench.round(member, path, mode, number)
    result = {**race.measure(strategy, bench.bursts), "mode": mode}
    bench.races.append(result)
    bench.record("race.jsonl", result)
    print(f"[{time.monotonic() - bench.started:6.1f}s] {mode:<11} {strategy['name']:<17} race     "
          f"{result['bursts']} bursts of {result['burst']}: {result['lost']} of {result['acknowledged']} "
          f"acknowledged adds lost", flush=True)


def run_cost(plan: BenchPlan) -> int:
    """The cost suite, with the routing mode put back and the temporary sessions removed."""
    print(f"bench: {len(plan.measured)} strategies beside {plan.baseline['name']}, {plan.rounds} round(s) of "
          f"{plan.seconds:g} s per path, {CONNECTIONS} connections; results in {plan.out}", flush=True)
    mode_before = current_mode()
    bench = Bench(plan.out, plan.seconds, plan.rounds, plan.bursts)
    interrupted = False
    try:
        switch_mode(SPREAD)
        bench.round(None, BALANCER, SPREAD, 1)  # the load tool's ceiling: nginx answering by itself
        for mode, members in plan.groups:
            switch_mode(mode)
            for strategy in members:
                measure_strategy(bench, plan.baseline, strategy, mode)
    except LabError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        interrupted = True
        print("bench: interrupted; writing what was measured", file=sys.stderr)
    finally:
        shutil.rmtree(bench.work, ignore_errors=True)  # live credentials: not left behind in /tmp
        switch_mode(mode_before)
        if bench.rows:
            written = summary.write(plan.out, bench.rows, bench.races, plan.baseline["name"], plan.settings())
            print("\n".join(summary.headline(written.entries, plan.baseline["name"], plan.quick)))
            print(f"bench: {plan.out / 'bench.md'}")
    return 130 if interrupted else exit_code(bench)


def exit_code(bench: Bench) -> int:
    """1 when a round or a race met errors, else 0."""
    failed = [r for r in bench.rows if sum(r["errors"].values())] + [r for r in bench.races if r["errors"]]
    if failed:
        print(f"bench: {len(failed)} round(s) or race(s) had errors (see bench.md)", file=sys.stderr)
        return 1
    return 0


def run_growth(plan: BenchPlan) -> int:
    """The growth suite (growth.py), with the routing mode put back and the temporary sessions removed."""
    measured = [plan.baseline] + plan.measured
    print(f"bench: growth of {len(measured)} strategies' costs, rounds of {plan.seconds:g} s; results in {plan.out}",
          flush=True)
    mode_before = current_mode()
    bench = Bench(plan.out, plan.seconds, rounds=1, bursts=0)
    suite = growth.Growth(bench, measured, plan.quick)
    status = 0
    try:
        for part in (suite.carts, suite.live_sessions, suite.nodes):
            part()
    except LabError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        status = exc.exit_code
    except KeyboardInterrupt:
        print("bench: interrupted; writing what was measured", file=sys.stderr)
        status = 130
    finally:
        shutil.rmtree(bench.work, ignore_errors=True)
        switch_mode(mode_before)
        if suite.rows:
            growth.write(plan.out, suite.rows, {"seconds": plan.seconds, "quick": plan.quick,
                                                "item_length": ITEM_LENGTH, "node_cpus": NODE_CPUS})
            print(f"bench: {plan.out / 'growth.md'}")
    if not status and any(r.get("errors") for r in suite.rows):
        print("bench: some growth rounds had errors (see growth.md)", file=sys.stderr)
        return 1
    return status


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        wrk.require()
        require_stack()
        plan = plan_bench(args, strategies(), time.gmtime())
    except LabError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return exc.exit_code
    plan.out.mkdir(parents=True, exist_ok=True)
    return run_growth(plan) if plan.suite == "growth" else run_cost(plan)


if __name__ == "__main__":
    sys.exit(main())
