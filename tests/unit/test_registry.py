from session_lab import strategies


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
    from session_lab import create_app

    listed = create_app(settings).test_client().get("/api/strategies").get_json()["strategies"]
    assert [s["name"] for s in listed] == strategies.names()
