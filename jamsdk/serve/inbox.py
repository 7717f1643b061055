"""A stream's inbox on a ``jamsdk serve`` replica: received messages in order, a bounded number waiting.

Kept apart from :mod:`jamsdk.serve.app` (which imports Ray) so the policy is tested without Ray.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any, Optional


class Closed(Exception):
    """The client went away (or must be sent away); the stream ends."""


class Inbox:
    """A stream's received messages, in order, with at most ``max_pending`` of them waiting.

    One reader task fills it as fast as the client sends; the stream's loop takes from it. When a
    message arrives while ``max_pending`` wait, the oldest waiting one is dropped (its bytes freed)
    and folded into a ``("dropped", n)`` entry that is answered in its place: a flooding client
    costs its own stream frames, never the replica's memory or the other streams' turn.
    """

    def __init__(self, max_pending: int):
        self.max_pending = max_pending
        self.items: collections.deque = collections.deque()
        self.waiting = 0  # messages (not drop notes) in items
        self.dropped = 0  # every message dropped so far (health)
        self.ended: Optional[str] = None  # why the reader stopped: "idle", "gone" or "policy"
        self.reason = ""  # the words of an abort, for the client
        self._event = asyncio.Event()

    def put(self, kind: str, seq: int, payload: Any, droppable: bool = True) -> None:
        if droppable and self.waiting >= self.max_pending:
            self._drop_oldest()
        self.items.append([kind, seq, payload, droppable])
        self.waiting += 1
        self._event.set()

    def _drop_oldest(self) -> None:
        for i, item in enumerate(self.items):
            if item[0] != "dropped" and item[3]:
                before = self.items[i - 1] if i else None
                if before is not None and before[0] == "dropped":
                    before[2] += 1
                    del self.items[i]
                else:
                    self.items[i] = ["dropped", item[1], 1, False]
                self.waiting -= 1
                self.dropped += 1
                return

    def end(self, why: str) -> None:
        self.ended = self.ended or why
        self._event.set()

    def abort(self, why: str, reason: str) -> None:
        """End the stream now: what waits is dropped (its bytes freed); the next get() raises Closed(why)."""
        self.items.clear()
        self.waiting = 0
        self.reason = self.reason or reason
        if self.ended != "gone":  # a client already gone is told nothing
            self.ended = why
        self._event.set()

    async def get(self) -> list:
        while not self.items:
            if self.ended is not None:
                raise Closed(self.ended)
            self._event.clear()
            await self._event.wait()
        item = self.items.popleft()
        if item[0] != "dropped":
            self.waiting -= 1
        return item


__all__ = ["Closed", "Inbox"]
