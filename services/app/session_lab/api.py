"""The one API shape every strategy shares: /api/<strategy>/login, /cart, /logout."""

from __future__ import annotations

import re

from flask import Blueprint, Response, current_app, jsonify, request

from .errors import ApiError, StateTooLarge, error_body
from .limits import CREDENTIAL_MAX_BYTES, IDEMPOTENCY_KEY_MAX_CHARS
from .strategies import Session, Strategy

bp = Blueprint("api", __name__, url_prefix="/api")

IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = IDEMPOTENCY_KEY_MAX_CHARS
# nginx's $request_id (proxy.conf sets the header, replacing whatever a client sent): 16 random bytes in hex,
# the same on every upstream attempt of one client request.
REQUEST_ID_HEADER = "X-Request-Id"
REQUEST_ID = re.compile(r"[0-9a-f]{32}")


def strategies() -> dict[str, Strategy]:
    return current_app.extensions["session_lab.strategies"]


def _strategy(name: str) -> Strategy:
    found = strategies().get(name)
    if found is None:
        raise ApiError(
            f"unknown strategy {name!r}; choose one of {', '.join(strategies())}",
            status=404,
            code="unknown_strategy",
        )
    return found


def _json_object() -> dict:
    """The request's JSON object body. Every state-changing POST requires one: a cross-site HTML form can send
    only text/plain, form-urlencoded or multipart without the page's consent (a JSON Content-Type needs a CORS
    preflight, which this API never grants), so no other site can log a user in, add or log out for them."""
    if not request.is_json:
        raise ApiError("send a JSON body with Content-Type: application/json", status=415,
                       code="unsupported_media_type")
    body = request.get_json(silent=True)
    if body is None:
        raise ApiError("the request body is not valid JSON", code="malformed_json")
    if not isinstance(body, dict):
        raise ApiError("the JSON body must be an object", code="malformed_json")
    return body


def _text_field(field: str, limit: int) -> str:
    """A required JSON string field of printable characters, 1..limit long."""
    body = _json_object()
    if field not in body:
        raise ApiError(f"missing field {field!r}", code="missing_field")
    value = body[field]
    if not isinstance(value, str):
        raise ApiError(f"field {field!r} must be a string", code="invalid_field")
    if not value or not value.isprintable() or value != value.strip():
        raise ApiError(f"field {field!r} must be printable text without surrounding spaces", code="invalid_field")
    if len(value) > limit:
        raise ApiError(f"field {field!r} is longer than {limit} characters", status=413, code="field_too_long")
    return value


def _idempotency_key() -> str | None:
    """The add's operation key. The client's Idempotency-Key (optional) makes its own retries exactly-once;
    without one, nginx's request id makes nginx's retries exactly-once: it replays an add whose node froze or
    died on another node with the same id, so the add is applied once even if the first node applied it."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        request_id = request.headers.get(REQUEST_ID_HEADER, "")
        return f"rid:{request_id}" if REQUEST_ID.fullmatch(request_id) else None
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable() or key != key.strip():
        raise ApiError(f"{IDEMPOTENCY_HEADER} must be 1 to {MAX_KEY_LENGTH} printable characters",
                       code="invalid_idempotency_key")
    return key


def _state(strategy: Strategy, session: Session, status: int = 200) -> Response:
    body = {**session.as_dict(), "strategy": strategy.name, "node": current_app.config["NODE_NAME"]}
    response = current_app.response_class(status=status, mimetype="application/json")
    credential = strategy.issue(session, body, response)  # may set a cookie, or add a token to the body
    if credential is not None and len(credential) > CREDENTIAL_MAX_BYTES:
        # Only a credential that carries the state itself (jwt, client) can grow; such a strategy stores
        # nothing, so refusing here leaves the client's previous credential valid and the cart unchanged.
        raise StateTooLarge(
            f"the {strategy.name} credential would be {len(credential)} bytes, over the {CREDENTIAL_MAX_BYTES}-byte "
            "budget every layer accepts; nothing was changed"
        )
    if credential is not None:
        # An HttpOnly cookie is out of a page's reach, so the answer says how large the credential is.
        body["credential_bytes"] = len(credential.encode())
    response.set_data(current_app.json.dumps(body))
    return response


@bp.get("/strategies")
def list_strategies():
    return jsonify(strategies=[s.describe() for s in strategies().values()])


@bp.post("/<name>/login")
def login(name: str):
    strategy = _strategy(name)
    user = _text_field("user", current_app.config["SETTINGS"].max_user_length)
    # A login always starts a new session id; a session the client still carried is dropped first
    # (no session fixation through a pre-login id).
    strategy.end(request)
    return _state(strategy, strategy.login(user))


@bp.get("/<name>/cart")
def read_cart(name: str):
    strategy = _strategy(name)
    return _state(strategy, strategy.current(request))


@bp.post("/<name>/cart")
def add_to_cart(name: str):
    strategy = _strategy(name)
    item = _text_field("item", current_app.config["SETTINGS"].max_item_length)
    key = _idempotency_key()
    session = strategy.current(request)
    return _state(strategy, strategy.add_item(session, item, key))


@bp.post("/<name>/logout")
def logout(name: str):
    strategy = _strategy(name)
    _json_object()  # `{}` will do; its Content-Type is what a cross-site form cannot send
    node = current_app.config["NODE_NAME"]
    if not strategy.log_out(request):
        # The session may live on in another node's memory: saying "logged out" would be a lie, and dropping
        # the client's cookie would leave the session alive with nobody able to end it.
        return error_body("session_not_here",
                          f"{node} holds no {strategy.name} session with this id, so it could not end it: it may live "
                          "on another node (node-local sessions end only where they are held), or have expired",
                          409, logged_out=False, strategy=strategy.name, node=node)
    response = jsonify(logged_out=True, strategy=strategy.name, node=node)
    strategy.clear_credential(response)
    return response

