"""The replication channel's defences that need no second node: what a copy weighs as it travels, how a
state transfer is batched and swapped in, replays, the signature header's parser, and a copy's expiry.
Issue 16, "Replication channel" (docs/hardening.md)."""

from __future__ import annotations

import http.server
import json
import random
import threading

import pytest

from session_lab import create_app
from session_lab.config import Settings
from session_lab.errors import StateTooLarge
from session_lab.replication.channel import (
    MAX_CHAR_BYTES,
    MAX_COPY_BYTES,
    MAX_MESSAGE_BYTES,
    REPLAY_WINDOW,
    SIGNATURE,
    Peer,
    PeerUnreachable,
    ReplayGuard,
    Sender,
    encode,
    message,
    reply_path,
    sign,
    verify,
)
from session_lab.replication.link import BATCH_BYTES, batches
from session_lab.strategies.base import new_session_id
from session_lab.strategies.replicated import Replicated, copy_bytes_bound
from tests.conftest import flask_sender, settings_env
from tests.session_client import SessionClient

SECRET = "unit-test-replication-secret-0123456789abcdef"
PEERS = "app1=127.0.0.1:1 app2=127.0.0.1:2 app3=127.0.0.1:3"  # nothing listens: no node is ever reached
CLEF = "\U0001D11E"  # 𝄞: 4 bytes in UTF-8, 12 as json.dumps's default `\ud834\udd1e`
PATH = "/internal/replication/replicated/copy"
NOW = 1_800_000_000


def big_session(items: int = 50, chars: int = 64) -> dict:
    return {"sid": new_session_id(), "user": CLEF * 64, "items": [CLEF * chars] * items, "created": 1.8e9,
            "version": items, "keys": [f"{n}-{CLEF * 60}" for n in range(items)], "seen": 1.8e9, "fmt": 1}


# -- 1. copies weighed in bytes, batched by bytes, refused at the API when they could not travel ----------

def test_a_state_transfer_of_full_non_ascii_carts_never_exceeds_a_message():
    """Before: 100 sessions a message whatever they weighed; 100 full carts of 4-byte characters are ~3 MB
    of default json.dumps, and the buddy refused every transfer with a 413."""
    sessions = [big_session() for _ in range(40)]
    assert len(json.dumps({"sessions": sessions}).encode()) > MAX_MESSAGE_BYTES  # what went in one message
    found = batches(sessions, ended=[new_session_id() for _ in range(3)])
    assert len(found) >= 1 and sum(len(b.sessions) for b in found) == 40
    received = []
    for batch in found:
        body = message({"from": "app1", "boot": "b", "seq": 1}, sessions=batch.sessions, ended=batch.ended)
        assert len(body) <= MAX_MESSAGE_BYTES
        received += json.loads(body)["sessions"]
    assert received == sessions  # every copy, whole, in order


def test_batches_are_cut_by_bytes_so_many_small_copies_travel_in_few_messages():
    small = [{"sid": new_session_id(), "items": ["tea"]} for _ in range(500)]
    assert len(batches(small)) == 1  # by count (100 a message) these were 5
    heavy = batches([big_session() for _ in range(120)])
    assert len(heavy) > 1 and all(len(message({"from": "a"}, sessions=b.sessions)) <= MAX_MESSAGE_BYTES for b in heavy)
    # each message as full as the next copy allows
    assert all(heavy[n].size + len(heavy[n + 1].sessions[0]) + 1 > BATCH_BYTES for n in range(len(heavy) - 1))


def test_the_default_limits_provably_fit_one_message_and_the_worst_session_is_inside_the_bound():
    defaults = Settings.from_env(settings_env())
    bound = copy_bytes_bound(defaults)
    assert bound <= MAX_COPY_BYTES / 20  # < 40 KB of 1 MiB: see the arithmetic in copy_bytes_bound
    for char in (CLEF, '"', "\\", "\u0001", "\ud800", "é"):  # 4-byte UTF-8, escapes, a control, a lone surrogate
        assert len(encode(char)) - 2 <= MAX_CHAR_BYTES, repr(char)
        worst = {**big_session(defaults.max_cart_items, defaults.max_item_length), "user": char * 64,
                 "items": [char * defaults.max_item_length] * defaults.max_cart_items,
                 "keys": [char * 64] * defaults.max_cart_items}
        assert len(encode(worst)) <= bound, repr(char)
    assert json.loads(encode("\ud800")) == "\ud800"  # a lone surrogate survives the trip


