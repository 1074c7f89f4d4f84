"""The scoring pipeline's typed records and the small functions a scorecard row is made of, each on records
whose right answer is known."""

import json
from dataclasses import fields

import pytest

from loadtest.scoring import analysis, tables
from loadtest.scoring.records import Scenario, ScorecardRow

# As experiment.run_scenario writes one: every key, in its order.
WRITTEN = {"id": "sticky--kill-app2", "mode": "sticky", "fault": "kill", "target": "app2", "interrupted": False,
           "load": 0.5, "capacity_rps": 400.0, "target_rps": 200.0, "users": 50, "start": 100.0, "store": "",
           "services": ["app2"], "node_memory": {"app1": {}}, "slots": [[0, 5460]], "inject": 110.0,
           "recovered": 120.0, "end": 135.0, "steps": [{"node": "app2", "t": 110.0, "replaced": 115.0}],
           "store_events": [{"t": 111.0, "event": "replica promoted"}], "refused": {"cluster": {"circuit_open": 2}}}


def test_a_scenario_round_trips_every_key_the_runner_writes_in_its_order():
    assert list(Scenario.from_json(WRITTEN).to_json().items()) == list(WRITTEN.items())


def test_an_old_run_without_the_newer_keys_loads_and_writes_back_only_what_it_had():
    old = {"id": "round-robin--kill-app2", "mode": "round-robin", "fault": "kill", "target": "app2",
           "start": 1.0, "inject": 2.0, "recovered": 3.0, "end": 4.0}
    scenario = Scenario.from_json(old)
    assert scenario.nodes == ["app2"] and scenario.events == [] and scenario.store is None
    assert scenario.to_json() == {**old, "interrupted": False}


def test_a_key_this_version_does_not_know_is_kept():
    scenario = Scenario.from_json({**WRITTEN, "written_by_a_newer_runner": [1, 2]})
    assert scenario.extra == {"written_by_a_newer_runner": [1, 2]}
    assert scenario.to_json()["written_by_a_newer_runner"] == [1, 2]


def test_a_scorecard_row_serialises_in_field_order_and_reads_back():
    row = ScorecardRow("redis", mode="sticky", fault="kill", target="redis", errors=3, users_lost=["u1"])
    data = row.to_json()
    assert list(data) == [f.name for f in fields(ScorecardRow)]
    assert ScorecardRow.from_json(json.loads(json.dumps(data))) == row


def req(t, user="u1", outcome="ok", action="read", node="app1", status=200, latency=10.0, slot=-1, lost=0):
    return {"t": t, "strategy": "s", "user": user, "action": action, "status": status, "outcome": outcome,
            "lost_items": lost, "latency_ms": latency, "node": node, "slot": slot}


SCENARIO = Scenario(mode="sticky", fault="kill", target="app2", start=0.0, inject=10.0, recovered=14.0, end=30.0)


def test_the_error_window_runs_from_the_first_error_to_the_last_ones_answer():
    assert analysis.error_window([]) == 0.0
    assert analysis.error_window([req(10.0, latency=100.0), req(11.5, latency=500.0)]) == 2.0


@pytest.mark.parametrize("bad_at, expected", [(None, 0.0), (12.5, 2.5), (27.5, None)])
def test_recovery_is_the_last_bad_answer_unless_they_went_on_to_the_end(bad_at, expected):
    after = [req(11.0), req(29.0)] + ([req(bad_at, outcome="error", status=502)] if bad_at else [])
    after.sort(key=lambda r: r["t"])
    assert analysis.recover_time(after, 10.0, 30.0) == expected  # None: within SETTLED_AFTER of the end


def test_a_users_session_is_on_the_node_of_its_last_good_answer_and_gone_after_a_logout_or_replay():
    rs = [req(1, "a", node="app2"), req(2, "b", node="app2"), req(3, "b", action="logout", node="app2"),
          req(4, "c", node="app3"), req(5, "c", node="app2", outcome="error", status=502),
          req(6, "d", node="app2"), req(12, "d", action="replay", node="app1")]
    assert analysis.last_nodes(rs, cutoff=10.0) == {"a": "app2", "c": "app3"}


def test_rates_count_the_requests_before_the_fault_and_in_its_window():
    rs = [req(t + 0.5) for t in range(30)]
    assert analysis.rates(analysis.Records(rs, SCENARIO)) == {"rps_before": 1.0, "rps_window": 1.0}


def test_the_store_timeline_takes_the_first_event_it_prefers_and_counts_errors_off_the_shard():
    scenario = Scenario(fault="kill", target="cluster-master", store="cluster", inject=10.0, recovered=20.0,
                        end=30.0, slots=[[0, 5460]],
                        store_events=[{"t": 10.8, "event": "master suspected (one node)"},
                                      {"t": 11.5, "event": "master failed (majority)"},
                                      {"t": 12.25, "event": "replica promoted"}])
    rs = [req(11.0, outcome="error", status=503, slot=100), req(11.0, "u2", outcome="error", status=503, slot=9000),
          req(11.1, "u3", outcome="error", status=503, slot=9000, action="login")]
    figures = analysis.store_timeline(analysis.Records(rs, scenario))
    assert figures == {"errors_off_shard": 1, "detected_s": 1.5, "promoted_s": 2.25}


def test_every_metric_fills_scorecard_fields_and_together_they_fill_all_but_the_identity():
    d = analysis.Records([req(t + 0.5) for t in range(30)], SCENARIO)
    produced = [name for _, metric in analysis.METRICS for name in metric(d)]
    identity = {"strategy", "mode", "fault", "target", "load", "store"}
    assert len(produced) == len(set(produced))  # no figure computed twice
    assert set(produced) == {f.name for f in fields(ScorecardRow)} - identity


def test_tables_render_records_and_dicts_alike_with_a_cell_formatter_and_markup():
    columns = [("strategy", "strategy"), ("recover_s", "recover s")]
    rows = [ScorecardRow("redis", recover_s=None), {"strategy": "<jwt>", "recover_s": 1.5}]
    assert tables.markdown(rows, columns) == "| strategy | recover s |\n|---|---|\n| redis |  |\n| <jwt> | 1.5 |\n"
    never = lambda row, field: "never" if tables.value(row, field) is None else str(tables.value(row, field))  # noqa: E731
    assert "| redis | never |" in tables.markdown(rows, columns, never)
    page = tables.html_table(rows, columns, markup=lambda row, field: f"<b>{tables.value(row, field)}</b>")
    assert page.startswith("<table><tr><th>strategy</th><th>recover s</th></tr>") and "<td><b>redis</b></td>" in page
    assert "<td>&lt;jwt&gt;</td>" in tables.html_table(rows, columns)
