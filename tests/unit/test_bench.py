"""The bench's bookkeeping, on inputs whose right answers are known: which strategy is the baseline and
which routing each needs (from traits), the credential a session sends, the CPU counters of a cgroup, and
the ratios and CPU figures computed from raw rounds."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from loadtest.bench import cpu, race, run, sessions, summary
from loadtest.faults.compose import LabError
from session_lab import strategies

REGISTRY = [{"name": cls.name, "keeps_state": cls.keeps_state, "needs_sticky": cls.needs_sticky}
            for cls in strategies.classes()]


def test_the_baseline_and_the_routing_come_from_traits():
    baseline, groups = run.plan(REGISTRY)
    assert not baseline["keeps_state"]
    modes = {mode: [s["name"] for s in members] for mode, members in groups}
    assert list(modes) == ["round-robin", "sticky"]
    assert all(s["needs_sticky"] for s in REGISTRY if s["name"] in modes["sticky"])
    assert sorted(modes["round-robin"] + modes["sticky"] + [baseline["name"]]) == sorted(s["name"] for s in REGISTRY)
    with pytest.raises(LabError, match="exactly one"):
        run.plan([s for s in REGISTRY if s["keeps_state"]])


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


def rnd(strategy, path, number, rps, cpu_s, mode="round-robin"):
    return {"strategy": strategy, "path": path, "mode": mode, "round": number, "rps": rps, "requests": int(rps * 2),
            "seconds": 2.0, "p50_ms": 1.0, "p99_ms": 9.0, "errors": {"status": 0, "timeout": 0},
            "cpu_s": cpu_s, "tool_cpu_s": 0.1}


def test_ratios_pair_each_round_with_the_baseline_round_beside_it_and_cpu_is_per_1000_requests():
    cpu_s = {"lb": 0.5, "app1": 1.0, "app2": 1.0, "app3": 1.0, "redis": 0.5}
    rows = [rnd("-", "balancer", 1, 10000, cpu_s)]
    rows[0]["strategy"] = "balancer"
    # Round 1: baseline first at 1000 req/s, redis at 600; round 2: redis first at 300 (the machine got
    # busier), its baseline twin at 600: the ratios are 0.6 and 0.5, whatever the absolute numbers.
    rows += [rnd("none", "read", 1, 1000, cpu_s), rnd("redis", "read", 1, 600, cpu_s),
             rnd("redis", "read", 2, 300, cpu_s), rnd("none", "read", 2, 600, cpu_s)]
    entries = {(e["strategy"], e["path"]): e for e in summary.aggregate(rows, "none")}
    assert entries[("redis", "read")]["ratio"] == 0.55 and entries[("none", "read")]["ratio"] is None
    # 4 CPU seconds a round, two rounds over (1200 + 600) requests: per 1,000 requests, by container group.
    redis = entries[("redis", "read")]["cpu_s_per_1k"]
    assert redis == {"balancer": round(1.0 / 1800 * 1000, 3), "app nodes": round(6.0 / 1800 * 1000, 3),
                     "stores": round(1.0 / 1800 * 1000, 3)}
    tool = summary.tool_check(rows, cores=2)
    assert tool["ceiling_rps"] == 10000 and tool["ceiling_x_busiest"] == 10.0
    assert tool["tool_cpu_share_max"] == 0.025  # 0.1 s of wrk in a 2 s round on 2 cores


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
    assert sent == len(f"GET /api/redis/cart HTTP/1.1\r\nHost: {growth.compose.LAB_URL.split('//')[-1]}\r\n"
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