def test_an_add_that_would_make_a_copy_too_large_to_travel_is_a_413_json_and_changes_nothing(make_settings, clock):
    """Only reachable with limits raised far beyond the defaults (here 300 items of 1,300 characters)."""
    app = create_app(make_settings(MAX_ITEM_LENGTH="1300", MAX_CART_ITEMS="300"), clock=clock)
    user = SessionClient("replicated", flask_sender(app))
    assert user.login("ada").status == 200
    item = CLEF * 1300  # 5,202 bytes as it travels; the request body (16 KB at most) carries it escaped
    strategy = app.extensions["session_lab.strategies"]["replicated"]
    session = strategy._entries[next(iter(strategy._entries))].session
    added = 0
    with pytest.raises(StateTooLarge):
        for added in range(300):  # filled directly: 200 answers of a growing cart would be slow
            strategy.add_item(session, item)
    refused = user.add(item)
    assert refused.status == 413 and refused.body["error"] == "state_too_large", refused.body
    assert "nothing was changed" in refused.body["message"]
    assert user.cart().body["items"] == [item] * added  # the refused add left no trace
    assert MAX_COPY_BYTES - len(encode(item)) < len(encode(strategy._snapshot_all()[0])) <= MAX_COPY_BYTES


# -- 2. a state transfer is a generation, swapped in whole ----------------------------------------------

@pytest.fixture
def buddy(clock):
    """app2, keeping the copies of app1 (its ward); nothing is sent anywhere."""
    env = settings_env(NODE_NAME="app2", REPLICATION_PEERS=PEERS, REPLICATION_SECRET=SECRET,
                       SESSION_IDLE_TIMEOUT="600", SESSION_ABSOLUTE_TIMEOUT="3600")
    return Replicated(Settings.from_env(env), clock=clock)


def copy_of(sid: str, version: int = 1, seen: float = 1_800_000_000.0) -> dict:
    return {"sid": sid, "user": "ada", "items": ["tea"] * version, "created": 1_800_000_000.0, "version": version,
            "keys": [], "seen": seen, "fmt": 1}


def transfer(gen: str, phase: str, sessions=(), count: int | None = None) -> dict:
    step = {"gen": gen, "phase": phase, **({"count": count} if count is not None else {})}
    return {"from": "app1", "transfer": step, "sessions": list(sessions), "ended": []}


def test_an_interrupted_transfer_leaves_the_buddy_its_old_copies(buddy):
    """Before: the transfer began with a `reset` that wiped the copies; when a batch then failed (a 413),
    the buddy held nothing of its ward's, every second again."""
    old = [new_session_id() for _ in range(3)]
    buddy.on_copy({"from": "app1", "sessions": [copy_of(sid) for sid in old]})
    buddy.on_copy(transfer("g1", "begin"))
    buddy.on_copy(transfer("g1", "batch", [copy_of(old[0], 2)]))
    assert sorted(buddy._copies) == sorted(old)  # the link drops here: nothing more of g1 arrives
    assert buddy.on_copy(transfer("g1", "end", count=3))["swapped"] is False  # one batch of two never came
    assert sorted(buddy._copies) == sorted(old) and buddy._copies[old[0]].snapshot["version"] == 1


def test_a_whole_transfer_replaces_the_old_copies_and_keeps_what_arrived_live_meanwhile(buddy):
    gone, kept, live = new_session_id(), new_session_id(), new_session_id()
    buddy.on_copy({"from": "app1", "sessions": [copy_of(gone), copy_of(kept)]})
    buddy.on_copy(transfer("g2", "begin"))
    buddy.on_copy({"from": "app1", "sessions": [copy_of(live), copy_of(kept, 3)]})  # live, during the transfer
    buddy.on_copy(transfer("g2", "batch", [copy_of(kept, 2)]))  # the snapshot, older than the live copy
    assert gone in buddy._copies  # nothing dropped before the end
    assert buddy.on_copy(transfer("g2", "end", count=1))["swapped"] is True
    assert set(buddy._copies) == {kept, live} and buddy._copies[kept].snapshot["version"] == 3


def test_a_stale_generation_end_swaps_nothing(buddy):
    sid = new_session_id()
    buddy.on_copy({"from": "app1", "sessions": [copy_of(sid)]})
    buddy.on_copy(transfer("old", "begin"))
    buddy.on_copy(transfer("new", "begin"))
    assert buddy.on_copy(transfer("old", "end", count=0))["swapped"] is False
    assert sid in buddy._copies


# -- 3. replays -------------------------------------------------------------------------------------------

