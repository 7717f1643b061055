"""How much a stream of ``jamsdk serve`` may send, and what happens to a client that sends more.

Dropping a flooding stream's surplus frames (:mod:`jamsdk.serve.inbox`) keeps its memory bounded,
but every message still crosses Serve's proxy and the replica's receive path before it can be
dropped (about a millisecond of the replica's CPU each, measured by ``benchmarks/serve_load.py``):
a client that sends hundreds of messages a second, or a stream of pictures that are all refused,
takes CPU from every other stream of the replica. Serve's proxy reads a WebSocket whether the
application reads it or not, so the only way to stop paying for such a client is to close it.

The rules, per stream (numbers from :class:`~jamsdk.serve.protocol.Limits`):

* at most ``max_messages_per_s`` messages a second, with a burst of as many (a token bucket): a
  client that sends each frame once the previous one is answered, or at a camera's rate, never
  comes near it;
* at most ``max_bad_messages`` refused messages (over the byte or pixel limit, not a picture,
  unexpected text) a minute, with a burst of as many;
* a stream that breaks either is closed with code 1008 and the reason, and its client's address
  may not open another stream for ``penalty_s`` seconds: the handshake is refused with HTTP 429 and
  ``Retry-After`` before the replica reads anything (``penalty_s = 0`` turns the penalty off);
* at most ``decode_share`` of the replica's decoding time (:class:`DecodeBudget`): valid but huge
  frames are delayed, not refused, so that one client's decoding cannot starve the other streams.

Behind a reverse proxy or a NAT every client shares one address, and so shares the penalty: there,
set ``penalty_s`` to 0 and limit connection rates in the reverse proxy. Kept apart from
:mod:`jamsdk.serve.app` (which imports Ray) so the rules are tested without Ray.
"""

from __future__ import annotations

import collections
import math
import time
from typing import Callable, Optional

Clock = Callable[[], float]


class RateBucket:
    """A token bucket: ``burst`` tokens at first, ``rate`` more a second, one taken per event."""

    def __init__(self, rate: float, burst: float, clock: Clock = time.monotonic):
        self.rate, self.burst, self._clock = float(rate), float(burst), clock
        self._tokens = float(burst)
        self._at = clock()

    def take(self) -> bool:
        """Take a token; False (and nothing taken) when the bucket is empty."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


class StreamPolicy:
    """One stream's budgets; each ``on_*`` call returns None, or why the stream must be closed."""

    def __init__(self, max_messages_per_s: float, max_bad_messages: int, clock: Clock = time.monotonic):
        self.max_messages_per_s, self.max_bad_messages = max_messages_per_s, max_bad_messages
        self._messages = RateBucket(max_messages_per_s, max_messages_per_s, clock)
        self._bad = RateBucket(max_bad_messages / 60.0, max_bad_messages, clock)

    def on_message(self) -> Optional[str]:
        """A message arrived (any kind, before it is looked at)."""
        if self._messages.take():
            return None
        return (f"more than {self.max_messages_per_s:g} messages a second (the limit: send each frame once the "
                "previous one is answered); stream closed")

    def on_bad(self) -> Optional[str]:
        """A message was refused (too many bytes or pixels, not a picture, unexpected text)."""
        if self._bad.take():
            return None
        return f"more than {self.max_bad_messages} refused messages in a minute (the limit); stream closed"


