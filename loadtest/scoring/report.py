"""Scorecard (JSON and Markdown), per-second series, plots and the report (HTML and Markdown) for one run folder.
Both reports open with the verdict at a glance (verdict.png, loadtest/scoring/verdict.py).

    python -m loadtest.scoring.report results/<run>     rebuilds all of it from the raw data in that folder
"""

from __future__ import annotations

import csv
import html
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

from loadtest.lab import HA_STORES, store_of  # noqa: E402
from loadtest.scoring import analysis, expectations, replication_report, saturation_report  # noqa: E402
from loadtest.scoring import verdict as glance  # `verdict` below: the hypotheses' results
from loadtest.users import record  # noqa: E402
from loadtest.users.oracle import ERROR, SESSION_LOST, WRITES_LOST  # noqa: E402
from session_lab import strategies as registry  # noqa: E402

COLUMNS = [  # (scorecard field, heading)
    ("strategy", "strategy"), ("mode", "routing"), ("fault", "fault"), ("requests", "requests"),
    ("errors", "errors"), ("sessions_lost", "sessions lost"), ("writes_lost", "writes lost"),
    ("foreign", "foreign"), ("duplicates", "duplicates"), ("not_revoked", "not revoked"), ("p50_ms", "p50 ms"),
    ("p95_ms", "p95 ms"), ("p99_ms", "p99 ms"), ("error_window_s", "error window s"),
    ("unavailable_s", "unavailable s"), ("recover_s", "recover s"),
]
# The store-fault table: only the strategies of the faulted store, with the store's own timeline.
STORE_COLUMNS = [
    ("strategy", "strategy"), ("fault", "fault"), ("requests", "requests"), ("errors_get", "errors GET"),
    ("errors_post", "errors POST"), ("unavailable_s", "unavailable s"), ("p99_window_ms", "p99 in window ms"),
    ("sessions_lost", "sessions lost"), ("writes_lost", "writes lost"), ("duplicates", "duplicates"),
    ("errors_off_shard", "errors off shard"), ("detected_s", "detected s"), ("promoted_s", "promoted s"),
    ("first_success_s", "first success s"),
]


