"""Runs the workshop guide as a learner would: every lab's bash blocks, in order, against the lab's own stack
(port 8080, the default compose project), with pytest-codeblocks checking each expected output.

What this file adds to the plugin: the guide needs Docker (a failure under CI=true, as everywhere else); it
does not take over a stack you already run (it ends with `make down`); once a step of a lab fails, the lab's
later steps are skipped rather than failed in a cascade (the next lab starts from its own reset); a failed
command shows its output; and each lab's wall time is measured, printed at the end and written to
results/workshop-times.md, so the guide's time column is measured, not guessed.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections import defaultdict
from pathlib import Path

import pytest

from tests.conftest import IN_CI, require
from tests.e2e.conftest import docker_available

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BLOCK_TIMEOUT = 900  # s: the longest step, `make experiment QUICK=1`, takes about 4 minutes
TIMES = ROOT / "results" / "workshop-times.md"

_seconds: dict[str, float] = defaultdict(float)
_failed_labs: set[str] = set()
_state = {"checked": False, "started_stack": False}


def _in_guide(item) -> bool:
    return HERE in Path(str(item.path)).parents


def _lab_running() -> bool:
    project = os.environ.get("COMPOSE_PROJECT_NAME", "session-lab")  # docker-compose.yml's `name:`
    done = subprocess.run(["docker", "ps", "-q", "--filter", f"label=com.docker.compose.project={project}"],
                          capture_output=True, text=True)
    return done.returncode == 0 and bool(done.stdout.strip())


def pytest_collection_modifyitems(items):
    for item in items:
        if _in_guide(item) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(BLOCK_TIMEOUT))


def pytest_runtest_setup(item):
    if not _in_guide(item):
        return
    if not _state["checked"]:
        require(docker_available(), "Docker is not available (docker info failed): the guide runs the real stack")
        if _lab_running() and not IN_CI:
            pytest.skip("a lab stack is already running on port 8080; the guide ends with `make down`, so it "
                        "does not run over yours: `make down` first")
        _state["checked"] = True
        _state["started_stack"] = True
    if item.path.name in _failed_labs:
        pytest.skip(f"an earlier step of {item.path.name} failed")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if not _in_guide(item):
        return report
    _seconds[item.path.name] += report.duration
    if report.failed:
        _failed_labs.add(item.path.name)
        error = call.excinfo.value if call.excinfo else None
        if isinstance(error, subprocess.CalledProcessError):  # the plugin shows only the exit status
            out = (error.stdout or b"").decode(errors="replace")[-3000:]
            err = (error.stderr or b"").decode(errors="replace")[-3000:]
            report.longrepr = (f"{item.path.name}, {item.name}: exit status {error.returncode}\n"
                               f"```\n{item.obj.code}```\nstdout:\n{out}\nstderr:\n{err}")
    return report


def pytest_terminal_summary(terminalreporter):
    if not _seconds:
        return
    rows = [(lab, seconds) for lab, seconds in sorted(_seconds.items())]
    lines = ["| lab | commands ran for |", "|---|---|"]
    lines += [f"| {lab} | {seconds / 60:.1f} min ({seconds:.0f} s){' (failed)' if lab in _failed_labs else ''} |"
              for lab, seconds in rows]
    TIMES.parent.mkdir(exist_ok=True)
    TIMES.write_text(f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `make test`\n\n"
                     + "\n".join(lines) + "\n")
    (TIMES.with_suffix(".json")).write_text(json.dumps(dict(rows), indent=2))
    terminalreporter.write_sep("-", "workshop labs: wall time of their commands")
    for line in lines:
        terminalreporter.write_line(line)


def pytest_sessionfinish(session):
    # A lab that failed before the last one's `make down` leaves the stack up: stop it, if the guide started it.
    if _state["started_stack"] and _lab_running():
        subprocess.run(["make", "-s", "down"], cwd=ROOT, capture_output=True, timeout=300)
