"""make bench SUITE=growth: how each strategy's costs grow with the cart, the sessions alive and the nodes.

- Cart size: sessions holding no item, 10 items, and as many maximum-length items as the strategy takes
  (its cart limit, or the credential budget for a strategy whose state travels with the client). For each:
  the bytes one read sends and receives through nginx, and the read path's throughput (one wrk round).
- Live sessions: 1k, 10k and 100k sessions made on the nodes (an empty cart each; a session's items cost
  what the cart-size figures show), against the memory they take where they live: Redis' `used_memory` for
  the strategies on the one Redis, the app nodes' resident memory for the strategies that keep sessions in
  a node. jwt and client keep nothing on the server. The sessions are logged out afterwards.
- Nodes: the read path with 1, 2 and 3 app nodes running, each node limited to its own share of the cores
  (loadtest/faults/readiness.py NODE_CPUS) as if each were its own machine; the others are stopped, and nginx
  routes around them (one 200 ms probe every 5 s).

Results go to growth.jsonl (raw) and growth.md, growth-cart.png, growth-sessions.png, growth-nodes.png.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

from loadtest.bench import cpu, race, sessions  # noqa: E402
from loadtest.bench.rounds import CART_ITEMS, ITEM_LENGTH, READ, SPREAD, STICKY, Bench  # noqa: E402
from loadtest.faults import store_roles  # noqa: E402
from loadtest.faults.docker import compose, switch_mode  # noqa: E402
from loadtest.faults.readiness import NODE_CPUS, cpu_quota, wait_balanced, wait_healthy  # noqa: E402
from loadtest.lab import APP_NODES, LAB_URL  # noqa: E402
from loadtest.scoring import tables  # noqa: E402

CARTS = {"empty": 0, "10 items": 10, "full, longest items": sessions.FULL}
CART_SESSIONS = 32  # sessions per cart level: as many as wrk's connections, so each carries one
SESSION_LEVELS = (1_000, 10_000, 100_000)
QUICK_SESSION_LEVELS = (100, 1_000)
POPULATE_WORKERS = 12  # parallel logins: four per node keeps the nodes busy without queueing in gunicorn
SINGLE_REDIS = ("redis",)


def request_bytes(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> int:
    """What a client sends for one request on the wire (request line, headers, body), as http.client does."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {LAB_URL.split('//')[-1]}", "Accept-Encoding: identity",
             *(f"{k}: {v}" for k, v in headers.items())]
    return len(("\r\n".join(lines) + "\r\n\r\n").encode()) + len(body)


