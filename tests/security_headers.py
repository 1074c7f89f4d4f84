"""What every answer through the balancer must carry (loadbalancer/security-headers.conf): checked the same way
by the integration layer (real nginx on loopback) and the e2e layer (the compose stack)."""

from __future__ import annotations

from typing import Mapping

PLAIN_HEADERS = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer", "x-frame-options": "DENY"}
# Sources a directive may name: this origin or nothing; img-src also data: (the favicon demo.js draws).
ALLOWED_SOURCES = {"'self'", "'none'"}


def policy(header: str) -> dict[str, list[str]]:
    """A Content-Security-Policy header as {directive: [sources]}."""
    found = {}
    for part in filter(None, (p.strip() for p in header.split(";"))):
        name, *sources = part.split()
        assert name not in found, f"{name} twice in {header!r}"
        found[name] = sources
    return found


def assert_defended(headers: Mapping[str, str], what: str) -> None:
    """headers: one answer's, names in lower case."""
    for name, value in PLAIN_HEADERS.items():
        assert headers.get(name) == value, f"{what}: {name} is {headers.get(name)!r}"
    csp = policy(headers.get("content-security-policy", ""))
    assert csp.get("default-src") in (["'none'"], ["'self'"]), f"{what}: {csp}"
    assert csp.get("script-src") == ["'self'"], f"{what}: scripts from this origin only, none inline: {csp}"
    assert csp.get("frame-ancestors") == ["'none'"] and csp.get("base-uri") == ["'none'"], f"{what}: {csp}"
    assert csp.get("form-action") in (["'self'"], ["'none'"]), f"{what}: {csp}"
    for directive, sources in csp.items():
        allowed = ALLOWED_SOURCES | ({"data:"} if directive == "img-src" else set())
        assert set(sources) <= allowed, f"{what}: {directive} allows {set(sources) - allowed} (no external origins)"
