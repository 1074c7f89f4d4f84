"""Soak test: steady load for a while, sampling container memory and Redis, then a verdict on whether
anything keeps growing.

    python -m loadtest.runs.soak --duration 600        (make soak DURATION=600)

Locust runs every strategy's users for --duration seconds; every --interval seconds each running container's
memory (docker stats) and Redis' key count and used memory are sampled. Results go to results/soak-<UTC time>/:
samples.csv (t, series, value; an empty value is a failed sample), Locust's requests.csv, locust*.csv and
locust.log, and the verdict in soak.json, soak.md and soak.png.

The growth rule (judge, and RULE below, which soak.json and soak.md quote): samples before --warmup are
ignored; the rest is split into thirds by time, and a series keeps growing when the last third's median
clears the first third's by more than an allowance, and the middle third's is on its way there.

Exit 0 when every series holds, 1 when one keeps growing, 2 on bad input or a run too short to judge, 130 on
Ctrl-C (what was gathered is still written and judged).
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from statistics import median

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

from loadtest.faults.docker import compose, current_mode, docker, require_stack, states, switch_mode  # noqa: E402
from loadtest.lab import LAB_URL, MODES, ROOT, LabError  # noqa: E402
from loadtest.runs import locust_run  # noqa: E402

MIB = 1024**2
UNITS = {"b": 1, "kib": 1024, "mib": MIB, "gib": 1024**3, "tib": 1024**4,  # docker prints binary units,
         "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4}        # or decimal ones (kB, MB) for some
REDIS_SERIES = ("redis:keys", "redis:used_memory")
HOLDS, GROWS, TOO_SHORT = "holds", "grows", "too short"


@dataclass(frozen=True)
class Tolerance:
    relative: float  # share of the first third's median
    floor: float  # in the series' unit (bytes or keys); growth below it is never a trend
    unit: str


# 10 % within one soak is a trend: sample-to-sample noise of these series is a few percent.
MEMORY = Tolerance(0.10, 8 * MIB, "MiB")  # gunicorn workers' arenas and page cache move by a few MiB at rest
REDIS_KEYS = Tolerance(0.10, 50, "keys")  # users log in and out all the time: live sessions swing by tens
REDIS_MEMORY = Tolerance(0.10, 2 * MIB, "MiB")  # client buffers and key churn move used_memory by about 1 MiB
MIN_SAMPLES = 6  # two per third, so no third's median is a single sample
# Steady growth puts the middle third about halfway (1/2 of the growth); a bare "above" would let noise decide
# for a late step, so the middle must clear a quarter of the allowance.
MIDDLE_SHARE = 0.25
RULE = (
    "samples before --warmup are ignored (pools, caches and Python's allocator fill up first); the rest is split "
    "into thirds by time. A series keeps growing when the median of the last third exceeds the median of the "
    "first third by more than max(relative tolerance x first-third median, absolute floor), AND the middle "
    f"third's median is above the first third's by more than {MIDDLE_SHARE:.0%} of that allowance: growth that "
    "goes on, not one step up followed by a plateau. Medians, so one burst or GC pause decides nothing. Fewer "
    f'than {MIN_SAMPLES} samples after warm-up is "too short" to judge.'
)


def tolerance(series: str) -> Tolerance:
    return {"redis:keys": REDIS_KEYS, "redis:used_memory": REDIS_MEMORY}.get(series, MEMORY)


def parse_size(text: str) -> float:
    """Bytes of the used part of docker's MemUsage, e.g. "45.2MiB / 23.4GiB"."""
    match = re.fullmatch(r"\s*([0-9.]+)\s*([A-Za-z]+)\s*", text.split("/")[0])
    if not match or match[2].lower() not in UNITS:
        raise ValueError(f"unrecognised memory size {text!r}")
    return float(match[1]) * UNITS[match[2].lower()]


def parse_stats(out: str, ids: dict[str, str]) -> dict[str, float]:
    """`docker stats --format '{{json .}}'` lines -> {"memory:<service>": bytes}; ids maps full id -> service."""
    values = {}
    for line in filter(str.strip, out.splitlines()):
        row = json.loads(line)
        service = next((s for cid, s in ids.items() if cid.startswith(row["ID"])), row["Name"])
        values[f"memory:{service}"] = parse_size(row["MemUsage"])
    return values


