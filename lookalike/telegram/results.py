"""Recent results, so inline buttons can show more matches later.

Match lists only — except for photos with several faces, where each face's small crop is kept so that its card
can be drawn when its number is pressed. Memory only (never disk), bounded, dropped after ``ttl`` (15 min) or on
restart; an expired button is answered with "send the photo again". Tokens are random, so a forged button
can't guess someone else's result.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass

from lookalike.engine.matcher import Match


@dataclass(frozen=True)
class FaceResult:
    matches: tuple[Match, ...]
    crop_jpeg: bytes  # the user's own face crop: needed to draw a card for face N on request; dropped on expiry


@dataclass(frozen=True)
class Result:
    owner: int  # user id who sent the photo: only they may press its buttons
    faces: tuple[FaceResult, ...]
    created: float


class ResultCache:
    """Token → Result, at most ``capacity`` entries, each for at most ``ttl`` seconds."""

    def __init__(self, capacity: int = 5000, ttl: float = 900.0) -> None:
        self.capacity = capacity
        self.ttl = ttl
        self._items: OrderedDict[str, Result] = OrderedDict()

    def put(self, owner: int, faces: tuple[FaceResult, ...]) -> str:
        token = secrets.token_urlsafe(6)
        self._items[token] = Result(owner, faces, time.monotonic())
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)
        return token

    def get(self, token: str) -> Result | None:
        result = self._items.get(token)
        if result is None:
            return None
        if time.monotonic() - result.created > self.ttl:
            del self._items[token]
            return None
        return result

    def __len__(self) -> int:
        return len(self._items)
