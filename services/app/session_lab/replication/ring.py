"""The replication ring: each node copies its sessions to the next node in REPLICATION_PEERS (its buddy),
the last to the first, and keeps the copies of the node before it (its ward)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Ring:
    me: str
    nodes: tuple[tuple[str, str], ...]  # (name, host:port) in ring order; empty: no replication

    def _neighbour(self, step: int) -> tuple[str, str] | None:
        names = [name for name, _ in self.nodes]
        if len(names) < 2 or self.me not in names:
            return None
        return self.nodes[(names.index(self.me) + step) % len(names)]

    @property
    def buddy(self) -> tuple[str, str] | None:
        """The node that keeps a copy of this node's sessions."""
        return self._neighbour(1)

    @property
    def ward(self) -> tuple[str, str] | None:
        """The node whose sessions this node keeps a copy of."""
        return self._neighbour(-1)
