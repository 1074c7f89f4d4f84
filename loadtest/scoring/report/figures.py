"""The report's figures: one per scenario over time, the losses per fault, the store faults side by side.
Each draws from the scorecard (ScorecardRow) and the per-second series (analysis.per_second) it is given."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

from loadtest.scoring import analysis  # noqa: E402
from loadtest.scoring.records import Scenario, ScorecardRow  # noqa: E402
from loadtest.users.oracle import ERROR, SESSION_LOST, WRITES_LOST  # noqa: E402


def plot_store_faults(rows: list[ScorecardRow], path: Path, scenarios: list[Scenario] = ()) -> None:
    """`rows`: the store-fault rows (build.store_rows). Per store fault, each of the store's strategies: the
    longest wait for a good answer (top, labelled with acknowledged writes lost) and the p99 latency while faulted
    (middle): what a failover costs, side by side. Bottom, when the run recorded them: the answers the store's
    circuit breaker and bulkhead gave at once (session_lab/breaker.py), each a thread that did not wait for a
    dead store."""
    faults = list(dict.fromkeys(f"{r.fault} {r.target}" for r in rows))
    refused = {f"{s.fault} {s.target}": s.refused.get(s.store, {}) for s in scenarios
               if s.refused is not None and s.store}
    panels = 3 if refused else 2
    colours = {name: f"C{i}" for i, name in enumerate(dict.fromkeys(r.strategy for r in rows))}
    fig, axes = plt.subplots(panels, 1, figsize=(max(8, 1.2 * len(faults) + 2), 3.25 * panels), sharex=True)
    for j, fault in enumerate(faults):
        group = [r for r in rows if f"{r.fault} {r.target}" == fault]
        width = 0.8 / len(group)
        for i, row in enumerate(group):
            x = j + (i - (len(group) - 1) / 2) * width
            axes[0].bar(x, row.unavailable_s, width, color=colours[row.strategy])
            axes[0].annotate(f"{row.writes_lost}", (x, row.unavailable_s), ha="center", va="bottom",
                             fontsize=8, color="tab:red" if row.writes_lost else "black")
            axes[1].bar(x, (row.p99_window_ms or 0) / 1000, width, color=colours[row.strategy])
    axes[0].set_ylabel("unavailable s", fontsize=9)
    axes[0].set_title("Store faults. Top: the longest any user waited for a good answer\n(the number on a bar: "
                      "acknowledged writes lost). Middle: p99 latency while faulted.", fontsize=9)
    axes[1].set_ylabel("p99 in window, s", fontsize=9)
    if refused:
        plot_refusals(axes[2], faults, refused)
    axes[-1].set_xticks(range(len(faults)), faults, rotation=25, ha="right", fontsize=8)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colours.values()]
    axes[0].legend(handles, list(colours), fontsize=8, loc="upper left")
    for ax in axes:
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


REFUSALS = (("circuit_open", "breaker open", "tab:purple"), ("bulkhead_full", "bulkhead full", "tab:orange"))


def plot_refusals(ax, faults: list[str], refused: dict[str, dict[str, int]]) -> None:
    """Stacked per fault: the faulted store's fail-fast 503s by why, summed over the nodes."""
    bottom = [0] * len(faults)
    for why, label, colour in REFUSALS:
        counts = [refused.get(fault, {}).get(why, 0) for fault in faults]
        bars = ax.bar(range(len(faults)), counts, 0.5, bottom=bottom, color=colour, label=label)
        ax.bar_label(bars, labels=[str(c) if c else "" for c in counts], label_type="center", fontsize=7)
        bottom = [b + c for b, c in zip(bottom, counts)]
    ax.set_ylabel("503s at once", fontsize=9)
    ax.set_title("Answered at once by the store's circuit breaker or bulkhead (summed over the nodes):\n"
                 "each a request that did not hold a thread waiting for the faulted store", fontsize=9)
    ax.legend(fontsize=8, loc="upper left")
    ax.set_ylim(0, max(2, max(bottom) * 1.25))