class Growth:
    def __init__(self, bench: Bench, strategies: list[dict], quick: bool):
        self.bench, self.strategies, self.quick = bench, strategies, quick
        self.rows: list[dict] = []

    def record(self, row: dict) -> None:
        self.rows.append(row)
        self.bench.record("growth.jsonl", row)

    # -- cart size --------------------------------------------------------------------------------------

    def carts(self) -> None:
        for mode in (SPREAD, STICKY):
            members = [s for s in self.strategies if s["needs_sticky"] == (mode == STICKY)]
            if not members:
                continue
            switch_mode(mode)
            for strategy in members:
                for label, items in CARTS.items():
                    if not strategy["keeps_state"] and items:
                        continue  # the baseline keeps no cart: only its empty one means anything
                    file = self.bench.work / f"{strategy['name']}-cart.sessions"
                    sessions.make(strategy, CART_SESSIONS, items, file, ITEM_LENGTH if items == sessions.FULL else None)
                    held = dict(h.split(": ", 1) for h in file.read_text().splitlines()[0].split("\t") if h)
                    sent, received, kept = measure_read(strategy, held)
                    row = self.bench.round(strategy, READ, mode, 1, sessions_file=file, cart=label)
                    self.record({"kind": "cart", "strategy": strategy["name"], "mode": mode, "cart": label,
                                 "items": kept, "request_bytes": sent, "response_bytes": received, "rps": row["rps"],
                                 "errors": sum(row["errors"].values())})

    # -- live sessions ----------------------------------------------------------------------------------

    def live_sessions(self) -> None:
        levels = QUICK_SESSION_LEVELS if self.quick else SESSION_LEVELS
        where = [s for s in self.strategies if s["keeps_state"] and (
            tuple(s["dependencies"]) == SINGLE_REDIS or s["needs_sticky"])]
        for strategy in where:
            made: list[tuple[str, dict[str, str]]] = []
            before = memory_of(strategy)
            try:
                for level in levels:
                    started = time.monotonic()
                    made += populate(strategy, len(made), level - len(made))
                    used = memory_of(strategy) - before
                    self.record({"kind": "sessions", "strategy": strategy["name"], "sessions": level,
                                 "where": "redis" if tuple(strategy["dependencies"]) == SINGLE_REDIS else "app nodes",
                                 "bytes": used, "bytes_per_session": round(used / level, 1)})
                    print(f"[{time.monotonic() - self.bench.started:6.1f}s] {strategy['name']:<17} {level:>7} sessions "
                          f"made in {time.monotonic() - started:5.1f} s: {used / 1e6:8.2f} MB, "
                          f"{used / level:7.0f} bytes per session", flush=True)
            finally:
                logout(strategy, made)

    # -- nodes ------------------------------------------------------------------------------------------

    def nodes(self) -> None:
        members = [s for s in self.strategies if not s["needs_sticky"]]
        switch_mode(SPREAD)
        files = {}
        for strategy in members:  # made while every node runs; any node serves these strategies' sessions
            files[strategy["name"]] = self.bench.work / f"{strategy['name']}-nodes.sessions"
            sessions.make(strategy, CART_SESSIONS, CART_ITEMS, files[strategy["name"]])  # the bench's read path
        with cpu_quota(APP_NODES, NODE_CPUS):
            for count in range(1, len(APP_NODES) + 1):
                down = APP_NODES[count:]
                if down:
                    compose("stop", *down, timeout=120)
                try:
                    self.bench.pids = cpu.containers()  # the stopped nodes' processes are gone
                    for strategy in members:
                        row = self.bench.round(strategy, READ, SPREAD, 1, sessions_file=files[strategy["name"]],
                                               nodes=count)
                        self.record({"kind": "nodes", "strategy": strategy["name"], "nodes": count,
                                     "rps": row["rps"], "errors": sum(row["errors"].values())})
                finally:
                    if down:
                        compose("start", *down, timeout=120)
                        wait_healthy(*down)
                        wait_balanced()
            self.bench.pids = cpu.containers()


def measure_read(strategy: dict, held: dict[str, str]) -> tuple[int, int, int]:
    """(bytes sent, bytes received, items in the cart) of one read through the balancer."""
    path = f"/api/{strategy['name']}/cart"
    client = race.balancer_client()
    try:
        status, body, headers = client.send("GET", path, held)
    finally:
        client.close()
    if status != 200:
        raise sessions.SessionError(f"GET {path} through the balancer: {status} {body}")
    raw_body = json.dumps(body, separators=(",", ":")).encode()  # the app's compact JSON, as sent
    head = len("HTTP/1.1 200 OK\r\n") + sum(len(f"{k}: {v}\r\n".encode()) for k, v in headers) + 2
    return request_bytes("GET", path, held), head + len(raw_body), len(body.get("items", []))


def populate(strategy: dict, first: int, count: int) -> list[tuple[str, dict[str, str]]]:
    """`count` new sessions of `strategy`, made on the nodes in turn by parallel clients: (node, credential)."""
    def make(worker: int) -> list[tuple[str, dict[str, str]]]:
        client = sessions.NodeClient(APP_NODES[worker % len(APP_NODES)])
        try:
            return [(client.node, sessions.start(client, strategy, f"growth-{first + i}")[1])
                    for i in range(worker, count, POPULATE_WORKERS)]
        finally:
            client.close()

    with ThreadPoolExecutor(POPULATE_WORKERS) as pool:
        return [made for batch in pool.map(make, range(POPULATE_WORKERS)) for made in batch]


