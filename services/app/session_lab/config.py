"""Settings from environment variables, checked once at start-up.

Every variable is documented in `.env.example`, but the few the stack fixes on purpose (FIXED_SETTINGS,
below). Secrets have no defaults here: `make env` generates dev-only values into `.env`, and the app refuses
to start without them rather than run with a guess.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass, field
from typing import Mapping

# Values that mean "nobody set this": refused outside development.
PLACEHOLDER_SECRETS = {"", "change-me", "changeme", "secret", "dev", "password", "replace-me"}
MIN_JWT_SECRET_BYTES = 32  # RFC 7518 §3.2: an HS256 key must be at least as long as the hash (256 bits)
KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,32}")  # a `kid` is looked up, never used as a path or a URL


class ConfigError(ValueError):
    """A setting is missing or unusable; the message names the variable."""


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be positive, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _secret(env: Mapping[str, str], name: str, app_env: str) -> str:
    value = env.get(name, "")
    if not value:
        raise ConfigError(f"{name} is not set (run `make env` to generate dev-only secrets into .env)")
    if value.strip().lower() in PLACEHOLDER_SECRETS and app_env != "development":
        raise ConfigError(f"{name} is a placeholder; set a real secret when APP_ENV={app_env}")
    return value


@dataclass(frozen=True)
class StoreUser:
    """A Redis ACL user of one strategy family: its name (fixed, as in stores/*/*.acl) and its password."""

    name: str
    password: str = field(repr=False)


# Each strategy family reaches its store as its own ACL user, limited to its keys and the commands it sends
# (stores/*/*.acl): user name -> the variable holding its password. The stores' admin password
# (REDIS_PASSWORD) is never given to the nodes.
STORE_USERS = {
    "redis-cart": "REDIS_CART_PASSWORD",
    "jwt-revocation": "JWT_REVOCATION_PASSWORD",
    "flask-session": "FLASK_SESSION_PASSWORD",
    "sentinel-cart": "SENTINEL_CART_PASSWORD",
    "cluster-cart": "CLUSTER_CART_PASSWORD",
}


def store_user(env: Mapping[str, str], name: str, app_env: str) -> StoreUser:
    password = _secret(env, STORE_USERS[name], app_env)
    if any(c.isspace() for c in password):
        raise ConfigError(f"{STORE_USERS[name]} must not contain whitespace (a Redis ACL password cannot)")
    return StoreUser(name, password)


def jwt_keys(env: Mapping[str, str], app_env: str) -> tuple[tuple[tuple[str, str], ...], str]:
    """JWT_KEYS: `kid:secret` pairs separated by spaces, every listed key verifies; JWT_SIGNING_KEY_ID
    names the one that signs (default: the first listed). Rotation adds a key, then moves the signer."""
    raw = _secret(env, "JWT_KEYS", app_env)
    keys: dict[str, str] = {}
    for pair in raw.split():
        kid, sep, secret = pair.partition(":")
        if not sep or not KEY_ID.fullmatch(kid):
            raise ConfigError(f"JWT_KEYS: {kid[:40]!r} is not `kid:secret` with a kid of 1-32 letters, digits, . _ -")
        if kid in keys:
            raise ConfigError(f"JWT_KEYS lists kid {kid!r} twice")
        if len(secret.encode()) < MIN_JWT_SECRET_BYTES:
            raise ConfigError(f"JWT_KEYS: the secret of kid {kid!r} must be at least {MIN_JWT_SECRET_BYTES} bytes, "
                              f"got {len(secret.encode())}")
        if secret.strip().lower() in PLACEHOLDER_SECRETS and app_env != "development":
            raise ConfigError(f"JWT_KEYS: the secret of kid {kid!r} is a placeholder")
        keys[kid] = secret
    if not keys:
        raise ConfigError("JWT_KEYS lists no key (run `make env` to generate a dev-only one)")
    signing = env.get("JWT_SIGNING_KEY_ID", "").strip() or next(iter(keys))
    if signing not in keys:
        raise ConfigError(f"JWT_SIGNING_KEY_ID {signing!r} is not in JWT_KEYS (kids: {', '.join(keys)})")
    return tuple(keys.items()), signing


