"""The bench's bookkeeping, on inputs whose right answers are known: which strategy is the baseline and
which routing each needs (from traits), the plan from the command line, the credential a session sends, the
CPU counters of a cgroup and the machine's steal time, and the figures computed from raw rounds: each with
its spread over rounds, or flagged noisy."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from loadtest.bench import cpu, race, run, sessions, spread, summary
from loadtest.lab import LabError
from session_lab import strategies

REGISTRY = [{"name": cls.name, "keeps_state": cls.keeps_state, "needs_sticky": cls.needs_sticky}
            for cls in strategies.classes()]


def test_the_baseline_and_the_routing_come_from_traits():
    baseline, groups = run.routing_groups(REGISTRY)
    assert not baseline["keeps_state"]
    modes = {mode: [s["name"] for s in members] for mode, members in groups}
    assert list(modes) == ["round-robin", "sticky"]
    assert all(s["needs_sticky"] for s in REGISTRY if s["name"] in modes["sticky"])
    assert sorted(modes["round-robin"] + modes["sticky"] + [baseline["name"]]) == sorted(s["name"] for s in REGISTRY)
    with pytest.raises(LabError, match="exactly one"):
        run.routing_groups([s for s in REGISTRY if s["keeps_state"]])


def test_a_session_sends_its_cookies_or_else_the_token_from_the_body_never_both():
    jar = {"sl_route": "app2"}
    sent = sessions.credential(jar, {"client_session": "blob"}, [("Set-Cookie", "sl_client=blob; Path=/; HttpOnly")])
    assert sent == {"Cookie": "sl_route=app2; sl_client=blob"}
    assert sessions.credential({}, {"token": "t1"}, [("Content-Type", "application/json")]) == \
        {"Authorization": "Bearer t1"}
    assert sessions.credential({}, {}, []) == {}  # the baseline: nothing to send


def test_cpu_comes_from_the_processes_cgroup_in_either_cgroup_version(tmp_path, monkeypatch):
    groups = dict(line.split(":", 2)[1:] for line in Path("/proc/self/cgroup").read_text().splitlines())
    monkeypatch.setattr(cpu, "CGROUP_ROOT", tmp_path)
    with pytest.raises(cpu.CpuUnreadable):
        cpu.seconds(os.getpid())
    unified = tmp_path / groups.get("", "/").lstrip("/")
    unified.mkdir(parents=True, exist_ok=True)
    (unified / "cpu.stat").write_text("usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n")
    if "cpuacct" not in ",".join(groups):
        assert cpu.seconds(os.getpid()) == 2.5
    else:  # cgroup v1 on this machine: its counter wins, in nanoseconds
        v1 = next(path for names, path in groups.items() if "cpuacct" in names.split(","))
        accounting = tmp_path / "cpuacct" / v1.lstrip("/")
        accounting.mkdir(parents=True, exist_ok=True)
        (accounting / "cpuacct.usage").write_text("1250000000\n")
        assert cpu.seconds(os.getpid()) == 1.25
    assert cpu.used({"app1": 1.0, "lb": 2.0}, {"app1": 1.5, "lb": 2.25}) == {"app1": 0.5, "lb": 0.25}


def rnd(strategy, path, number, rps, cpu_s, mode="round-robin", steal=0.0):
    return {"strategy": strategy, "path": path, "mode": mode, "round": number, "rps": rps, "requests": int(rps * 2),
            "seconds": 2.0, "p50_ms": 1.0, "p99_ms": 9.0, "errors": {"status": 0, "timeout": 0},
            "cpu_s": cpu_s, "tool_cpu_s": 0.1, "steal": steal}


def test_ratios_pair_each_round_with_the_baseline_round_beside_it_and_cpu_is_per_1000_requests():
    cpu_s = {"lb": 0.5, "app1": 1.0, "app2": 1.0, "app3": 1.0, "redis": 0.5}
    rows = [rnd("-", "balancer", 1, 10000, cpu_s)]
    rows[0]["strategy"] = "balancer"
    # Round 1: baseline first at 1000 req/s, redis at 600; round 2: redis first at 300 (the machine got
    # busier), its baseline twin at 600: the ratios are 0.6 and 0.5, whatever the absolute numbers.
    rows += [rnd("none", "read", 1, 1000, cpu_s), rnd("redis", "read", 1, 600, cpu_s),
             rnd("redis", "read", 2, 300, cpu_s), rnd("none", "read", 2, 600, cpu_s)]
    entries = {(e.strategy, e.path): e.as_json() for e in summary.aggregate(rows, "none")}
    assert entries[("redis", "read")]["ratio"] == 0.55 and entries[("none", "read")]["ratio"] is None
    assert entries[("redis", "read")]["ratio_spread"]["spread"] == {"median": 0.55, "low": 0.5, "high": 0.6,
                                                                    "rounds": 2}
    # 4 CPU seconds a round, two rounds over (1200 + 600) requests: per 1,000 requests, by container group.
    redis = entries[("redis", "read")]["cpu_s_per_1k"]
    assert redis == {"balancer": round(1.0 / 1800 * 1000, 3), "app nodes": round(6.0 / 1800 * 1000, 3),
                     "stores": round(1.0 / 1800 * 1000, 3)}
    tool = summary.tool_check(rows, cores=2)
    assert tool["ceiling_rps"] == 10000 and tool["ceiling_x_busiest"] == 10.0
    assert tool["tool_cpu_share_max"] == 0.025  # 0.1 s of wrk in a 2 s round on 2 cores


def test_a_figure_is_the_median_over_rounds_with_the_lowest_and_highest_round():
    figure = spread.judge([0.6, 0.5, 0.55])
    assert figure.spread == spread.Spread(median=0.55, low=0.5, high=0.6, rounds=3)
    assert figure.value == 0.55 and figure.noisy is None
    assert figure.text() == "0.55 [0.50-0.60] (3 rounds)"


def test_one_round_or_rounds_that_disagree_give_no_figure_but_say_why():
    single = spread.judge([1.37])  # the quick bench's one 2-second round: "faster than doing nothing"
    assert single.value is None and single.noisy.startswith("1 round(s) left") and "no spread" in single.noisy
    assert single.text().startswith("noisy: ")
    wide = spread.judge([0.6, 0.9, 0.75])  # a range of 0.3 around 0.75: 40 % of the median, above 20 %
    assert wide.value is None and wide.noisy.startswith("rounds range 0.6-0.9, more than 20% of their median 0.75")
    assert spread.judge([0.70, 0.74, 0.72]).value == 0.72  # 0.04 around 0.72: under 6 %


def test_a_round_with_steal_time_is_dropped_with_its_pair():
    cpu_s = {"lb": 0.5, "app1": 1.5}
    rows = [rnd("none", "read", 1, 1000, cpu_s), rnd("redis", "read", 1, 700, cpu_s),
            rnd("redis", "read", 2, 500, cpu_s, steal=0.12), rnd("none", "read", 2, 900, cpu_s),  # noisy: dropped
            rnd("none", "read", 3, 1000, cpu_s), rnd("redis", "read", 3, 720, cpu_s)]
    entries = {(e.strategy, e.path): e for e in summary.aggregate(rows, "none")}
    redis = entries[("redis", "read")]
    assert redis.ratio.spread == spread.Spread(median=0.71, low=0.7, high=0.72, rounds=2)
    assert redis.steal_max == 0.12
    # 2 CPU s a round: per request, 2 s / (1400 | 1440) requests; the noisy round left out.
    assert redis.cpu_per_request.spread.rounds == 2
    assert redis.cpu_per_request.spread.median == round((2 / 1400 + 2 / 1440) / 2 * 1000, 3)
    rows[5]["steal"] = 0.06  # a second noisy round: one pair is left, and one round has no spread
    redis = {(e.strategy, e.path): e for e in summary.aggregate(rows, "none")}[("redis", "read")]
    assert redis.ratio.value is None and "2 dropped for steal time above 5%" in redis.ratio.noisy


def test_steal_time_is_read_from_proc_stat():
    before = cpu.machine_ticks("cpu  100 0 50 800 10 0 5 35 0 0\ncpu0 1 2 3\n")
    after = cpu.machine_ticks("cpu  200 0 100 1500 20 0 10 170 0 0\n")
    assert before == (35, 1000) and after == (170, 2000)
    assert cpu.steal_share(before, after) == 0.135  # 135 of 1,000 ticks stolen
    assert cpu.steal_share(after, after) == 0.0
    steal, total = cpu.machine_ticks()  # this machine's own
    assert 0 <= steal <= total


def bench_rows(rounds: int, redis_rps) -> list[dict]:
    cpu_s = {"lb": 0.5, "app1": 1.0, "redis": 0.5}
    rows = [rnd("balancer", "balancer", 1, 10000, cpu_s)]
    for n in range(1, rounds + 1):
        rows += [rnd("none", "read", n, 1000, cpu_s), rnd("redis", "read", n, redis_rps[n - 1], cpu_s)]
    return rows


def test_the_quick_bench_is_a_smoke_test_and_prints_no_ratio(tmp_path, capsys):
    written = summary.write(tmp_path, bench_rows(1, [1370]), [], "none", {"rounds": 1, "quick": True})
    page = (tmp_path / "bench.md").read_text()
    assert page.startswith("Smoke test (make bench QUICK=1)") and "1.37" not in page
    redis = next(e for e in written.json["results"] if e["strategy"] == "redis")
    assert redis["ratio"] is None and "no spread" in redis["ratio_spread"]["noisy"]
    lines = summary.headline(written.entries, "none", quick=True)
    assert lines == ["bench: " + summary.SMOKE_TEST]
    assert json.loads((tmp_path / "bench.json").read_text())["results"] == written.json["results"]


def test_the_full_bench_shows_cpu_per_request_and_each_ratio_with_its_spread(tmp_path):
    written = summary.write(tmp_path, bench_rows(3, [700, 720, 680]), [], "none", {"rounds": 3, "quick": False})
    page = (tmp_path / "bench.md").read_text()
    assert "median over rounds, [lowest-highest round]" in page and "ratio to none" in page
    # redis: 2 CPU s over 1,400 (1,440; 1,360) requests against none's 2,000: CPU x none 2000 / 1400 ...
    assert "| redis | read | round-robin | 3 | 1.43 [1.39-1.47] | 1.43 [1.39-1.47] | 0.70 [0.68-0.72] |" in page
    assert "| none | read | round-robin | 3 | 1.00 [1.00-1.00] |  |  |" in page
    head = summary.headline(written.entries, "none", quick=False)
    assert head[0].startswith("bench: CPU ms per request")
    assert "  redis  read   round-robin  CPU 1.43 [1.39-1.47] (3 rounds)   CPU x none 1.43 [1.39-1.47] (3 rounds)   " \
        "req/s x none 0.70 [0.68-0.72] (3 rounds)" in head
    noisy = summary.write(tmp_path, bench_rows(3, [500, 720, 900]), [], "none", {"rounds": 3, "quick": False})
    page = (tmp_path / "bench.md").read_text()
    assert "noisy (1)" in page and "1. redis read: CPU per request: rounds range" in page
    assert "0.72 [" not in page  # the median of disagreeing rounds (500, 720, 900 req/s) is not shown
    assert noisy.json["results"][1]["ratio"] is None


def args_of(*argv):
    return run.parse_args(list(argv))


def test_the_bench_plan_follows_the_flags_and_the_registry():
    now = time.gmtime(0)
    quick = run.plan_bench(args_of("--quick"), REGISTRY, now)
    assert (quick.seconds, quick.rounds, quick.bursts, quick.quick) == (2, 1, 3, True)
    assert quick.out.name == "bench-19700101T000000Z" and not quick.baseline["keeps_state"]
    assert len(quick.measured) == len(REGISTRY) - 1 and quick.settings()["rounds"] == 1
    full = run.plan_bench(args_of("--only", "redis,memory", "--rounds", "5", "--suite", "growth"), REGISTRY, now)
    assert (full.seconds, full.rounds, full.bursts, full.suite) == (5, 5, 20, "growth")
    assert [(mode, [s["name"] for s in members]) for mode, members in full.groups] == [
        ("round-robin", ["redis"]), ("sticky", ["memory"])]
    assert full.out.name.startswith("growth-")
    with pytest.raises(LabError, match="--only names no strategy of this lab: cookies") as bad:
        run.plan_bench(args_of("--only", "redis,cookies"), REGISTRY, now)
    assert bad.value.exit_code == 2


def test_bad_bench_flags_exit_2_before_anything_runs():
    done = subprocess.run([sys.executable, "-m", "loadtest.bench.run", "--rounds", "0"], capture_output=True,
                          text=True, timeout=60, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 2 and "--rounds and --bursts at least 1" in done.stderr


def test_the_race_is_explained_from_its_own_figures():
    def result(lost, max_lost, errors=0):
        return {"bursts": 4, "burst": 8, "lost": lost, "max_lost": max_lost, "errors": errors, "reads_failed": 0,
                "lost_per_burst": lost / 4}

    assert "kept every add" in race.explain(result(0, 0))
    assert "last write wins" in race.explain(result(28, 7))
    assert race.explain(result(5, 3)).startswith("lost 1.25 adds per burst on average, 3 at most: ")
    assert "2 adds and 0 reads failed" in race.explain(result(0, 0, errors=2))


def test_growth_sessions_fill_to_the_longest_items_and_ratios_compare_each_strategy_with_itself():
    from loadtest.bench import growth

    assert sessions.item_text(3, None) == "item-3" and sessions.item_text(3, 64) == "item-3-" + "x" * 57
    assert len(sessions.item_text(12345, 64)) == 64
    rows = [{"kind": "cart", "strategy": "redis", "cart": "empty", "rps": 800.0},
            {"kind": "cart", "strategy": "redis", "cart": "full, longest items", "rps": 600.0},
            {"kind": "nodes", "strategy": "redis", "nodes": 1, "rps": 200.0},
            {"kind": "nodes", "strategy": "redis", "nodes": 3, "rps": 590.0},
            {"kind": "sessions", "strategy": "redis", "sessions": 1000, "bytes": 470_000, "bytes_per_session": 470.0}]
    by = growth.with_ratios(rows)
    assert [r["x_empty"] for r in by["cart"]] == [1.0, 0.75]
    assert [r["x_one"] for r in by["nodes"]] == [1.0, 2.95]
    assert by["sessions"] == [rows[4]]
    # A request's bytes on the wire: request line, Host, Accept-Encoding, the credential, the blank line.
    sent = growth.request_bytes("GET", "/api/redis/cart", {"Cookie": "sl_redis=abc"})
    assert sent == len(f"GET /api/redis/cart HTTP/1.1\r\nHost: {growth.LAB_URL.split('//')[-1]}\r\n"
                       "Accept-Encoding: identity\r\nCookie: sl_redis=abc\r\n\r\n")


def test_growth_counts_a_nodes_processes_resident_memory():
    from loadtest.bench import growth

    def rss(pid):
        status = Path(f"/proc/{pid}/status").read_text()
        return next(int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS:"))

    child = subprocess.Popen([sys.executable, "-c", "import sys, time; sys.stdout.write('up\\n'); sys.stdout.flush(); "
                              "time.sleep(30)"], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "up\n"
        assert growth.resident(child.pid) == rss(child.pid) > 0  # asleep: its memory holds still
        assert growth.resident(os.getpid()) >= rss(child.pid) + 1  # a process counts its children
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
