import dataclasses

import pytest

from session_lab import create_app, strategies
from session_lab.traits import Traits


def test_discovery_finds_every_strategy_module_once():
    assert strategies.names() == ["none", "memory", "replicated", "replicated-async", "redis", "flask-session", "jwt",
                                  "client", "sentinel", "sentinel-wait", "cluster", "cluster-wait"]


def test_every_strategy_describes_itself(settings):
    for strategy in strategies.build_all(settings).values():
        described = strategy.describe()
        assert described["name"] == strategy.name
        assert described["summary"] and described["credential"]


def test_node_local_strategies_need_sticky_and_only_none_keeps_nothing():
    by_name = {cls.name: cls for cls in strategies.classes()}
    assert [n for n, c in by_name.items() if c.needs_sticky] == ["memory", "replicated", "replicated-async"]
    assert [n for n, c in by_name.items() if c.node_replica] == ["replicated", "replicated-async"]
    assert [n for n, c in by_name.items() if not c.keeps_state] == ["none"]


def test_only_the_peer_can_drop_parallel_adds_and_only_client_held_state_keeps_the_last():
    by_name = {cls.name: cls for cls in strategies.classes()}
    assert {c.concurrent_adds for c in by_name.values()} == {"kept", "last-wins", "may-drop"}
    assert [n for n, c in by_name.items() if c.concurrent_adds == "may-drop"] == ["flask-session"]
    assert [n for n, c in by_name.items() if c.concurrent_adds == "last-wins"] == ["jwt", "client"]


def test_the_api_lists_the_registry(settings):
    listed = create_app(settings).test_client().get("/api/strategies").get_json()["strategies"]
    assert [s["name"] for s in listed] == strategies.names()


LISTED_KEYS = ["name", "summary", "keeps_state", "needs_sticky", "credential", "dependencies", "revocable",
               "revocation_via", "confirms_writes", "node_replica", "refreshes_every_use", "concurrent_adds",
               "transport"]


def test_the_listing_is_each_strategys_traits_and_reads_back_as_the_same_value(settings):
    listed = create_app(settings).test_client().get("/api/strategies").get_json()["strategies"]
    for cls, entry in zip(strategies.classes(), listed, strict=True):
        assert list(entry) == LISTED_KEYS  # what the demo page, the bench and the e2e tests read
        assert entry == cls.traits.to_json()
        assert Traits.from_json(entry) == cls.traits
        assert entry["credential"] == cls.credential == cls.traits.transport.prose()


def test_the_traits_read_as_class_attributes_and_cannot_change():
    memory = dict((c.name, c) for c in strategies.classes())["memory"]
    assert memory.needs_sticky and memory.keeps_state and memory.dependencies == ()
    with pytest.raises(dataclasses.FrozenInstanceError):
        memory.traits.needs_sticky = False


def test_the_credential_in_words_is_the_transport_a_client_follows():
    by_name = {cls.name: cls.traits for cls in strategies.classes()}
    assert by_name["none"].credential == "nothing"
    assert by_name["cluster"].credential == "cookie sl_cluster"
    assert by_name["jwt"].credential == "Authorization: Bearer <token> (token returned in the JSON field `token`)"
    assert by_name["client"].credential == ("cookie sl_client or header X-Client-Session (returned in the cookie and "
                                            "in the JSON field `client_session`)")
    server_side = [n for n, t in by_name.items() if t.keeps_state and not t.transport.body_field]
    for name in server_side:  # the cookie that holds the id is the one the client is told about
        assert by_name[name].transport.cookie == next(c for c in strategies.classes() if c.name == name).session_cookie
