"""The steady-state hypotheses the experiment checks, one per claim the lab makes.

Each applies to some scorecard rows (strategy x routing mode x fault) and states what must hold there. A
run whose rows deviate makes the runner exit non-zero. Strategy traits come from the app's registry
(keeps_state, needs_sticky, dependencies), so a new strategy is judged without editing this file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

NODE_DEATHS = ("kill", "stop")
STICKY_MODES = ("sticky", "ip-hash")  # routing that keeps a user on one node


def shared(cls) -> bool:
    """Keeps state that any node can serve."""
    return cls.keeps_state and not cls.needs_sticky


def on_node(row) -> bool:
    return row["target"].startswith("app")


@dataclass(frozen=True)
class Hypothesis:
    name: str
    claim: str
    applies: Callable[[dict, type], bool]
    check: Callable[[dict], str | None]  # None when it holds, else what deviated


def _all(*checks):
    def run(row):
        for check in checks:
            problem = check(row)
            if problem:
                return problem
        return None

    return run


def _zero(field):
    return lambda row: None if row[field] == 0 else f"{field} = {row[field]}"


def _positive(field):
    return lambda row: None if row[field] > 0 else f"{field} = 0"


def _only_target_users(row):
    lost, on_target = set(row["users_lost"]), set(row["users_on_target"])
    allowed = set(on_target)
    if row["mode"] == "ip-hash":
        # The hash sends everyone back to the node once it returns: a session started elsewhere during the
        # outage is lost then, by design of ip-hash (sticky routing re-sticks the user instead).
        allowed |= set(row.get("users_started_during_fault", ()))
    if not lost <= allowed:
        return f"{len(lost - allowed)} users lost a session without being on {row['target']}"
    if on_target and not lost:
        return f"{len(on_target)} users were on {row['target']} yet none lost a session"
    return None


def _errors_are_503(row):
    return None if row["errors_not_503"] == 0 else f"{row['errors_not_503']} errors were not 503"


HYPOTHESES = [
    Hypothesis(
        "no-leaked-session",
        "No user ever sees another user's session or items (foreign = 0), whatever the strategy, mode or fault.",
        lambda row, cls: True,
        _zero("foreign"),
    ),
    Hypothesis(
        "shared-state-survives-node-death",
        "Strategies whose state any node can serve lose no session and no acknowledged write when an app "
        "node is killed or stopped.",
        lambda row, cls: shared(cls) and on_node(row) and row["fault"] in NODE_DEATHS,
        _all(_zero("sessions_lost"), _zero("writes_lost")),
    ),
    Hypothesis(
        "acknowledged-writes-are-kept",
        "Shared-state strategies never lose an acknowledged write when an app node fails in any way "
        "(a frozen or cut-off node may cost unacknowledged ones).",
        lambda row, cls: shared(cls) and on_node(row),
        _zero("writes_lost"),
    ),
    Hypothesis(
        "graceful-stop-is-invisible",
        "A graceful stop (SIGTERM) drains the node: no strategy sees an error.",
        lambda row, cls: row["fault"] == "stop" and on_node(row),
        _zero("errors"),
    ),
    Hypothesis(
        "node-local-needs-sticky",
        "Node-local sessions are lost throughout under routing that spreads one user's requests "
        "(before the fault and after recovery alike).",
        lambda row, cls: cls.needs_sticky and row["mode"] in ("round-robin", "least-conn"),
        _all(_positive("sessions_lost_before_fault"), _positive("sessions_lost_after_recovery")),
    ),
    Hypothesis(
        "sticky-loses-only-the-dead-nodes-users",
        "With routing that keeps a user on one node, node-local sessions are lost only by the users of the "
        "node that died: none before the fault, and nobody else's (under ip-hash, also sessions started "
        "during the outage, which the hash moves back to the node when it returns).",
        lambda row, cls: cls.needs_sticky and row["mode"] in STICKY_MODES and on_node(row)
        and row["fault"] in NODE_DEATHS,
        _all(_zero("sessions_lost_before_fault"), _only_target_users),
    ),
    Hypothesis(
        "logout-revokes-everywhere",
        "A strategy that claims revocation refuses a logged-out credential on every node once a second has "
        "passed (node-local sessions: where routing keeps the user on its node). The one exception is the "
        "store that carries revocations being down: jwt logouts made then reach the other nodes only when it "
        "returns (counted, not checked).",
        lambda row, cls: cls.revocable and (not cls.needs_sticky or row["mode"] in STICKY_MODES)
        and row["target"] not in cls.revocation_via,
        _zero("not_revoked"),
    ),
    Hypothesis(
        "store-outage-is-503",
        "While a strategy's store is down, it answers 503 (never a 500, never a fresh empty session).",
        lambda row, cls: row["target"] in cls.dependencies and row["fault"] in NODE_DEATHS,
        _all(_positive("errors"), _errors_are_503),
    ),
    Hypothesis(
        "store-outage-spares-the-others",
        "Strategies that do not use the failed store carry on: no error, no lost session, no lost write.",
        lambda row, cls: shared(cls) and not on_node(row) and row["target"] not in cls.dependencies,
        _all(_zero("errors"), _zero("sessions_lost"), _zero("writes_lost")),
    ),
]


def evaluate(rows: list[dict], classes: dict[str, type]) -> list[dict]:
    results = []
    for hypothesis in HYPOTHESES:
        for row in rows:
            cls = classes.get(row["strategy"])
            if cls is None or not hypothesis.applies(row, cls):
                continue
            problem = hypothesis.check(row)
            results.append({
                "hypothesis": hypothesis.name,
                "strategy": row["strategy"],
                "mode": row["mode"],
                "fault": f"{row['fault']} {row['target']}",
                "held": problem is None,
                "detail": problem or "",
            })
    return results