def info_field(info: str, field: str) -> float:
    """One numeric field of `redis-cli INFO` output (lines "field:value")."""
    for line in info.splitlines():
        name, _, value = line.strip().partition(":")
        if name == field:
            return float(value)
    raise ValueError(f"no {field} in redis-cli INFO output: {info.strip()[:200]!r}")


def judge(points: list[tuple[float, float | None]], warmup_s: float, tol: Tolerance) -> dict:
    """The growth rule (RULE), for one series of (seconds since load start, value or None)."""
    after = sorted((t, v) for t, v in points if t >= warmup_s and v is not None)
    result = {"samples": len(after), "missing": sum(1 for t, v in points if t >= warmup_s and v is None),
              "unit": "keys" if tol.unit == "keys" else "bytes", "relative_tolerance": tol.relative,
              "floor": tol.floor, "middle_share": MIDDLE_SHARE}
    if len(after) < MIN_SAMPLES:
        return {**result, "verdict": TOO_SHORT,
                "why": f"{len(after)} samples after the {warmup_s:g} s warm-up; the rule needs {MIN_SAMPLES}"}
    t0, t1 = after[0][0], after[-1][0]
    cut1, cut2 = t0 + (t1 - t0) / 3, t0 + 2 * (t1 - t0) / 3
    thirds = [[v for t, v in after if t < cut1], [v for t, v in after if cut1 <= t < cut2],
              [v for t, v in after if t >= cut2]]
    if not all(thirds):
        return {**result, "verdict": TOO_SHORT, "why": "a third of the time after warm-up has no samples"}
    first, middle, last = (median(third) for third in thirds)
    allowed = max(tol.relative * first, tol.floor)
    grows = last - first > allowed and middle - first > MIDDLE_SHARE * allowed
    return {**result, "verdict": GROWS if grows else HOLDS, "first": after[0][1], "last": after[-1][1],
            "medians": [first, middle, last], "growth": last - first,
            "growth_relative": (last - first) / first if first else None, "allowed": allowed}


def judge_all(samples: list[tuple[float, str, float | None]], warmup_s: float) -> dict[str, dict]:
    series: dict[str, list] = {}
    for t, name, value in samples:
        series.setdefault(name, []).append((t, value))
    return {name: judge(points, warmup_s, tolerance(name)) for name, points in sorted(series.items())}


def amount(value: float | None, tol: Tolerance, sign: str = "") -> str:
    if value is None:
        return "-"
    return f"{value / MIB:{sign}.1f} MiB" if tol.unit == "MiB" else f"{value:{sign}.0f} keys"


def markdown(verdicts: dict[str, dict]) -> str:
    lines = ["| series | after warm-up start | end | growth | verdict |", "|---|---|---|---|---|"]
    for name, v in verdicts.items():
        tol = tolerance(name)
        growth = "-" if "growth" not in v else (f"{amount(v['growth'], tol, '+')} ({v['growth_relative'] or 0:+.1%}; "
                                                f"allowed {amount(v['allowed'], tol)})")
        verdict = v["verdict"].upper() if v["verdict"] == GROWS else v["verdict"]
        verdict += f": {v['why']}" if "why" in v else ""
        start, end = amount(v.get("first"), tol), amount(v.get("last"), tol)
        lines.append(f"| {name} | {start} | {end} | {growth} | {verdict} |")
    return "\n".join(lines) + "\n"


