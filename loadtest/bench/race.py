"""The concurrency race: bursts of parallel adds to one session, through nginx, and the adds each loses.

A burst is BURST adds to one fresh session, each with its own item and Idempotency-Key, all sent with the
credential the client held before the burst and released at once (a barrier), as a page firing several
requests together does. The client then keeps what the answers set, in the order they arrived (a browser
keeps the last Set-Cookie it saw; a script keeps the last token it parsed), reads its cart with that, and
counts the acknowledged adds whose item is missing. A store that changes the cart in place keeps them all;
a strategy whose state travels with the client keeps the last answer's state only: every add of the burst
started from the same state.
"""

from __future__ import annotations

import http.client
import threading
import time
import urllib.parse

from loadtest.bench import sessions
from loadtest.lab import APP_NODES, LAB_URL

BURST = 8  # parallel adds: more than a browser's 6 connections per host, so some wait on others


def balancer_client() -> sessions.Client:
    """A new connection to the balancer: each parallel add comes on its own, as a browser's would."""
    parts = urllib.parse.urlsplit(LAB_URL)
    return sessions.Client(parts.hostname, parts.port or 80, "the balancer")


def burst(strategy: dict, client: sessions.NodeClient, number: int) -> dict:
    """One burst; what was sent, acknowledged, kept and lost."""
    name = strategy["name"]
    user = f"race-{number}"
    cookies, held = sessions.start(client, strategy, user)
    gate = threading.Barrier(BURST)
    answers: list[tuple[float, int, dict, list, str]] = []
    lock = threading.Lock()

    def add(i: int) -> None:
        item = f"{user}-{i}"
        balancer = balancer_client()
        gate.wait()
        try:
            status, answer, answer_headers = balancer.send("POST", f"/api/{name}/cart",
                                                           {**held, "Idempotency-Key": item}, {"item": item})
        except (OSError, http.client.HTTPException):
            status, answer, answer_headers = 0, {}, []
        finally:
            balancer.close()
        with lock:
            answers.append((time.monotonic(), status, answer, answer_headers, item))

    threads = [threading.Thread(target=add, args=(i,)) for i in range(BURST)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for _, status, answer, answer_headers, _ in sorted(answers, key=lambda a: a[0]):
        if status == 200:
            held = sessions.credential(cookies, answer, answer_headers)
    acknowledged = [item for _, status, _, _, item in answers if status == 200]
    balancer = balancer_client()
    try:
        status, cart, _ = balancer.send("GET", f"/api/{name}/cart", held)
    finally:
        balancer.close()
    kept = set(cart.get("items", [])) if status == 200 else set()
    return {"sent": BURST, "acknowledged": len(acknowledged), "errors": BURST - len(acknowledged),
            "lost": sum(1 for item in acknowledged if item not in kept), "read_status": status}


def measure(strategy: dict, bursts: int) -> dict:
    """`bursts` bursts against `strategy`, sessions made on each node in turn; totals and per-burst figures."""
    clients = [sessions.NodeClient(node) for node in APP_NODES]
    try:
        results = [burst(strategy, clients[n % len(clients)], n) for n in range(bursts)]
    except (OSError, http.client.HTTPException) as exc:
        raise sessions.SessionError(f"the race for {strategy['name']} failed: {exc}") from exc
    finally:
        for client in clients:
            client.close()
    acknowledged = sum(r["acknowledged"] for r in results)
    lost = sum(r["lost"] for r in results)
    return {"strategy": strategy["name"], "bursts": bursts, "burst": BURST, "acknowledged": acknowledged,
            "errors": sum(r["errors"] for r in results), "lost": lost,
            "lost_per_burst": round(lost / bursts, 2), "max_lost": max(r["lost"] for r in results),
            "reads_failed": sum(1 for r in results if r["read_status"] != 200)}


def explain(result: dict) -> str:
    """What the figures say, from the figures alone."""
    if result["errors"] or result["reads_failed"]:
        return f"{result['errors']} adds and {result['reads_failed']} reads failed: see the run's output"
    if result["lost"] == 0:
        return "kept every add: each one changed the stored cart in place, whatever ran beside it"
    if result["max_lost"] == result["burst"] - 1 and result["lost"] == result["bursts"] * (result["burst"] - 1):
        return ("kept one add per burst: every add started from the state the client sent, and the client "
                "keeps the last answer's state (last write wins)")
    return (f"lost {result['lost_per_burst']} adds per burst on average, {result['max_lost']} at most: adds that ran "
            "at once each read the whole session and wrote it back, and a later write dropped an earlier add "
            "(a read-modify-write of the session, with no error)")
