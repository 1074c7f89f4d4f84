"""The verdict at a glance, from synthetic scorecard rows whose right answers are known: each cell's category
and label, columns split by routing only where routing changed an outcome, a paragraph that follows the
data, the figure, and the reports that open with them."""

import json

import matplotlib.image
import numpy as np
import pytest

from loadtest.scoring import report, verdict
from loadtest.scoring.records import ScorecardRow
from session_lab import strategies

CLASSES = {cls.name: cls for cls in strategies.classes()}
ORDER = list(CLASSES)
BASELINE = {n for n, c in CLASSES.items() if not c.keeps_state}
MODES = ("round-robin", "sticky", "ip-hash", "least-conn")


def row(strategy, mode="round-robin", fault="kill", target="app2", **counts):
    return ScorecardRow(strategy, mode=mode, fault=fault, target=target, **counts)


def realistic():
    """Shaped like a full run: node-local strategies lose sessions under spreading routing whatever the fault
    and the killed node's users under sticky; Redis' strategies fail requests and lose sessions when Redis dies;
    the stateless ones see an error or two under round-robin; the Sentinel ones lose nothing."""
    rows = []
    for mode in MODES:
        spreading = mode in ("round-robin", "least-conn")
        for target in ("app2", "redis"):
            for name in ORDER:
                counts = {}
                if CLASSES[name].needs_sticky and spreading:
                    counts = {"sessions_lost": 150, "sessions_lost_before_fault": 40}
                elif name == "memory" and mode == "sticky" and target == "app2":
                    counts = {"sessions_lost": 2}
                elif target == "redis" and "redis" in CLASSES[name].dependencies:
                    counts = {"errors": 90, "sessions_lost": 3}
                elif target == "app2" and not CLASSES[name].dependencies and not CLASSES[name].needs_sticky \
                        and mode == "round-robin":
                    counts = {"errors": 1}
                rows.append(row(name, mode, target=target, **counts))
    return rows


def column(grid, fault, mode):
    return next(i for i, c in enumerate(grid.columns) if c.fault == fault and mode in c.modes)


@pytest.mark.parametrize("counts, category, label", [
    ({}, "nothing", "0"),
    ({"errors": 12}, "errors", "12 err"),
    ({"errors": 12, "sessions_lost": 3}, "sessions", "3 sess"),
    ({"errors": 12, "sessions_lost": 3, "writes_lost": 5}, "writes", "5 writes"),
    ({"writes_lost": 1}, "writes", "1 write"),
    ({"sessions_lost": 2877}, "sessions", "2,877 sess"),
])
def test_a_cell_takes_its_worst_loss_and_says_how_much(counts, category, label):
    cell = verdict.build([row("redis", **counts)]).cell("redis", 0)
    assert (cell.category, cell.label) == (category, label)


def test_a_cell_names_the_lesser_losses_its_colour_hides():
    cell = verdict.build([row("redis", errors=359, sessions_lost=10)]).cell("redis", 0)
    assert (cell.label, cell.also) == ("10 sess", "+359 err")
    assert verdict.build([row("redis", errors=4)]).cell("redis", 0).also == ""


def test_sessions_lost_before_the_fault_too_are_the_routings_cost_drawn_apart():
    """Node-local sessions under round-robin are lost whatever the fault: grey, said to be the routing's."""
    cell = verdict.build([row("memory", sessions_lost=189, sessions_lost_before_fault=60, errors=2)]).cell("memory", 0)
    assert (cell.category, cell.label, cell.also) == ("routing", "189 sess", "routing +2 err")
    rows = [row("memory", "round-robin", target="sentinel-primary", sessions_lost=189, sessions_lost_before_fault=60),
            row("redis", "round-robin", target="sentinel-primary")]
    text = verdict.paragraph(verdict.build(rows, ORDER, BASELINE))
    assert "Lost sessions" not in text  # the fault cost memory nothing of its own
    assert "memory lost sessions under round-robin whatever the fault, already before it" in text


def test_a_fault_is_split_only_where_routing_changes_an_outcome():
    rows = [row("memory", "round-robin", sessions_lost=5), row("memory", "least-conn", sessions_lost=7),
            row("memory", "sticky"), row("redis", "round-robin", errors=1), row("redis", "least-conn", errors=2),
            row("redis", "sticky", errors=4)]
    rows += [row(name, mode, target="redis", errors=3) for name in ("memory", "redis") for mode in MODES]
    grid = verdict.build(rows, ORDER)
    # kill app2: round-robin and least-conn agree (memory loses sessions, redis fails), sticky does not.
    assert [(c.fault, c.modes) for c in grid.columns] == [
        ("kill app2", ("round-robin", "least-conn")), ("kill app2", ("sticky",)),
        ("kill redis", MODES)]
    assert grid.cell("memory", 0).label == "12 sess"  # totals over the modes of the column
    assert grid.cell("redis", 0).label == "3 err" and grid.cell("redis", 1).label == "4 err"
    assert grid.cell("memory", 1).label == "0"
    # Every mode agrees on kill redis, though the counts differ: one column, its numbers summed.
    assert grid.cell("redis", 2).label == "12 err" and grid.columns[2].where == "any of 4 routings"


def test_different_numbers_in_the_same_category_do_not_split_a_fault():
    rows = [row("redis", mode, sessions_lost=n) for mode, n in zip(MODES, (1, 2, 3, 4))]
    assert [c.modes for c in verdict.build(rows).columns] == [MODES]
    rows[1].writes_lost = 1
    assert [c.modes for c in verdict.build(rows).columns] == [("round-robin", "ip-hash", "least-conn"), ("sticky",)]


