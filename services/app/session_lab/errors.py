"""Every error leaves the app as JSON: `{"error": <code>, "message": <what went wrong>}`."""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code


class Unauthorized(ApiError):
    """No valid session: missing, malformed, tampered, expired or unknown credentials."""

    status = 401
    code = "unauthorized"


class StoreUnavailable(ApiError):
    """The session store cannot be reached; the session is not lost, just out of reach right now."""

    status = 503
    code = "store_unavailable"

    def __init__(self, message: str, *, retry_after: int | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after  # seconds, sent as Retry-After (RFC 9110 §10.2.3) when known


class CartFull(ApiError):
    """The cart holds MAX_CART_ITEMS already; nothing was added."""

    status = 409
    code = "cart_full"


class OverBudget(ApiError):
    """A client's or a session's budget is spent (too_many_sessions, too_many_adds); nothing was changed."""

    status = 429


class StateTooLarge(ApiError):
    """The client-side state would not fit in a cookie; nothing was changed."""

    status = 413
    code = "state_too_large"


def error_body(code: str, message: str, status: int, **details):
    response = jsonify(error=code, message=message, **details)
    response.status_code = status
    return response


def init_app(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(err: ApiError):
        response = error_body(err.code, err.message, err.status)
        if getattr(err, "retry_after", None) is not None:
            response.headers["Retry-After"] = str(err.retry_after)
        return response

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException):
        code = (err.name or "error").lower().replace(" ", "_")
        return error_body(code, err.description or err.name, err.code or 500)

    @app.errorhandler(Exception)
    def _unexpected(err: Exception):
        log.exception("unhandled error")
        return error_body("internal_error", "unexpected server error; see the node's log", 500)