def addresses(env: Mapping[str, str], name: str, default: str) -> tuple[tuple[str, int], ...]:
    """`host:port` pairs separated by spaces (SENTINEL_ADDRESSES, CLUSTER_NODES)."""
    raw = env.get(name, "").strip() or default
    found = []
    for pair in raw.split():
        host, sep, port = pair.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"{name}: {pair[:60]!r} is not host:port")
        found.append((host, int(port)))
    return tuple(found)


def session_refresh_after(env: Mapping[str, str], idle: int) -> float:
    """SESSION_REFRESH_AFTER: a use refreshes a session's idle expiry (its TTL in the store, its cookie, its
    token) only once this many seconds of the idle window have passed since the last refresh, so most reads
    write nothing and mint nothing. The cost: an idle session may expire up to this much early. Default:
    1/30 of the idle timeout (60 s of the default 30 min); 0 refreshes on every use."""
    raw = env.get("SESSION_REFRESH_AFTER", "").strip()
    if not raw:
        return idle / 30
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"SESSION_REFRESH_AFTER must be a number of seconds, got {raw!r}") from None
    if not 0 <= value <= idle / 2:
        raise ConfigError(f"SESSION_REFRESH_AFTER must be between 0 and half SESSION_IDLE_TIMEOUT ({idle / 2:g}), "
                          f"got {value:g}")
    return value


def peers(env: Mapping[str, str], node_name: str) -> tuple[tuple[str, str], ...]:
    """REPLICATION_PEERS: `name=host:port` per app node, in ring order (each node copies its sessions to the
    next one, the last to the first). Empty: no replication (a node on its own)."""
    found: list[tuple[str, str]] = []
    for pair in env.get("REPLICATION_PEERS", "").split():
        name, sep, address = pair.partition("=")
        host, colon, port = address.rpartition(":")
        if not sep or not name or not host or not colon or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"REPLICATION_PEERS: {pair[:60]!r} is not name=host:port")
        if name in dict(found):
            raise ConfigError(f"REPLICATION_PEERS lists {name!r} twice")
        found.append((name, address))
    if found and node_name not in dict(found):
        raise ConfigError(f"REPLICATION_PEERS does not list this node (NODE_NAME={node_name}): "
                          f"it lists {', '.join(n for n, _ in found)}")
    return tuple(found)


def decode_key(raw: str, name: str = "CLIENT_SESSION_KEY") -> bytes:
    """A 256-bit key written as URL-safe base64 (what `make env` generates)."""
    try:
        key = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    except (binascii.Error, ValueError):
        raise ConfigError(f"{name} must be URL-safe base64") from None
    if len(key) != 32:
        raise ConfigError(f"{name} must decode to 32 bytes, got {len(key)}")
    return key


# nginx gives a node 5 s to answer (proxy_read_timeout in loadbalancer/proxy.conf); past it, it counts the
# node failed (max_fails=1: taken out of the pool for fail_timeout) and replays the request on another node.
# So no request may come near it, whatever a store does: every request has one deadline (REQUEST_DEADLINE,
# deadline.py) that covers every retry, backoff, slot-map refresh, connect, read and WAIT of every store call
# it makes, and answers 503 JSON once it is spent. Half of nginx's timeout: the other half is the margin for
# what the deadline does not cover (the request's own work, a thread waiting for the CPU on a loaded 2-core
# host, a store call already under way, which may overrun by its last I/O's granularity). Then a read timeout
# at nginx means the node itself is frozen, never that one strategy's store is.
PROXY_READ_TIMEOUT = 5.0


