"""Store faults, scored from synthetic records whose right answers are known: unavailability, errors by
method and off the faulted shard, the store's own timeline, and the store hypotheses applied by traits."""

import pytest

from loadtest.faults.store_watch import StoreView
from loadtest.runs.suites import SUITES, plan
from loadtest.scoring import analysis, hypotheses
from loadtest.scoring.records import Scenario
from session_lab import strategies

CLASSES = {cls.name: cls for cls in strategies.classes()}
KILL_MASTER = {"mode": "round-robin", "fault": "kill", "target": "cluster-master", "store": "cluster",
               "start": 0.0, "inject": 10.0, "recovered": 20.0, "end": 30.0, "slots": [[0, 5460]],
               "store_events": [{"t": 10.5, "event": "watching"}, {"t": 11.5, "event": "master failed (majority)"},
                                {"t": 12.2, "event": "replica promoted"}]}


def req(t, strategy, user, outcome="ok", status=200, action="read", slot=100, latency=10.0):
    return {"t": t, "strategy": strategy, "user": user, "action": action, "status": status, "outcome": outcome,
            "lost_items": 0, "latency_ms": latency, "node": "app1", "slot": slot}


def steady(strategy, users_slots, until=30):
    return [req(t + 0.5, strategy, u, slot=s) for t in range(until) for u, s in users_slots.items()]


def rows_for(records, scenario=KILL_MASTER):
    return {r.strategy: r for r in analysis.scenario_rows(records, scenario)}


def failed(records, scenario=KILL_MASTER):
    rows = list(rows_for(records, scenario).values())
    return {(v.hypothesis, v.strategy) for v in hypotheses.evaluate(rows, CLASSES) if not v.held}


def shard_outage(strategy, until_ok=13.0):
    """u1 on the killed shard (slot 100) fails from 10.2 s to `until_ok`; u2 elsewhere (slot 9000) never."""
    records = [r for r in steady(strategy, {"u1": 100, "u2": 9000}) if not 10 <= r["t"] < until_ok or r["user"] == "u2"]
    records += [req(10.2, strategy, "u1", "error", 503, action="add"), req(11.2, strategy, "u1", "error", 503)]
    return records


def test_unavailable_is_the_longest_wait_from_a_failure_to_a_good_answer():
    row = rows_for(shard_outage("cluster", until_ok=13.0))["cluster"]
    assert row.unavailable_s == pytest.approx(13.5 + 0.01 - 10.2, abs=0.01)  # the good answer at 13.5 s ends it
    assert (row.errors_get, row.errors_post, row.errors_off_shard) == (1, 1, 0)
    assert (row.detected_s, row.promoted_s) == (1.5, 2.2)
    assert row.first_success_s == pytest.approx(3.51, abs=0.01)  # the first failing user's first good answer


def test_a_brief_cluster_failover_holds_and_a_long_one_deviates():
    assert failed(shard_outage("cluster", until_ok=13.0)) == set()
    assert ("failover-is-brief", "cluster") in failed(shard_outage("cluster", until_ok=16.0))


def test_errors_off_the_faulted_shard_deviate_but_a_login_anywhere_does_not():
    records = steady("cluster", {"u1": 100, "u2": 9000})
    login_retried = [req(12, "cluster", "u3", "error", 503, action="login", slot=9000), req(12.5, "cluster", "u3")]
    assert failed(records + login_retried) == set()
    bad = failed(records + [req(12, "cluster", "u2", "error", 503, slot=9000)])
    assert ("cluster-fault-stays-on-its-shard", "cluster") in bad


def test_wait_variants_are_held_to_zero_lost_writes_but_not_to_the_cluster_bound():
    long_outage = shard_outage("cluster-wait", until_ok=19.0)  # no replica left to confirm on that shard
    assert failed(long_outage) == set()
    lost = steady("cluster-wait", {"u1": 100}) + [dict(req(14, "cluster-wait", "u1", "writes_lost"), lost_items=1)]
    assert ("confirmed-writes-survive-store-faults", "cluster-wait") in failed(lost)
    # The asynchronous variant's loss is counted, not held against a hypothesis.
    lost_async = steady("cluster", {"u1": 100}) + [dict(req(14, "cluster", "u1", "writes_lost"), lost_items=1)]
    assert rows_for(lost_async)["cluster"].writes_lost == 1 and failed(lost_async) == set()


def test_a_500_in_a_store_fault_deviates_and_other_strategies_must_not_notice():
    records = shard_outage("cluster") + [req(12.5, "cluster", "u1", "error", 500)]
    assert ("store-faults-answer-503", "cluster") in failed(records)
    assert ("store-outage-spares-the-others", "sentinel") in failed(
        steady("sentinel", {"s1": 1}) + [req(12, "sentinel", "s1", "error", 503)])