def test_each_message_is_accepted_once_out_of_order_within_the_window():
    guard = ReplayGuard()
    assert [guard.accept("app1", "boot1", seq, now=0) for seq in (3, 1, 2, 3, 1)] == [True, True, True, False, False]
    assert guard.accept("app1", "boot2", 1, now=0)  # another process of app1: its own numbers
    assert guard.accept("app1", "boot1", REPLAY_WINDOW + 10, now=0)
    assert not guard.accept("app1", "boot1", 4, now=0)  # fell out of the window: refused, never accepted twice
    for seq in range(REPLAY_WINDOW + 11, REPLAY_WINDOW * 4):  # the set of numbers seen stays bounded
        guard.accept("app1", "boot1", seq, now=0)
    assert len(guard._windows[("app1", "boot1")].seen) <= 2 * REPLAY_WINDOW + 1


@pytest.fixture
def node_app(clock):
    env = settings_env(NODE_NAME="app2", REPLICATION_PEERS=PEERS, REPLICATION_SECRET=SECRET)
    return create_app(Settings.from_env(env), clock=clock)


def post(app, body: bytes, header: str | None):
    headers = {"Content-Type": "application/json", **({SIGNATURE: header} if header is not None else {})}
    return app.test_client().post(PATH, data=body, headers=headers)


def test_a_replayed_message_is_refused_and_the_answer_is_signed_for_the_request_it_answers(node_app):
    body = json.dumps({"from": "app1", "boot": "b1", "seq": 7, "sessions": [], "ended": []}).encode()
    first = post(node_app, body, sign(SECRET, PATH, body))
    assert first.status_code == 200
    bound = f"{PATH}#reply/app1/b1/7"
    assert verify(SECRET, first.headers[SIGNATURE], bound, first.get_data())
    assert not verify(SECRET, first.headers[SIGNATURE], f"{PATH}#reply/app1/b1/8", first.get_data())
    again = post(node_app, body, sign(SECRET, PATH, body))  # the same message, freshly signed even
    assert again.status_code == 409 and again.get_json()["error"] == "replayed_message"
    unnumbered = json.dumps({"from": "app1", "boot": "b1", "sessions": []}).encode()
    assert post(node_app, unnumbered, sign(SECRET, PATH, unnumbered)).get_json()["error"] == "malformed_message"


