"""What every session-keeping strategy must do, whatever stores it. Run by tests/unit for strategies with
no dependencies and by tests/integration for those that need a real service, so each is held to the same
contract. `c` is a SessionClient factory, `clock` the app's FakeClock, `settings` the app's Settings.
"""

from __future__ import annotations

from session_lab import strategies


def round_trip(c, clock, settings):
    alice = c()
    login = alice.login("alice")
    assert login.status == 200 and login.body["user"] == "alice" and login.body["items"] == []
    assert alice.add("apple").body["items"] == ["apple"]
    added = alice.add("pear")
    assert added.body["items"] == ["apple", "pear"] and added.body["version"] == 2
    read = alice.cart()
    assert read.status == 200 and read.body["items"] == ["apple", "pear"] and read.body["version"] == 2


def users_are_isolated(c, clock, settings):
    alice, bob = c(), c()
    alice.login("alice")
    bob.login("bob")
    alice.add("apple")
    bob.add("bolt")
    assert alice.cart().body["items"] == ["apple"]
    seen = bob.cart().body
    assert (seen["user"], seen["items"]) == ("bob", ["bolt"])


def idle_timeout_expires_an_unused_session(c, clock, settings):
    alice = c()
    alice.login("alice")
    clock.advance(settings.idle_timeout + settings.jwt_leeway + 1)
    reply = alice.cart()
    assert reply.status == 401
    assert "expired" in reply.body["message"] or "unknown" in reply.body["message"]


def use_refreshes_the_idle_timeout(c, clock, settings):
    alice = c()
    alice.login("alice")
    alice.add("apple")
    for _ in range(3):
        clock.advance(settings.idle_timeout * 0.8)
        assert alice.cart().status == 200


def absolute_timeout_ends_even_a_busy_session(c, clock, settings):
    alice = c()
    alice.login("alice")
    elapsed = 0.0
    while elapsed < settings.absolute_timeout:
        assert alice.cart().status == 200
        clock.advance(settings.idle_timeout / 2)
        elapsed += settings.idle_timeout / 2
    clock.advance(settings.jwt_leeway + 1)
    assert alice.cart().status == 401


def full_cart_refuses_and_keeps_what_it_had(c, clock, settings):
    alice = c()
    alice.login("alice")
    items = [f"item-{i}" for i in range(settings.max_cart_items)]
    for item in items:
        assert alice.add(item).status == 200
    refused = alice.add("one-too-many")
    assert refused.status == 409 and refused.body["error"] == "cart_full"
    assert alice.cart().body["items"] == items


def login_always_starts_a_fresh_session(c, clock, settings):
    alice = c()
    alice.login("alice")
    alice.add("apple")
    again = alice.login("alice")
    assert again.body["items"] == [] and again.body["version"] == 0
    assert alice.cart().body["items"] == []


def logout_ends_the_session_for_the_client(c, clock, settings):
    alice = c()
    alice.login("alice")
    alice.add("apple")
    reply = alice.logout()
    assert reply.status == 200 and reply.body["logged_out"] is True
    alice.token = alice.client_state = None  # a client drops what it was told to drop
    assert alice.cart().status == 401


CONTRACT = [
    round_trip,
    users_are_isolated,
    idle_timeout_expires_an_unused_session,
    use_refreshes_the_idle_timeout,
    absolute_timeout_ends_even_a_busy_session,
    full_cart_refuses_and_keeps_what_it_had,
    login_always_starts_a_fresh_session,
    logout_ends_the_session_for_the_client,
]


def a_replayed_add_is_applied_once(c, clock, settings):
    """What nginx does when a node fails after an add was sent: the same request, again."""
    alice = c()
    alice.login("alice")
    first = alice.send("POST", "/api/" + alice.strategy + "/cart", json={"item": "apple"},
                       headers={**credentials(alice), "Idempotency-Key": "add-1"})
    again = alice.send("POST", "/api/" + alice.strategy + "/cart", json={"item": "apple"},
                       headers={**credentials(alice), "Idempotency-Key": "add-1"})
    assert first.status == again.status == 200
    assert again.body["items"] == ["apple"]


def credentials(client) -> dict:
    """The headers a replayed request would carry: the same (old) credential."""
    headers = {}
    if client.token:
        headers["Authorization"] = f"Bearer {client.token}"
    if client.client_state:
        headers["X-Client-Session"] = client.client_state
    return headers


CONTRACT.append(a_replayed_add_is_applied_once)


def new_credential(reply, before) -> bool:
    """The reply hands out a credential: a cookie, or a token or sealed state other than the one held."""
    body = reply.body
    return "set-cookie" in reply.headers or any(body.get(k) not in (None, before.body.get(k))
                                                 for k in ("token", "client_session"))


def reads_refresh_the_credential_once_the_refresh_interval_passed(c, clock, settings):
    """SESSION_REFRESH_AFTER: a read soon after a change hands out nothing new (no cookie, the same token or
    state: no store write, no signing), and once the interval has passed it slides the expiry again. A
    strategy that refreshes on every use (refreshes_every_use) hands out a credential each time."""
    alice = c()
    alice.login("alice")
    added = alice.add("apple")
    soon = alice.cart()
    assert soon.status == 200 and soon.body["items"] == ["apple"]
    every_use = next(cls for cls in strategies.classes() if cls.name == alice.strategy).refreshes_every_use
    assert new_credential(soon, added) == every_use
    clock.advance(settings.refresh_after + 1)
    later = alice.cart()
    assert later.status == 200 and new_credential(later, soon)
    clock.advance(settings.idle_timeout - 1)  # past the first expiry, inside the one the read slid
    assert alice.cart().status == 200


CONTRACT.append(reads_refresh_the_credential_once_the_refresh_interval_passed)