def request_deadline(env: Mapping[str, str]) -> float:
    """REQUEST_DEADLINE: seconds a request may spend on its stores, at most half nginx's read timeout."""
    seconds = _float(env, "REQUEST_DEADLINE", PROXY_READ_TIMEOUT / 2)
    if seconds > PROXY_READ_TIMEOUT / 2:
        raise ConfigError(f"REQUEST_DEADLINE {seconds} s must be at most half nginx's proxy_read_timeout "
                          f"({PROXY_READ_TIMEOUT:.0f} s), or a stalled store could make nginx eject the node")
    return seconds


def store_retry_budget(env: Mapping[str, str], request_deadline_s: float) -> float:
    """STORE_RETRY_BUDGET: how long one store call retries what a failover cures; the request's deadline ends
    it earlier when the request has spent its time already, so it may not exceed REQUEST_DEADLINE."""
    budget = _float(env, "STORE_RETRY_BUDGET", 2.0)
    if budget > request_deadline_s:
        raise ConfigError(f"STORE_RETRY_BUDGET {budget} s must not exceed REQUEST_DEADLINE ({request_deadline_s} s): "
                          "the deadline would cut the retries short anyway")
    return budget


MIN_REPLICATION_SECRET_BYTES = 32  # an HMAC-SHA256 key as long as the hash, as for JWT_KEYS


def replication_secret(env: Mapping[str, str], app_env: str) -> str:
    secret = _secret(env, "REPLICATION_SECRET", app_env)
    if len(secret.encode()) < MIN_REPLICATION_SECRET_BYTES:
        raise ConfigError(f"REPLICATION_SECRET must be at least {MIN_REPLICATION_SECRET_BYTES} bytes "
                          "(run `make env` to generate a dev-only one)")
    return secret


def replication_timeout(env: Mapping[str, str]) -> float:
    """REPLICATION_TIMEOUT: a synchronous copy waits this long at most, inside nginx's read timeout with room
    for the node's own work; past it the buddy counts as down and the node serves without a copy."""
    timeout = _float(env, "REPLICATION_TIMEOUT", 1.0)
    if timeout >= PROXY_READ_TIMEOUT / 2:
        raise ConfigError(f"REPLICATION_TIMEOUT {timeout} s must stay under half nginx's proxy_read_timeout "
                          f"({PROXY_READ_TIMEOUT:.0f} s)")
    return timeout


