"""Locust users for every strategy in the app's registry, each with a session oracle.

    locust -f loadtest/users/locustfile.py -H http://127.0.0.1:8080      (or `make load` / `make load-ui`)

One user class per strategy, made from the registry (no hand list). Each user logs in, adds items and reads
its cart, and classifies every answer (see oracle.py). At the end of a session it logs out and, once the
revocation bound has passed, replays its old credential, which a revocable strategy must refuse. Each user
sends X-Forwarded-For with an address of its own, as a proxy in front of the balancer would, and the lab's
proxy secret (LB_PROXY_SECRET, from the environment or the env file), with which nginx believes it: each user
is a client of its own (its login limit, its ip-hash node, its session budget), so users spread over the
nodes in ip-hash mode too. Semantic
outcomes are Locust failures named `session_lost`, `writes_lost`, `foreign`, `not_revoked` and
`error: ...`. Settings, from the environment:

    LOADTEST_STRATEGIES         comma-separated subset of strategies (default: all)
    LOADTEST_PACING             seconds between one user's requests (default 0.2)
    LOADTEST_ITEMS_PER_SESSION  items before the user logs out and starts a fresh session (default 15)
    LOADTEST_RECORD             CSV path for the raw per-request records (default: none written)

The process exits non-zero when any answer was `foreign`: a leaked session must never happen.
"""

from __future__ import annotations

import copy
import os
import random
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

from locust import FastHttpUser, constant_pacing, events, task
from redis.crc import key_slot

from loadtest.lab import as_proxy
from loadtest.users.oracle import (
    ERROR,
    FOREIGN,
    OK,
    OUTCOMES,
    REVOCATION_BOUND,
    SESSION_LOST,
    Expectation,
    Verdict,
)
from loadtest.users.record import Recorder
from session_lab import strategies as registry

RECORDER = Recorder()
PACING = float(os.environ.get("LOADTEST_PACING", "0.2"))
ITEMS_PER_SESSION = int(os.environ.get("LOADTEST_ITEMS_PER_SESSION", "15"))


def client_address() -> str:
    """An address in RFC 2544's benchmarking range, 198.18.0.0/15, in one of its 512 /24 networks: nginx's
    ip_hash hashes an IPv4 address's first three octets, so users must differ there to spread."""
    return f"198.{random.randint(18, 19)}.{random.randrange(256)}.{random.randint(1, 254)}"


def chosen_strategies() -> list[type[registry.Strategy]]:
    wanted = [s.strip() for s in os.environ.get("LOADTEST_STRATEGIES", "").split(",") if s.strip()]
    known = {cls.name: cls for cls in registry.classes()}
    unknown = [s for s in wanted if s not in known]
    if unknown:
        sys.exit(f"error: unknown strategy {', '.join(unknown)}; choose from {', '.join(known)}")
    return [known[s] for s in wanted] if wanted else list(known.values())


