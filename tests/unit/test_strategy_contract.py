"""Every strategy that keeps state without an outside service, held to the shared contract."""

import pytest

from session_lab import strategies
from tests.strategy_contract import CONTRACT

LOCAL = [c.name for c in strategies.classes() if c.keeps_state and not c.dependencies]


@pytest.mark.parametrize("strategy", LOCAL)
@pytest.mark.parametrize("check", CONTRACT, ids=lambda f: f.__name__)
def test_contract(session_client, clock, settings, strategy, check):
    check(lambda: session_client(strategy), clock, settings)


def test_none_remembers_nothing(session_client):
    c = session_client("none")
    assert c.login("alice").body["user"] == "alice"
    assert c.add("apple").body["items"] == ["apple"]
    seen = c.cart().body
    assert (seen["user"], seen["items"]) == (None, [])
