"""The replicated strategies across three real app nodes (gunicorn on loopback), killed and restarted for
real: what the buddy serves, what it adopts, what a returning node gets back, and what the channel refuses."""

from __future__ import annotations

import itertools
import json

import pytest

from session_lab.replication.channel import SIGNATURE, sign
from tests.integration.app_nodes import Ring
from tests.integration.topologies import wait_until

SYNC, ASYNC = "replicated", "replicated-async"


@pytest.fixture
def ring(tmp_path):
    nodes = Ring(tmp_path).start()
    for node in nodes.nodes.values():  # nodes started one by one: the first saw its buddy down at boot
        for strategy in (SYNC, ASYNC):
            wait_until(lambda: node.report(strategy)["buddy"]["state"] == "up", f"{node.name} sees its buddy", 10)
    yield nodes
    nodes.stop()


def login(node, strategy: str, user: str) -> str:
    status, body, headers = node.request("POST", f"/api/{strategy}/login", {"user": user})
    assert status == 200, body
    return headers["Set-Cookie"].split(";")[0]


def add(node, strategy: str, cookie: str, item: str) -> dict:
    status, body, _ = node.request("POST", f"/api/{strategy}/cart", {"item": item}, cookie,
                                   {"Idempotency-Key": item})
    assert status == 200, body
    return body


def cart(node, strategy: str, cookie: str) -> tuple[int, dict]:
    status, body, _ = node.request("GET", f"/api/{strategy}/cart", cookie=cookie)
    return status, body


def copied(node, strategy: str, count: int):
    return lambda: node.report(strategy)["copies"] >= count


@pytest.mark.parametrize("strategy", [SYNC, ASYNC])
def test_the_buddy_serves_a_killed_owners_users_and_a_second_death_loses_nothing(ring, strategy):
    cookie = login(ring["app1"], strategy, "ada")
    for item in ("tea", "jam", "bread"):
        add(ring["app1"], strategy, cookie, item)
    if strategy == SYNC:  # acknowledged means copied: nothing to wait for
        assert ring["app2"].report(strategy)["copies"] == 1
    wait_until(lambda: cart_on_buddy_has(ring, strategy), "the copy on app2 holds the three items", 5)
    ring["app1"].kill()

    status, body = cart(ring["app2"], strategy, cookie)
    assert status == 200 and body["items"] == ["tea", "jam", "bread"] and body["node"] == "app2"
    assert ring["app2"].report(strategy)["adopted"] == 1
    add(ring["app2"], strategy, cookie, "milk")
    # app2 copied what it adopted to its own buddy, app3: app2 dying next loses nothing.
    wait_until(lambda: ring["app3"].report(strategy)["copies"] == 1, "app3 holds a copy", 5)
    ring["app2"].kill()
    status, body = cart(ring["app3"], strategy, cookie)
    assert status == 200 and body["items"] == ["tea", "jam", "bread", "milk"]


def cart_on_buddy_has(ring, strategy):
    """app2 holds the copy, and app1's buddy link has had all four changes (the login, three adds) answered:
    the async link ships each after its answer, so a copy that merely exists may still lack the last items
    (app1 killed then, app2 served ['tea'] once on a loaded host)."""
    return ring["app1"].report(strategy)["buddy"]["copied"] >= 4 and ring["app2"].report(strategy)["copies"] == 1


def test_while_the_owner_answers_another_node_refuses_the_session(ring):
    cookie = login(ring["app1"], SYNC, "bob")
    add(ring["app1"], SYNC, cookie, "tea")
    for other in ("app2", "app3"):  # app2 holds the copy, app3 nothing: both 401, as memory does
        status, body = cart(ring[other], SYNC, cookie)
        assert status == 401 and body["error"] == "unauthorized"
    assert cart(ring["app1"], SYNC, cookie)[1]["items"] == ["tea"]  # the owner still has it, unchanged
    assert ring["app2"].report(SYNC)["refused_owner_alive"] >= 1