def test_rows_follow_the_registry_with_the_stateless_baseline_last_and_faults_in_run_order():
    rows = [row("zz-unknown"), row("redis"), row("none"), row("memory"), row("redis", target="redis")]
    grid = verdict.build(rows, ORDER, BASELINE, fault_order=["kill redis", "kill app2"])
    registry = [n for n in ORDER if n in ("memory", "redis")]
    assert grid.strategies == registry + ["zz-unknown", "none"] and grid.baseline == ["none"]
    assert [c.fault for c in grid.columns] == ["kill redis", "kill app2"]
    assert grid.cell("memory", 0) is None  # memory's users did not run in kill redis: not run, not "nothing"


def test_the_paragraph_says_what_the_data_says():
    grid = verdict.build(realistic(), ORDER, BASELINE)
    text = verdict.paragraph(grid)
    clean = [n for n in ORDER if CLASSES[n].dependencies and "redis" not in CLASSES[n].dependencies]
    assert clean and text.startswith(", ".join(clean[:-1]) + f" and {clean[-1]} lost nothing")
    assert "Lost sessions: memory 2 in kill app2 (sticky);" in text  # the fault's own cost, not the routing's
    redis_users = [n for n in ORDER if "redis" in CLASSES[n].dependencies]
    assert " and ".join(f"{n} 12" for n in redis_users) + " in kill redis" in text
    node_local = [n for n in ORDER if CLASSES[n].needs_sticky]
    assert (", ".join(node_local[:-1]) + f" and {node_local[-1]} lost sessions under round-robin and least-conn "
            "whatever the fault, already before it") in text
    assert "failed requests: jwt 1 and client 1 in kill app2 (round-robin)" in text
    assert "The baseline none, which keeps no state, failed 1 request in kill app2 (round-robin)" in text
    assert "acknowledged writes" not in text and "foreign" not in text


def test_the_paragraph_changes_with_the_data():
    rows = realistic()
    before = verdict.paragraph(verdict.build(rows, ORDER, BASELINE))
    for r in rows:
        if r.strategy == "sentinel" and r.target == "redis" and r.mode == "sticky":
            r.writes_lost, r.foreign = 3, 1
    after = verdict.paragraph(verdict.build(rows, ORDER, BASELINE))
    assert after != before
    assert "Lost acknowledged writes: sentinel 3 in kill redis (sticky)." in after
    assert "1 answers held another user's data: sentinel 1." in after
    assert "sentinel," not in after.split(" lost nothing")[0]  # no longer among those that lost nothing


def test_nothing_lost_anywhere_is_said_plainly():
    text = verdict.paragraph(verdict.build([row("redis"), row("jwt"), row("none")], ORDER, BASELINE))
    assert text == ("redis and jwt lost nothing and failed no request in any fault. "
                    "The baseline none, which keeps no state, failed no request.")


def _has(image, colour):
    rgb = np.array([int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    return bool((np.abs(image[:, :, :3] - rgb).max(axis=2) < 0.02).sum() > 500)


def test_the_figure_is_written_with_a_colour_for_each_category_present(tmp_path):
    colours = {c.name: c.colour for c in verdict.CATEGORIES}
    grid, _ = verdict.write(tmp_path, realistic(), ORDER, BASELINE)
    image = matplotlib.image.imread(tmp_path / "verdict.png")
    assert image.shape[0] > 800 and image.shape[1] > 800
    assert all(_has(image, colours[c]) for c in ("nothing", "errors", "routing", "sessions"))
    assert not _has(image, colours["writes"])  # no write was lost: no red anywhere, the legend's swatch aside
    saved = json.loads((tmp_path / "verdict.json").read_text())
    assert saved["strategies"] == grid.strategies and saved["strategies"][-1] == "none"
    memory_sticky = saved["columns"][column(grid, "kill app2", "sticky")]["cells"]["memory"]
    assert (memory_sticky["category"], memory_sticky["label"]) == ("sessions", "2 sess")


def synthetic_run(run_dir):
    scenarios = [{"id": f"{mode}--kill-app2", "mode": mode, "fault": "kill", "target": "app2", "start": 0.0,
                  "inject": 5.0, "recovered": 8.0, "end": 20.0} for mode in ("round-robin", "sticky")]
    for s in scenarios:
        raw = run_dir / "raw" / s["id"]
        raw.mkdir(parents=True)
        lines = ["t,strategy,user,action,status,outcome,lost_items,latency_ms,node"]
        lines += [f"{t}.5,{name},u-{name},read,200,ok,0,12.0,app1" for t in range(20) for name in ("redis", "memory")]
        if s["mode"] == "round-robin":
            lines += ["9.0,memory,u-memory,read,401,session_lost,0,12.0,app3"]
        (raw / "requests.csv").write_text("\n".join(lines) + "\n")
    (run_dir / "scenarios.json").write_text(json.dumps(scenarios))


def test_the_reports_open_with_the_figure_and_paragraph_and_a_rebuild_redraws_them(tmp_path):
    synthetic_run(tmp_path)
    report.write(tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert md.splitlines()[0].startswith("![") and md.splitlines()[0].endswith("(verdict.png)")
    assert md.splitlines()[2].startswith("`redis` lost nothing")
    assert "`memory` 1 in kill app2 (round-robin)" in md.splitlines()[2]
    assert md.index("## Scorecard") > md.index("verdict.png")
    page = (tmp_path / "report.html").read_text()
    body = page[page.index("</h1>"):]
    assert body.index("<img src='verdict.png'") < body.index("redis lost nothing") < body.index("<p>")
    (tmp_path / "verdict.png").unlink()
    assert report.main([str(tmp_path)]) == 0
    assert (tmp_path / "verdict.png").stat().st_size > 10_000
