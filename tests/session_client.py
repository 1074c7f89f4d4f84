"""A test client that carries each strategy's credential the way a real client would.

Used by the integration tests (Flask's test client) and the e2e tests (HTTP through nginx): both hand it a
`send(method, path, headers=, json=)` function with its own cookie jar, as a browser would have. It checks the
rules every response must follow: never a 500, always a JSON body, always the serving node's name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

Sender = Callable[..., "Reply"]


@dataclass
class Reply:
    status: int
    body: dict
    headers: dict[str, str]  # lower-case names

    @property
    def node(self) -> str:
        return self.headers.get("x-served-by", "")


@dataclass
class SessionClient:
    strategy: str
    send: Sender
    token: str | None = None
    client_state: str | None = None
    replies: list[Reply] = field(default_factory=list)

    def login(self, user: str) -> Reply:
        return self._call("POST", "login", {"user": user})

    def add(self, item: str, headers: dict[str, str] | None = None) -> Reply:
        return self._call("POST", "cart", {"item": item}, headers)

    def cart(self) -> Reply:
        return self._call("GET", "cart")

    def logout(self) -> Reply:
        return self._call("POST", "logout", {})  # a JSON body, as every state-changing POST needs

    def session_id(self) -> str:
        """The session id the latest Set-Cookie handed out (the strategies that keep a server-side session)."""
        cookie = next(r.headers["set-cookie"] for r in reversed(self.replies) if "set-cookie" in r.headers)
        return cookie.split(";")[0].split("=", 1)[1]

    def _call(self, method: str, action: str, payload: dict | None = None,
              extra_headers: dict[str, str] | None = None) -> Reply:
        headers = dict(extra_headers or {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.client_state:
            headers["X-Client-Session"] = self.client_state
        reply = self.send(method, f"/api/{self.strategy}/{action}", headers=headers, json=payload)
        assert reply.status != 500, f"{method} {action} answered 500: {reply.body}"
        assert isinstance(reply.body, dict), f"{method} {action}: body is not a JSON object"
        if reply.status >= 400:
            assert reply.body.get("error") and reply.body.get("message"), f"error body names no problem: {reply.body}"
        if "token" in reply.body:
            self.token = reply.body["token"]
        if "client_session" in reply.body:
            self.client_state = reply.body["client_session"]
        self.replies.append(reply)
        return reply
