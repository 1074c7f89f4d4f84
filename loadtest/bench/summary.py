"""From the bench's rounds (rounds.jsonl) to bench.json, bench.md and bench.png; every figure is computed
here from the raw rounds, so `python -m loadtest.bench.summary results/bench-<time>` rebuilds them.

- CPU per request, the headline: the CPU seconds every container used during a round over that round's
  requests, in ms (the same number as CPU seconds per 1,000 requests); steadier than throughput on a shared
  machine. By container group (balancer, app nodes, stores: everything else) over all rounds together;
- ratios to the baseline (CPU per request, and throughput): taken per round, against the baseline round
  beside it (same path, routing and round number);
- each per-round figure as its median over rounds with the lowest and highest round, or `noisy` with the
  reason when the rounds cannot back it (spread.py: steal time, too few rounds, too wide a spread);
- the load tool: its ceiling is what it reaches against nginx answering by itself; its CPU share is the CPU
  wrk used over the CPU the machine had during the round.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

from loadtest.bench.race import explain  # noqa: E402
from loadtest.bench.spread import MIN_ROUNDS, SPREAD_LIMIT, STEAL_LIMIT, Figure, paired, per_round  # noqa: E402
from loadtest.lab import APP_NODES, BALANCER  # noqa: E402

GROUPS = ("balancer", "app nodes", "stores")
PATHS = ("read", "write")


def group_of(service: str) -> str:
    if service == BALANCER:
        return "balancer"
    return "app nodes" if service in APP_NODES else "stores"


def cpu_per_1k(rounds: list[dict]) -> dict[str, float | None]:
    """CPU seconds per 1,000 requests, per container group, over `rounds` together."""
    requests = sum(r["requests"] for r in rounds)
    by_group = {g: 0.0 for g in GROUPS}
    for r in rounds:
        for service, seconds in r["cpu_s"].items():
            by_group[group_of(service)] += seconds
    return {g: round(s / requests * 1000, 3) if requests else None for g, s in by_group.items()}


def cpu_ms_per_request(row: dict) -> float | None:
    """CPU ms every container used per request of one round."""
    return sum(row["cpu_s"].values()) / row["requests"] * 1000 if row["requests"] else None


def throughput(row: dict) -> float:
    return row["rps"]


@dataclass(frozen=True)
class Entry:
    """One strategy on one path in one routing mode, over its rounds."""

    strategy: str
    path: str
    mode: str
    rounds: int
    rps: float  # median over rounds
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_s_per_1k: dict[str, float | None]  # by container group, all rounds together
    cpu_per_request: Figure  # ms, every container
    cpu_ratio: Figure | None  # CPU per request / the baseline twin's; None for the baseline itself
    ratio: Figure | None  # throughput / the baseline twin's
    steal_max: float | None  # the largest share of the machine's CPU stolen in a round (None: not read)

    def as_json(self) -> dict:
        return {
            "strategy": self.strategy, "path": self.path, "mode": self.mode, "rounds": self.rounds, "rps": self.rps,
            "ratio": self.ratio.value if self.ratio else None, "p50_ms": self.p50_ms, "p99_ms": self.p99_ms,
            "errors": self.errors, "cpu_s_per_1k": self.cpu_s_per_1k,
            "cpu_s_per_1k_total": round(sum(v or 0 for v in self.cpu_s_per_1k.values()), 3),
            "cpu_ms_per_request": self.cpu_per_request.as_json(),
            "cpu_ratio": self.cpu_ratio.as_json() if self.cpu_ratio else None,
            "ratio_spread": self.ratio.as_json() if self.ratio else None, "steal_max": self.steal_max,
        }

    def noisy(self) -> list[str]:
        """Why any of its figures is withheld."""
        figures = (("CPU per request", self.cpu_per_request), ("CPU x baseline", self.cpu_ratio),
                   ("throughput x baseline", self.ratio))
        return [f"{name}: {figure.noisy}" for name, figure in figures if figure and figure.noisy]


def twin(rows: list[dict], i: int, baseline: str) -> dict | None:
    """The baseline round run right before or after round i, on the same path and routing."""
    for j in (i - 1, i + 1):
        if 0 <= j < len(rows) and rows[j]["strategy"] == baseline and all(
                rows[j][k] == rows[i][k] for k in ("path", "mode", "round")):
            return rows[j]
    return None


def entry(rows: list[dict], indices: list[int], baseline: str) -> Entry:
    mine = [rows[i] for i in indices]
    pairs = [(rows[i], t) for i in indices if (t := twin(rows, i, baseline))]
    compared = mine[0]["strategy"] != baseline
    steals = [r["steal"] for r in mine if "steal" in r]
    return Entry(
        strategy=mine[0]["strategy"], path=mine[0]["path"], mode=mine[0]["mode"], rounds=len(mine),
        rps=round(statistics.median(r["rps"] for r in mine), 1),
        p50_ms=round(statistics.median(r["p50_ms"] for r in mine), 2),
        p99_ms=round(statistics.median(r["p99_ms"] for r in mine), 2),
        errors=sum(sum(r["errors"].values()) for r in mine),
        cpu_s_per_1k=cpu_per_1k(mine),
        cpu_per_request=per_round(mine, cpu_ms_per_request),
        cpu_ratio=paired(pairs, cpu_ms_per_request) if compared else None,
        ratio=paired(pairs, throughput) if compared else None,
        steal_max=max(steals) if steals else None,
    )


def aggregate(rows: list[dict], baseline: str) -> list[Entry]:
    """One entry per strategy and path, the baseline included, in the order the bench ran them."""
    keys: dict[tuple[str, str, str], list[int]] = {}
    for i, r in enumerate(rows):
        if r["path"] in PATHS:
            keys.setdefault((r["strategy"], r["path"], r["mode"]), []).append(i)
    return [entry(rows, indices, baseline) for indices in keys.values()]


def tool_check(rows: list[dict], cores: int) -> dict:
    """Is wrk the bottleneck? Its ceiling against nginx alone, and the CPU it used in the busiest round."""
    ceiling = [r for r in rows if r["path"] == "balancer"]
    measured = [r for r in rows if r["path"] in PATHS]
    busiest = max(measured, key=lambda r: r["rps"], default=None)
    shares = [r["tool_cpu_s"] / (r["seconds"] * cores) for r in measured if r["seconds"]]
    return {
        "ceiling_rps": ceiling[0]["rps"] if ceiling else None,
        "busiest_rps": busiest["rps"] if busiest else None,
        "ceiling_x_busiest": round(ceiling[0]["rps"] / busiest["rps"], 2) if ceiling and busiest else None,
        "tool_cpu_share_max": round(max(shares), 3) if shares else None,
        "tool_cpu_ms_per_1k": round(sum(r["tool_cpu_s"] for r in measured)
                                    / max(1, sum(r["requests"] for r in measured)) * 1e6, 1),
    }


SMOKE_TEST = ("Smoke test (make bench QUICK=1): one short round per strategy and path shows that every path "
              "works end to end. One round has no spread, so it gives no figure a comparison could rest on: "
              "no ratio to the baseline and no CPU per request. Run `make bench` for figures.")


def how_to_read(baseline: str) -> str:
    return (f"Each figure is the median over rounds, [lowest-highest round] beside it. Ratios are taken round by "
            f"round against the `{baseline}` round run beside it (same path and routing). CPU per request: the "
            "CPU every container used (cgroup counters), in ms per request (= CPU seconds per 1,000 requests). "
            f"A figure is shown as noisy, not as a result, when a round lost more than {STEAL_LIMIT:.0%} of the "
            f"machine's CPU to steal time (that round is dropped), when fewer than {MIN_ROUNDS} rounds are left, "
            f"or when the rounds range wider than {SPREAD_LIMIT:.0%} of their median.")


def cell(figure: Figure | None, notes: list[str], why: str) -> str:
    """A figure for a table: its spread, or `noisy (n)` with the reason as note n below the table."""
    if figure is None:
        return ""
    if figure.noisy:
        notes.append(f"{why}: {figure.noisy}")
        return f"noisy ({len(notes)})"
    return f"{figure.spread.median:.2f} [{figure.spread.low:.2f}-{figure.spread.high:.2f}]"


def results_table(entries: list[Entry], baseline: str, quick: bool) -> list[str]:
    lines = [(f"| strategy | path | routing | rounds | CPU ms per request | CPU x {baseline} "
              f"| req/s ratio to {baseline} | req/s | p50 ms | p99 ms | errors | CPU ms balancer | CPU ms app nodes "
              "| CPU ms stores | steal max |"),
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    notes: list[str] = []
    for e in entries:
        c = e.cpu_s_per_1k
        figures = ["smoke test"] * 3 if quick else [
            cell(e.cpu_per_request, notes, f"{e.strategy} {e.path}: CPU per request"),
            cell(e.cpu_ratio, notes, f"{e.strategy} {e.path}: CPU x {baseline}"),
            cell(e.ratio, notes, f"{e.strategy} {e.path}: req/s ratio to {baseline}")]
        if quick and e.strategy == baseline:
            figures[1:] = ["", ""]
        steal = "" if e.steal_max is None else f"{e.steal_max:.1%}"
        lines.append(f"| {e.strategy} | {e.path} | {e.mode} | {e.rounds} | {' | '.join(figures)} | {e.rps} | "
                     f"{e.p50_ms} | {e.p99_ms} | {e.errors} | {c['balancer']} | {c['app nodes']} | {c['stores']} | "
                     f"{steal} |")
    if notes:
        lines += ["", "Noisy figures, and why:", "", *(f"{n}. {note}" for n, note in enumerate(notes, 1))]
    return lines


def tool_text(tool: dict) -> str:
    if not tool["ceiling_rps"]:
        return ""
    return (f"The load tool: {tool['ceiling_rps']} req/s against nginx answering by itself, "
            f"{tool['ceiling_x_busiest']}x the busiest round ({tool['busiest_rps']} req/s); wrk used at most "
            f"{tool['tool_cpu_share_max']:.1%} of the machine's CPU in a round, {tool['tool_cpu_ms_per_1k']} ms "
            "per 1,000 requests.")


def race_markdown(races: list[dict]) -> list[str]:
    if not races:
        return []
    lines = ["", f"The race: bursts of {races[0]['burst']} parallel adds to one session, through nginx.", "",
             ("| strategy | routing | bursts | adds acknowledged | errors | adds lost | lost per burst "
              "| what it means |"),
             "|---|---|---|---|---|---|---|---|"]
    for r in races:
        lines.append(f"| {r['strategy']} | {r['mode']} | {r['bursts']} | {r['acknowledged']} | {r['errors']} | "
                     f"{r['lost']} | {r['lost_per_burst']} | {explain(r)} |")
    return lines


def markdown(entries: list[Entry], tool: dict, baseline: str, settings: dict, races: list[dict]) -> str:
    quick = bool(settings.get("quick"))
    lines = [SMOKE_TEST if quick else how_to_read(baseline), "", *results_table(entries, baseline, quick),
             "", tool_text(tool), *race_markdown(races),
             "", "Settings: " + ", ".join(f"{k} {v}" for k, v in settings.items())]
    return "\n".join(lines) + "\n"


def headline(entries: list[Entry], baseline: str, quick: bool) -> list[str]:
    """What the bench prints at the end: CPU per request with its spread, or why there is none."""
    if quick:
        return ["bench: " + SMOKE_TEST]
    lines = ["bench: CPU ms per request (every container), and ratios to the baseline round beside each round: "
             "median [lowest-highest round]"]
    width = max((len(e.strategy) for e in entries), default=0) + 2
    for e in entries:
        figures = [f"CPU {e.cpu_per_request.text()}"] + [
            f"{what} x {baseline} {figure.text()}" for what, figure in (("CPU", e.cpu_ratio), ("req/s", e.ratio))
            if figure]
        lines.append(f"  {e.strategy:<{width}}{e.path:<6} {e.mode:<12} " + "   ".join(figures))
    return lines


def trusted(figure: Figure | None) -> Figure | None:
    return figure if figure is not None and figure.value is not None else None


def plot_ratios(ax, measured: list[Entry], names: list[str], baseline: str, quick: bool) -> None:
    """CPU per request over the baseline's, per path: the median as a bar, the rounds' range as whiskers, and
    `noisy` where the figure is withheld."""
    width = 0.4
    for n, which in enumerate(PATHS):
        found = {e.strategy: trusted(e.cpu_ratio) for e in measured if e.path == which}
        figures = [found.get(name) for name in names]
        heights = [f.spread.median if f else 0 for f in figures]
        whiskers = [[f.spread.median - f.spread.low if f else 0 for f in figures],
                    [f.spread.high - f.spread.median if f else 0 for f in figures]]
        bars = ax.bar([i + (n - 0.5) * width for i in range(len(names))], heights, width, yerr=whiskers, capsize=2,
                      label=which)
        labels = [f"{h:.2f}" if f else "noisy" for h, f in zip(heights, figures, strict=True)]
        ax.bar_label(bars, labels=labels, fontsize=7)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_ylabel(f"CPU per request / {baseline}")
    title = (f"CPU per request at saturation over {baseline}'s in the round beside it: median, whiskers the "
             "lowest and highest round")
    ax.set_title("Smoke test: one round, no spread, no ratios" if quick else title, fontsize=10)
    ax.legend(fontsize=8)


def plot_cpu(ax, entries: list[Entry], baseline: str) -> list[str]:
    """Where the CPU of a read goes, stacked by container group; the bars' labels."""
    rows = [e for e in entries if e.path == "read"]
    bottom = [0.0] * len(rows)
    for group in GROUPS:
        values = [e.cpu_s_per_1k[group] or 0 for e in rows]
        ax.bar(range(len(rows)), values, bottom=bottom, label=group)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_ylabel("CPU ms per request")
    ax.set_title("Where the CPU of a read goes (cgroup counters of every container, all rounds)", fontsize=10)
    ax.legend(fontsize=8)
    return [f"{e.strategy}\n({e.mode})" if e.strategy == baseline else e.strategy for e in rows]


