"""One bench round: wrk with the bench's script (load.lua), its JSON summary, and the CPU wrk itself used.

wrk (C, an event loop per thread) costs a few microseconds of CPU a request where Locust costs a few
hundred, so on a 2-core machine that also runs the stack it leaves the CPU to what is measured; the bench
still proves it each run (the balancer-only ceiling, and wrk's own CPU share).
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
from pathlib import Path

from loadtest.lab import LabError

SCRIPT = Path(__file__).with_name("load.lua")
TIMEOUT = "10s"  # wrk drops answers slower than its timeout from the latency figures (default 2 s)


def require() -> str:
    found = shutil.which("wrk")
    if not found:
        raise LabError("make bench needs wrk, the HTTP benchmarking tool: apt-get install wrk")
    return found


def run(url: str, args: list[str], seconds: float, threads: int, connections: int) -> dict:
    """Run wrk for `seconds`; its summary plus `tool_cpu_s`, the CPU seconds wrk used."""
    command = [require(), "-t", str(threads), "-c", str(connections), "-d", f"{seconds:g}s", "--timeout", TIMEOUT,
               "-s", str(SCRIPT), url, "--", *args, str(threads), str(connections // threads)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30, check=False)
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"wrk did not finish within {seconds + 30:.0f} s: {' '.join(command)}") from exc
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    summary = next((line for line in reversed(done.stdout.splitlines()) if line.startswith("{")), None)
    if done.returncode != 0 or summary is None:
        raise LabError(f"wrk failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-500:]}")
    result = json.loads(summary)
    result["tool_cpu_s"] = round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 4)
    return result
