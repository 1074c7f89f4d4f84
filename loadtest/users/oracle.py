"""The session oracle: each simulated user knows what its session must hold and classifies every answer.

HTTP status alone cannot show a lost session: a strategy can answer 200 with an empty cart. So every user
remembers each item the server acknowledged, and every answer is one of:

- ok:            the cart is exactly what the user expects
- session_lost:  the server no longer knows the session (the user must log in again)
- writes_lost:   the session exists but acknowledged items are missing (rolled back)
- foreign:       the cart holds items this user never added (another user's), or another user's name:
                 a leak, must be 0
- duplicate:     one add applied twice (an item appears twice): a retry that was not exactly-once
- not_revoked:   a credential replayed after its logout still opened the session: a strategy that claims
                 revocation (`revocable`) must refuse it once REVOCATION_BOUND has passed
- error:         5xx, connection error, timeout, or any other answer the load test never provokes
"""

from __future__ import annotations

from dataclasses import dataclass, field

OK, SESSION_LOST, WRITES_LOST, FOREIGN, ERROR = "ok", "session_lost", "writes_lost", "foreign", "error"
NOT_REVOKED, DUPLICATE = "not_revoked", "duplicate"
OUTCOMES = (OK, SESSION_LOST, WRITES_LOST, FOREIGN, DUPLICATE, NOT_REVOKED, ERROR)
REVOCATION_BOUND = 1.0  # seconds within which a logout must reach every node (the lab's claim)


@dataclass
class Verdict:
    outcome: str
    lost_items: int = 0  # acknowledged items found missing by this answer
    detail: str = ""


@dataclass
class Expectation:
    """What one user's session must contain. `acked` are acknowledged items; `uncertain` are adds whose
    answer never came (an error or timeout): they may or may not have been applied, so finding them is no
    leak and missing them no loss."""

    user: str
    keeps_state: bool = True
    acked: list[str] = field(default_factory=list)
    uncertain: set[str] = field(default_factory=set)
    # Acknowledged items an answer later lacked: this user's own, so one that shows up again (a node with an
    # older or a newer version of the session answered) is no stranger's.
    rolled_back: set[str] = field(default_factory=set)

    def login(self, status: int, body: dict | None) -> Verdict:
        if status == 200 and isinstance(body, dict):
            if body.get("user") != self.user or body.get("items") != []:
                return Verdict(FOREIGN, detail=f"fresh login returned {body.get('user')!r} {body.get('items')!r}")
            return Verdict(OK)
        return self._failure(status, body, None)

    def read(self, status: int, body: dict | None) -> Verdict:
        return self._check(status, body, None)

    def add(self, status: int, body: dict | None, item: str) -> Verdict:
        return self._check(status, body, item)

    def logout(self, status: int, body: dict | None) -> Verdict:
        if status == 200 and isinstance(body, dict) and body.get("logged_out") is True:
            return Verdict(OK)
        if status == 409 and isinstance(body, dict) and body.get("error") == "session_not_here":
            # A node-local session this node does not hold: out of this user's reach, as a read's 401 says.
            return Verdict(SESSION_LOST, detail=body.get("message", ""))
        return self._failure(status, body, None)

    def replay_after_logout(self, status: int, body: dict | None, revocable: bool) -> Verdict:
        """The credential of a session logged out REVOCATION_BOUND ago, sent again."""
        if status == 401:
            return Verdict(OK)  # refused: whether the strategy claims revocation or not, nothing leaked
        if status == 200:
            if revocable:
                return Verdict(NOT_REVOKED, detail="a logged-out credential still opened the session")
            return Verdict(OK)  # client-side state: the holder may replay it, as documented
        return self._failure(status, body, None)

    def _check(self, status: int, body: dict | None, item: str | None) -> Verdict:
        if status != 200 or not isinstance(body, dict) or not isinstance(body.get("items"), list):
            return self._failure(status, body, item)
        items = body["items"]
        if not self.keeps_state:
            expected = [item] if item is not None else []
            if items != expected:
                return Verdict(FOREIGN, detail=f"stateless answer held {items!r}")
            return Verdict(OK)
        if body.get("user") != self.user:
            return Verdict(FOREIGN, detail=f"session of {body.get('user')!r}")
        known = set(self.acked) | self.uncertain | self.rolled_back | ({item} if item else set())
        strangers = [i for i in items if i not in known]
        if strangers:
            return Verdict(FOREIGN, detail=f"items never added by this user: {strangers[:3]!r}")
        if len(set(items)) != len(items):  # one add applied twice: the second copy was never added
            return Verdict(DUPLICATE, detail="an item appears twice")
        present = set(items)
        missing = [i for i in self.acked if i not in present]
        if item is not None and item not in present:
            missing.append(item)  # acknowledged, yet not in the very answer that acknowledged it
        # The server's cart is the truth from here on, so one loss is counted once, not on every read.
        self.uncertain -= present
        self.acked = list(items)
        self.rolled_back.update(missing)
        if missing:
            return Verdict(WRITES_LOST, lost_items=len(missing), detail=f"missing {missing[:3]!r}")
        return Verdict(OK)

    def _failure(self, status: int, body: dict | None, item: str | None) -> Verdict:
        if item is not None:
            self.uncertain.add(item)
        if status == 401 and self.keeps_state:
            return Verdict(SESSION_LOST, detail=(body or {}).get("message", ""))
        if status == 0:
            return Verdict(ERROR, detail="connection error or timeout")
        return Verdict(ERROR, detail=f"HTTP {status}: {(body or {}).get('error', 'no JSON body')}")