class _Answering(http.server.BaseHTTPRequestHandler):
    """A peer on loopback that answers every message with `disowned` (what a sender acts on), signed as the
    server's class attribute `signer` says."""
    signer = None

    def do_POST(self):
        payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        body = json.dumps({"boot": "peer", "disowned": ["someone-elses-session"]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if self.signer:
            self.send_header(SIGNATURE, self.signer(self.path, payload, body))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("signer, trusted", [
    (None, False),  # unsigned
    (lambda path, payload, body: sign("another-secret-just-as-long-0123456789abcdef",
                                      reply_path(path, payload), body), False),  # forged
    (lambda path, payload, body: sign(SECRET, reply_path(path, {**payload, "seq": payload["seq"] + 1}), body),
     False),  # signed, but for another request (a recorded answer replayed)
    (lambda path, payload, body: sign(SECRET, reply_path(path, payload), body), True),
])
def test_a_sender_acts_only_on_an_answer_signed_for_its_request(signer, trusted):
    """Before: the sender believed any 200 JSON, so whoever could answer in the buddy's place could make it
    drop its own sessions (`disowned`)."""
    server = http.server.HTTPServer(("127.0.0.1", 0), type("Peer", (_Answering,), {"signer": staticmethod(signer)
                                                                                     if signer else None}))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        peer = Peer("app2", f"127.0.0.1:{server.server_port}", SECRET, "replicated", Sender("app1", "boot1"))
        if trusted:
            assert peer.call("copy", {}, 2.0)["disowned"] == ["someone-elses-session"]
        else:
            with pytest.raises(PeerUnreachable, match="signature"):
                peer.call("copy", {}, 2.0)
        peer.close()
    finally:
        server.shutdown()
        server.server_close()


# -- 4. the signature header's parser ---------------------------------------------------------------------

def fuzzed_headers(count: int, seed: int = 16):
    rng = random.Random(seed)
    alphabet = "t=v1,0123456789abcdef ²³¹٣߃𝟗Ⅻ\x00\t=,;" + CLEF
    good = sign(SECRET, PATH, b"{}", now=NOW)
    yield from ("t=²", "t=²,v1=" + "a" * 64, "t=٣,v1=x", "t=1e3,v1=", "t=-5,v1=", "t=,", "=", ",", "",
                "t=99999999999999999999999999,v1=" + "0" * 64, good.replace("t=", "t= "), good + ",v1=x")
    for _ in range(count):
        yield "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 90)))
        cut = rng.randrange(len(good))
        yield good[:cut] + rng.choice(alphabet) + good[cut + 1:]  # a valid header with one character changed


def test_a_malformed_signature_header_is_refused_never_raised():
    """Before: 't=²' passed str.isdigit() and int('²') raised ValueError (a 500 with a traceback)."""
    good = sign(SECRET, PATH, b"{}", now=NOW)
    for header in fuzzed_headers(3000):
        assert verify(SECRET, header, PATH, b"{}", now=NOW) is (header == good), header


def test_a_malformed_signature_header_is_a_403_json_at_the_endpoint(node_app):
    body = b'{"from":"app1","boot":"b","seq":1}'
    for header in list(fuzzed_headers(50))[:80]:
        try:
            header.encode("latin-1")
        except UnicodeEncodeError:
            continue  # not sendable in an HTTP header; verify() itself is fuzzed with it above
        answer = post(node_app, body, header)
        assert answer.status_code == 403 and answer.get_json()["error"] == "bad_signature", (header, answer.data)
    answer = post(node_app, body, "t=\u00b2,v1=" + "a" * 64)
    assert answer.status_code == 403 and answer.get_json()["error"] == "bad_signature"


# -- 5. a copy knows its idle expiry and its owner's evictions -------------------------------------------

def test_a_copy_idle_past_the_timeout_is_not_adopted_when_its_owner_dies(buddy, clock):
    """Before: a copy expired at its absolute lifetime only, so a session idle-expired on its owner came back
    through the copy when the owner died."""
    idle, fresh = new_session_id(), new_session_id()
    buddy.on_copy({"from": "app1", "sessions": [copy_of(idle, seen=clock.now),
                                                copy_of(fresh, seen=clock.now + 590)]})
    clock.advance(601)  # idle's last use was 601 s ago (SESSION_IDLE_TIMEOUT 600); fresh's 11 s ago
    assert buddy._missing(idle) is None  # the owner (127.0.0.1:1) does not answer: app2 adopts its copies
    assert set(buddy._entries) == {fresh} and buddy.report()["adopted"] == 1


def test_a_use_that_slides_the_idle_expiry_is_copied_with_its_time(buddy, clock):
    sid = new_session_id()
    buddy.on_copy({"from": "app1", "sessions": [copy_of(sid, seen=clock.now)]})
    buddy.on_copy({"from": "app1", "sessions": [copy_of(sid, seen=clock.now + 500)]})  # same version, seen later
    clock.advance(700)
    assert buddy._missing(sid) is not None  # 200 s idle: alive


def test_an_owner_copies_its_evictions_so_the_copy_ends_with_the_session(make_settings, clock):
    """Before: the store's LRU and expiry sweeps dropped sessions silently; their copies lived on."""
    owner = Replicated(Settings.from_env(settings_env(NODE_NAME="app1", REPLICATION_PEERS=PEERS,
                                                      REPLICATION_SECRET=SECRET, MEMORY_MAX_SESSIONS="2")),
                       clock=clock)
    sent = []
    owner.link.send = lambda sessions=(), ended=(), now=False: sent.append(list(ended)) or True
    first = owner.login("ada")
    owner.login("bob")
    owner.login("cy")  # beyond the cap: ada goes
    assert [first.sid] in sent and owner.report()["evictions_copied"] == 1


def test_a_copy_from_a_version_that_sends_no_last_seen_time_keeps_the_old_rule(buddy, clock):
    """A rolling redeploy: the owner still runs the version before this one; its copies expire at their
    absolute lifetime, as they did, not an idle timeout after the login."""
    sid = new_session_id()
    old_style = {key: value for key, value in copy_of(sid).items() if key != "seen"}
    buddy.on_copy({"from": "app1", "sessions": [old_style]})
    clock.advance(601)  # past the idle timeout since the login, well inside the absolute lifetime
    assert buddy._missing(sid) is not None


def test_a_copy_too_large_to_travel_is_left_out_and_the_others_still_go():
    """Unreachable through the API (it refuses the add); were a bug to make one, it must not take the whole
    message, and with it the link, down."""
    giant = {"sid": new_session_id(), "items": ["x" * MAX_MESSAGE_BYTES]}
    small = [{"sid": new_session_id(), "items": ["tea"]} for _ in range(3)]
    found = batches([small[0], giant, *small[1:]])
    assert [json.loads(piece) for batch in found for piece in batch.sessions] == small
