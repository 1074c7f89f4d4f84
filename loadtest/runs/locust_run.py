"""Locust as a bounded subprocess, the one way the experiment and the soak run the load test.

It writes Locust's CSVs, its log and the oracle's raw records (requests.csv) into one folder, stops by
itself after `run_time_s` even if the caller dies, and `stop` lets it write everything before it exits.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from loadtest.lab import LAB_URL, ROOT


def start(folder: Path, users: int, run_time_s: float, strategies: str = "", *extra: str,
          spawn_rate: float | None = None, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Headless Locust over `strategies` (comma-separated; empty: every strategy in the registry). Users start
    all at once unless `spawn_rate` (users a second) says otherwise; `env` adds LOADTEST_* settings."""
    env = {**os.environ, **(env or {}), "LOADTEST_RECORD": str(folder / "requests.csv"),
           "LOADTEST_STRATEGIES": strategies}
    cmd = [sys.executable, "-m", "locust", "-f", str(ROOT / "loadtest" / "users" / "locustfile.py"), "--headless",
           "-u", str(users), "-r", str(spawn_rate or users), "--run-time", f"{int(run_time_s)}s", "-H", LAB_URL,
           "--csv", str(folder / "locust"), "--only-summary", "--stop-timeout", "3", *extra]
    with (folder / "locust.log").open("w") as log:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def stop(locust: subprocess.Popen) -> None:
    locust.send_signal(signal.SIGTERM)  # Locust stops its users and writes its CSVs and ours
    try:
        locust.wait(timeout=30)
    except subprocess.TimeoutExpired:
        locust.kill()
        locust.wait()