# Why each fault looks the way it does: read off the plots and the balancer's config, kept beside the
# numbers so a reader need not guess. Keyed by fault.
WHY = {
    "kill": "SIGKILL ends app2 mid-request. nginx replays what it had sent there on another node, POSTs "
            "included: an add carries an Idempotency-Key and a jwt/client request its old state, so a replay "
            "never applies an add twice. The dead node's address stops answering, so nginx's 200 ms connect "
            "timeout shows as a short latency spike until it marks the node down (max_fails=1, fail_timeout=5s). "
            "Node-local (memory) sessions on app2 are gone: under sticky routing exactly those users log in "
            "again elsewhere, while the replicated ones are served by app3, app2's buddy, from its copies; under ip-hash the load users' forwarded addresses "
            "spread them too, so the kill costs the memory users hashed to app2 their sessions; nginx rehashes "
            "them elsewhere meanwhile, and sends them back when app2 returns, which costs the sessions they "
            "started during the outage.",
    "stop": "SIGTERM lets gunicorn finish in-flight requests (graceful_timeout 10 s, stop_grace_period 15 s). "
            "It also closes idle keepalive connections, and a request nginx sends on one at that instant is "
            "replayed on another node, so no request fails; memory sessions on app2 are still lost, because "
            "they lived in the stopped process.",
    "pause": "A frozen node still accepts TCP connections but never answers: requests sent to it wait "
             "proxy_read_timeout (5 s) and are then replayed elsewhere, within the 6 s retry budget, or fail "
             "with a 504 when it runs out. When the node thaws it applies its stale copies: a replayed add "
             "is a no-op thanks to its Idempotency-Key, and nobody waits for the answers. Zombie writes from a "
             "paused node: flask-session's requests frozen mid-way wake up and write their stale session back "
             "over the adds the other nodes acknowledged meanwhile (its read-modify-write), so it may lose "
             "acknowledged writes here; the strategies that change the stored cart in place cannot.",
    "redeploy": "Each app node in turn is replaced by a new container, as a version upgrade would: a graceful "
                "stop, a new process, healthy, and every replicated node's copies on its buddy again before the "
                "next. Memory sessions die with each node; the replicated ones move to the buddy as the node "
                "stops (sticky routing sends its users there, and a user who comes back to the new, empty node "
                "is handed the session back); store-backed and stateless strategies do not notice.",
    "disconnect": "Cut off from the lab network, the node cannot be reached at all: connections time out after "
                  "1 s and nginx replays the requests elsewhere; a request already sent when the cut happened "
                  "waits the 5 s read timeout first.",
}
# Why each store fault or node-group fault looks the way it does, keyed by target (a store role, a node group).
ROLE_WHY = {
    "node-and-buddy": "A node and its buddy killed together: the first node's replicated sessions had their only "
                      "copy on the second, so exactly those users lose them (sticky routing tries both, then any "
                      "node, which answers 401). The second node's users reach the third node, which holds their "
                      "copies; the third node serves its own users without a copy until its buddy returns.",
    "sentinel-primary": "The sentinels mark the primary down after 1 s without answers (down-after), agree (quorum "
                        "2), elect a leader and promote a replica: the store timeline shows each step. Meanwhile "
                        "the app retries with backoff for up to 2 s, asking the sentinels where the primary is on "
                        "every new connection, so most requests only wait. A killed primary may take its last "
                        "acknowledged writes with it (asynchronous replication): sentinel counts them as writes "
                        "lost, sentinel-wait acknowledged nothing a replica had not confirmed. Paused or cut off, "
                        "the old primary wakes up still believing it is primary; min-replicas-to-write makes it "
                        "refuse writes until the sentinels demote it, instead of acknowledging writes that would "
                        "vanish. A graceful stop waits for the replicas to catch up before it exits.",
    "sentinel-replica": "One replica gone: the primary keeps serving, the other replica still confirms "
                        "sentinel-wait's writes.",
    "sentinel-quorum": "Two of three sentinels gone: no failover is possible any more (no quorum, no majority to "
                       "elect a leader), but nothing has failed yet, so the primary serves on: 0 errors. A primary "
                       "dying now would stay down until a sentinel returns.",
    "cluster-master": "The shard's master stops answering; after cluster-node-timeout (1.5 s) the other masters "
                      "agree it failed and its replica wins the election and takes over its slots. Only sessions "
                      "whose slots that shard serves wait or get 503s (errors off shard = 0); the other two shards "
                      "answer throughout. The promoted replica has no replica of its own until the old master "
                      "returns, so cluster-wait refuses writes on that shard (503 write_not_confirmed) for the rest "
                      "of the outage: durability bought with availability.",
    "cluster-shard": "Master and replica both gone: the shard's slots have no copy left. With full coverage off "
                     "the other shards carry on; the lost shard's sessions get 503 until its nodes return from "
                     "their append-only files with the data intact.",
}
STORE_WHY = ("With its store down, a strategy answers 503 after Redis' 0.5 s connect timeout, and the others "
             "carry on. Redis keeps no data by default (no RDB, no AOF), so when it comes back every redis "
             "session is gone and its users log in again (sessions lost after recovery); REDIS_AOF=yes keeps "
             "them, minus up to a second of writes (appendfsync everysec). jwt serves throughout, but its logouts "
             "during the outage reach only the node that served them until Redis returns: replays of those "
             "tokens on other nodes count as not revoked (the documented gap).")


def cell(row: dict, field: str) -> str:
    value = row[field]
    if field == "fault":
        return analysis.fault_name(row)
    if field == "recover_s" and value is None:
        return "never"
    if isinstance(value, float):
        return f"{value:.1f}" if field != "error_window_s" else f"{value:.2f}"
    return str(value)