def plot(samples: list[tuple[float, str, float | None]], verdicts: dict[str, dict], warmup_s: float, path: Path):
    fig, (mem, keys_ax) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    used_ax = keys_ax.twinx()  # keys and bytes share the panel, each on its own axis

    def line(ax, name, scale, label, **style):  # a failed sample is a gap (nan), not a drop to zero
        points = [(t, float("nan") if v is None else v / scale) for t, n, v in samples if n == name]
        label = f"{label} ({verdicts[name]['verdict']})"
        return ax.plot([t for t, _ in points], [v for _, v in points], marker=".", label=label, **style)

    shades = [ax.axvspan(0, warmup_s, color="grey", alpha=0.15, label="warm-up (ignored)")
              for ax in (mem, keys_ax)]
    lines = [line(mem, n, MIB, n.split(":", 1)[1])[0] for n in verdicts if n.startswith("memory:")]
    mem.legend(handles=lines + shades[:1], loc="best", fontsize=8, ncol=2)
    lines = line(keys_ax, "redis:keys", 1, "keys, left", color="tab:blue") if "redis:keys" in verdicts else []
    if "redis:used_memory" in verdicts:
        lines += line(used_ax, "redis:used_memory", MIB, "used memory, right", color="tab:red")
    used_ax.legend(handles=lines + shades[1:], loc="lower right", fontsize=8)  # on top of both lines
    for ax in (mem, keys_ax):
        ax.grid(alpha=0.3)
    mem.set_ylabel("container memory (MiB)")
    mem.set_title("Soak: container memory and Redis over time (verdict after warm-up in the legends)", fontsize=10)
    keys_ax.set_ylabel("Redis keys", color="tab:blue")
    used_ax.set_ylabel("Redis used memory (MiB)", color="tab:red")
    keys_ax.set_xlabel("seconds since the load started")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write(out: Path, samples: list, verdicts: dict[str, dict], meta: dict) -> None:
    """soak.json, soak.md and soak.png, all from the samples (which samples.csv holds too)."""
    (out / "soak.json").write_text(json.dumps({**meta, "rule": RULE, "min_samples": MIN_SAMPLES,
                                               "series": verdicts}, indent=2))
    (out / "soak.md").write_text(f"# Soak: {meta['duration_s']:g} s, warm-up {meta['warmup_s']:g} s\n\n"
                                 f"{markdown(verdicts)}\nGrowth: the last third's median minus the first third's. "
                                 f"Rule: {RULE}\n")
    plot(samples, verdicts, meta["warmup_s"], out / "soak.png")


class Parser(argparse.ArgumentParser):
    def error(self, message):  # bad input is a LabError, so main() prints it and returns 2
        raise LabError(message, 2)


