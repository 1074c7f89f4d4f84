"""From the bench's rounds (rounds.jsonl) to bench.json, bench.md and bench.png; every figure is computed
here from the raw rounds, so `python -m loadtest.bench.summary results/bench-<time>` rebuilds them.

- throughput: requests per second of a round; the ratio to the baseline is taken per round, against the
  baseline round beside it (same path, routing and round number), then the median over rounds;
- CPU: the CPU seconds each container used during a round, per 1,000 requests of that round; the
  containers are summed as the balancer, the app nodes and the stores (everything else);
- the load tool: its ceiling is what it reaches against nginx answering by itself; its CPU share is the CPU
  wrk used over the CPU the machine had during the round.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

from loadtest.bench.race import explain
from loadtest.lab import APP_NODES

BALANCER_SERVICE = "lb"
GROUPS = ("balancer", "app nodes", "stores")
PATHS = ("read", "write")


def group_of(service: str) -> str:
    if service == BALANCER_SERVICE:
        return "balancer"
    return "app nodes" if service in APP_NODES else "stores"


def cpu_per_1k(rounds: list[dict]) -> dict[str, float]:
    """CPU seconds per 1,000 requests, per container group, over `rounds` together."""
    requests = sum(r["requests"] for r in rounds)
    by_group = {g: 0.0 for g in GROUPS}
    for r in rounds:
        for service, seconds in r["cpu_s"].items():
            by_group[group_of(service)] += seconds
    return {g: round(s / requests * 1000, 3) if requests else None for g, s in by_group.items()}


def aggregate(rows: list[dict], baseline: str) -> list[dict]:
    """One entry per strategy and path, the baseline included, in the order the bench ran them."""
    def twin(i: int) -> dict | None:
        """The baseline round run right before or after round i, on the same path and routing."""
        for j in (i - 1, i + 1):
            if 0 <= j < len(rows) and rows[j]["strategy"] == baseline and all(
                    rows[j][k] == rows[i][k] for k in ("path", "mode", "round")):
                return rows[j]
        return None

    keys = []
    for r in rows:
        key = (r["strategy"], r["path"], r["mode"])
        if r["path"] in PATHS and key not in keys:
            keys.append(key)
    out = []
    for strategy, path, mode in keys:
        indices = [i for i, r in enumerate(rows) if (r["strategy"], r["path"], r["mode"]) == (strategy, path, mode)]
        mine = [rows[i] for i in indices]
        ratios = [rows[i]["rps"] / t["rps"] for i in indices if (t := twin(i)) and t["rps"]]
        cpu = cpu_per_1k(mine)
        out.append({
            "strategy": strategy, "path": path, "mode": mode, "rounds": len(mine),
            "rps": round(statistics.median(r["rps"] for r in mine), 1),
            "ratio": round(statistics.median(ratios), 3) if ratios and strategy != baseline else None,
            "p50_ms": round(statistics.median(r["p50_ms"] for r in mine), 2),
            "p99_ms": round(statistics.median(r["p99_ms"] for r in mine), 2),
            "errors": sum(sum(r["errors"].values()) for r in mine),
            "cpu_s_per_1k": cpu,
            "cpu_s_per_1k_total": round(sum(v or 0 for v in cpu.values()), 3),
        })
    return out


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


def race_markdown(races: list[dict]) -> list[str]:
    if not races:
        return []
    lines = ["", f"The race: bursts of {races[0]['burst']} parallel adds to one session, through nginx.", "",
             "| strategy | routing | bursts | adds acknowledged | errors | adds lost | lost per burst | what it means |",
             "|---|---|---|---|---|---|---|---|"]
    for r in races:
        lines.append(f"| {r['strategy']} | {r['mode']} | {r['bursts']} | {r['acknowledged']} | {r['errors']} | "
                     f"{r['lost']} | {r['lost_per_burst']} | {explain(r)} |")
    return lines


def markdown(entries: list[dict], tool: dict, baseline: str, settings: dict, races: list[dict]) -> str:
    lines = [(f"Throughput ratio: a strategy's requests/s over the `{baseline}` round beside it (same path and "
              "routing), median over rounds. CPU: CPU seconds per 1,000 requests, from the containers' cgroups."),
             "",
             (f"| strategy | path | routing | req/s | ratio to {baseline} | p50 ms | p99 ms | errors | "
              "CPU s/1k balancer | CPU s/1k app nodes | CPU s/1k stores | CPU s/1k total |"),
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for e in entries:
        c = e["cpu_s_per_1k"]
        lines.append(f"| {e['strategy']} | {e['path']} | {e['mode']} | {e['rps']} | "
                     f"{'' if e['ratio'] is None else e['ratio']} | {e['p50_ms']} | {e['p99_ms']} | {e['errors']} | "
                     f"{c['balancer']} | {c['app nodes']} | {c['stores']} | {e['cpu_s_per_1k_total']} |")
    lines += ["", f"The load tool: {tool['ceiling_rps']} req/s against nginx answering by itself, "
              f"{tool['ceiling_x_busiest']}x the busiest round ({tool['busiest_rps']} req/s); wrk used at most "
              f"{tool['tool_cpu_share_max']:.1%} of the machine's CPU in a round, {tool['tool_cpu_ms_per_1k']} ms "
              "per 1,000 requests." if tool["ceiling_rps"] else "",
              *race_markdown(races),
              "", "Settings: " + ", ".join(f"{k} {v}" for k, v in settings.items())]
    return "\n".join(lines) + "\n"


def plot(entries: list[dict], baseline: str, path: Path) -> None:
    measured = [e for e in entries if e["strategy"] != baseline]
    names = list(dict.fromkeys(e["strategy"] for e in measured))
    fig, axes = plt.subplots(2, 1, figsize=(11, 8))
    width = 0.4
    for n, which in enumerate(PATHS):
        ratios = [next((e["ratio"] for e in measured if e["strategy"] == s and e["path"] == which), None) or 0
                  for s in names]
        bars = axes[0].bar([i + (n - 0.5) * width for i in range(len(names))], ratios, width, label=which)
        axes[0].bar_label(bars, fmt="%.2f", fontsize=7)
    axes[0].axhline(1.0, color="black", linewidth=0.8)
    axes[0].set_ylabel(f"throughput / {baseline}")
    axes[0].set_title(f"Throughput at saturation, as a fraction of `{baseline}` in the round beside it", fontsize=10)
    axes[0].legend(fontsize=8)
    rows = [e for e in entries if e["path"] == "read"]
    labels = [f"{e['strategy']}\n({e['mode']})" if e["strategy"] == baseline else e["strategy"] for e in rows]
    bottom = [0.0] * len(rows)
    for group in GROUPS:
        values = [e["cpu_s_per_1k"][group] or 0 for e in rows]
        axes[1].bar(range(len(rows)), values, bottom=bottom, label=group)
        bottom = [b + v for b, v in zip(bottom, values)]
    axes[1].set_ylabel("CPU s per 1,000 requests")
    axes[1].set_title("Where the CPU of a read goes (cgroup counters of every container)", fontsize=10)
    axes[1].legend(fontsize=8)
    for ax, ticks in ((axes[0], names), (axes[1], labels)):
        ax.set_xticks(range(len(ticks)))
        ax.set_xticklabels(ticks, rotation=30, ha="right", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write(out: Path, rows: list[dict], races: list[dict], baseline: str, settings: dict) -> dict:
    entries = aggregate(rows, baseline)
    tool = tool_check(rows, os.cpu_count() or 1)
    result = {"baseline": baseline, "settings": settings, "cores": os.cpu_count(), "tool": tool, "results": entries,
              "race": [{**r, "meaning": explain(r)} for r in races]}
    (out / "bench.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "bench.md").write_text(markdown(entries, tool, baseline, settings, races))
    plot(entries, baseline, out / "bench.png")
    return result


def rebuild(out: Path) -> dict:
    previous = json.loads((out / "bench.json").read_text())
    rows, races = ([json.loads(line) for line in (out / name).read_text().splitlines() if line.strip()]
                   if (out / name).exists() else [] for name in ("rounds.jsonl", "race.jsonl"))
    return write(out, rows, races, previous["baseline"], previous["settings"])


if __name__ == "__main__":
    if len(sys.argv) != 2 or not (Path(sys.argv[1]) / "rounds.jsonl").exists():
        sys.exit("usage: python -m loadtest.bench.summary results/bench-<time>")
    rebuild(Path(sys.argv[1]))
    print(f"rebuilt {sys.argv[1]}")
