"""Session Lab's app node: one Flask app serving every session strategy under /api/<strategy>/."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from flask import Flask, g
from werkzeug.middleware.proxy_fix import ProxyFix

from . import api, deadline, demo, errors, health, lab, strategies
from .config import Settings
from .limits import RESPONSE_HEADERS_MAX, header_block_bytes
from .replication import channel

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024  # the largest legitimate body is a short JSON object


def create_app(settings: Settings | None = None, clock: Callable[[], float] = time.time) -> Flask:
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config.update(
        SETTINGS=settings,
        NODE_NAME=settings.node_name,
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
    )
    app.json.sort_keys = False
    # One hop: nginx. Trust its X-Forwarded-For/-Proto so logs and Secure cookies see the real client.
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1)
    app.extensions["session_lab.strategies"] = strategies.build_all(settings, clock=clock)
    for strategy in app.extensions["session_lab.strategies"].values():
        strategy.init_app(app)

    errors.init_app(app)
    deadline_hooks(app, settings.request_deadline)  # first, so every store call of the request keeps to it
    app.register_blueprint(api.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(lab.bp)
    app.register_blueprint(demo.bp)
    app.register_blueprint(channel.bp)

    @app.before_request
    def _start_background_work():
        for strategy in app.extensions["session_lab.strategies"].values():
            strategy.start()

    @app.after_request
    def _served_by(response):
        response.headers["X-Served-By"] = settings.node_name
        response.headers.setdefault("Cache-Control", "no-store")
        size = header_block_bytes(response.status, response.headers.items())
        if size > RESPONSE_HEADERS_MAX:
            # Unreachable unless a strategy breaks the credential budget: an answer this large would make
            # nginx mark this node failed for every user (limits.py), so it never leaves the node.
            log.error("refused to send a %d-byte header block (budget %d)", size, RESPONSE_HEADERS_MAX)
            response = errors.error_body("response_too_large", "the answer would not fit the balancer's buffer; "
                                         "nothing was sent (a bug: see the node's log)", 500)
            response.headers["X-Served-By"] = settings.node_name
        return response

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return app



def deadline_hooks(app: Flask, seconds: float) -> None:
    """Start one deadline when a request arrives (deadline.py) and end it with the request: gunicorn's
    threads serve one request after another, so none may inherit the previous one's."""

    @app.before_request
    def _start_deadline():
        g.deadline_token = deadline.start(seconds)

    @app.teardown_request
    def _end_deadline(_exc):
        token = g.pop("deadline_token", None)
        if token is not None:
            deadline.clear(token)
