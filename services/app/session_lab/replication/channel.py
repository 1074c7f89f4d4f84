"""The channel between app nodes: JSON over HTTP on the nodes' own port, signed with REPLICATION_SECRET.

The balancer refuses /internal/ from outside (loadbalancer/nginx.conf), and the nodes' port is published
nowhere; the signature is what a node checks itself, so a request from anywhere else on the network changes
nothing. The design, each rule for an attack or a failure:

- Every message names its sender's process (`from`, `boot`) and a sequence number of that process (`seq`),
  under the signature: a receiver accepts each (sender, boot, seq) once (ReplayGuard), so a message
  replayed within the signature's MAX_SKEW, a state transfer's `begin` above all, changes nothing. Older
  replays fail the signature's time stamp.
- Every answer the sender acts on (disowned sessions, handbacks, a buddy's boot) is signed too, bound to
  the request it answers (path, sender, boot, seq), and checked by the sender: a forged or replayed answer
  counts as no answer.
- One encoding (`encode`): compact JSON in UTF-8, so what a copy weighs is its length in bytes as it
  travels. A message never exceeds MAX_MESSAGE_BYTES: the link batches copies by bytes (link.py) and the
  API refuses a session that could not travel alone (MAX_COPY_BYTES, replicated.py).
- A malformed signature header is a 403 JSON like a wrong one, whatever its characters.
- Copies carry the session's version and the time it was last seen, an end is a tombstone, so a copy sent
  twice after a lost answer changes nothing either.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import itertools
import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field

from flask import Blueprint, current_app, jsonify, request

from ..errors import ApiError

SIGNATURE = "X-Replication-Signature"
PREFIX = "/internal/replication"
MAX_SKEW = 30  # seconds a signature stays valid; the lab's nodes share one host clock
MAX_MESSAGE_BYTES = 1024 * 1024  # what a receiver reads of one message; a larger one is a 413
ENVELOPE_BYTES = 4 * 1024  # room a message keeps for its own fields (sender, boot, seq, transfer: < 300 bytes)
MAX_COPY_BYTES = MAX_MESSAGE_BYTES - ENVELOPE_BYTES  # the largest session that travels in one message, alone
# What one character can weigh in `encode`: printable text is UTF-8, at most 4 bytes (RFC 3629); JSON escapes
# `"` and `\` in 2 and control characters in 6 (`\u001f`); a lone surrogate, which UTF-8 cannot carry, goes
# as a 6-byte `\udXXX` escape (backslashreplace). So 6 bytes per character bounds any string.
MAX_CHAR_BYTES = 6
CONNECT_TIMEOUT = 0.25  # a live node on the lab network accepts in well under a millisecond
REPLAY_WINDOW = 4096  # sequence numbers a receiver remembers per sender: far more than can be in flight at once
_HEADER = re.compile(r"t=([0-9]{1,12}),v1=([0-9a-f]{64})")


def encode(value) -> bytes:
    """The channel's one encoding: compact JSON, non-ASCII as UTF-8 (not 6-12 byte \\u escapes)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "backslashreplace")


def message(fields: dict, **lists: list[bytes]) -> bytes:
    """A JSON object of `fields` and of lists whose elements are encoded already (each weighed once)."""
    head = encode(fields)
    assert head.endswith(b"}") and len(head) > 2, "a message has fields (its sender at least)"
    tail = b"".join(b',"%s":[%s]' % (name.encode(), b",".join(items)) for name, items in lists.items())
    return head[:-1] + tail + b"}"