@dataclass(frozen=True)
class Settings:
    node_name: str
    app_env: str
    redis_host: str
    redis_port: int
    redis_cart_user: StoreUser  # the `redis` strategy's carts (sl:*) on the one Redis
    jwt_revocation_user: StoreUser  # jwt logouts (jwt:* keys and channel) on the one Redis
    flask_session_user: StoreUser  # the peer's blobs (fs:*) on the one Redis
    sentinel_cart_user: StoreUser  # the sentinel strategies, on the sentinels (discovery only) and data nodes
    cluster_cart_user: StoreUser  # the cluster strategies, on every Cluster node
    redis_connect_timeout: float
    redis_socket_timeout: float
    idle_timeout: int
    absolute_timeout: int
    refresh_after: float  # seconds of a session's idle window that pass before a use refreshes it
    cookie_secure: bool
    jwt_keys: tuple[tuple[str, str], ...]  # (kid, secret); all verify
    jwt_signing_kid: str
    jwt_revocation_sync: bool  # share logouts through Redis pub/sub; off: this node's denylist only
    jwt_issuer: str
    jwt_audience: str
    jwt_leeway: int
    client_session_key: bytes
    max_user_length: int
    max_item_length: int
    max_cart_items: int
    memory_max_sessions: int
    memory_max_sessions_per_client: int  # a client's own oldest go beyond this (strategies/_client_budget.py)
    memory_max_mb: int  # what one node-local store's sessions may take, about, in MiB
    redis_max_sessions_per_client: int  # logins a client may hold open in one Redis store (429 beyond)
    max_adds_per_second: int  # adds to one Redis-backed session per second (429 beyond)
    sentinel_addresses: tuple[tuple[str, int], ...]
    sentinel_service: str
    cluster_nodes: tuple[tuple[str, int], ...]
    store_retry_budget: float  # seconds one request may spend retrying a Sentinel or Cluster store
    request_deadline: float  # seconds a request may spend on its stores, all calls and retries together
    breaker_failures: int  # store calls failed in a row that open a store's circuit breaker (breaker.py)
    breaker_open_seconds: float  # how long an open breaker fails fast before it lets one probe through
    store_max_concurrent: int  # a node's requests inside one store at once (the bulkhead)
    wait_replicas: int  # replicas a `-wait` strategy's change must reach before it is acknowledged
    wait_timeout_ms: int
    replication_peers: tuple[tuple[str, str], ...]  # (node name, host:port) in ring order; empty: none
    replication_secret: str  # signs node-to-node copies; empty when there are no peers
    replication_timeout: float  # seconds a copy to the buddy may take before the buddy counts as down

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        app_env = env.get("APP_ENV", "production").strip() or "production"
        if app_env not in {"development", "production"}:
            raise ConfigError(f"APP_ENV must be development or production, got {app_env!r}")
        keys, signing_kid = jwt_keys(env, app_env)
        idle = _int(env, "SESSION_IDLE_TIMEOUT", 1800, minimum=1)
        absolute = _int(env, "SESSION_ABSOLUTE_TIMEOUT", 8 * 3600, minimum=1)
        if absolute < idle:
            raise ConfigError("SESSION_ABSOLUTE_TIMEOUT must not be shorter than SESSION_IDLE_TIMEOUT")
        refresh_after = session_refresh_after(env, idle)
        # A frozen Redis must not hold a gunicorn thread for long: fail fast, answer 503.
        connect_timeout = _float(env, "REDIS_CONNECT_TIMEOUT", 0.5)
        socket_timeout = _float(env, "REDIS_SOCKET_TIMEOUT", 1.0)
        node_name = env.get("NODE_NAME", "").strip() or os.uname().nodename
        ring = peers(env, node_name)
        return cls(
            node_name=node_name,
            app_env=app_env,
            redis_host=env.get("REDIS_HOST", "redis"),
            redis_port=_int(env, "REDIS_PORT", 6379, minimum=1),
            redis_cart_user=store_user(env, "redis-cart", app_env),
            jwt_revocation_user=store_user(env, "jwt-revocation", app_env),
            flask_session_user=store_user(env, "flask-session", app_env),
            sentinel_cart_user=store_user(env, "sentinel-cart", app_env),
            cluster_cart_user=store_user(env, "cluster-cart", app_env),
            redis_connect_timeout=connect_timeout,
            redis_socket_timeout=socket_timeout,
            idle_timeout=idle,
            absolute_timeout=absolute,
            refresh_after=refresh_after,
            cookie_secure=_bool(env, "COOKIE_SECURE", False),
            jwt_keys=keys,
            jwt_signing_kid=signing_kid,
            jwt_revocation_sync=_bool(env, "JWT_REVOCATION_SYNC", True),
            jwt_issuer=env.get("JWT_ISSUER", "session-lab"),
            jwt_audience=env.get("JWT_AUDIENCE", "session-lab-api"),
            jwt_leeway=_int(env, "JWT_LEEWAY", 5),
            client_session_key=decode_key(_secret(env, "CLIENT_SESSION_KEY", app_env)),
            max_user_length=_int(env, "MAX_USER_LENGTH", 64, minimum=1),
            max_item_length=_int(env, "MAX_ITEM_LENGTH", 64, minimum=1),
            max_cart_items=_int(env, "MAX_CART_ITEMS", 50, minimum=1),
            memory_max_sessions=_int(env, "MEMORY_MAX_SESSIONS", 100_000, minimum=1),
            memory_max_sessions_per_client=_int(env, "MEMORY_MAX_SESSIONS_PER_CLIENT", 1000, minimum=1),
            memory_max_mb=_int(env, "MEMORY_MAX_MB", 128, minimum=1),
            redis_max_sessions_per_client=_int(env, "REDIS_MAX_SESSIONS_PER_CLIENT", 500, minimum=1),
            max_adds_per_second=_int(env, "MAX_ADDS_PER_SECOND", 100, minimum=1),
            sentinel_addresses=addresses(env, "SENTINEL_ADDRESSES", "sentinel1:26379 sentinel2:26379 sentinel3:26379"),
            sentinel_service=env.get("SENTINEL_SERVICE", "").strip() or "lab-primary",
            cluster_nodes=addresses(env, "CLUSTER_NODES", " ".join(f"cluster{i}:6379" for i in range(1, 7))),
            store_retry_budget=store_retry_budget(env, request_deadline(env)),
            request_deadline=request_deadline(env),
            breaker_failures=_int(env, "BREAKER_FAILURES", 3, minimum=1),
            # Short: a store that fails over (Sentinel about 2-3 s, hypotheses.FAILOVER_BOUND: 3 s) must not
            # stay failed-fast long after its replica is promoted; the probe itself retries to its deadline.
            breaker_open_seconds=_float(env, "BREAKER_OPEN_SECONDS", 0.5),
            # Half of gunicorn's 16 threads (GUNICORN_THREADS): one stalled store leaves the other half to
            # every other strategy; a healthy store's call takes a millisecond, so 8 is never reached by load.
            store_max_concurrent=_int(env, "STORE_MAX_CONCURRENT", 12, minimum=1),
            wait_replicas=_int(env, "WAIT_REPLICAS", 1, minimum=1),
            wait_timeout_ms=_int(env, "WAIT_TIMEOUT_MS", 500, minimum=1),
            replication_peers=ring,
            replication_secret=replication_secret(env, app_env) if ring else "",
            replication_timeout=replication_timeout(env),
        )


