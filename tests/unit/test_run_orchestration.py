"""The experiment's and the bench's run loops and the lab's waits, with the stack replaced by fakes: what
runs in which order, that the routing mode is put back whatever happens, and the exit codes (0, 1, the
error's own, 130 on Ctrl-C). The real stack runs them in tests/e2e."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import pytest

from loadtest.bench import run as bench_run
from loadtest.faults import readiness
from loadtest.lab import LabError
from loadtest.runs import experiment


class FakeLab:
    """The routing mode and a log of what was asked of the stack."""

    def __init__(self, mode: str = "round-robin"):
        self.mode, self.log = mode, []

    def current_mode(self) -> str:
        return self.mode

    def switch_mode(self, mode: str) -> None:
        self.log.append(f"switch {mode}")
        self.mode = mode


@pytest.fixture
def lab(monkeypatch):
    fake = FakeLab()
    for module in (experiment, bench_run):
        monkeypatch.setattr(module, "current_mode", fake.current_mode)
        monkeypatch.setattr(module, "switch_mode", fake.switch_mode)
    return fake


def experiment_plan(tmp_path: Path, *argv: str) -> experiment.RunPlan:
    classes = [type("T", (), {"name": n, "needs_sticky": n == "memory"}) for n in ("none", "memory", "redis")]
    return experiment.plan_run(experiment.parse_args([*argv, "--out", str(tmp_path)]), classes, time.gmtime(0))


@pytest.fixture
def steps_run(monkeypatch, lab):
    """run_scenario records the step instead of running it; the waits and the summary only log."""
    def fake_scenario(run_dir, step, run, progress, timeline, scenarios, capacity_rps=None):
        lab.log.append(f"scenario {step.mode} {step.fault} {step.target}")
        scenarios.append({"id": experiment.scenario_id(step)})
        return scenarios[-1]

    monkeypatch.setattr(experiment, "run_scenario", fake_scenario)
    monkeypatch.setattr(experiment, "wait_balanced", lambda: lab.log.append("balanced"))
    monkeypatch.setattr(experiment, "wait_healthy", lambda *services: lab.log.append("healthy"))
    monkeypatch.setattr(experiment, "wait_stores_whole", lambda say: lab.log.append("stores whole"))
    monkeypatch.setattr(experiment.record, "read", lambda path: [])
    monkeypatch.setattr(experiment.analysis, "scenario_rows", lambda rows, scenario: [])
    return lab


def test_the_experiment_runs_each_step_in_its_mode_from_a_whole_stack_and_puts_the_mode_back(tmp_path, steps_run):
    run = experiment_plan(tmp_path, "--quick", "--modes", "sticky,round-robin")
    scenarios: list[dict] = []
    assert experiment.execute(run, scenarios) == 0
    assert steps_run.log == [
        "switch sticky", "scenario sticky kill app2", "healthy", "stores whole",
        "switch round-robin", "balanced", "scenario round-robin kill app2", "healthy", "stores whole",
        "balanced", "scenario round-robin kill sentinel-primary", "healthy", "stores whole",
        "balanced", "scenario round-robin kill cluster-master",
    ]  # the mode was round-robin before and after: nothing to put back
    assert [s["id"] for s in scenarios][-1] == "round-robin--kill-cluster-master"
    assert (tmp_path / "run.json").exists() and (tmp_path / "scenarios.json").exists()


@pytest.mark.parametrize("stop, code", [(KeyboardInterrupt(), 130), (LabError("no", exit_code=2), 2)])
def test_an_interrupted_experiment_puts_the_mode_back_and_says_why(tmp_path, steps_run, monkeypatch, stop, code):
    def stopped(*args, **kwargs):
        raise stop

    monkeypatch.setattr(experiment, "run_scenario", stopped)
    run = experiment_plan(tmp_path, "--quick", "--modes", "sticky")
    assert experiment.execute(run, []) == code
    assert steps_run.log == ["switch sticky", "switch round-robin"]


def test_a_load_step_measures_capacity_under_the_cpu_quota_first(tmp_path, steps_run, monkeypatch):
    quotas = []

    @contextlib.contextmanager
    def quota(services, cpus):
        quotas.append(cpus)
        yield

    monkeypatch.setattr(experiment, "cpu_quota", quota)
    monkeypatch.setattr(experiment, "measure_capacity", lambda out, chosen, progress: 500.0)
    run = experiment_plan(tmp_path, "--suite", "saturation", "--loads", "0.5", "--modes", "round-robin")
    assert experiment.execute(run, []) == 0
    assert quotas == [run.node_cpus] and steps_run.log[0] == "scenario round-robin kill app2"
    assert '"capacity_rps": 500.0' in (tmp_path / "run.json").read_text()


def test_a_scenario_takes_its_fault_times_from_the_timeline_or_its_end():
    fault = experiment.Fault("kill", "app2")
    scenario = {}
    events = [{"event": "inject", "t": 10.0, "seconds": 0.5}, {"event": "recovered", "t": 20.0, "seconds": 1.5}]
    experiment.close_scenario(scenario, events, fault, None, None)
    assert (scenario["inject"], scenario["recovered"]) == (10.0, 21.5) and scenario["end"] >= 21.5
    interrupted = {}
    experiment.close_scenario(interrupted, [], fault, None, None)  # stopped before the fault fired
    assert interrupted["inject"] == interrupted["recovered"] == interrupted["end"]


def test_a_load_step_sizes_its_users_from_the_capacity(tmp_path):
    run = experiment_plan(tmp_path, "--suite", "saturation")
    step = run.steps[0]
    users, spawn, env, recorded = experiment.load_of(step, run, 400.0)
    assert users == 50 and spawn == experiment.LOAD_SPAWN_RATE  # 0.5 x 400 requests/s x 0.25 s pacing
    assert env == {"LOADTEST_PACING": "0.25"} and recorded["target_rps"] == 200.0
    quick = experiment_plan(tmp_path, "--quick")
    assert experiment.load_of(quick.steps[0], quick, None) == (quick.users, quick.users, {}, {})


class FakeBench:
    """Bench without wrk or cgroups: every round answers 100 req/s, without errors unless told."""

    errors = 0

    def __init__(self, out, seconds, rounds, bursts):
        self.out, self.seconds, self.rounds, self.bursts = out, seconds, rounds, bursts
        self.rows, self.races, self.started = [], [], time.monotonic()
        self.work = out / "work"
        self.work.mkdir(exist_ok=True)

    def round(self, strategy, path, mode, number, **labels):
        self.rows.append({"strategy": strategy["name"] if strategy else "balancer", "path": path, "mode": mode,
                          "round": number, "rps": 100.0, "requests": 200, "seconds": 2.0, "p50_ms": 1.0,
                          "p99_ms": 2.0, "errors": {"status": self.errors}, "cpu_s": {"lb": 0.1, "app1": 0.2},
                          "tool_cpu_s": 0.01, "steal": 0.0})

    def record(self, name, entry):
        pass


REGISTRY = [{"name": "none", "keeps_state": False, "needs_sticky": False},
            {"name": "redis", "keeps_state": True, "needs_sticky": False},
            {"name": "memory", "keeps_state": True, "needs_sticky": True}]


@pytest.fixture
def bench(monkeypatch, lab):
    monkeypatch.setattr(bench_run, "Bench", FakeBench)
    monkeypatch.setattr(bench_run.race, "measure", lambda strategy, bursts: {
        "strategy": strategy["name"], "bursts": bursts, "burst": 8, "acknowledged": 8 * bursts, "errors": 0,
        "lost": 0, "lost_per_burst": 0.0, "max_lost": 0, "reads_failed": 0})
    lab.mode = "sticky"
    return lab


def test_the_bench_measures_each_group_in_its_mode_and_puts_the_mode_back(tmp_path, bench, capsys):
    plan = bench_run.plan_bench(bench_run.parse_args(["--rounds", "2", "--out", str(tmp_path)]), REGISTRY,
                                time.gmtime(0))
    assert bench_run.run_cost(plan) == 0
    assert bench.log == ["switch round-robin", "switch round-robin", "switch sticky", "switch sticky"]
    out = capsys.readouterr().out
    assert "bench: CPU ms per request" in out and "req/s x none 1.00 [1.00-1.00] (2 rounds)" in out
    assert (tmp_path / "bench.md").exists() and not (tmp_path / "work").exists()


def test_a_quick_bench_prints_that_it_is_a_smoke_test_and_no_ratio(tmp_path, bench, capsys):
    plan = bench_run.plan_bench(bench_run.parse_args(["--quick", "--out", str(tmp_path)]), REGISTRY, time.gmtime(0))
    assert bench_run.run_cost(plan) == 0
    out = capsys.readouterr().out
    assert "bench: Smoke test (make bench QUICK=1)" in out and " x none" not in out


def test_a_bench_round_with_errors_exits_1(tmp_path, bench, monkeypatch):
    monkeypatch.setattr(FakeBench, "errors", 3)
    plan = bench_run.plan_bench(bench_run.parse_args(["--quick", "--out", str(tmp_path)]), REGISTRY, time.gmtime(0))
    assert bench_run.run_cost(plan) == 1


def test_waiting_for_health_reads_the_states_until_every_service_runs(monkeypatch):
    answers = iter([{"app1": {"State": "running", "Health": "starting"}},
                    {"app1": {"State": "running", "Health": "healthy"}}])
    monkeypatch.setattr(readiness, "states", lambda: next(answers))
    monkeypatch.setattr(readiness.time, "sleep", lambda s: None)
    readiness.wait_healthy("app1")
    monkeypatch.setattr(readiness, "states", lambda: {})
    with pytest.raises(LabError, match="app2 did not become healthy within 0 s"):
        readiness.wait_healthy("app2", timeout=0)


def test_waiting_for_the_stores_says_what_is_missing(monkeypatch):
    missing = iter(["a Cluster master lacks a replica", None])
    monkeypatch.setattr(readiness.store_roles, "whole", lambda: next(missing))
    monkeypatch.setattr(readiness.time, "sleep", lambda s: None)
    said = []
    readiness.wait_stores_whole(said.append)
    assert said == ["waiting for the stores to be whole: a Cluster master lacks a replica"]
