"""Liveness and readiness, kept apart on purpose.

/healthz touches nothing but the process, so a Redis outage never makes Docker or nginx think the node
itself is dead. /readyz asks every strategy's dependencies and says which one is down, and how each store's
circuit breaker stands (breaker.py). Its store checks are refreshed by one request at a time, at most once
per CHECKS_MAX_AGE (single_flight.py): a flood of /readyz while a store is paused holds one thread, not all.
The strategies' reports (in memory, never blocking) are fresh on every call.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from .api import strategies
from .breaker import guards_for
from .errors import ApiError
from .single_flight import SingleFlight

bp = Blueprint("health", __name__)

CHECKS_MAX_AGE = 1.0  # seconds; the demo page and the load test poll every second or more


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok", node=current_app.config["NODE_NAME"])


def _checks() -> dict[str, str]:
    checks: dict[str, str] = {}
    for strategy in strategies().values():
        try:
            checks.update(strategy.check_ready())
        except ApiError as err:
            checks[strategy.name] = err.message
    return checks


def _checking() -> dict[str, str]:
    return {"checks": "the first check is still running; ask again in a second"}


@bp.get("/readyz")
def readyz():
    flight = current_app.extensions.setdefault("session_lab.readyz", SingleFlight(CHECKS_MAX_AGE))
    checks, age = flight.get(_checks, _checking)
    ready = all(v == "ok" for v in checks.values())
    reports = {s.name: r for s in strategies().values() if (r := s.report()) is not None}
    guards = guards_for(current_app.config["SETTINGS"])
    response = jsonify(ready=ready, checks=checks, node=current_app.config["NODE_NAME"], details=reports,
                       breakers=guards.states(), refused=guards.refusals(),
                       checks_age_ms=round(age * 1000, 1))
    response.status_code = 200 if ready else 503
    return response
