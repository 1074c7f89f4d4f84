"""The replicated strategy's pieces that need no second node: the ring, the channel's signature, the
config, and what a buddy keeps of the copies it is sent (the channel's receiving side, called directly)."""

from __future__ import annotations

import pytest

from session_lab.config import ConfigError, Settings
from session_lab.replication.channel import sign, verify
from session_lab.replication.ring import Ring
from session_lab.strategies.base import new_session_id
from session_lab.strategies.replicated import TOMBSTONE_SECONDS, Replicated
from tests.conftest import settings_env

SECRET = "unit-test-replication-secret-0123456789abcdef"


def test_the_ring_wraps_and_a_lone_node_has_no_buddy():
    nodes = (("a", "h:1"), ("b", "h:2"), ("c", "h:3"))
    assert Ring("a", nodes).buddy == ("b", "h:2") and Ring("a", nodes).ward == ("c", "h:3")
    assert Ring("c", nodes).buddy == ("a", "h:1")
    assert Ring("a", nodes[:1]).buddy is None and Ring("a", ()).ward is None


@pytest.mark.parametrize("peers, message", [
    ("app1=h:1 app2", "is not name=host:port"),
    ("app1=h:1 app1=h:2", "twice"),
    ("app2=h:1 app3=h:2", "does not list this node"),
    ("app1=h:99999", "is not name=host:port"),
])
def test_bad_peer_lists_are_refused_at_start(peers, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(settings_env(NODE_NAME="app1", REPLICATION_PEERS=peers, REPLICATION_SECRET=SECRET))


def test_peers_need_a_long_secret_and_a_timeout_well_inside_nginxs():
    env = settings_env(NODE_NAME="app1", REPLICATION_PEERS="app1=h:1 app2=h:2")
    with pytest.raises(ConfigError, match="REPLICATION_SECRET is not set"):
        Settings.from_env(env)
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        Settings.from_env({**env, "REPLICATION_SECRET": "short-but-not-a-placeholder"})
    with pytest.raises(ConfigError, match="REPLICATION_TIMEOUT"):
        Settings.from_env({**env, "REPLICATION_SECRET": SECRET, "REPLICATION_TIMEOUT": "3"})
    assert Settings.from_env(settings_env()).replication_secret == ""  # no peers, no secret needed


def test_a_signature_binds_time_path_and_body():
    header = sign(SECRET, "/internal/replication/replicated/copy", b"{}", now=1000)
    assert verify(SECRET, header, "/internal/replication/replicated/copy", b"{}", now=1010)
    assert not verify(SECRET, header, "/internal/replication/replicated/copy", b"{ }", now=1010)
    assert not verify(SECRET, header, "/internal/replication/replicated/hello", b"{}", now=1010)
    assert not verify(SECRET, header, "/internal/replication/replicated/copy", b"{}", now=1031)  # stale
    assert not verify("another-secret-just-as-long-0123456789abcdef", header,
                      "/internal/replication/replicated/copy", b"{}", now=1010)
    assert not verify(SECRET, None, "/x", b"", now=1000) and not verify(SECRET, "t=x,v1=y", "/x", b"", now=1000)


@pytest.fixture
def buddy(clock):
    """app2's strategy, keeping the copies of app1 (its ward); nothing is sent anywhere."""
    env = settings_env(NODE_NAME="app2", REPLICATION_PEERS="app1=127.0.0.1:1 app2=127.0.0.1:2 app3=127.0.0.1:3",
                       REPLICATION_SECRET=SECRET, MEMORY_MAX_SESSIONS="3")
    return Replicated(Settings.from_env(env), clock=clock)


def copy_of(sid, version=0, items=(), **extra):
    return {"sid": sid, "user": "ada", "items": list(items), "created": 1_800_000_000.0, "version": version,
            "keys": [], "fmt": 1, **extra}


def test_a_buddy_keeps_the_newest_copy_and_a_replay_changes_nothing(buddy):
    sid = new_session_id()
    for version, items in ((1, ["tea"]), (2, ["tea", "jam"]), (1, ["tea"]), (2, ["tea", "jam"])):
        buddy.on_copy({"from": "app1", "sessions": [copy_of(sid, version, items)]})
    assert buddy.report()["copies"] == 1 and buddy._copies[sid].snapshot["items"] == ["tea", "jam"]


def test_copies_are_bounded_like_sessions_oldest_first(buddy):
    sids = [new_session_id() for _ in range(5)]
    buddy.on_copy({"from": "app1", "sessions": [copy_of(sid) for sid in sids]})
    assert list(buddy._copies) == sids[2:]


def test_an_ended_session_leaves_a_tombstone_that_expires(buddy, clock):
    sid = new_session_id()
    buddy.on_copy({"from": "app1", "sessions": [copy_of(sid)], "ended": [sid]})
    buddy.on_copy({"from": "app1", "sessions": [copy_of(sid, 3)]})  # a copy still in flight
    assert buddy.report()["copies"] == 0
    clock.advance(TOMBSTONE_SECONDS + 1)
    buddy.on_copy({"from": "app1", "sessions": []})
    assert sid not in buddy._tombstones


@pytest.mark.parametrize("bad", [{"fmt": 99}, {"sid": "short"}, {"items": "tea"}, {"version": "1"},
                                 {"keys": [1]}, {"user": None}])
def test_a_copy_it_cannot_hold_is_refused_and_counted(buddy, bad):
    buddy.on_copy({"from": "app1", "sessions": [{**copy_of(new_session_id()), **bad}, "not even a dict"]})
    assert buddy.report()["copies"] == 0 and buddy.report()["copies_refused"] == 2


def test_copies_come_only_from_the_ward(buddy):
    from session_lab.errors import ApiError

    with pytest.raises(ApiError) as refused:
        buddy.on_copy({"from": "app3", "sessions": [copy_of(new_session_id())]})
    assert refused.value.status == 409 and buddy.report()["copies"] == 0
    with pytest.raises(ApiError):
        buddy.on_copy({"from": "app1", "sessions": "not a list"})
