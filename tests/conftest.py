"""Fixtures shared by every test layer: settings built from a dict, and a clock the test can move."""

from __future__ import annotations

import base64
import os
import time

import pytest

from session_lab.config import Settings

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
SESSION_STARTED = time.time()  # this pytest run's start: what a test finds newer was made by this run


def require(condition: bool, why: str) -> None:
    """Skip locally when a service is missing, but fail under CI=true: a skipped test there hides a gap."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{why} (CI=true: this is a failure, not a skip)")
    pytest.skip(why)  # only outside CI: under CI=true the line above failed the test


def settings_env(**overrides: str) -> dict[str, str]:
    env = {
        "APP_ENV": "production",
        "NODE_NAME": "test-node",
        "REDIS_HOST": "127.0.0.1",
        "REDIS_PORT": "1",  # nothing listens there: unit tests must not need Redis
        # The strategy families' Redis users (config.STORE_USERS); the admin's REDIS_PASSWORD is not the app's.
        "REDIS_CART_PASSWORD": "unit-test-redis-cart-password",
        "JWT_REVOCATION_PASSWORD": "unit-test-jwt-revocation-password",
        "FLASK_SESSION_PASSWORD": "unit-test-flask-session-password",
        "SENTINEL_CART_PASSWORD": "unit-test-sentinel-cart-password",
        "CLUSTER_CART_PASSWORD": "unit-test-cluster-cart-password",
        "JWT_KEYS": "unit-k1:unit-test-jwt-secret-that-is-long-enough-0123456789",
        "JWT_REVOCATION_SYNC": "false",  # unit tests: this node's denylist only, no Redis
        "CLIENT_SESSION_KEY": base64.urlsafe_b64encode(b"k" * 32).decode().rstrip("="),
        "REDIS_CONNECT_TIMEOUT": "0.2",
        "REDIS_SOCKET_TIMEOUT": "0.2",
        "SENTINEL_ADDRESSES": "127.0.0.1:1",
        "CLUSTER_NODES": "127.0.0.1:1",
        "STORE_RETRY_BUDGET": "0.3",
    }
    env.update(overrides)
    return env


class FakeClock:
    def __init__(self, start: float = 1_800_000_000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_settings():
    def build(**overrides: str) -> Settings:
        return Settings.from_env(settings_env(**overrides))

    return build


@pytest.fixture
def settings(make_settings) -> Settings:
    return make_settings(SESSION_IDLE_TIMEOUT="60", SESSION_ABSOLUTE_TIMEOUT="300", MAX_CART_ITEMS="5")


def flask_sender(app):
    """A `send` for SessionClient over Flask's test client; each call gets a fresh cookie jar."""
    from tests.session_client import Reply

    client = app.test_client()

    def send(method, path, headers=None, json=None):
        r = client.open(path, method=method, headers=headers, json=json)
        return Reply(r.status_code, r.get_json(silent=True), {k.lower(): v for k, v in r.headers.items()})

    return send


@pytest.fixture
def app(settings, clock):
    from session_lab import create_app

    return create_app(settings, clock=clock)


@pytest.fixture
def session_client(app):
    """session_client("jwt") -> a SessionClient for that strategy with its own cookie jar."""
    from tests.session_client import SessionClient

    return lambda strategy: SessionClient(strategy, flask_sender(app))


# The browser fixtures, here once for both browser layers (tests/integration/browser, tests/e2e/browser): one
# Playwright instance per test session, since a second sync_playwright() beside a running one fails. Last,
# because browser_support imports `require` from this module.
from tests.browser_support import browser, page  # noqa: E402, F401
