"""Liveness and readiness, kept apart on purpose.

/healthz touches nothing but the process, so a Redis outage never makes Docker or nginx think the node
itself is dead. /readyz asks every strategy's dependencies and says which one is down.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from .api import strategies
from .errors import ApiError

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok", node=current_app.config["NODE_NAME"])


@bp.get("/readyz")
def readyz():
    checks: dict[str, str] = {}
    for strategy in strategies().values():
        try:
            checks.update(strategy.check_ready())
        except ApiError as err:
            checks[strategy.name] = err.message
    ready = all(v == "ok" for v in checks.values())
    reports = {s.name: r for s in strategies().values() if (r := s.report()) is not None}
    response = jsonify(ready=ready, checks=checks, node=current_app.config["NODE_NAME"], details=reports)
    response.status_code = 200 if ready else 503
    return response