def test_a_duplicate_deviates_everywhere():
    records = steady("redis", {"r1": -1}) + [req(12, "redis", "r1", "duplicate")]
    assert ("adds-apply-once", "redis") in failed(records)


def test_store_faults_run_in_one_mode_after_the_app_faults():
    steps = [step[:3] for step in plan(SUITES["quick"], ["ip-hash", "round-robin", "sticky"])]
    assert steps[:3] == [("ip-hash", "kill", "app2"), ("round-robin", "kill", "app2"), ("sticky", "kill", "app2")]
    assert steps[3:] == [("round-robin", "kill", "sentinel-primary"), ("round-robin", "kill", "cluster-master")]


def test_load_faults_run_once_per_load_in_round_robin():
    steps = plan(SUITES["saturation"], ["ip-hash", "round-robin", "sticky"])
    assert steps == [("round-robin", "kill", "app2", 0.5), ("round-robin", "kill", "app2", 0.8)]


SENTINEL_LOOK = ["name", "lab-primary", "ip", "{ip}", "port", "6379", "flags", "{flags}"]


def sentinel_look(ip, flags):
    return [line.format(ip=ip, flags=flags) for line in SENTINEL_LOOK]


def test_the_sentinel_view_notes_each_step_once():
    view = StoreView("sentinel", {"10.0.0.31"})
    view.look(1.0, sentinel_look("10.0.0.31", "master"))
    view.look(2.0, sentinel_look("10.0.0.31", "s_down,master,disconnected"))
    view.look(2.1, sentinel_look("10.0.0.31", "s_down,o_down,master,failover_in_progress"))
    view.look(3.0, sentinel_look("10.0.0.32", "master"))
    view.look(3.1, sentinel_look("10.0.0.32", "master"))
    assert [(e["t"], e["event"]) for e in view.events] == [
        (1.0, "watching"), (2.0, "primary down (one sentinel)"), (2.1, "primary down (quorum)"),
        (2.1, "failover started"), (3.0, "replica promoted")]


def test_the_cluster_view_follows_the_faulted_master_and_its_replica():
    def nodes(master_flags, replica_flags, replica_master="m1"):
        return [f"m1 10.0.0.41:6379@16379 {master_flags} - 0 0 1 connected 0-5460",
                f"r1 10.0.0.44:6379@16379 {replica_flags} {replica_master} 0 0 1 connected",
                "m2 10.0.0.42:6379@16379 myself,master - 0 0 2 connected 5461-10922"]

    view = StoreView("cluster", {"10.0.0.41"})
    view.look(1.0, nodes("master", "slave"))
    view.look(2.0, nodes("master,fail?", "slave"))
    view.look(2.5, nodes("master,fail", "slave"))
    view.look(3.0, nodes("slave,fail", "master", replica_master="-"))
    assert [e["event"] for e in view.events] == [
        "watching", "master suspected (one node)", "master failed (majority)", "replica promoted"]


def test_breaker_refusals_are_summed_over_nodes_and_a_cluster_s_masters():
    from loadtest.runs.experiment import refusals_since
    before = {"app1": {"cluster 10.0.0.1:6379": {"circuit_open": 3}}, "app2": {}}
    after = {"app1": {"cluster 10.0.0.1:6379": {"circuit_open": 5, "bulkhead_full": 1}},
             "app2": {"cluster 10.0.0.2:6379": {"circuit_open": 4}, "sentinel": {"circuit_open": 2}},
             "app3": {"redis": {"circuit_open": 7}}}  # app3 missed the first round: it adds nothing
    assert refusals_since(before, after) == {"cluster": {"circuit_open": 6, "bulkhead_full": 1},
                                             "sentinel": {"circuit_open": 2}}
    restarted = {"app1": {"cluster 10.0.0.1:6379": {"circuit_open": 1}}}  # counters back from zero
    assert refusals_since(before, restarted) == {"cluster": {"circuit_open": 1}}


def test_the_store_figure_draws_the_breaker_panel_only_when_the_run_recorded_it(tmp_path):
    from loadtest.scoring import report
    rows = list(rows_for(shard_outage("cluster")).values())
    report.plot_store_faults(rows, tmp_path / "without.png")
    scenario = {**KILL_MASTER, "refused": {"cluster": {"circuit_open": 40, "bulkhead_full": 2}}}
    report.plot_store_faults(rows, tmp_path / "with.png", [Scenario.from_json(scenario)])
    from PIL import Image
    with Image.open(tmp_path / "with.png") as drawn, Image.open(tmp_path / "without.png") as plain:
        assert drawn.height > plain.height