def test_with_its_buddy_down_a_node_serves_says_so_and_refills_the_buddy_when_it_returns(ring):
    ring["app2"].kill()
    cookie = login(ring["app1"], SYNC, "cy")
    add(ring["app1"], SYNC, cookie, "tea")  # served without a copy
    link = ring["app1"].report(SYNC)["buddy"]
    assert link["state"] == "down" and link["unprotected"] >= 1 and link["buddy"] == "app2"

    ring["app2"].start()  # empty
    wait_until(lambda: ring["app1"].report(SYNC)["buddy"]["state"] == "up", "app1 sees app2 back", 10)
    wait_until(lambda: ring["app2"].report(SYNC)["copies"] == 1, "the state transfer reached app2", 10)
    ring["app1"].kill()
    status, body = cart(ring["app2"], SYNC, cookie)
    assert status == 200 and body["items"] == ["tea"]


def test_a_node_back_empty_takes_back_sessions_its_buddy_adopted(ring):
    moved = login(ring["app1"], SYNC, "dee")  # will make a request while app1 is down
    idle = login(ring["app1"], SYNC, "eve")  # will not
    add(ring["app1"], SYNC, idle, "jam")
    ring["app1"].kill()
    assert cart(ring["app2"], SYNC, moved)[0] == 200  # app2 adopts every copy of app1's
    ring["app1"].start()

    status, body = cart(ring["app1"], SYNC, idle)  # eve's cookie still routes her to app1
    assert status == 200 and body["items"] == ["jam"] and body["node"] == "app1"
    assert ring["app1"].report(SYNC)["taken_back"] == 1 and ring["app2"].report(SYNC)["handed_back"] == 1
    # One owner at a time, wherever the user turns up: dee's session moves back to app1 too if she goes there,
    # and app2, holding only app1's copy of it again, refuses her while app1 answers.
    assert cart(ring["app1"], SYNC, moved)[0] == 200
    assert cart(ring["app2"], SYNC, moved)[0] == 401


@pytest.mark.parametrize("strategy", [SYNC, ASYNC])
def test_a_logout_reaches_the_copy_before_the_answer_and_a_replayed_copy_cannot_bring_it_back(ring, strategy):
    cookie = login(ring["app1"], strategy, "fay")
    add(ring["app1"], strategy, cookie, "tea")
    sid = cookie.split("=", 1)[1]
    wait_until(copied(ring["app2"], strategy, 1), "app2 holds the copy", 5)
    stale = {"from": "app1", "boot": "x", "sessions": [copy_of(sid, "fay", ["tea"], 1)], "ended": []}
    assert ring["app1"].request("POST", f"/api/{strategy}/logout", {}, cookie=cookie)[0] == 200
    assert ring["app2"].report(strategy)["copies"] == 0  # no waiting, in the asynchronous variant too

    status, body = signed(ring, "app2", strategy, "copy", stale)  # the copy of before the logout, sent again
    assert status == 200
    assert ring["app2"].report(strategy)["copies"] == 0
    ring["app1"].kill()
    assert cart(ring["app2"], strategy, cookie)[0] == 401


@pytest.mark.parametrize("strategy", [SYNC, ASYNC])
def test_a_logout_on_the_buddy_of_a_stopping_owner_is_not_undone_by_adopting_the_copy(ring, strategy):
    """Seen in the rolling redeploy: the owner stops, its user logs out on the buddy, and the old cookie is
    replayed there once the owner is gone."""
    cookie = login(ring["app1"], strategy, "flo")
    add(ring["app1"], strategy, cookie, "tea")
    wait_until(copied(ring["app2"], strategy, 1), "app2 holds the copy", 5)
    ring["app1"].stop()
    assert ring["app2"].request("POST", f"/api/{strategy}/logout", {}, cookie=cookie)[0] == 200
    assert ring["app2"].report(strategy)["copies"] == 0

    status, body = cart(ring["app2"], strategy, cookie)
    assert status == 401 and body["error"] == "unauthorized"
    assert ring["app2"].report(strategy).get("adopted", 0) == 0


def test_a_logout_on_the_node_holding_the_copy_ends_the_session_on_its_live_owner(ring):
    cookie = login(ring["app1"], SYNC, "gil")
    add(ring["app1"], SYNC, cookie, "tea")
    assert ring["app2"].request("POST", f"/api/{SYNC}/logout", {}, cookie=cookie)[0] == 200

    assert cart(ring["app1"], SYNC, cookie)[0] == 401
    assert ring["app1"].report(SYNC)["logged_out_by_buddy"] == 1
    assert ring["app2"].report(SYNC)["copies"] == 0


