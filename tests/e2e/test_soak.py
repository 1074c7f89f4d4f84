"""The soak tool against the real stack, short: it samples every container and Redis, judges each series
from its own samples.csv, and finds nothing growing on a healthy stack."""

import csv
import json
import subprocess
import sys

from loadtest.runs import soak
from tests.e2e.conftest import ROOT


def test_a_short_soak_samples_everything_and_finds_no_growth(lab, tmp_path):
    out = tmp_path / "soak"
    done = subprocess.run(
        [sys.executable, "-m", "loadtest.runs.soak", "--duration", "80", "--warmup", "20", "--interval", "5",
         "--users", "15", "--out", str(out)],
        cwd=ROOT, env=lab.tool_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    verdicts = json.loads((out / "soak.json").read_text())["series"]
    containers = {name for name in verdicts if not name.startswith("redis:")}
    assert {c.split(":")[-1] for c in containers} >= {"lb", "app1", "app2", "app3", "redis"}, verdicts.keys()
    assert {"redis:keys", "redis:used_memory"} <= set(verdicts)
    assert all(v["verdict"] == soak.HOLDS for v in verdicts.values()), verdicts
    # The verdicts follow from the raw samples alone.
    with (out / "samples.csv").open() as f:
        samples = [(float(r["t"]), r["series"], float(r["value"]) if r["value"] else None) for r in csv.DictReader(f)]
    assert soak.judge_all(samples, 20) == verdicts
    assert (out / "soak.png").stat().st_size > 10_000 and "holds" in (out / "soak.md").read_text()
    assert lab.mode() == "round-robin"  # the soak put the routing back