def plot_scenario(scenario: Scenario, series: dict[str, list[dict]], path: Path) -> None:
    fig, axes = plt.subplots(3, 1, figsize=(10, 7.5), sharex=True)
    t0 = scenario.start
    for strategy, points in series.items():
        seconds = [p["second"] for p in points]
        # Each point covers the requests started in [second, second + 1): drawn as a step over that second,
        # so a request started just before the fault and answered after it shows where it began.
        steps = {"label": strategy, "drawstyle": "steps-post"}
        axes[0].plot(seconds, [p["requests"] for p in points], **steps)
        axes[1].plot(seconds, [p[ERROR] + p[SESSION_LOST] + p[WRITES_LOST] for p in points], **steps)
        axes[2].plot(seconds, [p["p95_ms"] if p["p95_ms"] is not None else float("nan") for p in points], **steps)
    store_lines = []
    for ax, title in zip(axes, ["requests / s", "errors + lost sessions + lost writes / s", "p95 latency (ms)"]):
        ax.axvspan(scenario.inject - t0, scenario.recovered - t0, color="tab:red", alpha=0.12)
        ax.axvline(scenario.inject - t0, color="tab:red", linestyle="--", linewidth=1)
        ax.set_ylabel(title, fontsize=8)
        ax.grid(alpha=0.3)
        for n, event in enumerate(e for e in scenario.events if e["event"] != "watching"):
            line = ax.axvline(event["t"] - t0, color=("black", "tab:olive", "tab:cyan", "tab:brown")[n % 4],
                              linestyle=":", linewidth=1.4, label=event["event"])
            if ax is axes[1]:
                store_lines.append(line)
    if store_lines:
        axes[1].legend(handles=store_lines, loc="upper right", fontsize=7, title="the store's timeline",
                       title_fontsize=7)
    axes[2].set_yscale("log")
    strategy_lines = axes[0].get_lines()[:len(series)]  # not the fault and store-event markers
    axes[0].legend(handles=strategy_lines, loc="lower left", fontsize=7, ncol=min(len(series), 5))
    axes[0].set_title(f"{scenario.mode}: {analysis.fault_name(scenario)} at the dashed line "
                      f"(shaded: until recovered)", fontsize=10)
    axes[2].set_xlabel("seconds since the load started (each request counted in the second it was sent)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_losses(rows: list[ScorecardRow], path: Path, strategy_order: list[str]) -> None:
    """One row per fault: sessions lost (left) and acknowledged writes lost (right), grouped by strategy,
    one bar per routing mode, each labelled with its count."""
    faults = sorted({f"{r.fault} {r.target}" for r in rows})
    modes = sorted({r.mode for r in rows})
    strategies = [n for n in strategy_order if any(r.strategy == n for r in rows)]
    fig, axes = plt.subplots(len(faults), 2, figsize=(max(10, 1.3 * len(strategies) + 2), 2.8 * len(faults) + 0.6),
                             squeeze=False)
    width = 0.8 / len(modes)
    for col, fault in enumerate(faults):
        cells = {(r.strategy, r.mode): r for r in rows if f"{r.fault} {r.target}" == fault}
        for row_index, (field, label) in enumerate([("sessions_lost", "sessions lost"),
                                                    ("writes_lost", "acknowledged writes lost")]):
            ax = axes[col][row_index]
            top = 0
            for m, mode in enumerate(modes):
                xs = [i + (m - (len(modes) - 1) / 2) * width for i in range(len(strategies))]
                values = [getattr(cells[(n, mode)], field) if (n, mode) in cells else 0 for n in strategies]
                bars = ax.bar(xs, values, width=width, label=mode)
                ax.bar_label(bars, labels=[str(v) if v else "" for v in values], fontsize=7)
                top = max(top, *values)
            ax.set_xticks(range(len(strategies)), strategies, rotation=30, ha="right", fontsize=8)
            ax.set_yscale("symlog")
            ax.set_ylim(0, max(2, top * 3))
            if top == 0:
                ax.text(0.5, 0.5, f"no {label} in any routing mode", transform=ax.transAxes, ha="center",
                        color="tab:green")
            ax.set_ylabel(label, fontsize=9)
            ax.grid(axis="y", alpha=0.3)
            ax.set_title(f"{fault}: {label}", fontsize=10)
    axes[0][0].legend(title="routing", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
