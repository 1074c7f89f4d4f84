"""The flask-session peer against a real Redis: Flask-Session's own storage (one msgpack blob, written back on
every request), and the lost update its trackers report, reproduced deterministically."""

import pickle
import secrets
import threading

import msgspec
import pytest
from flask import request

from session_lab import create_app
from tests.conftest import flask_sender
from tests.session_client import SessionClient

NAME = "flask-session"


def blob_key(client: SessionClient) -> str:
    return f"fs:{client.session_id()}"


def test_the_session_is_one_msgpack_blob_with_the_idle_timeout_as_its_ttl(session_client, redis_server, store,
                                                                          settings):
    alice = session_client(NAME)
    alice.login("alice")
    alice.add("apple")
    with redis_server.client_bytes() as raw_client:
        stored = msgspec.msgpack.decode(raw_client.get(blob_key(alice)))
    assert (stored["user"], stored["items"], stored["version"]) == ("alice", ["apple"], 1)
    assert 0 < store.ttl(blob_key(alice)) <= settings.idle_timeout


def test_a_read_writes_the_whole_blob_back(session_client, store):
    alice = session_client(NAME)
    alice.login("alice")
    store.expire(blob_key(alice), 5)
    assert alice.cart().status == 200 and "set-cookie" in alice.replies[-1].headers
    assert store.ttl(blob_key(alice)) > 5  # SET with a fresh TTL, and a new cookie, on a read


def test_two_adds_that_read_before_either_writes_keep_only_one(settings, clock, redis_server, store):
    """pallets-eco/flask-session #71: GET, GET, SET, SET; the second SET overwrites the first add."""
    app = create_app(settings, clock=clock)
    alice = SessionClient(NAME, flask_sender(app))
    alice.login("alice")
    cookie = f"sl_flask_session={alice.session_id()}"
    strategy = app.extensions["session_lab.strategies"][NAME]
    both_read = threading.Barrier(2)
    acknowledged = []

    def add(item: str) -> None:
        with app.test_request_context(f"/api/{NAME}/cart", method="POST", headers={"Cookie": cookie}):
            session = strategy.current(request)
            both_read.wait()  # each has the blob without the other's item
            answer = app.response_class()
            strategy.issue(strategy.add_item(session, item), {}, answer)
            acknowledged.append(item)

    threads = [threading.Thread(target=add, args=(item,)) for item in ("apple", "pear")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(acknowledged) == ["apple", "pear"]
    kept = alice.cart().body["items"]
    assert len(kept) == 1 and kept[0] in acknowledged  # one acknowledged add is gone, and no error said so


def test_with_redis_stopped_it_answers_503(session_client, redis_server):
    alice = session_client(NAME)
    alice.login("alice")
    redis_server.stop()
    reply = alice.cart()
    assert reply.status == 503 and reply.body["error"] == "store_unavailable"


class CreatesAFile:
    """A pickle whose loading creates `path`: what an attacker who can write Redis would plant (with
    os.system in place of open)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


@pytest.mark.parametrize("planted", ["pickle", "garbage", "msgpack list", "msgpack dict of another shape",
                                     "json with a non-text item"])
def test_a_value_planted_under_the_prefix_runs_nothing_and_is_a_401(app, redis_server, store, clock, tmp_path,
                                                                    planted):
    """Flask-Session 0.8.0 falls back to pickle.loads for a value that is neither msgpack nor JSON; the
    strategy's serializer does not, and anything it never wrote is no session (401 JSON, never a 500)."""
    ran = tmp_path / "the-planted-pickle-ran"
    value = {"pickle": pickle.dumps(CreatesAFile(ran)), "garbage": b"\xc1\xff not a session",
             "msgpack list": msgspec.msgpack.encode([1, 2]),
             "msgpack dict of another shape": msgspec.msgpack.encode({"user": "mallory"}),
             "json with a non-text item": msgspec.json.encode({"user": "m", "items": [1], "version": 0,
                                                               "created": clock(), "seen": clock(), "keys": []}),
             }[planted]
    sid = secrets.token_urlsafe(32)  # the shape of a real session id, so the lookup happens
    with redis_server.client_bytes() as admin:
        admin.set(f"fs:{sid}", value)
    http = app.test_client()
    http.set_cookie("sl_flask_session", sid)
    for reply in (http.get(f"/api/{NAME}/cart"), http.post(f"/api/{NAME}/cart", json={"item": "apple"})):
        assert reply.status_code == 401 and reply.get_json()["error"] == "unauthorized", reply.get_json()
    assert not ran.exists(), "loading the stored session ran the planted pickle"