def markdown(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(h for _, h in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        lines.append("| " + " | ".join(cell(row, f) for f, _ in COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def store_markdown(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(h for _, h in STORE_COLUMNS) + " |", "|" + "---|" * len(STORE_COLUMNS)]
    for row in store_rows(rows):
        lines.append("| " + " | ".join("" if row[f] is None else cell(row, f) for f, _ in STORE_COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def store_rows(rows: list[dict]) -> list[dict]:
    """The rows of a Sentinel or Cluster fault for the strategies that keep sessions in that store."""
    classes = {cls.name: cls for cls in registry.classes()}
    return [r for r in rows if r.get("store") in HA_STORES and r["strategy"] in classes
            and r["store"] in classes[r["strategy"]].dependencies]


def plot_store_faults(rows: list[dict], path: Path, scenarios: list[dict] = ()) -> None:
    """Per store fault, each of the store's strategies: the longest wait for a good answer (top, labelled with
    acknowledged writes lost) and the p99 latency while faulted (middle): what a failover costs, side by side.
    Bottom, when the run recorded them: the answers the store's circuit breaker and bulkhead gave at once
    (session_lab/breaker.py), each a thread that did not wait for a dead store."""
    rows = store_rows(rows)
    faults = list(dict.fromkeys(f"{r['fault']} {r['target']}" for r in rows))
    refused = {f"{s['fault']} {s['target']}": s["refused"].get(s["store"], {}) for s in scenarios
               if "refused" in s and s.get("store")}
    panels = 3 if refused else 2
    colours = {name: f"C{i}" for i, name in enumerate(dict.fromkeys(r["strategy"] for r in rows))}
    fig, axes = plt.subplots(panels, 1, figsize=(max(8, 1.2 * len(faults) + 2), 3.25 * panels), sharex=True)
    for j, fault in enumerate(faults):
        group = [r for r in rows if f"{r['fault']} {r['target']}" == fault]
        width = 0.8 / len(group)
        for i, row in enumerate(group):
            x = j + (i - (len(group) - 1) / 2) * width
            axes[0].bar(x, row["unavailable_s"], width, color=colours[row["strategy"]])
            axes[0].annotate(f"{row['writes_lost']}", (x, row["unavailable_s"]), ha="center", va="bottom",
                             fontsize=8, color="tab:red" if row["writes_lost"] else "black")
            axes[1].bar(x, (row["p99_window_ms"] or 0) / 1000, width, color=colours[row["strategy"]])
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


def plot_scenario(scenario: dict, series: dict[str, list[dict]], path: Path) -> None:
    fig, axes = plt.subplots(3, 1, figsize=(10, 7.5), sharex=True)
    t0 = scenario["start"]
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
        ax.axvspan(scenario["inject"] - t0, scenario["recovered"] - t0, color="tab:red", alpha=0.12)
        ax.axvline(scenario["inject"] - t0, color="tab:red", linestyle="--", linewidth=1)
        ax.set_ylabel(title, fontsize=8)
        ax.grid(alpha=0.3)
        for n, event in enumerate(e for e in scenario.get("store_events", ()) if e["event"] != "watching"):
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
    axes[0].set_title(f"{scenario['mode']}: {analysis.fault_name(scenario)} at the dashed line "
                      f"(shaded: until recovered)", fontsize=10)
    axes[2].set_xlabel("seconds since the load started (each request counted in the second it was sent)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_losses(rows: list[dict], path: Path, strategy_order: list[str]) -> None:
    """One row per fault: sessions lost (left) and acknowledged writes lost (right), grouped by strategy,
    one bar per routing mode, each labelled with its count."""
    faults = sorted({f"{r['fault']} {r['target']}" for r in rows})
    modes = sorted({r["mode"] for r in rows})
    strategies = [n for n in strategy_order if any(r["strategy"] == n for r in rows)]
    fig, axes = plt.subplots(len(faults), 2, figsize=(max(10, 1.3 * len(strategies) + 2), 2.8 * len(faults) + 0.6),
                             squeeze=False)
    width = 0.8 / len(modes)
    for col, fault in enumerate(faults):
        cells = {(r["strategy"], r["mode"]): r for r in rows if f"{r['fault']} {r['target']}" == fault}
        for row_index, (field, label) in enumerate([("sessions_lost", "sessions lost"),
                                                    ("writes_lost", "acknowledged writes lost")]):
            ax = axes[col][row_index]
            top = 0
            for m, mode in enumerate(modes):
                xs = [i + (m - (len(modes) - 1) / 2) * width for i in range(len(strategies))]
                values = [cells[(n, mode)][field] if (n, mode) in cells else 0 for n in strategies]
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


def write(run_dir: Path) -> list[dict]:
    """Recompute everything from the raw data; returns the hypotheses' verdicts."""
    scenarios = json.loads((run_dir / "scenarios.json").read_text())
    raw_by_scenario = {s["id"]: record.read(run_dir / "raw" / s["id"] / "requests.csv") for s in scenarios
                       if (run_dir / "raw" / s["id"] / "requests.csv").exists()}
    rows = [row for s in scenarios if s["id"] in raw_by_scenario
            for row in analysis.scenario_rows(raw_by_scenario[s["id"]], s)]
    classes = {cls.name: cls for cls in registry.classes()}
    order = {name: i for i, name in enumerate(classes)}
    rows.sort(key=lambda r: (r["mode"], f"{r['fault']} {r['target']}", r.get("load") or 0,
                             order.get(r["strategy"], len(order))))
    verdict = expectations.evaluate(rows, classes)
    (run_dir / "scorecard.json").write_text(json.dumps(rows, indent=2))
    cost = replication_report.cost_rows(rows, scenarios, classes)
    run = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").exists() else {}
    under_load = saturation_report.rows_under_load(rows)
    scorecard = (
        markdown(rows) + ("\n## Store faults\n\n" + store_markdown(rows) if store_rows(rows) else "")
        + ("\n## What node replication costs\n\n" + replication_report.markdown(cost) if cost else "")
        + ("\n## Failover under load\n\n" + saturation_report.markdown(rows, run.get("capacity_rps"))
           if under_load else ""))
    (run_dir / "scorecard.md").write_text(scorecard)
    # The verdict at a glance opens both reports; the none baseline (keeps no state) is drawn last.
    grid, _ = glance.write(run_dir, rows, list(classes), {n for n, c in classes.items() if not c.keeps_state},
                           [analysis.fault_name(s) for s in scenarios])
    (run_dir / "report.md").write_text(glance.markdown(grid) + "\n## Scorecard\n\n" + scorecard)
    (run_dir / "expectations.json").write_text(json.dumps(verdict, indent=2))
    plots = run_dir / "plots"
    plots.mkdir(exist_ok=True)
    with (run_dir / "per_second.csv").open("w", newline="") as f:
        writer = None
        for scenario in scenarios:
            if scenario["id"] not in raw_by_scenario:
                continue
            series = analysis.per_second(raw_by_scenario[scenario["id"]], scenario["start"])
            plot_scenario(scenario, series, plots / f"{scenario['id']}.png")
            for strategy, points in series.items():
                for p in points:
                    line = {"scenario": scenario["id"], "strategy": strategy, **p}
                    if writer is None:
                        writer = csv.DictWriter(f, fieldnames=list(line))
                        writer.writeheader()
                    writer.writerow(line)
    plot_losses(rows, plots / "losses.png", list(classes))
    if store_rows(rows):
        plot_store_faults(rows, plots / "store-faults.png", scenarios)
    if under_load:
        saturation_report.plot(rows, plots / "saturation.png")
    sections = replication_report.section(cost) + saturation_report.section(rows, run.get("capacity_rps"))
    (run_dir / "report.html").write_text(page(run_dir, scenarios, rows, verdict, sections, glance.paragraph(grid)))
    return verdict


def page(run_dir: Path, scenarios: list[dict], rows: list[dict], verdict: list[dict], sections: str = "",
         at_a_glance: str = "") -> str:
    """The HTML report; `at_a_glance`: the verdict paragraph, shown under verdict.png before everything else."""
    e = html.escape
    run = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").exists() else {}
    held = sum(v["held"] for v in verdict)
    table = "<tr>" + "".join(f"<th>{e(h)}</th>" for _, h in COLUMNS) + "</tr>" + "".join(
        "<tr>" + "".join(f"<td>{e(cell(r, f))}</td>" for f, _ in COLUMNS) + "</tr>" for r in rows)
    claims = "".join(
        f"<tr><td><b>{e(h.name)}</b></td><td>{e(h.claim)}</td>"
        f"<td>{sum(v['held'] for v in verdict if v['hypothesis'] == h.name)} / "
        f"{sum(1 for v in verdict if v['hypothesis'] == h.name)}</td></tr>"
        for h in expectations.HYPOTHESES)
    deviations = "".join(
        f"<li class=bad>{e(v['hypothesis'])}: {e(v['strategy'])} / {e(v['mode'])} / {e(v['fault'])}: "
        f"{e(v['detail'])}</li>" for v in verdict if not v["held"]) or "<li class=good>none</li>"
    figures = "".join(
        f"<h3>{e(s['mode'])}: {e(analysis.fault_name(s))}{' (interrupted)' if s.get('interrupted') else ''}"
        f"</h3><img src='plots/{e(s['id'])}.png' alt=''>" for s in scenarios)
    faults = {(s["fault"], s["target"]) for s in scenarios}
    why = lambda fault, target: ROLE_WHY.get(target) or (WHY.get(fault, "") if not store_of(target)  # noqa: E731
                                                          else STORE_WHY)
    notes = "".join(f"<li><b>{e(fault)} {e(target)}</b>: {e(why(fault, target))}</li>"
                    for fault, target in sorted(faults))
    in_store = store_rows(rows)
    store_table = "<tr>" + "".join(f"<th>{e(h)}</th>" for _, h in STORE_COLUMNS) + "</tr>" + "".join(
        "<tr>" + "".join(f"<td>{'' if r[f] is None else e(cell(r, f))}</td>" for f, _ in STORE_COLUMNS) + "</tr>"
        for r in in_store)
    store_section = f"""<h2>Store faults</h2>
<p>Sentinel and Cluster faults run in one routing mode only: every node talks to the same store, so routing
cannot change what a store fault does. Unavailable: the longest any user of the strategy waited from its
first failed answer to its next good one. p99 in window: latency between the fault and recovery. Errors off
shard: errors of sessions on a shard the fault did not touch (logins aside). Detected, promoted: the store's
own timeline (a sentinel's or a cluster node's view, polled every 100 ms), seconds after the fault; first
success: the first good answer after the strategy's first failure. The figure's bottom panel, when the run
recorded it, counts the 503s the faulted store's circuit breaker and bulkhead gave at once: requests that
would otherwise each have held one of a node's threads for up to the request deadline.</p>
<table>{store_table}</table><img src='plots/store-faults.png' alt=''>""" if in_store else ""
    return f"""<!doctype html>
<html lang=en><meta charset=utf-8><title>Session Lab: which strategies survive failover?</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; }}
table {{ border-collapse: collapse; font-size: 12px; margin: 1em 0; }}
td, th {{ border: 1px solid #ccc; padding: 3px 6px; text-align: right; }}
td:first-child, th:first-child, td:nth-child(2), td:nth-child(3) {{ text-align: left; }}
.verdict {{ font-size: 16px; }} .bad {{ color: #b00; }} .good {{ color: #070; }} img {{ max-width: 100%; }}
</style>
<h1>Which session strategies survive failover?</h1>
<img src='{glance.FIGURE}' alt='{e(glance.ALT)}'>
<p class=verdict>{e(at_a_glance)}</p>
<p>{len(scenarios)} scenarios ({e(run.get('suite', 'quick' if run.get('quick') else 'full'))} suite
{e(json.dumps(run.get('schedule', {})))}),
{run.get('users', '?')} simulated users spread over {e(', '.join(run.get('strategies', [])))}, against
{e(run.get('lab_url', ''))} on a {run.get('cores', '?')}-core machine. Every figure below is recomputed from
<code>raw/*/requests.csv</code> and <code>timeline.jsonl</code>
(<code>python -m loadtest.scoring.report {e(str(run_dir))}</code>).</p>
<h2>Hypotheses: {held} of {len(verdict)} checks held</h2>
<table><tr><th>hypothesis</th><th>claim</th><th>held</th></tr>{claims}</table>
<p>Deviations:</p><ul>{deviations}</ul>
<h2>Scorecard</h2>
<p>Sessions lost: answers that said the session was unknown (401). Writes lost: acknowledged items later
missing. Foreign: answers holding another user's data. Errors: 5xx, connection errors and timeouts.
Error window: first to last error after the fault. Recover: fault to the last bad answer ("never" when
bad answers went on to the end, as node-local sessions do under non-sticky routing).</p>
<table>{table}</table>
{store_section}
{sections}
<h2>Why the numbers look like this</h2><ul>{notes}</ul>
<h2>Sessions and writes lost</h2><img src='plots/losses.png' alt=''>
<h2>Over time</h2>{figures}
</html>
"""


def main(argv: list[str] | None = None) -> int:
    run_dir = analysis.run_dir_argument(argv, "report")
    if run_dir is None:
        return 2
    verdict = write(run_dir)
    print(f"rebuilt {run_dir}: {sum(v['held'] for v in verdict)} of {len(verdict)} checks held")
    return 0


if __name__ == "__main__":
    sys.exit(main())
