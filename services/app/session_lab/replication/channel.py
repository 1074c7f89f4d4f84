"""The channel between app nodes: JSON over HTTP on the nodes' own port, signed with REPLICATION_SECRET.

The balancer refuses /internal/ from outside (loadbalancer/nginx.conf), and the nodes' port is published
nowhere; the signature is what a node checks itself, so a request from anywhere else on the network changes
nothing. Every message is idempotent (a copy carries the session's version, an end is a tombstone), so a
message replayed, or sent twice after a lost answer, changes nothing either.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import socket
import threading
import time

from flask import Blueprint, current_app, jsonify, request

from ..errors import ApiError

SIGNATURE = "X-Replication-Signature"
PREFIX = "/internal/replication"
MAX_SKEW = 30  # seconds a signature stays valid; the lab's nodes share one host clock
MAX_MESSAGE_BYTES = 1024 * 1024  # a state-transfer batch (link.BATCH_BYTES) with room to spare
CONNECT_TIMEOUT = 0.25  # a live node on the lab network accepts in well under a millisecond
VERBS = ("copy", "hello", "handback", "logout")


def sign(secret: str, path: str, body: bytes, now: float | None = None) -> str:
    stamp = int(time.time() if now is None else now)
    mac = hmac.new(secret.encode(), f"{stamp}\nPOST {path}\n".encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={mac}"


def verify(secret: str, header: str | None, path: str, body: bytes, now: float | None = None) -> bool:
    fields = dict(part.partition("=")[::2] for part in (header or "").split(","))
    stamp = fields.get("t", "")
    if not stamp.isdigit() or abs((time.time() if now is None else now) - int(stamp)) > MAX_SKEW:
        return False
    expected = sign(secret, path, body, now=int(stamp))
    return hmac.compare_digest(expected, f"t={stamp},v1={fields.get('v1', '')}")


class PeerUnreachable(Exception):
    """The peer did not answer in time, refused, or answered with an error."""


class Peer:
    """One other node, reached over a kept-alive connection per thread."""

    def __init__(self, name: str, address: str, secret: str, strategy: str):
        self.name = name
        self.host, _, port = address.rpartition(":")
        self.port = int(port)
        self.secret = secret
        self.strategy = strategy
        self._local = threading.local()

    def call(self, verb: str, payload: dict, timeout: float) -> dict:
        path = f"{PREFIX}/{self.strategy}/{verb}"
        body = json.dumps(payload, separators=(",", ":")).encode()
        for attempt in (1, 2):
            reused = getattr(getattr(self._local, "conn", None), "sock", None) is not None
            try:
                conn = self._connection(timeout)
                conn.request("POST", path, body, {"Content-Type": "application/json",
                                                  SIGNATURE: sign(self.secret, path, body)})
                answer = conn.getresponse()
                data = answer.read()
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                # A kept-alive connection the peer had closed fails at once: once more on a fresh one. A
                # timeout is not retried, so a frozen peer costs one timeout, not two.
                if attempt == 1 and reused and not isinstance(exc, TimeoutError):
                    continue
                raise PeerUnreachable(f"{self.name}: {exc.__class__.__name__} {exc}") from None
            if answer.status != 200:
                raise PeerUnreachable(f"{self.name} answered {answer.status}: {data[:200]!r}")
            try:
                found = json.loads(data)
            except ValueError:
                found = None
            if not isinstance(found, dict):
                raise PeerUnreachable(f"{self.name} answered no JSON object")
            return found
        raise AssertionError("unreachable")

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.sock is None:  # none yet, or http.client closed it (the peer said Connection: close)
            conn = http.client.HTTPConnection(self.host, self.port, timeout=min(CONNECT_TIMEOUT, timeout))
            conn.connect()
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._local.conn = conn
        conn.sock.settimeout(timeout)
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            conn.close()


bp = Blueprint("replication", __name__, url_prefix=PREFIX)


@bp.post("/<name>/<verb>")
def receive(name: str, verb: str):
    settings = current_app.config["SETTINGS"]
    strategy = current_app.extensions["session_lab.strategies"].get(name)
    if not settings.replication_secret or strategy is None or not strategy.node_replica or verb not in VERBS:
        raise ApiError(f"no replication endpoint {request.path}", status=404, code="not_found")
    request.max_content_length = MAX_MESSAGE_BYTES
    body = request.get_data(cache=False)
    if not verify(settings.replication_secret, request.headers.get(SIGNATURE), request.path, body):
        raise ApiError("missing, stale or wrong replication signature", status=403, code="bad_signature")
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if not isinstance(payload, dict) or not isinstance(payload.get("from"), str):
        raise ApiError("a replication message is a JSON object naming its sender in `from`", code="malformed_message")
    strategy.start()
    return jsonify(getattr(strategy, f"on_{verb}")(payload))
