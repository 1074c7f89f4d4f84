"""A real nginx running the project's balancer config, in front of three scriptable upstream nodes that can be
stopped (their connections refused, as a killed container's are).

The config is rendered the way loadbalancer/entrypoint.sh renders it (render-mode.sh, render-limits.sh,
render-client.sh);
only what must differ on a host is rewritten: include paths, pid file, listen port, temp paths and, when run
as root, the workers' user.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from session_lab.limits import header_block_bytes

ROOT = Path(__file__).resolve().parents[2]
LB = ROOT / "loadbalancer"
NGINX_CONF = LB / "nginx.conf"
NODE_NAMES = ("app1", "app2", "app3")
PROXY_SECRET = "integration-test-proxy-secret-0123456789"  # LB_PROXY_SECRET, as `make env` makes one
MODES = tuple(sorted(template.stem for template in (LB / "modes").glob("*.conf")))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nginx_size(value: str) -> int:
    """An nginx size ("16k", "1m", "512") in bytes."""
    number, unit = re.fullmatch(r"(\d+)([kKmM]?)", value).groups()
    return int(number) * {"": 1, "k": 1024, "m": 1024 * 1024}[unit.lower()]


def directive(name: str, text: str | None = None) -> list[str]:
    """The arguments of the one `name ...;` directive in nginx.conf."""
    text = NGINX_CONF.read_text() if text is None else text
    found = re.findall(rf"^\s*{name}\s+([^;]+);", text, re.MULTILINE)
    assert len(found) == 1, f"expected one `{name}` in {NGINX_CONF}, found {found}"
    return found[0].split()


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @classmethod
    def parse(cls, raw: bytes) -> Reply:
        """One HTTP/1.x answer as send_raw returns it (status line, headers, the body up to the hang-up)."""
        head, separator, body = raw.partition(b"\r\n\r\n")
        assert separator and head.startswith(b"HTTP/1."), f"not an HTTP/1.x answer: {raw[:200]!r}"
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
        return cls(int(status_line.split(" ")[1]), headers, body)


@dataclass(frozen=True)
class Seen:
    """One request as a node received it."""

    method: str
    path: str
    body: bytes
    request_id: str = ""  # the X-Request-Id nginx sent with it
    headers: dict[str, str] = field(default_factory=dict, compare=False)  # names lower-cased


# --- upstream nodes ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """What a node does with one request: kind is ok, status, headers, close, hang, malformed or relay."""

    kind: str = "ok"
    status: int = 200
    header_block: int = 0  # for kind=headers: the whole header block, as header_block_bytes counts it
    target: str = ""  # for kind=relay: host:port of a real node that gets the request; its answer is lost


def wire_head(status: int, headers: list[tuple[str, str]]) -> bytes:
    status_text = f"{status} {HTTPStatus(status).phrase}"
    head = f"HTTP/1.1 {status_text}\r\n" + "".join(f"{n}: {v}\r\n" for n, v in headers) + "\r\n"
    # The app's own measure must be the bytes on the wire, or the budget would mean nothing.
    assert len(head) == header_block_bytes(status_text, headers)
    return head.encode("latin-1")


def padded(status: int, headers: list[tuple[str, str]], total: int) -> list[tuple[str, str]]:
    """headers plus an X-Padding header that brings the header block to exactly `total` bytes."""
    pad = total - header_block_bytes(f"{status} {HTTPStatus(status).phrase}", [*headers, ("X-Padding", "")])
    assert pad >= 0, f"cannot pad the header block down to {total} bytes"
    return [*headers, ("X-Padding", "p" * pad)]


def malformed_answer(name: str) -> bytes:
    """An answer whose status line is broken ("2OO": letters, not digits) and the rest well formed."""
    body = b'{"node":"%s"}\n' % name.encode()
    return b"HTTP/1.1 2OO OK\r\nX-Served-By: %s\r\nContent-Length: %d\r\n\r\n%s" % (name.encode(), len(body), body)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like gunicorn behind nginx's `keepalive` pool
    timeout = 10  # an idle keep-alive connection ends its thread after this

    def setup(self):
        super().setup()
        self.server.node.connected(self.connection)

    def finish(self):
        self.server.node.disconnected(self.connection)
        super().finish()

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.server.node.serve(self)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def log_message(self, *args):
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # nginx resets a connection it gives up on (a too big header): expected, not worth a traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class Node:
    """One upstream: answers 200 JSON naming itself in X-Served-By, unless told otherwise for its next request."""

    def __init__(self, name: str):
        self.name = name
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.node = self
        self.address = "127.0.0.1:%d" % self.server.server_address[1]
        self.seen: list[Seen] = []  # requests that reached this node, whatever it did with them
        self.last_headers: dict[str, str] = {}  # what it last sent, to compare with what the client got
        self._next: deque[Answer] = deque()
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05})

    @property
    def received(self) -> int:
        return len(self.seen)

    def start(self) -> None:
        self._thread.start()

    def connected(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.add(connection)

    def disconnected(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.discard(connection)

    def stop(self) -> None:
        """Down like a killed process: new connections refused, and the ones nginx keeps alive cut too (a
        node that only stopped listening would go on answering on them)."""
        if self._stopping.is_set():
            return
        self._stopping.set()  # ends a hang too
        self.server.shutdown()
        self.server.server_close()
        with self._lock:
            open_connections = list(self._connections)
        for connection in open_connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed from the other side
        self._thread.join(timeout=5)

    def once(self, answer: Answer) -> None:
        """Use `answer` for the next request that reaches this node, then go back to 200."""
        with self._lock:
            self._next.append(answer)

    def serve(self, handler: BaseHTTPRequestHandler) -> None:
        # Read the whole body first: what is left unread would be taken for the next request on the connection.
        body_in = handler.rfile.read(int(handler.headers.get("Content-Length", 0)))
        with self._lock:
            self.seen.append(Seen(handler.command, handler.path, body_in, handler.headers.get("X-Request-Id", ""),
                                  {k.lower(): v for k, v in handler.headers.items()}))
            answer = self._next.popleft() if self._next else Answer()
        if answer.kind == "close":  # read the request, then hang up without a byte
            handler.close_connection = True
            return
        if answer.kind == "relay":  # a real node applies the request, then the answer never reaches nginx
            relay(answer.target, handler, body_in)
            handler.close_connection = True
            return
        if answer.kind == "hang":  # read the request, then say nothing, like a frozen process, until stopped
            self._stopping.wait(timeout=30)
            handler.close_connection = True
            return
        body = b'{"node":"%s"}\n' % self.name.encode()
        if answer.kind == "malformed":
            handler.wfile.write(malformed_answer(self.name))
            handler.close_connection = True  # no usable length, so the end of the answer is the hang-up
            return
        if answer.kind == "status":
            body = b'{"error":"node_error","node":"%s"}\n' % self.name.encode()
        headers = [("X-Served-By", self.name), ("Content-Type", "application/json"),
                   ("Content-Length", str(len(body)))]
        if answer.kind == "headers":
            headers = padded(answer.status, headers, answer.header_block)
        self.last_headers = dict(headers)
        handler.wfile.write(wire_head(answer.status, headers) + body)


def relay(target: str, handler: BaseHTTPRequestHandler, body: bytes) -> None:
    """Send the request as nginx sent it (its X-Request-Id too) to `target`, and read the whole answer."""
    host, _, port = target.rpartition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        headers = {name: value for name, value in handler.headers.items()
                   if name.lower() not in ("host", "connection", "content-length")}
        conn.request(handler.command, handler.path, body=body, headers=headers)
        conn.getresponse().read()
    finally:
        conn.close()


# --- nginx --------------------------------------------------------------------------------------------------


def _replace_once(text: str, old: str, new: str) -> str:
    # Exactly once: if nginx.conf changes shape, this fails loudly instead of testing a different config.
    assert text.count(old) == 1, f"expected `{old}` once in {NGINX_CONF}"
    return text.replace(old, new)


def host_config(text: str, tmp: Path, port: int) -> str:
    """nginx.conf as it must be on this host: files under tmp, a free loopback port, nothing under /var."""
    text = text.replace("/etc/session-lab/", f"{tmp}/")
    text = _replace_once(text, "pid /run/nginx.pid;", f"pid {tmp}/nginx.pid;\nlock_file {tmp}/nginx.lock;")
    text = _replace_once(text, "listen 8080;", f"listen 127.0.0.1:{port};")
    # The compiled-in temp paths are under /var/lib/nginx; nginx creates them at start even when unused.
    temp = "".join(f"    {kind}_temp_path {tmp}/{kind}_temp;\n"
                   for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    if os.geteuid() == 0:
        # Started as root, nginx runs its workers as an unprivileged user, who cannot enter pytest's tmp (0700)
        # to spool a request body past client_body_buffer_size (a 500): keep them root, on loopback only.
        text = _replace_once(text, "worker_processes auto;", "user root;\nworker_processes auto;")
    return _replace_once(text, "http {\n", "http {\n" + temp)


def render_mode(mode: str, app_nodes: str) -> str:
    """upstreams.conf for `mode`, as render-mode.sh writes it from APP_NODES ("name=host:port ...")."""
    env = {**os.environ, "APP_NODES": app_nodes}
    done = subprocess.run(["sh", str(LB / "render-mode.sh"), mode], env=env,
                          check=True, capture_output=True, text=True, timeout=30)
    return done.stdout


class Balancer:
    """The project's nginx config, rendered in one routing mode over `nodes`, run by the host's nginx."""

    def __init__(self, tmp: Path, nodes: list[Node], mode: str = "round-robin", trusted_proxy: str = "",
                 login_limit: tuple[str, str] = ("1000r/s", "1000")):
        self.tmp, self.nodes, self.mode, self.trusted_proxy = tmp, nodes, mode, trusted_proxy
        self.login_limit = login_limit  # LOGIN_RATE_LIMIT, LOGIN_BURST
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.log_path = tmp / "error.log"

    def render(self) -> None:
        for snippet in ("proxy.conf", "security-headers.conf"):  # what nginx.conf includes from beside itself
            (self.tmp / snippet).write_text((LB / snippet).read_text().replace("/etc/session-lab/", f"{self.tmp}/"))
        app_nodes = " ".join(f"{n.name}={n.address}" for n in self.nodes)
        (self.tmp / "upstreams.conf").write_text(render_mode(self.mode, app_nodes))
        rate, burst = self.login_limit
        env = {**os.environ, "LOGIN_RATE_LIMIT": rate, "LOGIN_BURST": burst, "LB_PROXY_SECRET": PROXY_SECRET,
               "LB_TRUSTED_PROXY": self.trusted_proxy}
        for script in ("render-limits.sh", "render-client.sh"):
            subprocess.run(["sh", str(LB / script), str(self.tmp)], env=env, check=True, timeout=30)
        (self.tmp / "nginx.conf").write_text(host_config(NGINX_CONF.read_text(), self.tmp, self.port))

    def nginx(self, *args: str) -> list[str]:
        """The command line that runs the host's nginx on the rendered config, with `args` added."""
        return [shutil.which("nginx"), "-p", f"{self.tmp}/", "-c", str(self.tmp / "nginx.conf"), "-e", "stderr", *args]

    def check_config(self) -> subprocess.CompletedProcess:
        """`nginx -t` on the rendered config, as switch-mode.sh checks a mode before it reloads."""
        return subprocess.run(self.nginx("-t", "-q"), check=False, capture_output=True, text=True, timeout=30)

    def start(self) -> None:
        self.render()
        with open(self.log_path, "wb") as log:  # nginx's error log goes to stderr (error_log stderr warn)
            self.process = subprocess.Popen(self.nginx("-g", "daemon off;"), stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.process.returncode}:\n{self.log()}")
            try:
                if self.get("/nginx-health").status == 200:
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"nginx did not answer /nginx-health within 10 s:\n{self.log()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: nginx's fast shutdown, its own pid only
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def request(self, method: str, path: str = "/", body: bytes | None = None,
                headers: dict[str, str] | None = None) -> Reply:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return Reply(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
        finally:
            conn.close()

    def get(self, path: str = "/", headers: dict[str, str] | None = None) -> Reply:
        return self.request("GET", path, headers=headers)

    def get_raw(self, path: str = "/") -> bytes:
        """Everything nginx sends back for one GET, unparsed (for answers http.client would refuse)."""
        return self.send_raw(f"GET {path} HTTP/1.1\r\nHost: lb\r\nConnection: close\r\n\r\n".encode())

    def send_raw(self, request: bytes) -> bytes:
        """Everything nginx sends back for `request`, bytes as they are (for requests http.client will not
        write, such as a malformed request line). The request must end the connection: Connection: close,
        or an error after which nginx closes it."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            s.sendall(request)
            data = b""
            for _ in range(1000):  # bounded; nginx closes the connection when it is done
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            return data

    def served_by(self, count: int, headers: dict[str, str] | None = None) -> Counter:
        """Send `count` GETs; how many each node answered (all must be 200)."""
        served = Counter()
        for _ in range(count):
            reply = self.get(headers=headers)
            assert reply.status == 200, (reply.status, reply.body)
            served[reply.headers["x-served-by"]] += 1
        return served