def test_a_logout_on_a_node_back_empty_ends_the_session_its_buddy_adopted(ring):
    cookie = login(ring["app1"], SYNC, "hal")
    add(ring["app1"], SYNC, cookie, "tea")
    ring["app1"].kill()
    assert cart(ring["app2"], SYNC, cookie)[0] == 200  # app2 adopts it
    ring["app1"].start()

    assert ring["app1"].request("POST", f"/api/{SYNC}/logout", {}, cookie=cookie)[0] == 200  # her first request back
    for node in ("app1", "app2", "app3"):
        assert cart(ring[node], SYNC, cookie)[0] == 401, node


@pytest.mark.parametrize("strategy", [SYNC, ASYNC])
def test_a_thawed_owner_lets_in_no_session_logged_out_on_its_buddy_during_the_freeze(ring, strategy):
    """Seen in the full experiment (ip-hash, pause app2): the user moved to the buddy, logged out there, and
    the old cookie, back on the thawed owner at once, was let in by the owner's stale version."""
    cookie = login(ring["app1"], strategy, "ida")
    add(ring["app1"], strategy, cookie, "tea")
    wait_until(copied(ring["app2"], strategy, 1), "app2 holds the copy", 5)
    ring["app1"].pause()
    try:
        assert cart(ring["app2"], strategy, cookie)[0] == 200  # app1 does not answer: app2 adopts
        add(ring["app2"], strategy, cookie, "jam")
        assert ring["app2"].request("POST", f"/api/{strategy}/logout", {}, cookie=cookie)[0] == 200
    finally:
        ring["app1"].resume()

    status, body = cart(ring["app1"], strategy, cookie)  # the first request the thawed owner serves
    assert status == 401, body
    assert ring["app1"].report(strategy)["woke_up"] >= 1


@pytest.mark.parametrize("strategy", [SYNC, ASYNC])
def test_a_thawed_owner_serves_the_cart_its_buddy_changed_during_the_freeze(ring, strategy):
    cookie = login(ring["app1"], strategy, "jon")
    add(ring["app1"], strategy, cookie, "tea")
    wait_until(copied(ring["app2"], strategy, 1), "app2 holds the copy", 5)
    ring["app1"].pause()
    try:
        add(ring["app2"], strategy, cookie, "jam")  # app2 adopts, and the cart moves on there
    finally:
        ring["app1"].resume()

    status, body = cart(ring["app1"], strategy, cookie)  # back on the owner at once: not its stale ["tea"]
    assert status == 200 and body["items"] == ["tea", "jam"], body
    assert ring["app1"].report(strategy)["taken_back"] == 1


def test_only_the_buddy_may_end_a_session_through_the_channel(ring):
    cookie = login(ring["app1"], SYNC, "ian")
    sid = cookie.split("=", 1)[1]
    status, body = signed(ring, "app1", SYNC, "logout", {"from": "app3", "sid": sid})
    assert status == 409 and body["error"] == "not_my_buddy"
    assert cart(ring["app1"], SYNC, cookie)[0] == 200


def test_a_copy_replayed_or_overtaken_changes_nothing(ring):
    cookie = login(ring["app1"], SYNC, "gus")
    add(ring["app1"], SYNC, cookie, "tea")
    add(ring["app1"], SYNC, cookie, "jam")
    sid = cookie.split("=", 1)[1]
    older = {"from": "app1", "boot": "x", "sessions": [copy_of(sid, "gus", ["tea"], 1)], "ended": []}
    for _ in range(2):
        assert signed(ring, "app2", SYNC, "copy", older)[0] == 200
    ring["app1"].kill()
    assert cart(ring["app2"], SYNC, cookie)[1]["items"] == ["tea", "jam"]


