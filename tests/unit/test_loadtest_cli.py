"""The chaos and experiment CLIs: bad input and a missing Docker give a clear message and a non-zero exit,
and the experiment's exit code follows the hypotheses. None of these touch a running stack."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from loadtest.runs import experiment

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
