"""GET /api/lab: what the serving node sees of the lab, for the demo page's node and store strip.

The node asks each peer's /healthz (the nodes it knows from REPLICATION_PEERS, the balancer's APP_NODES
list) and runs the /readyz checks of its own strategies, all at once and each bounded: a dead peer, a
frozen one (it accepts and never answers) or a store in failover costs the answer at most DEADLINE
seconds, and never a 500. One answer is reused for CACHE_SECONDS, so a room of pages polling every few
seconds does not multiply the probes.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait

from flask import Blueprint, current_app, jsonify

from .api import strategies
from .errors import ApiError
from .single_flight import SingleFlight

bp = Blueprint("lab", __name__, url_prefix="/api")

PROBE_TIMEOUT = 0.5  # connect and read, per peer; a live node answers /healthz in milliseconds
DEADLINE = 1.0  # the whole answer; a store check still running then is reported as not answering
CACHE_SECONDS = 1.0
MAX_THREADS = 16  # a probe or check that outlives DEADLINE keeps its thread until its own timeout ends it

_pool: ThreadPoolExecutor | None = None
_pool_pid = 0
_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    """One pool per process, made on first use: gunicorn forks the worker after building the app, and
    threads do not survive a fork."""
    global _pool, _pool_pid
    with _lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool, _pool_pid = ThreadPoolExecutor(MAX_THREADS, thread_name_prefix="lab-probe"), os.getpid()
        return _pool


def probe_node(name: str, address: str, timeout: float = PROBE_TIMEOUT) -> dict:
    """One peer's /healthz: up (it answered 200 naming itself), down (refused or an error) or no answer."""
    host, _, port = address.rpartition(":")
    started = time.monotonic()
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("GET", "/healthz")
        answer = conn.getresponse()
        body = answer.read(4096)
        named = json.loads(body).get("node") if answer.status == 200 else None
        state, detail = ("up", "ok") if named == name else ("down", f"/healthz answered {answer.status}")
    except TimeoutError:
        state, detail = "no-answer", f"no answer within {timeout:g} s"
    except ConnectionRefusedError:
        state, detail = "down", "connection refused"
    except (OSError, http.client.HTTPException, ValueError, AttributeError) as exc:
        state, detail = "down", (getattr(exc, "strerror", None) or str(exc) or type(exc).__name__)[:120]
    finally:
        conn.close()
    return {"name": name, "state": state, "detail": detail, "ms": round((time.monotonic() - started) * 1000, 1)}


def _check(strategy) -> dict[str, str]:
    """A strategy's readiness as store name -> "ok" or what is wrong (a failure is charged to the services
    it depends on, so two strategies on one store show as one store)."""
    try:
        return strategy.check_ready()
    except ApiError as err:
        return {dep: err.message for dep in (strategy.dependencies or (strategy.name,))}
    except Exception as exc:  # noqa: BLE001 (a status page reports every failure, it never raises one)
        return {dep: f"check failed: {type(exc).__name__}" for dep in (strategy.dependencies or (strategy.name,))}


def _gather() -> dict:
    app = current_app
    node = app.config["NODE_NAME"]
    settings = app.config["SETTINGS"]
    pool = _executor()
    started = time.monotonic()
    peers = {name: pool.submit(probe_node, name, address)
             for name, address in settings.replication_peers if name != node}
    checks: dict[Future, object] = {pool.submit(_check, s): s for s in strategies().values()}
    wait([*peers.values(), *checks], timeout=DEADLINE)

    nodes = []
    for name, _ in settings.replication_peers or ((node, ""),):
        if name == node:
            nodes.append({"name": name, "state": "up", "detail": "serving this answer", "ms": 0.0})
        elif peers[name].done():
            nodes.append(peers[name].result())
        else:  # the probe's own timeout ends it; the answer does not wait for it
            nodes.append({"name": name, "state": "no-answer", "detail": f"no answer within {DEADLINE:g} s",
                          "ms": round(DEADLINE * 1000, 1)})

    stores: dict[str, str] = {}
    for future, strategy in checks.items():
        found = (future.result() if future.done()
                 else {dep: f"no answer within {DEADLINE:g} s" for dep in (strategy.dependencies or (strategy.name,))})
        for name, state in found.items():
            if stores.get(name, "ok") == "ok":  # a failure seen by any strategy wins over an ok
                stores[name] = state
    return {
        "node": node,
        "nodes": nodes,
        "stores": [{"name": name, "state": "ok" if state == "ok" else "down", "detail": state}
                   for name, state in stores.items()],
        "probe_timeout": PROBE_TIMEOUT,
        "took_ms": round((time.monotonic() - started) * 1000, 1),
    }


def _first_answer_pending() -> dict:
    return {"node": current_app.config["NODE_NAME"], "nodes": [], "stores": [], "probe_timeout": PROBE_TIMEOUT,
            "took_ms": 0.0, "pending": "the first probe is still running; ask again in a second"}


@bp.get("/lab")
def lab():
    flight = current_app.extensions.setdefault("session_lab.lab", SingleFlight(CACHE_SECONDS))
    answer, age = flight.get(_gather, _first_answer_pending)
    return jsonify({**answer, "age_ms": round(age * 1000, 1)})
