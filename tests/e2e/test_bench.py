"""`make bench QUICK=1` against the real stack: every strategy of the registry measured on both paths beside
the baseline, every request answered, CPU read from the containers' cgroups, the load tool's ceiling
measured, the figures rebuilt from the raw rounds alone, and no ratio given from one round (a smoke test)."""

import json
import shutil
import subprocess
import sys

from loadtest.bench import summary
from tests.conftest import require
from tests.e2e.conftest import ROOT


def test_a_quick_bench_measures_every_strategy_on_both_paths(lab, tmp_path):
    require(shutil.which("wrk") is not None, "wrk is not installed (apt-get install wrk)")
    out = tmp_path / "bench"
    done = subprocess.run([sys.executable, "-m", "loadtest.bench.run", "--quick", "--out", str(out)],
                          cwd=ROOT, env=lab.tool_env(), capture_output=True, text=True, timeout=400, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]

    result = json.loads((out / "bench.json").read_text())
    registry = {s["name"]: s for s in lab.strategies()}
    baseline = result["baseline"]
    assert not registry[baseline]["keeps_state"]
    measured = {(e["strategy"], e["path"]) for e in result["results"]}
    assert measured >= {(name, path) for name in registry for path in ("read", "write")}
    for entry in result["results"]:
        assert entry["errors"] == 0 and entry["rps"] > 0, entry
        assert entry["cpu_s_per_1k"]["balancer"] > 0 and entry["cpu_s_per_1k"]["app nodes"] > 0, entry
        assert entry["mode"] == ("sticky" if registry[entry["strategy"]]["needs_sticky"] else "round-robin") \
            or entry["strategy"] == baseline
        # A smoke test: one round has no spread, so no ratio is given, only the reason.
        assert entry["ratio"] is None, entry
        if entry["strategy"] != baseline:
            assert entry["rounds"] == 1 and "no spread" in entry["ratio_spread"]["noisy"], entry
    # Writes really changed carts: a store-backed strategy's store worked for them.
    for name, traits in registry.items():
        if traits["dependencies"]:
            write = next(e for e in result["results"] if e["strategy"] == name and e["path"] == "write")
            assert write["cpu_s_per_1k"]["stores"] > 0, write
    # The race: every strategy that keeps state, no failed add, and the outcome its `concurrent_adds` trait
    # names: all adds kept (in-place stores, node-local ones included), the last answer's state only, or
    # anywhere between for a session read and written back whole (how many are dropped depends on timing).
    races = {r["strategy"]: r for r in result["race"]}
    assert set(races) == {name for name, traits in registry.items() if traits["keeps_state"]}
    for name, r in races.items():
        assert r["errors"] == 0 and r["reads_failed"] == 0 and r["acknowledged"] == r["bursts"] * r["burst"], r
        all_but_one = r["bursts"] * (r["burst"] - 1)
        expected = {"kept": {0}, "last-wins": {all_but_one}, "may-drop": set(range(all_but_one + 1))}
        assert r["lost"] in expected[registry[name]["concurrent_adds"]], r
    assert result["tool"]["ceiling_rps"] > 0 and 0 < result["tool"]["tool_cpu_share_max"] < 1
    page = (out / "bench.md").read_text()
    assert (out / "bench.png").stat().st_size > 10_000 and page.startswith("Smoke test") and "ratio to" in page
    assert "bench: Smoke test" in done.stdout
    assert summary.rebuild(out)["results"] == result["results"]  # every figure follows from rounds.jsonl
    assert lab.mode() == "round-robin"  # the bench put the routing back


def test_the_growth_suite_measures_carts_live_sessions_and_nodes(lab, tmp_path):
    require(shutil.which("wrk") is not None, "wrk is not installed (apt-get install wrk)")
    registry = {s["name"]: s for s in lab.strategies()}
    # One strategy on the shared Redis and one inside the nodes, picked by traits.
    on_redis = next(n for n, s in registry.items() if s["dependencies"] == ["redis"] and s["keeps_state"])
    in_node = next(n for n, s in registry.items() if s["needs_sticky"])
    out = tmp_path / "growth"
    done = subprocess.run([sys.executable, "-m", "loadtest.bench.run", "--suite", "growth", "--quick", "--only",
                           f"{on_redis},{in_node}", "--out", str(out)],
                          cwd=ROOT, env=lab.tool_env(), capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    result = json.loads((out / "growth.json").read_text())
    carts = {(r["strategy"], r["cart"]): r for r in result["cart"]}
    full = carts[(on_redis, "full, longest items")]
    assert carts[(on_redis, "empty")]["items"] == 0 and carts[(on_redis, "10 items")]["items"] == 10
    assert full["items"] > 10 and full["response_bytes"] > carts[(on_redis, "empty")]["response_bytes"] + 64 * 10
    assert all(r["rps"] > 0 and r["errors"] == 0 for r in result["cart"])
    sessions = {(r["strategy"], r["sessions"]): r for r in result["sessions"]}
    assert set(sessions) == {(name, level) for name in (on_redis, in_node) for level in (100, 1000)}
    assert sessions[(on_redis, 1000)]["where"] == "redis" and sessions[(in_node, 1000)]["where"] == "app nodes"
    assert sessions[(on_redis, 1000)]["bytes_per_session"] > 100  # a session's keys, measured in Redis itself
    nodes = {(r["strategy"], r["nodes"]): r["rps"] for r in result["nodes"]}
    assert set(nodes) >= {(on_redis, n) for n in (1, 2, 3)}
    assert nodes[(on_redis, 3)] > nodes[(on_redis, 1)]  # three nodes, each its own share of the cores, carry more
    for picture in ("growth-cart.png", "growth-sessions.png", "growth-nodes.png"):
        assert (out / picture).stat().st_size > 10_000
    assert lab.running() >= {"app1", "app2", "app3"} and lab.mode() == "round-robin"  # the stack as it was
