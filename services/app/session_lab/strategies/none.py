"""No session at all: every request is anonymous. The baseline the other strategies are measured against."""

from __future__ import annotations

from flask import Request, Response

from ..traits import Traits
from .base import Session, Strategy


class NoSession(Strategy):
    traits = Traits(
        name="none",
        summary="No session: every request is anonymous and nothing is remembered (performance baseline).",
        keeps_state=False,
        revocable=False,
    )
    position = 0

    def login(self, user: str) -> Session:
        return Session(user=user, created_at=self.clock())

    def current(self, request: Request) -> Session:
        return Session(user=None, created_at=self.clock())

    def add_item(self, session: Session, item: str, key: str | None = None) -> Session:
        # Echo the one item: the request did its work, but nothing carries over to the next one.
        session.items.append(item)
        session.version += 1
        return session

    def end(self, request: Request) -> None:
        pass

    def issue(self, session: Session, body: dict, response: Response) -> None:
        return None
