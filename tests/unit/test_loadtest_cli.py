"""The chaos and experiment CLIs: bad input and a missing Docker give a clear message and a non-zero exit,
the experiment's plan follows its flags, and its exit code follows the hypotheses. None of these touch a
running stack."""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from loadtest import lab
from loadtest.lab import LabError
from loadtest.runs import experiment
from loadtest.runs.suites import SUITES

ROOT = Path(__file__).resolve().parents[2]


def run(module, *args, path=None):
    env = {**os.environ, "PATH": path or os.environ["PATH"]}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--fault", "nuke"], "invalid choice: 'nuke'"),
        (["--target", "app9"], "unknown target 'app9'"),
        (["--recover", "db"], "'db' is none of app1"),
        (["--recover", "sentinel-primary"], "a role has moved on since"),
        (["--target", "sentinel-boss"], "unknown target 'sentinel-boss'"),
    ],
)
def test_chaos_bad_input(args, message):
    done = run("loadtest.faults.chaos", *args)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--modes", "random"], "unknown routing mode random"),
        (["--strategies", "memory,cookies"], "unknown strategy cookies"),
        (["--faults", "melt:app2"], "bad fault step 'melt:app2'"),
        (["--faults", "kill:app7"], "bad fault step 'kill:app7'"),
        (["--users", "2"], "at least one per strategy"),
    ],
)
def test_experiment_bad_input(args, message):
    done = run("loadtest.runs.experiment", *args)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("module, args", [("loadtest.faults.chaos", ["--target", "app2"]),
                                          ("loadtest.runs.experiment", ["--quick"])])
def test_without_docker(tmp_path, module, args):
    done = run(module, *args, path=str(tmp_path))  # a PATH with no docker on it
    assert done.returncode == 1 and "docker is not installed" in done.stderr


def synthetic_run(run_dir: Path, outcome: str) -> list[dict]:
    scenario = {"id": "sticky--kill-app2", "mode": "sticky", "fault": "kill", "target": "app2",
                "start": 0.0, "inject": 5.0, "recovered": 8.0, "end": 20.0, "interrupted": False}
    raw = run_dir / "raw" / scenario["id"]
    raw.mkdir(parents=True)
    lines = ["t,strategy,user,action,status,outcome,lost_items,latency_ms,node"]
    lines += [f"{t}.5,redis,r1,read,200,ok,0,12.0,app1" for t in range(20)]
    lines.append(f"9.0,redis,r1,read,200,{outcome},0,12.0,app1")
    (raw / "requests.csv").write_text("\n".join(lines) + "\n")
    (run_dir / "run.json").write_text(json.dumps({"quick": True}))
    return [scenario]


def test_a_clean_run_exits_0_and_writes_everything(tmp_path):
    assert experiment.finish(tmp_path, synthetic_run(tmp_path, "ok"), 0) == 0
    for name in ["scorecard.json", "scorecard.md", "expectations.json", "per_second.csv", "report.html", "report.md",
                 "verdict.png", "verdict.json", "plots/losses.png", "plots/sticky--kill-app2.png"]:
        assert (tmp_path / name).stat().st_size > 0, name
    assert json.loads((tmp_path / "scorecard.json").read_text())[0]["requests"] == 21


def test_a_deviating_run_exits_1(tmp_path, capsys):
    assert experiment.finish(tmp_path, synthetic_run(tmp_path, "foreign"), 0) == 1
    assert "DEVIATED no-leaked-session: redis / sticky / kill app2: foreign = 1" in capsys.readouterr().out


def test_an_interrupted_run_keeps_its_exit_code(tmp_path):
    assert experiment.finish(tmp_path, synthetic_run(tmp_path, "ok"), 130) == 130
    assert (tmp_path / "scorecard.md").exists()


class Traits:
    def __init__(self, name, needs_sticky=False):
        self.name, self.needs_sticky = name, needs_sticky


CLASSES = [Traits("none"), Traits("memory", needs_sticky=True), Traits("redis"), Traits("sentinel")]
NOW = time.gmtime(0)


def planned(*argv):
    return experiment.plan_run(experiment.parse_args(list(argv)), CLASSES, NOW)


def test_the_plan_of_a_default_run_is_the_full_suite_with_every_strategy_in_every_mode():
    run = planned()
    assert run.suite == "full" and run.modes == list(lab.MODES) and run.schedule == SUITES["full"]
    assert run.strategies == ["none", "memory", "redis", "sentinel"] and run.users == 16
    assert run.out == ROOT / "results" / "19700101T000000Z" and not run.under_load and run.cpu_limit is None
    assert planned("--quick").suite == "quick" == planned("--suite", "quick").suite


def test_a_load_suite_plans_the_strategies_that_need_no_sticky_routing_and_limits_the_nodes():
    run = planned("--suite", "saturation", "--loads", "0.4,0.9", "--users", "3")
    assert run.strategies == ["none", "redis", "sentinel"] and run.users == 3
    assert run.schedule.loads == (0.4, 0.9) and run.under_load and run.cpu_limit == run.node_cpus > 0
    assert [step.load for step in run.steps] == [0.4, 0.9]
    assert planned("--suite", "saturation", "--modes", "sticky").cpu_limit is None  # no load step in sticky


def test_faults_on_the_command_line_replace_the_schedule_app_nodes_and_stores_apart():
    run = planned("--faults", "stop:app1,kill:sentinel-primary", "--strategies", "redis")
    assert run.schedule.faults == (("stop", "app1"),) and run.schedule.store_faults == (("kill", "sentinel-primary"),)
    assert run.schedule.sticky_faults == () and run.strategies == ["redis"] and run.users == 4
    loaded = planned("--suite", "saturation", "--faults", "stop:app3")
    assert loaded.schedule.load_faults == (("stop", "app3"),) and loaded.schedule.faults == ()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--quick", "--suite", "stores"], "--quick and --suite stores disagree"),
        (["--loads", "0.5"], "--loads takes fractions of capacity"),
        (["--suite", "saturation", "--loads", "2"], "--loads takes fractions of capacity"),
        (["--modes", ","], "unknown routing mode (none)"),
        (["--strategies", "redis,memory", "--users", "1"], "at least one per strategy (2)"),
    ],
)
def test_a_plan_refuses_bad_input_with_exit_code_2(argv, message):
    with pytest.raises(LabError, match=re.escape(message)) as refused:
        planned(*argv)
    assert refused.value.exit_code == 2


@pytest.mark.parametrize("module", ["loadtest.runs.experiment", "loadtest.bench.run"])
def test_every_entry_point_answers_help(module):
    done = run(module, "--help")
    assert done.returncode == 0 and "usage:" in done.stdout