class SessionUser(FastHttpUser):
    abstract = True
    strategy = ""
    keeps_state = True
    revocable = True
    cookie = ""  # the session cookie's name, for strategies whose credential is one
    wait_time = constant_pacing(PACING)
    network_timeout = 10.0
    connection_timeout = 5.0

    def on_start(self):
        self.name = f"{self.strategy}-{uuid.uuid4().hex[:10]}"
        self.address = client_address()
        self.expect: Expectation | None = None
        self.token = self.client_state = None
        self.seq = 0
        self.login()

    @task(2)
    def add(self):
        if self.expect is None:
            return self.login()
        if len(self.expect.acked) >= ITEMS_PER_SESSION:
            return self.logout_and_replay()  # then a fresh session, so carts stay far below the limits
        self.seq += 1
        item = f"{self.name}-{self.seq}"
        expect = self.expect
        # The key makes the add safe for nginx to replay on another node (see loadbalancer/nginx.conf).
        self._call("add", "POST", "cart", {"item": item}, lambda status, body: expect.add(status, body, item),
                   idempotency_key=item)

    @task(3)
    def read(self):
        if self.expect is None:
            return self.login()
        self._call("read", "GET", "cart", None, self.expect.read)

    def login(self):
        self.token = self.client_state = None
        expect = Expectation(self.name, keeps_state=self.keeps_state)
        verdict = self._call("login", "POST", "login", {"user": self.name}, expect.login)
        self.expect = expect if verdict.outcome == OK else None

    def logout_and_replay(self):
        """End the session, wait out the revocation bound, then try the old credential once more."""
        if not self.keeps_state:
            return self.login()
        held = (self.token, self.client_state, [copy.copy(c) for c in self.client.cookiejar])
        verdict = self._call("logout", "POST", "logout", {}, self.expect.logout)  # {}: a JSON body, as every POST needs
        if verdict.outcome == OK:
            time.sleep(REVOCATION_BOUND + 0.2)  # gevent-patched: other users go on meanwhile
            self.token, self.client_state, cookies = held
            for cookie in cookies:  # the browser obeyed the logout; an attacker keeps the old cookie
                self.client.cookiejar.set_cookie(cookie)
            expect = self.expect
            self._call("replay", "GET", "cart", None,
                       lambda status, body: expect.replay_after_logout(status, body, self.revocable))
        self.login()

    def _call(self, action: str, method: str, path: str, payload: dict | None, judge,
              idempotency_key: str | None = None) -> Verdict:
        headers = as_proxy(self.address)
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.client_state:
            headers["X-Client-Session"] = self.client_state
        started = time.time()
        with self.client.request(method, f"/api/{self.strategy}/{path}", json=payload, headers=headers,
                                 name=f"{self.strategy}: {action}", catch_response=True) as r:
            try:
                body = r.json() if r.text else None
            except ValueError:
                body = None
            status = r.status_code or 0
            verdict = judge(status, body)
            if status == 200 and isinstance(body, dict) and action != "replay":
                # Whatever the verdict, the latest state the server handed back is what the user holds now.
                self.token = body.get("token", self.token)
                self.client_state = body.get("client_session", self.client_state)
            if verdict.outcome == OK:
                r.success()
            else:
                r.failure(verdict.outcome if verdict.outcome != ERROR else f"error: {verdict.detail}")
        if verdict.outcome == SESSION_LOST:
            self.expect = None
        node = (r.headers or {}).get("X-Served-By", "") if status else ""
        RECORDER.add(started, self.strategy, self.name, action, status, verdict.outcome, verdict.lost_items,
                     r.request_meta["response_time"], node, self._slot())
        return verdict

    def _slot(self) -> int:
        """The Cluster slot of the session cookie this user holds (-1: none), for the shard analysis."""
        for cookie in self.client.cookiejar:
            if cookie.name == self.cookie:
                return key_slot(cookie.value.encode())
        return -1


for _cls in chosen_strategies():
    _name = f"{_cls.name.title().replace('-', '').replace('_', '')}User"
    globals()[_name] = type(_name, (SessionUser,), {"strategy": _cls.name, "keeps_state": _cls.keeps_state,
                                                    "revocable": _cls.revocable, "cookie": _cls.session_cookie})


@events.quitting.add_listener
def _report(environment, **_kwargs):
    target = os.environ.get("LOADTEST_RECORD")
    if target:
        RECORDER.write(Path(target))
    tally: dict[str, Counter] = {}
    for row in RECORDER.rows:
        tally.setdefault(row[1], Counter())[row[5]] += 1
    if tally:
        print("\nsession oracle, answers per outcome:")
        print(f"  {'strategy':<10}" + "".join(f"{o:>14}" for o in OUTCOMES))
        for strategy, counts in tally.items():
            print(f"  {strategy:<10}" + "".join(f"{counts[o]:>14}" for o in OUTCOMES))
    foreign = sum(c[FOREIGN] for c in tally.values())
    # Lost sessions are what some strategies do; a leaked session never is.
    environment.process_exit_code = 1 if foreign else 0
