"""The report is unchanged for the same raw data: a small real run (tests/data/golden-run/) rebuilt with today's
code must write, text for text, what the report wrote before the scoring code was split up (expected/; see the
README there for where they came from and when a change to them is deliberate)."""

import shutil
from pathlib import Path

import pytest
from PIL import Image

from loadtest.scoring import report

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden-run"
TEXTS = ["scorecard.json", "scorecard.md", "report.md", "expectations.json", "per_second.csv", "verdict.json",
         "report.html"]
FIGURES = ["verdict.png", "plots/losses.png", "plots/sticky--kill-app2.png", "plots/ip-hash--kill-redis.png",
           "plots/round-robin--kill-cluster-master.png", "plots/store-faults.png"]


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("golden") / "golden-run"
    shutil.copytree(GOLDEN, run_dir, ignore=shutil.ignore_patterns("expected", "README.md"))
    verdict = report.write(run_dir)
    return run_dir, verdict


@pytest.mark.parametrize("name", TEXTS)
def test_every_text_is_what_the_report_wrote_before(rebuilt, name):
    run_dir, _ = rebuilt
    expected = (GOLDEN / "expected" / name).read_text().replace("@RUN_DIR@", str(run_dir))
    assert (run_dir / name).read_text() == expected


@pytest.mark.parametrize("name", FIGURES)
def test_every_figure_is_drawn(rebuilt, name):
    run_dir, _ = rebuilt
    with Image.open(run_dir / name) as image:
        image.verify()
        assert image.size[0] > 400 and image.size[1] > 300


def test_write_returns_the_checks_expectations_json_holds(rebuilt):
    _, verdict = rebuilt
    assert verdict and all({"hypothesis", "strategy", "mode", "fault", "held", "detail"} <= set(v) for v in verdict)
    assert sum(not v["held"] for v in verdict) == 0  # the real run's claims held, as its report said


def test_the_scorecard_is_computed_once_and_handed_to_every_renderer(tmp_path, monkeypatch):
    from loadtest.scoring import analysis, hypotheses, replication_report, saturation_report
    from loadtest.scoring.report import build

    calls = {}

    def counted(module, name):
        original = getattr(module, name)

        def wrapper(*args, **kwargs):
            calls[name] = calls.get(name, 0) + 1
            return original(*args, **kwargs)

        monkeypatch.setattr(module, name, wrapper)

    for module, name in [(analysis, "scenario_rows"), (hypotheses, "evaluate"), (build, "store_rows"),
                         (replication_report, "cost_rows"), (saturation_report, "rows_under_load"),
                         (analysis, "per_second")]:
        counted(module, name)
    run_dir = tmp_path / "golden-run"
    shutil.copytree(GOLDEN, run_dir, ignore=shutil.ignore_patterns("expected", "README.md"))
    report.write(run_dir)
    # Once per scenario for what is per scenario, once per run for the rest.
    assert calls == {"scenario_rows": 3, "per_second": 3, "evaluate": 1, "store_rows": 1, "cost_rows": 1,
                     "rows_under_load": 1}