# Settings the app reads that are NOT for .env: the stack fixes them on purpose, for the reason given. Every
# other variable the app reads is documented in .env.example and passed to the nodes by docker-compose.yml's
# x-app-node environment; tests/unit/test_config_documented.py checks the three lists agree.
FIXED_SETTINGS: dict[str, str] = {
    "NODE_NAME": "each node's own name, set per service in docker-compose.yml (app1..app3); REPLICATION_PEERS "
                 "and the balancer's APP_NODES must name the same nodes",
    "APP_PORT": "8000 (gunicorn.conf.py): the nodes' fixed addresses in REPLICATION_PEERS and APP_NODES and their "
                "healthcheck name it",
    "REDIS_HOST": "the redis service's fixed address, LAB_SUBNET_PREFIX.20 (docker-compose.yml)",
    "REDIS_PORT": "6379, the redis service's port; the integration tests point it at their own redis-server",
    "SENTINEL_ADDRESSES": "the sentinels' fixed addresses, from LAB_SUBNET_PREFIX (docker-compose.yml)",
    "SENTINEL_SERVICE": "lab-primary, the name stores/sentinel/sentinel.conf monitors",
    "CLUSTER_NODES": "the Cluster nodes' fixed addresses, from LAB_SUBNET_PREFIX (docker-compose.yml)",
    "REPLICATION_PEERS": "the ring, one YAML anchor with the balancer's APP_NODES so the two always agree",
    "WAIT_REPLICAS": "1: each Cluster master has one replica (stores/cluster/init.sh); asking for more would "
                     "fail every cluster-wait write",
    "JWT_ISSUER": "the lab is the only issuer of its tokens; every node must agree, and a change logs every jwt "
                  "user out",
    "JWT_AUDIENCE": "the lab's API is the only audience; as JWT_ISSUER",
    "APP_NODES": "the balancer's node list (loadbalancer/render-mode.sh): the same YAML anchor as REPLICATION_PEERS",
    "GUNICORN_GRACEFUL_TIMEOUT": "10 s, matched by compose's stop_grace_period (15 s): a longer drain would be cut "
                                 "by SIGKILL",
}
