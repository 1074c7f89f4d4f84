"""The store's own timeline during a fault: when it noticed, when it promoted a replica.

A short shell loop runs inside a store container the fault spares and prints what the store believes every
100 ms, stamped with the container's clock (the host's kernel clock, so comparable with the load test's
records). Only changes are kept, as events:

    sentinel:  primary subjectively down (s_down), objectively down (o_down, quorum agreed), failover
               started, primary switched (the new address)
    cluster:   master suspected (fail?), master failed (fail: a majority agreed), replica promoted
"""

from __future__ import annotations

import subprocess
import threading

from loadtest.faults.store_roles import addresses
from loadtest.lab import CLUSTER, ROOT, SENTINEL_SERVICE, SENTINELS, store_of

POLL = 0.1  # seconds between two looks at the store
_LOOP = ('end=$(( $(date +%s) + {seconds} )); while [ "$(date +%s)" -lt "$end" ]; do '
         'echo "@ $(date +%s.%N)"; {command}; sleep ' + str(POLL) + '; done')
_COMMANDS = {
    "sentinel": f"redis-cli -p 26379 sentinel master {SENTINEL_SERVICE}",
    "cluster": "redis-cli cluster nodes",
}


class StoreView:
    """What one look at the store says, turned into events (kept on their first appearance only). Pure: fed
    the loop's output by StoreWatch, or by a test."""

    def __init__(self, store: str, faulted_ips: set[str]):
        self.store = store
        self.faulted_ips = faulted_ips
        self.events: list[dict] = []
        self._first_primary: str | None = None
        self._master_id: str | None = None
        self._replica_ids: set[str] = set()

    def look(self, t: float, lines: list[str]) -> None:
        if self.store == "sentinel":
            self._look_sentinel(t, lines)
        elif self.store == "cluster":
            self._look_cluster(t, lines)

    def _note(self, t: float, event: str, detail: str = "") -> None:
        if not any(e["event"] == event for e in self.events):
            self.events.append({"t": round(t, 3), "event": event, "detail": detail})

    def _look_sentinel(self, t: float, lines: list[str]) -> None:
        fields = dict(zip(lines[0::2], lines[1::2]))
        flags, ip = fields.get("flags", "").split(","), fields.get("ip", "")
        if not ip:
            return
        if self._first_primary is None:
            self._first_primary = ip
            self._note(t, "watching", ip)
        if "s_down" in flags:
            self._note(t, "primary down (one sentinel)")
        if "o_down" in flags:
            self._note(t, "primary down (quorum)")
        if "failover_in_progress" in flags:
            self._note(t, "failover started")
        if ip != self._first_primary:
            self._note(t, "replica promoted", ip)

    def _look_cluster(self, t: float, lines: list[str]) -> None:
        rows = {r[0]: r for r in (line.split() for line in lines) if len(r) >= 8}  # id -> fields
        if self._master_id is None:  # the first look: which faulted node is a master, and who replicates it
            master = next((r for r in rows.values()
                           if r[1].split(":")[0] in self.faulted_ips and "master" in r[2].split(",")), None)
            if master is not None:
                self._master_id = master[0]
                self._replica_ids = {i for i, r in rows.items() if r[3] == master[0]}
                self._note(t, "watching", master[1].split("@")[0])
            return
        master = rows.get(self._master_id)
        if master is None:
            return
        flags = master[2].split(",")
        if "fail?" in flags:
            self._note(t, "master suspected (one node)")
        if "fail" in flags:
            self._note(t, "master failed (majority)")
        if any("master" in rows[i][2].split(",") for i in self._replica_ids if i in rows):
            self._note(t, "replica promoted")


class StoreWatch:
    """Watch the store of `target` while `services` are faulted; `events` fills in as things happen."""

    def __init__(self, target: str, services: list[str], seconds: float):
        store = store_of(target)
        ip_of = {service: ip for ip, service in addresses().items()} if store in _COMMANDS else {}
        self.view = StoreView(store, {ip_of.get(s, "") for s in services})
        self._process: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None
        pool = SENTINELS if store == "sentinel" else CLUSTER
        watcher = next((s for s in pool if s not in services), None)
        if store not in _COMMANDS or watcher is None:
            return
        loop = _LOOP.format(seconds=int(seconds) + 1, command=_COMMANDS[store])
        self._process = subprocess.Popen(["docker", "compose", "exec", "-T", watcher, "sh", "-c", loop], cwd=ROOT,
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def stop(self) -> list[dict]:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
            self._thread.join(timeout=5)
        return self.view.events

    def _read(self) -> None:
        stamp, block = None, []
        for line in self._process.stdout:
            line = line.rstrip("\r\n")
            if line.startswith("@ "):
                if stamp is not None:
                    self.view.look(stamp, block)
                stamp, block = float(line[2:]), []
            else:
                block.append(line)
        if stamp is not None:
            self.view.look(stamp, block)