def logout(strategy: dict, made: list[tuple[str, dict[str, str]]]) -> None:
    """Log the suite's sessions out again, each on the node that made it (node-local sessions live there)."""
    def end(worker: int) -> None:
        node = APP_NODES[worker % len(APP_NODES)]
        client = sessions.NodeClient(node)
        try:
            mine = [held for where, held in made if where == node]
            for held in mine[worker // len(APP_NODES)::POPULATE_WORKERS // len(APP_NODES)]:
                client.send("POST", f"/api/{strategy['name']}/logout", held, {})
        finally:
            client.close()

    with ThreadPoolExecutor(POPULATE_WORKERS) as pool:
        list(pool.map(end, range(POPULATE_WORKERS)))


def memory_of(strategy: dict) -> int:
    """Bytes the strategy's sessions can take now: the one Redis' used_memory, or the app nodes' resident
    memory (every process of each node's container)."""
    if tuple(strategy["dependencies"]) == SINGLE_REDIS:
        info = store_roles.cli("redis", "info", "memory")
        return int(next(line.split(":")[1] for line in info.splitlines() if line.startswith("used_memory:")))
    return sum(resident(pid) for node, pid in cpu.containers().items() if node in APP_NODES)


def resident(pid: int) -> int:
    """Resident bytes of process `pid` and its descendants (a node: gunicorn's master and its worker)."""
    total = 0
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        total += next(int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS:"))
        todo += [int(c) for c in children]
    return total


# -- summary ------------------------------------------------------------------------------------------------

CART_COLUMNS = [("strategy", "strategy"), ("cart", "cart"), ("items", "items"), ("request_bytes", "request bytes"),
                ("response_bytes", "response bytes"), ("rps", "reads/s"), ("x_empty", "x empty cart")]
SESSION_COLUMNS = [("strategy", "strategy"), ("where", "held in"), ("sessions", "sessions"), ("bytes", "bytes"),
                   ("bytes_per_session", "bytes per session")]
NODE_COLUMNS = [("strategy", "strategy"), ("nodes", "app nodes"), ("rps", "reads/s"), ("x_one", "x one node")]


def with_ratios(rows: list[dict]) -> dict[str, list[dict]]:
    """The growth rows by kind, each throughput also as a ratio to the strategy's smallest case."""
    out = {kind: [dict(r) for r in rows if r["kind"] == kind] for kind in ("cart", "sessions", "nodes")}
    for kind, field, first in (("cart", "x_empty", lambda r: r["cart"] == next(iter(CARTS))),
                               ("nodes", "x_one", lambda r: r["nodes"] == 1)):
        base = {r["strategy"]: r["rps"] for r in out[kind] if first(r)}
        for r in out[kind]:
            r[field] = round(r["rps"] / base[r["strategy"]], 2) if base.get(r["strategy"]) else None
    return out


def write(out: Path, rows: list[dict], settings: dict) -> None:
    by = with_ratios(rows)
    (out / "growth.json").write_text(json.dumps({"settings": settings, **by}, indent=2))
    text = ["# How the costs grow", "", f"Settings: {json.dumps(settings)}", ""]
    for title, kind, columns in (("Cart size: one read through nginx", "cart", CART_COLUMNS),
                                 ("Live sessions: memory where they live", "sessions", SESSION_COLUMNS),
                                 (f"App nodes, each limited to {NODE_CPUS} core", "nodes", NODE_COLUMNS)):
        if by[kind]:
            text += [f"## {title}", "", tables.markdown(by[kind], columns)]
    (out / "growth.md").write_text("\n".join(text))
    if by["cart"]:
        plot_lines(by["cart"], "cart", "response_bytes", "bytes one read receives (log)", out / "growth-cart.png",
                   "Cart size: what one read carries back, by strategy", log=True)
    if by["sessions"]:
        plot_lines(by["sessions"], "sessions", "bytes_per_session", "bytes per live session",
                   out / "growth-sessions.png", "Live sessions: memory per session where they are kept", logx=True)
    if by["nodes"]:
        plot_lines(by["nodes"], "nodes", "rps", "reads per second", out / "growth-nodes.png",
                   f"App nodes (each {NODE_CPUS} core): read throughput through nginx")


def plot_lines(rows: list[dict], x: str, y: str, label: str, path: Path, title: str, log=False, logx=False) -> None:
    fig, ax = plt.subplots(figsize=(9, 4.5))
    names = list(dict.fromkeys(r["strategy"] for r in rows))
    xs = list(dict.fromkeys(r[x] for r in rows))
    for name in names:
        mine = {r[x]: r[y] for r in rows if r["strategy"] == name}
        points = [(i if not logx else xv, mine[xv]) for i, xv in enumerate(xs) if mine.get(xv) is not None]
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=name)
    if not logx:
        ax.set_xticks(range(len(xs)), [str(v) for v in xs])
    else:
        ax.set_xscale("log")
    if log:
        ax.set_yscale("log")
    ax.set_xlabel(x)
    ax.set_ylabel(label)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