def test_the_channel_refuses_unsigned_stale_forged_and_misdirected_messages(ring):
    path = f"/internal/replication/{SYNC}/copy"
    body = json.dumps({"from": "app1", "boot": "x", "sessions": [], "ended": []}).encode()
    node = ring["app2"]
    assert node.request("POST", path, body)[:2] == (403, {"error": "bad_signature",
                                                            "message": "missing, stale or wrong replication signature"})
    forged = sign("not-the-secret-but-as-long-as-one-0123456789", path, body)
    assert node.request("POST", path, body, headers={SIGNATURE: forged})[0] == 403
    stale = sign(ring.secret, path, body, now=1_000_000_000)
    assert node.request("POST", path, body, headers={SIGNATURE: stale})[0] == 403
    tampered = sign(ring.secret, path, body)
    assert node.request("POST", path, body.replace(b"app1", b"app3"), headers={SIGNATURE: tampered})[0] == 403
    # Signed, but app2 keeps copies of app1 only: a copy claiming to come from app3 is refused.
    status, answer = signed(ring, "app2", SYNC, "copy", {"from": "app3", "boot": "x", "sessions": [], "ended": []})
    assert status == 409 and answer["error"] == "not_my_ward"
    assert signed(ring, "app2", "memory", "copy", {"from": "app1"})[0] == 404  # memory has no channel
    assert signed(ring, "app2", SYNC, "copy", {"no": "sender"})[1]["error"] == "malformed_message"


def test_a_copy_in_a_format_this_version_cannot_read_is_refused(ring):
    sid = login(ring["app1"], SYNC, "hal").split("=", 1)[1]
    future = {**copy_of(sid, "hal", ["tea"], 5), "fmt": 99}
    status, _ = signed(ring, "app2", SYNC, "copy", {"from": "app1", "boot": "x", "sessions": [future], "ended": []})
    assert status == 200
    report = ring["app2"].report(SYNC)
    assert report["copies_refused"] == 1


def copy_of(sid: str, user: str, items: list[str], version: int) -> dict:
    return {"sid": sid, "user": user, "items": items, "created": 1_800_000_000.0, "version": version,
            "keys": items, "fmt": 1}


_SEQ = itertools.count(1)


def signed(ring, node: str, strategy: str, verb: str, payload: dict):
    """A message as a node sends it: numbered (boot, seq) unless the payload says otherwise, and signed."""
    path = f"/internal/replication/{strategy}/{verb}"
    body = json.dumps({"boot": "test-sender", "seq": next(_SEQ), **payload}).encode()
    return post_signed(ring, node, path, body)


def post_signed(ring, node: str, path: str, body: bytes):
    status, answer, _ = ring[node].request("POST", path, body, headers={SIGNATURE: sign(ring.secret, path, body)})
    return status, answer


def test_a_buddy_stopped_gracefully_and_started_again_gets_its_copies_back(ring):
    """gunicorn answers Connection: close while it stops: the channel must open a new connection after it."""
    cookie = login(ring["app1"], SYNC, "ida")
    add(ring["app1"], SYNC, cookie, "tea")
    ring["app2"].stop()
    add(ring["app1"], SYNC, cookie, "jam")  # served without a copy
    ring["app2"].start()
    wait_until(lambda: ring["app2"].report(SYNC)["copies"] == 1, "the state transfer reached app2", 10)
    add(ring["app1"], SYNC, cookie, "bread")
    ring["app1"].kill()
    assert cart(ring["app2"], SYNC, cookie)[1]["items"] == ["tea", "jam", "bread"]


# -- issue 16, replication channel: the defences against one client, and against replays -----------------

CLEF = "\U0001D11E"  # 𝄞: 4 bytes in UTF-8, 12 as `\ud834\udd1e` in json.dumps's default ASCII
BIG_ITEM = CLEF * 64  # the longest item the API takes (MAX_ITEM_LENGTH 64), of the heaviest characters


def fill(node, strategy: str, sessions: int, items: int) -> list[str]:
    """`sessions` users on `node`, each with `items` items of BIG_ITEM (each add with its own key)."""
    cookies = []
    for n in range(sessions):
        cookie = login(node, strategy, f"{CLEF * 8}-{n}")
        for i in range(items):
            status, body, _ = node.request("POST", f"/api/{strategy}/cart", {"item": BIG_ITEM}, cookie,
                                           {"Idempotency-Key": f"{n}-{i}"})
            assert status == 200, body
        cookies.append(cookie)
    return cookies


