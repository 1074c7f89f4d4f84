"""Failover under load, scored from synthetic records: the capacity of a mix, the rates offered and carried,
and the half-load hypothesis applied by traits."""

import pytest

from loadtest.bench import capacity
from loadtest.scoring import analysis, hypotheses, saturation_report
from session_lab import strategies

CLASSES = {cls.name: cls for cls in strategies.classes()}
KILL_AT = {"mode": "round-robin", "fault": "kill", "target": "app2", "start": 0.0, "inject": 20.0,
           "recovered": 30.0, "end": 40.0}


def req(t, strategy, user, outcome="ok", status=200, latency=10.0):
    return {"t": t, "strategy": strategy, "user": user, "action": "read", "status": status, "outcome": outcome,
            "lost_items": 0, "latency_ms": latency, "node": "app1", "slot": -1}


def steady(strategy, per_second=4, until=40, latency=10.0):
    return [req(t + i / per_second, strategy, f"u{i}", latency=latency)
            for t in range(until) for i in range(per_second)]


def verdicts(records, load):
    rows = analysis.scenario_rows(records, {**KILL_AT, "load": load})
    return {(v.hypothesis, v.strategy, v.held) for v in hypotheses.evaluate(rows, CLASSES)
            if v.hypothesis == "half-load-hides-a-node-death"}


def test_a_mix_saturates_where_its_requests_time_adds_up():
    # 3 reads for 2 writes: one strategy at 1000 reads/s and 500 writes/s spends 0.6 ms + 0.8 ms per 1 request
    assert capacity.mix_capacity({"a": {"read": 1000, "write": 500}}) == pytest.approx(1 / (0.6 / 1000 + 0.4 / 500))
    # two strategies, one twice as costly: the mix's cost per request is their mean
    both = capacity.mix_capacity({"a": {"read": 1000, "write": 1000}, "b": {"read": 500, "write": 500}})
    assert both == pytest.approx(2 / (1 / 1000 + 1 / 500))


def test_rates_before_the_fault_and_in_its_window_are_requests_per_second():
    records = steady("redis", per_second=4)
    records = [r for r in records if not (20 <= r["t"] < 30 and r["user"] in ("u2", "u3"))]  # half got through
    row = analysis.scenario_rows(records, {**KILL_AT, "load": 0.5})[0]
    assert (row.load, row.rps_before, row.rps_window) == (0.5, 4.0, 2.0)
    assert analysis.fault_name(row) == "kill app2 at 50% load"


def test_at_half_load_a_shared_strategy_must_show_no_error_and_a_p99_under_the_goal():
    calm = steady("redis")
    assert verdicts(calm, 0.5) == {("half-load-hides-a-node-death", "redis", True)}
    slow = calm + [req(21 + i / 10, "redis", "u9", latency=2500.0) for i in range(3)]
    assert verdicts(slow, 0.5) == {("half-load-hides-a-node-death", "redis", False)}
    failing = calm + [req(21, "redis", "u9", "error", 502)]
    assert verdicts(failing, 0.5) == {("half-load-hides-a-node-death", "redis", False)}


def test_an_answer_the_kill_cut_off_is_counted_apart_and_is_the_only_error_allowed():
    """The killed node's 200 whose body never came whole (status 200, judged an error, from app2, in the
    window) is what no routing hides; the same from another node, or before the kill, is a plain error."""
    cut = {**req(21, "redis", "u9", "error", 200), "node": "app2"}
    row = analysis.scenario_rows(steady("redis") + [cut], {**KILL_AT, "load": 0.5})[0]
    assert (row.errors, row.cut_off_by_fault) == (1, 1)
    assert verdicts(steady("redis") + [cut], 0.5) == {("half-load-hides-a-node-death", "redis", True)}
    elsewhere = {**cut, "node": "app1"}
    before = {**cut, "t": 10.0}
    for record in (elsewhere, before):
        assert verdicts(steady("redis") + [record], 0.5) == {("half-load-hides-a-node-death", "redis", False)}


def test_the_claim_is_only_made_at_half_load_and_never_for_node_local_sessions():
    assert verdicts(steady("redis") + [req(21, "redis", "u9", "error", 504)], 0.8) == set()
    assert verdicts(steady("memory"), 0.5) == set()
    assert verdicts(steady("redis"), None) == set()


def test_the_section_sums_each_load_over_its_strategies():
    rows = [*analysis.scenario_rows(steady("redis") + steady("jwt", latency=30.0), {**KILL_AT, "load": 0.5}),
            *analysis.scenario_rows(steady("redis"), {**KILL_AT, "load": 0.8})]
    table = saturation_report.rows_under_load(rows)
    assert [(r["load"], r["strategy"]) for r in table] == [
        ("50%", "redis"), ("50%", "jwt"), ("50%", saturation_report.TOTAL),
        ("80%", "redis"), ("80%", saturation_report.TOTAL)]
    assert table[2]["rps_before"] == 8.0 and table[2]["p99_window_ms"] == 30.0