def sign(secret: str, path: str, body: bytes, now: float | None = None) -> str:
    stamp = int(time.time() if now is None else now)
    mac = hmac.new(secret.encode(), f"{stamp}\nPOST {path}\n".encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={mac}"


def verify(secret: str, header: str | None, path: str, body: bytes, now: float | None = None) -> bool:
    """True for a well-formed, fresh, right signature; False for anything else, never an exception."""
    found = _HEADER.fullmatch(header) if isinstance(header, str) else None
    if found is None:
        return False
    stamp = int(found.group(1))
    if abs((time.time() if now is None else now) - stamp) > MAX_SKEW:
        return False
    return hmac.compare_digest(sign(secret, path, body, now=stamp), header)


def reply_path(path: str, payload: dict) -> str:
    """What an answer's signature binds it to: the request it answers (a request path never holds '#')."""
    return f"{path}#reply/{payload.get('from')}/{payload.get('boot')}/{payload.get('seq')}"


@dataclass
class Sender:
    """This process as the channel names it: every message carries (me, boot, seq), seq never used twice."""
    me: str
    boot: str
    _seq: itertools.count = field(default_factory=lambda: itertools.count(1))

    def stamp(self, payload: dict) -> dict:
        return {**payload, "from": self.me, "boot": self.boot, "seq": next(self._seq)}  # next(): atomic in CPython


@dataclass
class _Window:
    top: int = 0
    seen: set[int] = field(default_factory=set)
    used: float = 0.0


class ReplayGuard:
    """Accepts each (sender, boot, seq) once. Messages of one sender may arrive out of order (one connection
    per thread): a sliding window of REPLAY_WINDOW numbers, as IPsec's anti-replay window (RFC 4303 §3.4.3).
    A sender's boot is forgotten once unused for twice MAX_SKEW: none of its messages can pass the signature's
    time check any more."""

    def __init__(self):
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, str], _Window] = {}

    def accept(self, sender: str, boot: str, seq: int, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._forget_older_than(now - 2 * MAX_SKEW)
            window = self._windows.setdefault((sender, boot), _Window())
            window.used = now
            if seq <= window.top - REPLAY_WINDOW or seq in window.seen:
                return False
            window.seen.add(seq)
            window.top = max(window.top, seq)
            if len(window.seen) > 2 * REPLAY_WINDOW:  # amortised: the set stays within two windows
                window.seen = {s for s in window.seen if s > window.top - REPLAY_WINDOW}
            return True

    def _forget_older_than(self, limit: float) -> None:
        for key in [key for key, window in self._windows.items() if window.used < limit]:
            del self._windows[key]


class PeerUnreachable(Exception):
    """The peer did not answer in time, refused, or answered with an error or an answer it did not sign."""


class Peer:
    """One other node, reached over a kept-alive connection per thread."""

    def __init__(self, name: str, address: str, secret: str, strategy: str, sender: Sender):
        self.name = name
        self.host, _, port = address.rpartition(":")
        self.port = int(port)
        self.secret = secret
        self.strategy = strategy
        self.sender = sender
        self._local = threading.local()

    def call(self, verb: str, payload: dict, timeout: float, **lists: list[bytes]) -> dict:
        """Send `payload` (and lists of encoded elements, see `message`); the peer's signed answer."""
        path = f"{PREFIX}/{self.strategy}/{verb}"
        stamped = self.sender.stamp(payload)
        body = message(stamped, **lists)
        status, headers, data = self._post(path, body, timeout)
        if status != 200:
            raise PeerUnreachable(f"{self.name} answered {status}: {data[:200]!r}")
        if not verify(self.secret, headers.get(SIGNATURE), reply_path(path, stamped), data):
            raise PeerUnreachable(f"{self.name} answered without a valid signature")
        try:
            found = json.loads(data)
        except ValueError:
            found = None
        if not isinstance(found, dict):
            raise PeerUnreachable(f"{self.name} answered no JSON object")
        return found

    def _post(self, path: str, body: bytes, timeout: float) -> tuple[int, http.client.HTTPMessage, bytes]:
        for attempt in (1, 2):
            reused = getattr(getattr(self._local, "conn", None), "sock", None) is not None
            try:
                conn = self._connection(timeout)
                conn.request("POST", path, body, {"Content-Type": "application/json",
                                                  SIGNATURE: sign(self.secret, path, body)})
                answer = conn.getresponse()
                return answer.status, answer.headers, answer.read()
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                # A kept-alive connection the peer had closed fails at once: once more on a fresh one (the
                # same body: the peer never read the first). A timeout is not retried, so a frozen peer
                # costs one timeout, not two.
                if attempt == 1 and reused and not isinstance(exc, TimeoutError):
                    continue
                raise PeerUnreachable(f"{self.name}: {exc.__class__.__name__} {exc}") from None
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
    handler = strategy.channel_handlers().get(verb) if strategy is not None and strategy.node_replica else None
    if not settings.replication_secret or handler is None:
        raise ApiError(f"no replication endpoint {request.path}", status=404, code="not_found")
    request.max_content_length = MAX_MESSAGE_BYTES
    body = request.get_data(cache=False)
    if not verify(settings.replication_secret, request.headers.get(SIGNATURE), request.path, body):
        raise ApiError("missing, stale or wrong replication signature", status=403, code="bad_signature")
    payload = _payload(body)
    if not strategy.replay_guard.accept(payload["from"], payload["boot"], payload["seq"]):
        raise ApiError("this message was received already (a replay)", status=409, code="replayed_message")
    strategy.start()
    response = jsonify(handler(payload))
    response.headers[SIGNATURE] = sign(settings.replication_secret, reply_path(request.path, payload),
                                       response.get_data())
    return response


def _payload(body: bytes) -> dict:
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if (not isinstance(payload, dict) or not isinstance(payload.get("from"), str)
            or not isinstance(payload.get("boot"), str) or type(payload.get("seq")) is not int):
        raise ApiError("a replication message is a JSON object naming its sender in `from`, `boot` and `seq`",
                       code="malformed_message")
    return payload
