"""What a strategy is, as one frozen value: what the API lists (GET /api/strategies), what the demo page
shows, and what the load test, the report and the tests choose by.

Each strategy class declares its `Traits` once (`traits = Traits(...)`); `Traits.to_json` is the API's
listing, and `Traits.from_json` turns that listing back into the same value, so a client of the HTTP API
(the bench) and a reader of the classes (the experiment) see one thing. Pure data: no Flask, no Redis.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Literal

ConcurrentAdds = Literal["kept", "last-wins", "may-drop"]


@dataclass(frozen=True)
class Transport:
    """How the session's credential travels between client and server, for a client to follow.

    An answer carries it in the cookie `cookie` (a browser sends it back by itself) and/or in the JSON field
    `body_field`; a client without cookies sends that field's value back in the header `header`, after
    `scheme` when there is one (`Authorization: Bearer <token>`). All empty: no credential at all."""

    cookie: str = ""
    body_field: str = ""
    header: str = ""
    scheme: str = ""

    def prose(self) -> str:
        """The one-line description the API has always listed as `credential` (and the demo page shows)."""
        if self.header and self.cookie:
            return (f"cookie {self.cookie} or header {self.header} (returned in the cookie and in the JSON field "
                    f"`{self.body_field}`)")
        if self.header:
            return (f"{self.header}: {self.scheme} <{self.body_field}> ({self.body_field} returned in the JSON field "
                    f"`{self.body_field}`)")
        return f"cookie {self.cookie}" if self.cookie else "nothing"


@dataclass(frozen=True)
class Traits:
    name: str  # the API's name for the strategy: /api/<name>/...
    summary: str
    transport: Transport = field(default_factory=Transport)
    keeps_state: bool = True  # False only for the `none` baseline
    needs_sticky: bool = False  # True when the session lives inside one node
    dependencies: tuple[str, ...] = ()  # services it needs (tests pick their layer by this)
    revocable: bool = True  # logout makes the credential worthless on every node
    revocation_via: tuple[str, ...] = ()  # services that carry logouts to the other nodes
    confirms_writes: bool = False  # a change is acknowledged only once a replica of the store has it
    node_replica: bool = False  # node-local sessions with a copy on the next node (sticky sends users there)
    # True: every use writes the session back and hands out its credential again; False: only a change or a use
    # SESSION_REFRESH_AFTER after the last refresh does (docs/strategies.md).
    refreshes_every_use: bool = False
    # What adds sent at once to one session leave in it (`make bench`'s race measures it): "kept", each add
    # changes the stored cart in place; "last-wins", the state travels with the client, which keeps the last
    # answer's; "may-drop", each request reads the whole session and writes it back, so a later write can drop
    # an earlier add, how many depends on the timing.
    concurrent_adds: ConcurrentAdds = "kept"

    @property
    def credential(self) -> str:
        """How the client carries the session, in words (the listing's `credential`)."""
        return self.transport.prose()

    def to_json(self) -> dict:
        """The API's listing of the strategy. `credential` is the transport in words, as it always was;
        `transport` is the same, for a client to follow."""
        data = asdict(self)
        return {
            "name": self.name,
            "summary": self.summary,
            "keeps_state": self.keeps_state,
            "needs_sticky": self.needs_sticky,
            "credential": self.credential,
            "dependencies": list(self.dependencies),
            "revocable": self.revocable,
            "revocation_via": list(self.revocation_via),
            "confirms_writes": self.confirms_writes,
            "node_replica": self.node_replica,
            "refreshes_every_use": self.refreshes_every_use,
            "concurrent_adds": self.concurrent_adds,
            "transport": data["transport"],
        }

    @classmethod
    def from_json(cls, data: dict) -> Traits:
        """The value `to_json` listed (GET /api/strategies), rebuilt; `credential`, derived, is not read."""
        values = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        values["transport"] = Transport(**data.get("transport", {}))
        for name in ("dependencies", "revocation_via"):
            values[name] = tuple(data.get(name, ()))
        return cls(**values)