def parse_args(argv):
    p = Parser(prog="soak", description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=600, help="seconds of load (default 600)")
    p.add_argument("--warmup", type=float, default=120, help="first seconds, not judged (default 120)")
    p.add_argument("--interval", type=float, default=10, help="seconds between samples (default 10)")
    p.add_argument("--users", type=int, default=30, help="simulated users, spread over every strategy")
    p.add_argument("--mode", default="sticky", help=f"routing mode during the soak, from: {', '.join(MODES)}")
    p.add_argument("--out", type=Path, default=None, help="results folder (default results/soak-<UTC time>)")
    args = p.parse_args(argv)
    if args.mode not in MODES:
        raise LabError(f"unknown routing mode {args.mode}: choose from {', '.join(MODES)}", 2)
    if args.interval <= 0 or args.users < 1 or args.warmup < 0:
        raise LabError("--interval must be above 0, --users at least 1 and --warmup not negative", 2)
    if args.warmup >= args.duration:
        raise LabError(f"--warmup ({args.warmup:g} s) must be shorter than --duration ({args.duration:g} s)", 2)
    judged = int(args.duration // args.interval) - int(-(-args.warmup // args.interval)) + 1
    if judged < MIN_SAMPLES:
        raise LabError(f"only {judged} samples would follow the warm-up and the growth rule needs {MIN_SAMPLES}: "
                       "lengthen --duration or shorten --interval or --warmup", 2)
    return args


def containers() -> dict[str, str]:
    """The project's running containers: full id -> service."""
    ids = compose("ps", "-q").stdout.split()
    short = {row["ID"]: service for service, row in states().items()}
    return {cid: next((s for sid, s in short.items() if cid.startswith(sid)), cid[:12]) for cid in ids}


def sample_redis() -> dict[str, float]:
    keys = compose("exec", "-T", "redis", "redis-cli", "DBSIZE", timeout=15).stdout  # REDISCLI_AUTH is set
    info = compose("exec", "-T", "redis", "redis-cli", "INFO", "memory", timeout=15).stdout
    return {"redis:keys": float(keys.split()[-1]), "redis:used_memory": info_field(info, "used_memory")}


def take_sample(ids: dict[str, str]) -> tuple[dict[str, float | None], list[str]]:
    """One value per series (None where a command failed) and what failed."""
    values, problems = {}, []
    groups = [([f"memory:{s}" for s in ids.values()],
               lambda: parse_stats(docker("stats", "--no-stream", "--format", "{{json .}}", *ids).stdout, ids)),
              (list(REDIS_SERIES), sample_redis)]
    for names, read in groups:
        try:
            got = read()
        except (LabError, OSError, ValueError, KeyError, IndexError, subprocess.TimeoutExpired) as exc:
            got = {}
            problems.append(str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__)
        values.update({name: got.get(name) for name in names})
    return values, problems


def progress_line(t: float, args, values: dict[str, float | None], problems: list[str]) -> str:
    def show(name):
        v = values.get(name)
        return "?" if v is None else f"{v:.0f}" if name == "redis:keys" else f"{v / MIB:.1f}"
    mem = " ".join(f"{n.split(':', 1)[1]}={show(n)}" for n in values if n.startswith("memory:"))
    phase = " (warm-up)" if t < args.warmup else ""
    missing = f"  MISSING: {'; '.join(problems)}" if problems else ""
    return (f"[{t:4.0f}/{args.duration:.0f} s]{phase} memory MiB {mem} | redis keys={show('redis:keys')} "
            f"used={show('redis:used_memory')} MiB{missing}")


def run(args, out: Path, samples: list, locust: subprocess.Popen) -> None:
    """Sample every interval until the duration is over; rows go to samples.csv as they come."""
    ids = containers()
    start = time.monotonic()
    with (out / "samples.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["t", "series", "value"])
        for k in range(int(args.duration // args.interval) + 1):
            time.sleep(max(0.0, start + k * args.interval - time.monotonic()))
            if locust.poll() is not None:
                raise LabError(f"Locust stopped early (exit {locust.returncode}); see {out / 'locust.log'}")
            t = round(time.monotonic() - start, 1)
            values, problems = take_sample(ids)
            for name, value in values.items():
                samples.append((t, name, value))
                writer.writerow([t, name, "" if value is None else value])
            f.flush()
            print(progress_line(t, args, values, problems), flush=True)


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
        require_stack()
    except LabError as exc:
        print(f"soak: {exc}", file=sys.stderr)
        return exc.exit_code
    out = args.out or ROOT / "results" / time.strftime("soak-%Y%m%dT%H%M%SZ", time.gmtime())
    out.mkdir(parents=True, exist_ok=True)
    meta = {"duration_s": args.duration, "warmup_s": args.warmup, "interval_s": args.interval,
            "users": args.users, "mode": args.mode, "lab_url": LAB_URL, "started": time.time()}
    print(f"soak: {args.duration:g} s with {args.users} users in {args.mode} mode, results in {out}", flush=True)
    samples: list[tuple[float, str, float | None]] = []
    status, original, locust = 0, None, None
    try:
        original = current_mode()
        # Sticky: a node-local session's logout reaches the node that holds it, so sessions end instead of
        # piling up on other nodes until their idle timeout, which would look like a leak.
        if original != args.mode:
            switch_mode(args.mode)
        # Every strategy; the bound stops Locust by itself even if this process dies.
        locust = locust_run.start(out, args.users, args.duration + 60)
        run(args, out, samples, locust)
    except KeyboardInterrupt:
        print("\nsoak: interrupted; writing what was gathered", file=sys.stderr)
        status = 130
    except (LabError, OSError) as exc:  # OSError: the balancer stopped answering (urllib's URLError)
        print(f"soak: {exc}", file=sys.stderr)
        status = getattr(exc, "exit_code", 1)
    finally:
        if locust is not None:
            locust_run.stop(locust)
        try:
            if original is not None and current_mode() != original:
                switch_mode(original)
        except (LabError, OSError) as exc:
            print(f"soak: could not restore routing mode {original}: {exc}", file=sys.stderr)
    return finish(out, samples, meta, status)


def finish(out: Path, samples: list, meta: dict, status: int) -> int:
    """Judge, write and print; the exit code says whether anything keeps growing."""
    if not samples:
        return status or 1
    verdicts = judge_all(samples, meta["warmup_s"])
    write(out, samples, verdicts, meta)
    print(f"\n{markdown(verdicts)}\nsoak: {out / 'soak.md'}, {out / 'soak.json'}, {out / 'soak.png'}")
    short = [f"{n}: {v['why']}" for n, v in verdicts.items() if v["verdict"] == TOO_SHORT]
    growing = [n for n, v in verdicts.items() if v["verdict"] == GROWS]
    if short:
        print("soak: too short to judge " + "; ".join(short), file=sys.stderr)
    if growing:
        print(f"soak: keeps growing: {', '.join(growing)}")
    return status or (2 if short else 1 if growing else 0)


if __name__ == "__main__":
    sys.exit(main())
