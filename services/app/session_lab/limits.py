"""One budget for what a credential may weigh and what a response may carry in headers.

Every layer's limit is derived from these numbers, with room to spare, so a request or answer that the
app produces can never be refused by the layers around it:

    credential  <= CREDENTIAL_MAX_BYTES    (a cookie value or a bearer token; checked before it is issued)
    app headers <= RESPONSE_HEADERS_MAX    (everything the app puts in one answer's header block)
    nginx proxy_buffer_size          16k   >= 2 x RESPONSE_HEADERS_MAX  (loadbalancer/nginx.conf)
    nginx large_client_header_buffers 16k  >= 4 x CREDENTIAL_MAX_BYTES  (one request header line)
    gunicorn limit_request_field_size      >  nginx's 16k, so nginx, which answers in JSON, refuses first

The nginx numbers matter beyond one request: an upstream header block over proxy_buffer_size is "upstream
sent too big header", which nginx always counts as a failed attempt (like a refused connection), so with
max_fails=1 one oversized answer would take a node away from every user for fail_timeout.
tests/unit/test_limits.py and tests/integration/test_balancer_semantics.py check that the files above keep
these relations, the latter against a real nginx.
"""

from __future__ import annotations

# RFC 6265 §6.1: browsers keep cookies of at least 4096 bytes, counting name, value and attributes.
# The credential leaves room below that for `sl_client=` and the attributes (Path, Max-Age, Expires, HttpOnly,
# SameSite, Secure: about 110 bytes).
CREDENTIAL_MAX_BYTES = 3840
RESPONSE_HEADERS_MAX = 8192


def header_block_bytes(status: str, headers) -> int:
    """The size of an HTTP/1.1 header block as it goes on the wire: status line, `Name: value` lines, CRLFs."""
    size = len("HTTP/1.1 ") + len(status) + 2 + 2
    for name, value in headers:
        size += len(name) + 2 + len(value.encode("latin-1", "replace")) + 2
    return size

IDEMPOTENCY_KEY_MAX_CHARS = 64  # an Idempotency-Key header (api.py); replicated.py bounds a copy's size with it
