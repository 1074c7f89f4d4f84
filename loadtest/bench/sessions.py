"""The sessions a bench round sends its requests with, made before the round on each app node in turn.

The nodes are out of the host's reach (docker-compose.yml's networks): a session is made through the balancer,
pinned to node i % 3 with the lab's `X-Lab-Node` header (loadbalancer/render-mode.sh), and, for a strategy that
keeps sessions inside one node, carries the balancer's route cookie naming that node, as a browser would after
its first answer in sticky mode.

Each session is one line of the file wrk's script reads (load.lua): the headers that carry its credential,
tab-separated, as a browser would send it: the cookies the login and the adds set; when the strategy sets
none, the JSON body's `token` as a bearer token or its `client_session` as a header (loadtest/users has the
same rules). Never both: `client` sets a cookie and also returns its state in the body, and sending it
twice would double what nginx and the node parse.
"""

from __future__ import annotations

import http.client
import json
import zlib
from pathlib import Path

from loadtest.lab import APP_NODES, LabError, as_proxy, lab_address

ROUTE_COOKIE = "sl_route"  # set by nginx in sticky mode from X-Served-By (loadbalancer/modes/sticky.conf)


class SessionError(LabError):
    pass


class Client:
    """One keep-alive HTTP connection, JSON in and out."""

    def __init__(self, host: str, port: int, name: str):
        self.name = name
        self.conn = http.client.HTTPConnection(host, port, timeout=15)

    def send(self, method: str, path: str, headers: dict[str, str], body: dict | None = None) -> tuple[int, dict, list]:
        """(status, the JSON object answered or {}, the headers)."""
        data = json.dumps(body).encode() if body is not None else None
        self.conn.request(method, path, body=data,
                          headers={**headers, **({"Content-Type": "application/json"} if data else {})})
        reply = self.conn.getresponse()
        raw = reply.read()
        try:
            parsed = json.loads(raw) if raw else {}
        except ValueError:
            parsed = {}
        return reply.status, parsed if isinstance(parsed, dict) else {}, reply.getheaders()

    def call(self, method: str, path: str, headers: dict[str, str], body: dict | None = None) -> tuple[dict, list]:
        """As send, for a request that must succeed."""
        status, answer, answer_headers = self.send(method, path, headers, body)
        if status != 200:
            raise SessionError(f"{method} {path} on {self.name}: {status} {answer}")
        return answer, answer_headers

    def close(self) -> None:
        self.conn.close()


class NodeClient(Client):
    """A client of one app node, through the balancer (`X-Lab-Node` pins every request to the node)."""

    def __init__(self, node: str):
        super().__init__(*lab_address(), node)
        self.node = node

    def send(self, method: str, path: str, headers: dict[str, str], body: dict | None = None) -> tuple[int, dict, list]:
        return super().send(method, path, {**headers, "X-Lab-Node": self.node}, body)


def credential(cookies: dict[str, str], body: dict, headers: list) -> dict[str, str]:
    """The headers a client sends next, after an answer with `body` and `headers`; `cookies` is its jar."""
    set_now = False
    for name, value in headers:
        if name.lower() == "set-cookie":
            key, _, rest = value.partition("=")
            cookies[key] = rest.split(";", 1)[0]
            set_now = True
    out = {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())} if cookies else {}
    if not set_now and body.get("token"):
        out["Authorization"] = f"Bearer {body['token']}"
    elif not set_now and body.get("client_session"):
        out["X-Client-Session"] = body["client_session"]
    return out


def client_address(user: str) -> str:
    """An address of its own per bench user, in RFC 2544's 198.18.0.0/15, forwarded as the lab's trusted proxy
    does (lab.as_proxy): nginx takes it for the client, so the bench's logins meet many clients' login limits
    and session budgets, as many users' would, not all this host's one (strategies/_client_budget.py)."""
    n = zlib.crc32(user.encode())
    return f"198.{18 + (n >> 16) % 2}.{(n >> 8) % 256}.{n % 254 + 1}"


def start(client: NodeClient, strategy: dict, user: str) -> tuple[dict[str, str], dict[str, str]]:
    """Log `user` in on the client's node: (the cookie jar, the headers that carry the session)."""
    cookies = {ROUTE_COOKIE: client.node} if strategy["needs_sticky"] else {}
    body, headers = client.call("POST", f"/api/{strategy['name']}/login", as_proxy(client_address(user)),
                                {"user": user})
    return cookies, credential(cookies, body, headers)


FULL = -1  # as many items as the session takes: until the cart is full (409) or the credential would be (413)
REFUSED = (409, 413)


def item_text(n: int, length: int | None) -> str:
    """Item n; with `length`, padded to that many characters (the largest items a cart may hold)."""
    text = f"item-{n}"
    return text if length is None else (text + "-" + "x" * length)[:length]


def login(client: NodeClient, strategy: dict, user: str, items: int, item_length: int | None = None) -> dict[str, str]:
    """A new session of `strategy` on the client's node holding `items` items (FULL: as many as it takes),
    each `item_length` characters long if given: the headers that carry it."""
    name = strategy["name"]
    cookies, held = start(client, strategy, user)
    n = 0
    while items == FULL or n < items:
        status, body, headers = client.send("POST", f"/api/{name}/cart", {**held, "Idempotency-Key": f"{user}-{n}"},
                                            {"item": item_text(n, item_length)})
        if items == FULL and status in REFUSED:
            break
        if status != 200:
            raise SessionError(f"POST /api/{name}/cart on {client.name}: {status} {body}")
        held = credential(cookies, body, headers)
        n += 1
    return held


def make(strategy: dict, count: int, items: int, path: Path, item_length: int | None = None) -> None:
    """Write `count` sessions of `strategy` (as /api/strategies describes it), each with `items` items."""
    clients = [NodeClient(node) for node in APP_NODES]
    lines = []
    try:
        for i in range(count):
            held = login(clients[i % len(clients)], strategy, f"bench-{i}", items, item_length)
            lines.append("\t".join(f"{k}: {v}" for k, v in held.items()))
    except (OSError, http.client.HTTPException) as exc:
        raise SessionError(f"making {strategy['name']} sessions on the nodes failed: {exc}") from exc
    finally:
        for client in clients:
            client.close()
    path.write_text("\n".join(lines) + "\n")