class DecodeBudget:
    """A stream's share of the replica's decoding time: at most ``share`` of each second on average.

    Decoding and shrinking a frame costs about 25-30 ns a pixel for a PNG (a 4096² one: ~0.5 s of a
    core), while the model's own work is the same for any frame; so valid but huge frames from one
    client take the replica's CPU from every other stream. After each decode the stream is charged
    the time it took (measured in the decoding thread), and its next decode waits until
    ``charged / share`` has passed since (:meth:`wait`): with 0.1 a frame that took 0.5 s to decode
    holds that stream's next one for 5 s. A frame is never refused for its cost here (the pixel and
    side limits do that); it is delayed, and while it waits the stream's surplus frames are dropped
    as any flood's are (:mod:`jamsdk.serve.inbox`). A stream that ends in debt leaves it to its
    address (:class:`Debts`), so reconnecting does not reset it. Charging measured time rather than
    declared pixels treats a cheap format (a 12 MP JPEG photo decodes in well under 0.1 s) as cheap.
    """

    def __init__(self, share: float, wait: float = 0.0, clock: Clock = time.monotonic):
        self.share, self._clock = float(share), clock  # share 0: no budget
        self._free_at = clock() + max(0.0, wait)  # when the decoding charged so far is paid off

    def wait(self) -> float:
        """Seconds until this stream may decode its next picture (0: now)."""
        return max(0.0, self._free_at - self._clock())

    def charge(self, seconds: float) -> None:
        """A picture of this stream just took ``seconds`` to decode."""
        if self.share > 0:
            self._free_at = max(self._free_at, self._clock()) + seconds / self.share


def refusal_text(address: Optional[str], wait: float) -> str:
    """What a penalised address is told when its handshake is refused (by a replica or by Serve's proxy)."""
    return f"{address} may not open a stream for {math.ceil(wait)} s more: a stream from it broke the service's limits"


class PenaltyBox:
    """Client addresses that may not open a stream until their penalty is over.

    A penalty lasts ``seconds`` unless :meth:`add` says otherwise; with one length for all,
    insertion order is expiry order, so expired entries are found at the front. At most
    ``max_entries`` are kept (an attacker with many addresses cannot grow the memory; the oldest
    penalties end early instead).
    """

    def __init__(self, seconds: float, max_entries: int = 4096, clock: Clock = time.monotonic):
        self.seconds, self.max_entries, self._clock = float(seconds), max_entries, clock
        self._until: collections.OrderedDict[str, float] = collections.OrderedDict()

    def add(self, address: Optional[str], seconds: Optional[float] = None) -> None:
        """Penalise ``address`` for ``seconds`` (default: the box's own); a repeat restarts the penalty."""
        seconds = self.seconds if seconds is None else float(seconds)
        if not address or seconds <= 0:
            return
        self._until.pop(address, None)
        self._until[address] = self._clock() + seconds
        self._expire()
        while len(self._until) > self.max_entries:
            self._until.popitem(last=False)

    def remaining(self, address: Optional[str]) -> float:
        """Seconds until ``address`` may open a stream again (0: it may now)."""
        self._expire()
        until = self._until.get(address) if address else None
        if until is None:
            return 0.0
        left = until - self._clock()
        if left <= 0:  # expired behind a longer one at the front
            del self._until[address]
            return 0.0
        return left

    def __len__(self) -> int:
        now = self._clock()
        return sum(1 for until in self._until.values() if until > now)

    def _expire(self) -> None:
        now = self._clock()
        while self._until and next(iter(self._until.values())) <= now:
            self._until.popitem(last=False)


class Debts:
    """Unpaid decoding time of ended streams, by client address: a new stream from there starts waiting it.

    Kept like penalties (:class:`PenaltyBox`: bounded, oldest out first); an entry is gone once paid off.
    """

    def __init__(self, max_entries: int = 4096, clock: Clock = time.monotonic):
        self._box = PenaltyBox(0.0, max_entries=max_entries, clock=clock)

    def leave(self, address: Optional[str], budget: DecodeBudget) -> None:
        """A stream from ``address`` ended with ``budget``'s wait still to serve."""
        if budget.wait() > self._box.remaining(address):
            self._box.add(address, budget.wait())

    def take(self, address: Optional[str]) -> float:
        """Seconds a new stream from ``address`` waits before its first decode."""
        return self._box.remaining(address)


__all__ = ["DecodeBudget", "Debts", "PenaltyBox", "RateBucket", "StreamPolicy", "refusal_text"]
