"""report.html: the page, from a template (PAGE) filled with the scorecard's tables, figures and notes."""

from __future__ import annotations

import html
import json
from string import Template

from loadtest.lab import store_of
from loadtest.scoring import analysis, hypotheses, notes, replication_report, saturation_report, tables
from loadtest.scoring import verdict as glance
from loadtest.scoring.report.text import COLUMNS, STORE_COLUMNS, cell, store_cell

e = html.escape

PAGE = Template("""<!doctype html>
<html lang=en><meta charset=utf-8><title>Session Lab: which strategies survive failover?</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; }
table { border-collapse: collapse; font-size: 12px; margin: 1em 0; }
td, th { border: 1px solid #ccc; padding: 3px 6px; text-align: right; }
td:first-child, th:first-child, td:nth-child(2), td:nth-child(3) { text-align: left; }
.verdict { font-size: 16px; } .bad { color: #b00; } .good { color: #070; } img { max-width: 100%; }
</style>
<h1>Which session strategies survive failover?</h1>
<img src='$figure' alt='$alt'>
<p class=verdict>$at_a_glance</p>
<p>$about_the_run</p>
<h2>Hypotheses: $held of $checks checks held</h2>
$claims
<p>Deviations:</p><ul>$deviations</ul>
<h2>Scorecard</h2>
<p>Sessions lost: answers that said the session was unknown (401). Writes lost: acknowledged items later
missing. Foreign: answers holding another user's data. Errors: 5xx, connection errors and timeouts.
Error window: first to last error after the fault. Recover: fault to the last bad answer ("never" when
bad answers went on to the end, as node-local sessions do under non-sticky routing).</p>
$scorecard
$store_section
$sections
<h2>Why the numbers look like this</h2><ul>$notes</ul>
<h2>Sessions and writes lost</h2><img src='plots/losses.png' alt=''>
<h2>Over time</h2>$figures
</html>
""")

STORE_SECTION = Template("""<h2>Store faults</h2>
<p>Sentinel and Cluster faults run in one routing mode only: every node talks to the same store, so routing
cannot change what a store fault does. Unavailable: the longest any user of the strategy waited from its
first failed answer to its next good one. p99 in window: latency between the fault and recovery. Errors off
shard: errors of sessions on a shard the fault did not touch (logins aside). Detected, promoted: the store's
own timeline (a sentinel's or a cluster node's view, polled every 100 ms), seconds after the fault; first
success: the first good answer after the strategy's first failure. The figure's bottom panel, when the run
recorded it, counts the 503s the faulted store's circuit breaker and bulkhead gave at once: requests that
would otherwise each have held one of a node's threads for up to the request deadline.</p>
$table<img src='plots/store-faults.png' alt=''>""")

CLAIMS = [("name", "hypothesis"), ("claim", "claim"), ("held", "held")]


def about_the_run(card) -> str:
    run = card.run
    return (f"{len(card.scenarios)} scenarios ({e(run.get('suite', 'quick' if run.get('quick') else 'full'))} suite\n"
            f"{e(json.dumps(run.get('schedule', {})))}),\n"
            f"{run.get('users', '?')} simulated users spread over {e(', '.join(run.get('strategies', [])))}, against\n"
            f"{e(run.get('lab_url', ''))} on a {run.get('cores', '?')}-core machine. Every figure below is recomputed "
            f"from\n<code>raw/*/requests.csv</code> and <code>timeline.jsonl</code>\n"
            f"(<code>python -m loadtest.scoring.report {e(str(card.run_dir))}</code>).")


def claims(verdict: list[hypotheses.Check]) -> str:
    """Each hypothesis, its claim, and how many of its checks held."""
    rows = [{"name": h.name, "claim": h.claim,
             "held": f"{sum(v.held for v in verdict if v.hypothesis == h.name)} / "
                     f"{sum(1 for v in verdict if v.hypothesis == h.name)}"} for h in hypotheses.HYPOTHESES]
    bold_name = lambda row, field: f"<b>{e(row[field])}</b>" if field == "name" else e(row[field])  # noqa: E731
    return tables.html_table(rows, CLAIMS, markup=bold_name)


def deviations(verdict: list[hypotheses.Check]) -> str:
    return "".join(
        f"<li class=bad>{e(v.hypothesis)}: {e(v.strategy)} / {e(v.mode)} / {e(v.fault)}: "
        f"{e(v.detail)}</li>" for v in verdict if not v.held) or "<li class=good>none</li>"


def why_notes(card) -> str:
    faults = sorted({(s.fault, s.target) for s in card.scenarios})
    return "".join(f"<li><b>{e(fault)} {e(target)}</b>: {e(notes.why(fault, target, store_of(target)))}</li>"
                   for fault, target in faults)


def scenario_figures(card) -> str:
    return "".join(
        f"<h3>{e(s.mode)}: {e(analysis.fault_name(s))}{' (interrupted)' if s.interrupted else ''}"
        f"</h3><img src='plots/{e(s.id)}.png' alt=''>" for s in card.scenarios)


def store_section(card) -> str:
    if not card.store_rows:
        return ""
    return STORE_SECTION.substitute(table=tables.html_table(card.store_rows, STORE_COLUMNS, store_cell))


def render(card) -> str:
    """The HTML report; the verdict paragraph stands under verdict.png before everything else."""
    sections = replication_report.section(card.cost) + saturation_report.section(card.under_load, card.capacity_rps)
    return PAGE.substitute(
        figure=glance.FIGURE, alt=e(glance.ALT), at_a_glance=e(card.at_a_glance), about_the_run=about_the_run(card),
        held=sum(v.held for v in card.checks), checks=len(card.checks), claims=claims(card.checks),
        deviations=deviations(card.checks), scorecard=tables.html_table(card.rows, COLUMNS, cell),
        store_section=store_section(card), sections=sections, notes=why_notes(card),
        figures=scenario_figures(card))
