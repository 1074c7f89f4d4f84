"""gunicorn settings for one app node. Values come from the environment, with the defaults below."""

import json
import os

from gunicorn import util

bind = f"0.0.0.0:{os.environ.get('APP_PORT', '8000')}"
# One worker process per node, so the `memory` strategy really is one store per node. Several workers
# would each hold their own dict and lose sessions between workers of one node (see docs/strategies.md).
workers = 1
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "16"))
# nginx opens a connection per request (loadbalancer/proxy.conf); a client that keeps one alive (a test,
# another node's replication channel) may, for up to this long.
keepalive = 65
timeout = 30
# On SIGTERM, finish in-flight requests for up to this long; compose's stop_grace_period covers it.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "10"))
# nginx is the gatekeeper for request sizes and answers in JSON (431 over 16k a header line): gunicorn must
# accept everything nginx lets through, or a request nginx passed would get gunicorn's own HTML 400.
# See session_lab/limits.py. 0 = no limit of its own for the request line (nginx bounds it at 16k).
limit_request_line = 0
limit_request_field_size = 32768  # > nginx's 16k per header line
limit_request_fields = 32768  # gunicorn's maximum; nginx's 4 x 16k header block holds fewer lines
# gunicorn 25+ opens a control socket by default; a node is managed by signals and compose, not by it.
control_socket_disable = True
accesslog = "-" if os.environ.get("ACCESS_LOG", "false").lower() == "true" else None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")
# Fail at boot, not on the first request, when settings are wrong: the message names the variable.
preload_app = True


def _json_error(sock, status_int, reason, mesg):
    """gunicorn's own answer to a request it cannot parse (gunicorn 26+ refuses control characters in
    header values, a repeated Content-Type, raw non-ASCII in the path, ...), in JSON like every other error
    of the lab. gunicorn writes HTML and has no setting for it, so its writer is replaced here, before the
    worker forks; tests/e2e/test_bad_input.py checks the answers through nginx."""
    body = json.dumps({"error": reason.lower().replace(" ", "_"), "message": mesg or reason}) + "\n"
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    util.write_nonblock(sock, (head + body).encode("latin-1"))


util.write_error = _json_error