def test_a_node_full_of_big_non_ascii_carts_refills_its_restarted_buddy_and_the_link_stays_up(ring):
    """Before: 100 sessions a message, so these 40 carts (~1.7 MB as json.dumps's ASCII escapes) made the
    transfer a 413; the link stayed down and each retry's `reset` wiped app2's copies again."""
    cookies = fill(ring["app1"], SYNC, 40, 50)
    assert ring["app2"].report(SYNC)["copies"] == 40  # copied live, one by one
    ring["app2"].kill()
    ring["app2"].start()  # empty, a new boot: app1's watcher sends it everything

    def refilled():
        link = ring["app1"].report(SYNC)["buddy"]
        return (link["state"] == "up" and link["filled"] == ring["app2"].report(SYNC)["boot"]
                and ring["app2"].report(SYNC)["copies"] == 40)

    wait_until(refilled, "app2 holds all 40 copies again and app1's link is up", 20)
    assert ring["app2"].report(SYNC)["transfers_received"] >= 1
    ring["app1"].kill()
    status, body = cart(ring["app2"], SYNC, cookies[-1])
    assert status == 200 and body["items"] == [BIG_ITEM] * 50 and body["node"] == "app2"
    assert ring["app2"].report(SYNC)["adopted"] == 40


def test_a_replayed_message_changes_nothing_and_a_replayed_transfer_begin_is_refused(ring):
    cookie = login(ring["app1"], SYNC, "jo")
    add(ring["app1"], SYNC, cookie, "tea")
    path = f"/internal/replication/{SYNC}/copy"
    begin = json.dumps({"from": "app1", "boot": "b", "seq": 1, "transfer": {"gen": "g", "phase": "begin"},
                        "sessions": [], "ended": []}).encode()
    end = json.dumps({"from": "app1", "boot": "b", "seq": 2, "transfer": {"gen": "g", "phase": "end", "count": 0},
                      "sessions": [], "ended": []}).encode()
    assert post_signed(ring, "app2", path, begin)[0] == 200
    status, answer = post_signed(ring, "app2", path, begin)  # the same message again, freshly signed
    assert status == 409 and answer["error"] == "replayed_message"
    assert ring["app2"].report(SYNC)["copies"] == 1  # a begin alone wipes nothing
    assert post_signed(ring, "app2", path, end)[0] == 200  # this generation was whole (empty): swapped in
    assert post_signed(ring, "app2", path, end)[0] == 409


def test_a_malformed_signature_header_is_a_403_json_not_a_500(ring):
    path = f"/internal/replication/{SYNC}/copy"
    for header in ("t=\u00b2,v1=" + "0" * 64, "t=\u00b2", "t=,v1=", "v1=", "t=1" + "0" * 40 + ",v1=00"):
        status, body, _ = ring["app2"].request("POST", path, b"{}", headers={SIGNATURE: header})
        assert status == 403 and body["error"] == "bad_signature", (header, body)


def test_a_session_evicted_on_its_owner_does_not_come_back_through_its_copy(tmp_path):
    """Before: the owner's store dropped it silently (MEMORY_MAX_SESSIONS), its copy lived on, and the
    owner's death brought it back."""
    nodes = Ring(tmp_path, MEMORY_MAX_SESSIONS="3")
    nodes["app2"].env["MEMORY_MAX_SESSIONS"] = "100"  # the buddy has room: only the owner's eviction can end it
    nodes.start()
    try:
        wait_until(lambda: nodes["app1"].report(SYNC)["buddy"]["state"] == "up", "app1 sees app2", 10)
        first = login(nodes["app1"], SYNC, "first")
        for n in range(3):
            login(nodes["app1"], SYNC, f"later-{n}")  # the fourth session evicts the first on app1
        assert nodes["app2"].report(SYNC)["copies"] == 3
        nodes["app1"].kill()
        status, body = cart(nodes["app2"], SYNC, first)
        assert status == 401 and body["error"] == "unauthorized"
    finally:
        nodes.stop()
