"""The session oracle's verdicts, one per way a session can go wrong."""

from loadtest.users.oracle import ERROR, FOREIGN, OK, SESSION_LOST, WRITES_LOST, Expectation


def cart(user, items, version=None):
    return {"user": user, "items": items, "version": len(items) if version is None else version}


def alice_with(*items):
    e = Expectation("alice")
    assert e.login(200, cart("alice", [])).outcome == OK
    for i, item in enumerate(items):
        assert e.add(200, cart("alice", list(items[: i + 1])), item).outcome == OK
    return e


def test_exact_cart_is_ok():
    assert alice_with("a", "b").read(200, cart("alice", ["a", "b"])).outcome == OK


def test_401_is_a_lost_session():
    assert alice_with("a").read(401, {"error": "unauthorized", "message": "unknown session"}).outcome == SESSION_LOST


def test_a_200_with_an_empty_cart_is_lost_writes_counted_once():
    e = alice_with("a", "b")
    verdict = e.read(200, cart("alice", []))
    assert verdict.outcome == WRITES_LOST and verdict.lost_items == 2
    assert e.read(200, cart("alice", [])).outcome == OK  # the server's cart is the truth from here on


def test_an_acknowledging_answer_without_the_item_is_a_lost_write():
    e = alice_with("a")
    verdict = e.add(200, cart("alice", ["a"]), "b")
    assert verdict.outcome == WRITES_LOST and verdict.lost_items == 1


def test_another_users_items_or_name_are_foreign():
    assert alice_with("a").read(200, cart("alice", ["a", "mallory-1"])).outcome == FOREIGN
    assert alice_with("a").read(200, cart("bob", ["a"])).outcome == FOREIGN
    assert Expectation("alice").login(200, cart("alice", ["left-over"])).outcome == FOREIGN


def test_own_items_back_after_a_rollback_are_no_stranger_s():
    """Seen in the stores suite (replicated-async, round-robin): two nodes each held a version of the session,
    the user's reads alternated between them; the items one lacked were hers, not another user's."""
    e = alice_with("a", "b")
    assert e.read(200, cart("alice", ["a"])).outcome == WRITES_LOST  # the older version
    assert e.read(200, cart("alice", ["a", "b"])).outcome == OK  # the newer one: her own "b" again
    assert e.read(200, cart("alice", ["a", "b", "mallory-1"])).outcome == FOREIGN  # a stranger's, still


def test_an_add_that_errored_may_or_may_not_have_landed():
    e = alice_with("a")
    assert e.add(504, {"error": "gateway_timeout"}, "b").outcome == ERROR
    assert e.read(200, cart("alice", ["a", "b"])).outcome == OK  # it landed after all: no leak
    e2 = alice_with("a")
    e2.add(0, None, "b")
    assert e2.read(200, cart("alice", ["a"])).outcome == OK  # it never landed: nothing acknowledged was lost


def test_errors():
    e = alice_with("a")
    assert e.read(503, {"error": "store_unavailable"}).outcome == ERROR
    assert e.read(0, None).outcome == ERROR
    assert e.read(200, None).outcome == ERROR  # a 200 without a JSON cart


def test_stateless_baseline():
    e = Expectation("alice", keeps_state=False)
    assert e.login(200, cart("alice", [])).outcome == OK
    assert e.add(200, cart(None, ["x"]), "x").outcome == OK
    assert e.read(200, cart(None, [])).outcome == OK
    assert e.read(200, cart(None, ["x"])).outcome == FOREIGN


def test_one_add_applied_twice_is_a_duplicate_not_a_leak():
    from loadtest.users.oracle import DUPLICATE

    assert alice_with("a").read(200, cart("alice", ["a", "a"])).outcome == DUPLICATE


def test_a_replayed_credential_after_logout():
    from loadtest.users.oracle import NOT_REVOKED

    e = Expectation("alice")
    assert e.logout(200, {"logged_out": True}).outcome == OK
    assert e.replay_after_logout(401, {"error": "unauthorized", "message": "revoked"}, revocable=True).outcome == OK
    assert e.replay_after_logout(200, {"user": "alice", "items": []}, revocable=True).outcome == NOT_REVOKED
    assert e.replay_after_logout(200, {"user": "alice", "items": []}, revocable=False).outcome == OK
    assert e.replay_after_logout(503, {"error": "store_unavailable"}, revocable=True).outcome == ERROR


def test_a_logout_refused_by_a_node_without_the_session_is_the_session_out_of_reach():
    e = Expectation("alice")
    refused = {"error": "session_not_here", "message": "app2 holds no memory session with this id",
               "logged_out": False}
    assert e.logout(409, refused).outcome == SESSION_LOST
    assert e.logout(409, {"error": "cart_full", "message": "full"}).outcome == ERROR
