"""The version of the layout a server-side session is stored in (a Redis hash, a node's memory, a copy sent
to a buddy node). Every store writes FORMAT with the session; a reader accepts the formats in READABLE.

A rolling redeploy runs two versions of the app side by side for a while: the new one must read what the
old one wrote, or refuse it cleanly (401 JSON, the user logs in again), never fail with a 500. So a change
of layout bumps FORMAT and keeps the old number in READABLE for as long as old sessions may live
(SESSION_ABSOLUTE_TIMEOUT), then drops it. State written before formats existed carries none: its layout is
format 1's.
"""

from __future__ import annotations

from .errors import Unauthorized

FORMAT = 1
READABLE = frozenset({1})
FIELD = "fmt"  # the name of the format field wherever a session is stored


class UnreadableFormat(Unauthorized):
    code = "session_format_unsupported"


def check(found: object) -> None:
    """Refuses (401) a session stored in a format this version cannot read; None counts as format 1."""
    if isinstance(found, bytes):
        found = found.decode(errors="replace")
    if found is None or found == "":
        return
    try:
        version = int(found)
    except (TypeError, ValueError):
        version = None
    if version not in READABLE:
        raise UnreadableFormat(f"this session was stored in format {str(found)[:16]!r}, which this version of the "
                               f"app cannot read (it reads {', '.join(map(str, sorted(READABLE)))}); log in again")
