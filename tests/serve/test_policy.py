"""The message budgets of a serve stream and the penalty of its client's address (no Ray needed)."""

import pytest

from jamsdk.errors import InputError
from jamsdk.serve.policy import DecodeBudget, Debts, PenaltyBox, RateBucket, StreamPolicy
from jamsdk.serve.protocol import Limits


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_bucket_allows_its_burst_then_its_rate():
    clock = Clock()
    bucket = RateBucket(rate=10, burst=5, clock=clock)
    assert [bucket.take() for _ in range(6)] == [True] * 5 + [False]
    clock.now += 0.25  # 2.5 tokens back
    assert [bucket.take() for _ in range(3)] == [True, True, False]
    clock.now += 100  # never more than the burst
    assert sum(bucket.take() for _ in range(10)) == 5


def test_a_lockstep_client_never_meets_the_message_limit_and_a_flood_does_at_once():
    clock = Clock()
    policy = StreamPolicy(max_messages_per_s=60, max_bad_messages=32, clock=clock)
    for _ in range(60 * 30):  # 30 s at 60 messages a second, exactly the limit
        assert policy.on_message() is None
        clock.now += 1 / 60
    flood = StreamPolicy(max_messages_per_s=60, max_bad_messages=32, clock=clock)
    results = []
    for _ in range(100):  # 400 messages a second
        results.append(flood.on_message())
        clock.now += 1 / 400
    first = next(i for i, r in enumerate(results) if r is not None)
    assert 60 <= first <= 70  # the burst of 60, plus what trickled back meanwhile
    assert "more than 60 messages a second" in results[first]


def test_refused_messages_have_a_budget_per_minute():
    clock = Clock()
    policy = StreamPolicy(max_messages_per_s=60, max_bad_messages=4, clock=clock)
    assert [policy.on_bad() for _ in range(4)] == [None] * 4
    assert "more than 4 refused messages in a minute" in policy.on_bad()
    clock.now += 15  # a quarter of a minute: one back
    assert policy.on_bad() is None
    assert policy.on_bad() is not None


def test_penalty_box_expires_and_is_bounded():
    clock = Clock()
    box = PenaltyBox(10, max_entries=3, clock=clock)
    box.add("10.0.0.1")
    assert box.remaining("10.0.0.1") == pytest.approx(10)
    assert box.remaining("10.0.0.2") == 0
    clock.now += 4
    assert box.remaining("10.0.0.1") == pytest.approx(6)
    for i in range(2, 6):
        box.add(f"10.0.0.{i}")
    assert len(box) == 3 and box.remaining("10.0.0.1") == 0  # the oldest penalties ended early
    assert box.remaining("10.0.0.5") == pytest.approx(10)
    clock.now += 10.5
    assert len(box) == 0
    box.add("10.0.0.7")
    box.add("10.0.0.7")  # a second offence restarts the penalty, one entry
    assert len(box) == 1
    off = PenaltyBox(0, clock=clock)
    off.add("10.0.0.1")
    assert off.remaining("10.0.0.1") == 0 and len(off) == 0
    box.add(None)  # no address (a Unix socket): nothing to hold
    assert len(box) == 1


def test_a_repeat_offender_under_the_cap_keeps_its_penalty():
    """A repeat offence moves the address to the back: when the box is full, the oldest *other*
    penalty ends early, never the repeat offender's (insertion order stays expiry order)."""
    clock = Clock()
    box = PenaltyBox(10, max_entries=2, clock=clock)
    box.add("A")
    clock.now += 1
    box.add("B")
    clock.now += 1
    box.add("A")  # again: its penalty restarts, and it is now the newest
    clock.now += 1
    box.add("C")  # the box is full: the oldest penalty (B's) ends early
    assert box.remaining("A") == pytest.approx(9) and box.remaining("B") == 0
    assert box.remaining("C") == pytest.approx(10)


def test_a_decode_budget_delays_heavy_frames_and_never_light_ones():
    """A share of 0.1: 256² frames (2 ms to decode) at 30 a second never wait; a 4096² one that took
    0.5 s holds the stream's next decode for 5 s; at exactly the share nothing waits."""
    clock = Clock()
    light = DecodeBudget(0.1, clock=clock)
    for _ in range(300):
        assert light.wait() == 0
        light.charge(0.002)
        clock.now += 1 / 30
    heavy = DecodeBudget(0.1, clock=clock)
    assert heavy.wait() == 0
    heavy.charge(0.5)
    assert heavy.wait() == pytest.approx(5.0)
    clock.now += 2.5
    assert heavy.wait() == pytest.approx(2.5)
    clock.now += 2.5
    assert heavy.wait() == 0
    heavy.charge(0.1)  # exactly the share: one second of decoding budget used in one second
    clock.now += 1.0
    assert heavy.wait() == 0
    off = DecodeBudget(0, clock=clock)
    off.charge(100.0)
    assert off.wait() == 0  # 0: no budget


def test_reconnecting_does_not_clear_a_streams_debt():
    clock = Clock()
    debts = Debts(clock=clock)
    budget = DecodeBudget(0.1, debts.take("10.0.0.9"), clock=clock)
    budget.charge(0.5)
    debts.leave("10.0.0.9", budget)  # the stream ends owing 5 s
    clock.now += 1
    again = DecodeBudget(0.1, debts.take("10.0.0.9"), clock=clock)
    assert again.wait() == pytest.approx(4.0)
    assert DecodeBudget(0.1, debts.take("10.0.0.10"), clock=clock).wait() == 0  # another address owes nothing
    clock.now += 5
    assert debts.take("10.0.0.9") == 0


@pytest.mark.parametrize("field,value", [("max_messages_per_s", 0), ("max_messages_per_s", True),
                                         ("max_bad_messages", 0), ("max_bad_messages", 2.5),
                                         ("penalty_s", -1), ("penalty_s", "10"), ("decode_share", -0.1),
                                         ("decode_share", 1.5), ("decode_share", float("nan"))])
def test_limits_refuse_nonsense(field, value):
    with pytest.raises(InputError, match=field):
        Limits(**{field: value})
    assert Limits(penalty_s=0).penalty_s == 0


def test_an_abort_drops_what_waits_and_ends_the_stream_at_once():
    import asyncio

    from jamsdk.serve.inbox import Closed, Inbox

    async def scenario():
        box = Inbox(max_pending=2)
        for seq in range(3):
            box.put("bytes", seq, bytes(1000), droppable=seq > 0)
        box.abort("policy", "too fast")
        assert box.waiting == 0 and not box.items  # nothing waits to be decoded after the verdict
        with pytest.raises(Closed, match="policy"):
            await box.get()
        assert box.reason == "too fast"
        gone = Inbox(max_pending=2)
        gone.end("gone")
        gone.abort("policy", "too fast")  # a client already gone is not told anything
        with pytest.raises(Closed, match="gone"):
            await gone.get()

    asyncio.run(scenario())


def test_serve_refuses_nonsense_limits_in_one_line():
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "jamsdk", "serve", "--max-message-rate", "0", "--port", "0"],
                       capture_output=True, text=True, timeout=120)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and "--max-message-rate: expected a number > 0, got 0" in lines[0], \
        r.stderr