def plot(entries: list[Entry], baseline: str, path: Path, quick: bool) -> None:
    measured = [e for e in entries if e.strategy != baseline]
    names = list(dict.fromkeys(e.strategy for e in measured))
    fig, axes = plt.subplots(2, 1, figsize=(11, 8))
    plot_ratios(axes[0], measured, names, baseline, quick)
    labels = plot_cpu(axes[1], entries, baseline)
    for ax, ticks in ((axes[0], names), (axes[1], labels)):
        ax.set_xticks(range(len(ticks)))
        ax.set_xticklabels(ticks, rotation=30, ha="right", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


@dataclass(frozen=True)
class Summary:
    entries: list[Entry]
    json: dict  # what bench.json holds


def write(out: Path, rows: list[dict], races: list[dict], baseline: str, settings: dict) -> Summary:
    """bench.json, bench.md and bench.png from the raw rounds."""
    entries = aggregate(rows, baseline)
    tool = tool_check(rows, os.cpu_count() or 1)
    result = {"baseline": baseline, "settings": settings, "cores": os.cpu_count(), "tool": tool,
              "results": [e.as_json() for e in entries], "race": [{**r, "meaning": explain(r)} for r in races]}
    (out / "bench.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "bench.md").write_text(markdown(entries, tool, baseline, settings, races))
    plot(entries, baseline, out / "bench.png", bool(settings.get("quick")))
    return Summary(entries, result)


def rebuild(out: Path) -> dict:
    previous = json.loads((out / "bench.json").read_text())
    rows, races = ([json.loads(line) for line in (out / name).read_text().splitlines() if line.strip()]
                   if (out / name).exists() else [] for name in ("rounds.jsonl", "race.jsonl"))
    return write(out, rows, races, previous["baseline"], previous["settings"]).json


if __name__ == "__main__":
    if len(sys.argv) != 2 or not (Path(sys.argv[1]) / "rounds.jsonl").exists():
        sys.exit("usage: python -m loadtest.bench.summary results/bench-<time>")
    rebuild(Path(sys.argv[1]))
    print(f"rebuilt {sys.argv[1]}")
