"""The typed records of a run: a `Scenario` as scenarios.json holds it, and a `ScorecardRow` as scorecard.json
holds it. Everything in loadtest/scoring reads them by attribute, so the fields below are the whole schema.

scenarios.json is written by the experiment runner (loadtest/runs/experiment.py), one scenario filled in as it
runs; older runs lack the keys added since, so every field a run may not have written has a default, and a key
this module does not know is kept as it was (`extra`) rather than dropped.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields


@dataclass
class Scenario:
    """One fault in one routing mode. Times are Unix seconds. Filled in while the scenario runs (hence not
    frozen); treat it as read-only once it is in scenarios.json: scoring never changes one."""

    id: str = ""  # "<mode>--<fault>-<target>", plus "--at-<n>pct" in the load suite; the raw/<id>/ folder
    mode: str = ""  # the routing mode (loadbalancer/modes/<mode>.conf)
    fault: str = ""  # kill, stop, pause, disconnect, redeploy (loadtest/faults/chaos.py)
    target: str = ""  # an app node, a node group or a store role
    interrupted: bool = False  # Ctrl-C or an error ended it before its cool-down
    # The load suite only: the fraction of the measured capacity the users were paced to, and that capacity.
    load: float | None = None
    capacity_rps: float | None = None
    target_rps: float | None = None
    users: int | None = None
    start: float | None = None  # the users started
    store: str | None = None  # the store the target belongs to ("" for an app node; None: the run stopped earlier)
    services: list[str] | None = None  # the compose services the target resolved to just before the fault
    node_memory: dict | None = None  # per node, per strategy: sessions owned and copies kept (/readyz), sticky mode
    slots: list[list[int]] | None = None  # a Cluster fault: the slot ranges the faulted nodes served
    inject: float | None = None  # the fault fired
    recovered: float | None = None  # the faulted service was back
    end: float | None = None  # the cool-down ended
    steps: list[dict] | None = None  # a redeploy: each node's {"node", "t", "replaced"}
    store_events: list[dict] | None = None  # the store's own timeline (loadtest/faults/store_watch.py)
    refused: dict | None = None  # per store, per reason: fail-fast 503s the store's breaker and bulkhead gave
    extra: dict = field(default_factory=dict)  # keys this version does not know, kept for to_json

    @classmethod
    def from_json(cls, data: dict) -> Scenario:
        known = {f.name for f in fields(cls)} - {"extra"}
        return cls(**{k: v for k, v in data.items() if k in known},
                   extra={k: v for k, v in data.items() if k not in known})

    def to_json(self) -> dict:
        """The keys the runner writes, in its order; a field the run never set is left out, as the runner does."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        out = {k: v for k, v in out.items() if v is not None or k in ("id", "mode", "fault", "target")}
        return {**out, **self.extra}

    @property
    def nodes(self) -> list[str]:
        """The services the fault hit: the resolved ones, or the target itself in runs that did not record them."""
        return self.services or [self.target]

    @property
    def events(self) -> list[dict]:
        return self.store_events or []


def scenario(value: Scenario | dict) -> Scenario:
    """A Scenario from either form: tests and older callers pass scenarios.json's dicts."""
    return value if isinstance(value, Scenario) else Scenario.from_json(value)


@dataclass
class ScorecardRow:
    """One strategy in one scenario: what its users saw. The field order is scorecard.json's key order.
    The figures come from loadtest/scoring/analysis.py (METRICS says which function computes which)."""

    strategy: str
    mode: str = ""
    fault: str = ""
    target: str = ""
    load: float | None = None
    requests: int = 0
    rps_before: float = 0.0  # requests/s sent in the RATE_WINDOW seconds before the fault
    rps_window: float | None = None  # requests/s sent between the fault and recovery
    ok: int = 0
    errors: int = 0  # 5xx, connection errors and timeouts
    errors_not_503: int = 0
    cut_off_by_fault: int = 0  # a 200 whose body the dying node never finished
    sessions_lost: int = 0  # answers that said the session was unknown
    sessions_lost_before_fault: int = 0
    sessions_lost_after_recovery: int = 0
    writes_lost: int = 0  # acknowledged items later missing
    foreign: int = 0  # answers holding another user's data
    duplicates: int = 0  # adds applied twice
    store: str = ""  # the faulted store ("" for an app-node fault)
    errors_get: int = 0
    errors_post: int = 0
    unavailable_s: float = 0.0  # the longest any user waited from a failed answer to its next good one
    p99_window_ms: float | None = None
    p50_window_ms: float | None = None
    max_window_ms: float | None = None
    p99_before_ms: float | None = None
    errors_off_shard: int | None = None  # None: not a Cluster fault
    detected_s: float | None = None  # the store's timeline, seconds after the fault
    promoted_s: float | None = None
    first_success_s: float | None = None
    replays: int = 0
    not_revoked: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    error_window_s: float = 0.0
    recover_s: float | None = 0.0  # None: bad answers went on to the end ("never")
    users: int = 0
    users_on_target: list[str] = field(default_factory=list)
    users_on_first: list[str] = field(default_factory=list)
    nodes_with_losses: list[str] = field(default_factory=list)
    nodes_holding_sessions: list[str] = field(default_factory=list)  # where its users' live sessions were at the fault
    acked_at_death: int = 0
    add_p50_ms: float | None = None
    add_p99_ms: float | None = None
    users_lost: list[str] = field(default_factory=list)
    users_started_during_fault: list[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict) -> ScorecardRow:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_json(self) -> dict:
        return asdict(self)
